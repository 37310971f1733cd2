// GPU parity of matmul / bmm (cuBLAS, cuda/blas.cpp) against the CPU GEMM, and of TF32 mode.
#include <doctest/doctest.h>

#include <string>

#ifdef SSM_CUDA
#include "cuda/runtime.h"
#endif
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tests/parity.h"

using namespace ssm;

namespace {

const Device kGpu = Device::cuda(0);

// float32 tolerance: a K-term dot product rounded in a different order differs by up to about
// K * 2^-24 * sum |a_k b_k|; with unit normal inputs that sum is ~0.8 K, so for K <= 511 an
// absolute 1e-4 * K / 64 plus a relative 1e-5 covers it with margin. float64: 1e-12 would be
// exceeded only by sums far longer than these.
double f32_atol(int64_t K) { return 1e-4 * static_cast<double>(K > 64 ? K : 64) / 64.0; }

void check_matmul(const Tensor& a, const Tensor& b, const std::string& config) {
  const Tensor cpu = matmul(a, b);
  const Tensor gpu = matmul(a.to(kGpu), b.to(kGpu));
  CHECK(gpu.device() == kGpu);
  const int64_t K = a.size(-1);
  if (a.dtype() == DType::Float64)
    test::check_parity("matmul", config, gpu, cpu, test::kF64Atol, test::kF64Rtol);
  else
    test::check_parity("matmul", config, gpu, cpu, f32_atol(K), 1e-5);
}

} // namespace

GPU_TEST_CASE("cuda matmul: 2-D shapes, transposed views, 1-D operands, both dtypes") {
  Generator gen(21);
  const std::vector<std::array<int64_t, 3>> sizes = {
      {1, 1, 1}, {7, 5, 3}, {33, 65, 17}, {257, 129, 511}, {1, 300, 64}, {64, 1, 300}};
  for (DType dtype : {DType::Float64, DType::Float32}) {
    for (const auto& [M, K, N] : sizes) {
      const std::string shape = "[" + std::to_string(M) + ", " + std::to_string(K) + "] x [" +
                                std::to_string(K) + ", " + std::to_string(N) + "]";
      const Tensor a = Tensor::randn({M, K}, dtype, &gen), b = Tensor::randn({K, N}, dtype, &gen);
      check_matmul(a, b, shape);
      const Tensor at = Tensor::randn({K, M}, dtype, &gen).transpose(0, 1);
      const Tensor bt = Tensor::randn({N, K}, dtype, &gen).transpose(0, 1);
      check_matmul(at, b, shape + " a transposed");
      check_matmul(a, bt, shape + " b transposed");
      check_matmul(at, bt, shape + " both transposed");
    }
    const Tensor v = Tensor::randn({9}, dtype, &gen), m = Tensor::randn({9, 4}, dtype, &gen);
    check_matmul(v, m, "[9] x [9, 4]");
    check_matmul(m.transpose(0, 1), v, "[4, 9] x [9]");
    check_matmul(v, v, "[9] x [9] (dot)");
    // A narrowed view (row stride larger than the row) and a column slice with stride 2.
    const Tensor wide = Tensor::randn({6, 20}, dtype, &gen);
    check_matmul(wide.narrow(1, 3, 8), Tensor::randn({8, 5}, dtype, &gen), "narrowed [6, 8] x [8, 5]");
    check_matmul(wide.slice(1, 0, 20, 2), Tensor::randn({10, 3}, dtype, &gen),
                 "strided columns [6, 10] x [10, 3]");
    // Row-broadcast operand: stride-0 rows cannot go to cuBLAS in place.
    const Tensor row = Tensor::randn({1, 7}, dtype, &gen).expand({5, 7});
    check_matmul(row, Tensor::randn({7, 3}, dtype, &gen), "expanded rows [5, 7] x [7, 3]");
  }
}

GPU_TEST_CASE("cuda matmul: batch broadcasting, bmm, large batches, K = 0") {
  Generator gen(22);
  for (DType dtype : {DType::Float64, DType::Float32}) {
    check_matmul(Tensor::randn({2, 1, 3, 4}, dtype, &gen), Tensor::randn({5, 4, 2}, dtype, &gen),
                 "[2, 1, 3, 4] x [5, 4, 2]");
    check_matmul(Tensor::randn({4, 3, 6}, dtype, &gen), Tensor::randn({6, 2}, dtype, &gen),
                 "[4, 3, 6] x [6, 2] (shared weight)");
    const Tensor a = Tensor::randn({70000, 2, 3}, dtype, &gen);
    const Tensor b = Tensor::randn({70000, 3, 2}, dtype, &gen);
    const Tensor cpu = bmm(a, b), gpu = bmm(a.to(kGpu), b.to(kGpu));
    if (dtype == DType::Float64)
      test::check_parity("bmm", "[70000, 2, 3] x [70000, 3, 2]", gpu, cpu, test::kF64Atol,
                         test::kF64Rtol);
    else
      test::check_parity("bmm", "[70000, 2, 3] x [70000, 3, 2]", gpu, cpu, f32_atol(3), 1e-5);
    // K = 0: an empty sum, so zeros.
    const Tensor empty_k = matmul(Tensor::randn({3, 0}, dtype, &gen).to(kGpu),
                                  Tensor::randn({0, 4}, dtype, &gen).to(kGpu));
    test::check_parity("matmul", "[3, 0] x [0, 4] (zeros)", empty_k,
                       Tensor::zeros({3, 4}, dtype), 0, 0);
  }
  CHECK_THROWS_AS(matmul(Tensor::ones({2, 2}, DType::Int64, kGpu), Tensor::ones({2, 2}, DType::Int64, kGpu)),
                  std::invalid_argument);
}

#ifdef SSM_CUDA
GPU_TEST_CASE("cuda matmul: TF32 mode is opt-in and about 1e-3 accurate") {
  Generator gen(23);
  const Tensor a = Tensor::randn({512, 512}, DType::Float32, &gen);
  const Tensor b = Tensor::randn({512, 512}, DType::Float32, &gen);
  const Tensor reference = matmul(a.to(DType::Float64), b.to(DType::Float64));
  auto relative_error = [&](const Tensor& out) {
    const Tensor diff = sub(out.to(Device::cpu()).to(DType::Float64), reference);
    return std::sqrt(sum(mul(diff, diff)).item() / sum(mul(reference, reference)).item());
  };
  CHECK_FALSE(cuda::tf32_enabled());
  const double full = relative_error(matmul(a.to(kGpu), b.to(kGpu)));
  cuda::set_tf32(true);
  const double tf32 = relative_error(matmul(a.to(kGpu), b.to(kGpu)));
  cuda::set_tf32(false);
  MESSAGE("relative L2 error vs float64: float32 " << full << ", tf32 " << tf32);
  CHECK(full < 1e-6);  // float32 accumulation over K = 512: ~1e-7
  CHECK(tf32 < 3e-3);  // 10-bit mantissas: ~5e-4
}
#endif
