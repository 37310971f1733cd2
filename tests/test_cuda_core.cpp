// GPU tests of the CUDA runtime pieces (cuda/runtime.h) and of CUDA tensors' storage, copies,
// fills and element access. Skipped (and counted as skipped) without a GPU.
#include <doctest/doctest.h>

#include <sstream>

#ifdef SSM_CUDA
#include "cuda/runtime.h"
#endif
#include "tensor/random.h"
#include "tests/helpers.h"
#include "tests/parity.h"

using namespace ssm;

TEST_CASE("cuda: a CPU-only build or a machine without a GPU refuses CUDA tensors clearly") {
  if (cuda_available()) return; // covered by the GPU tests below
  CHECK_THROWS_AS(Tensor::zeros({2}, DType::Float32, Device::cuda(0)), std::exception);
}

GPU_TEST_CASE("cuda: to(device) round trip for every dtype, including strided views") {
  Generator gen(1);
  for (DType dtype : {DType::Float32, DType::Float64, DType::Int64}) {
    const Tensor host = dtype == DType::Int64 ? Tensor::randint(-100, 100, {3, 5, 7}, dtype, &gen)
                                              : Tensor::randn({3, 5, 7}, dtype, &gen);
    const Tensor device = host.to(Device::cuda(0));
    CHECK(device.device() == Device::cuda(0));
    test::check_values(device.to(Device::cpu()), host.to_doubles(), 0);
    // A strided view moved to the GPU, and a strided view of a GPU tensor moved back.
    const Tensor view = host.permute({2, 0, 1}).slice(1, 0, 3, 2);
    test::check_values(view.to(Device::cuda(0)).to(Device::cpu()), view.to_doubles(), 0);
    test::check_values(device.permute({2, 0, 1}).slice(1, 0, 3, 2).to(Device::cpu()),
                       view.to_doubles(), 0);
  }
}

GPU_TEST_CASE("cuda: copy_ with broadcasting and dtype conversion, fill_, at/set") {
  Tensor dst = Tensor::zeros({4, 3}, DType::Float64, Device::cuda(0));
  const Tensor row = Tensor::from_values({1.5, -2.5, 3.25}, {3}, DType::Float32, Device::cuda(0));
  dst.copy_(row);
  test::check_values(dst.to(Device::cpu()),
                     {1.5, -2.5, 3.25, 1.5, -2.5, 3.25, 1.5, -2.5, 3.25, 1.5, -2.5, 3.25}, 0);
  Tensor column = dst.select(1, 1); // strided view
  column.fill_(7);
  CHECK(dst.at({2, 1}) == 7);
  CHECK(dst.at({2, 0}) == 1.5);
  dst.set({3, 2}, -1);
  CHECK(dst.to(Device::cpu()).at({3, 2}) == -1);
  // Host source into a device destination.
  dst.copy_(Tensor::ones({4, 3}, DType::Float64));
  CHECK(dst.at({0, 0}) == 1);
  Tensor ints = dst.to(DType::Int64);
  CHECK(ints.device() == Device::cuda(0));
  CHECK(ints.at({1, 1}) == 1);
}

#ifdef SSM_CUDA
GPU_TEST_CASE("cuda: the caching allocator reuses freed blocks and tracks peak bytes") {
  cuda::empty_cache(0);
  cuda::reset_peak(0);
  const cuda::AllocatorStats before = cuda::allocator_stats(0);
  {
    Tensor a = Tensor::empty({1 << 20}, DType::Float32, Device::cuda(0)); // 4 MiB
  }
  const int64_t mallocs = cuda::allocator_stats(0).device_mallocs;
  for (int i = 0; i < 10; ++i) Tensor b = Tensor::empty({1 << 20}, DType::Float32, Device::cuda(0));
  const cuda::AllocatorStats after = cuda::allocator_stats(0);
  CHECK(after.device_mallocs == mallocs); // every later request was served from the cache
  CHECK(after.bytes_in_use == before.bytes_in_use);
  CHECK(after.peak_bytes >= before.bytes_in_use + (size_t(4) << 20));
  CHECK(after.bytes_cached >= (size_t(4) << 20));
  cuda::empty_cache(0);
  CHECK(cuda::allocator_stats(0).bytes_cached == 0);
}

GPU_TEST_CASE("cuda: selecting a device that does not exist is an error") {
  CHECK_THROWS_WITH_AS(cuda::select_device(cuda::device_count()),
                       doctest::Contains("cannot select device"), std::invalid_argument);
  CHECK_THROWS_AS(Tensor::zeros({2}, DType::Float32, Device::cuda(cuda::device_count())),
                  std::invalid_argument);
}
#endif

GPU_TEST_CASE("cuda: printing a CUDA tensor shows its device and values") {
  const Tensor t = Tensor::from_values({1, 2, 3}, {3}, DType::Float32, Device::cuda(0));
  std::ostringstream s;
  s << t;
  CHECK(s.str().find("cuda:0") != std::string::npos);
  CHECK(s.str().find("[1, 2, 3]") != std::string::npos);
}
