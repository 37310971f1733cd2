// bench_cuda.cpp: throughput of the GPU paths: GEMM through the matmul op and directly through
// cuBLAS, a large elementwise add through the add op, and the device's own copy bandwidth.
//
//   GEMM  C (n, n) = A (n, n) B (n, n), row-major: 2 n^3 flops, reported in TFLOP/s.
//         float32 and TF32 (cuda::set_tf32, cuda/matmul.h) at 4096^3 and 8192^3, float64 at
//         4096^3. Each is timed twice on the same inputs: through matmul (shape checks, output
//         allocation from the caching allocator, the cuBLAS call) and as the bare
//         cublasSgemm / cublasDgemm call that matmul makes; equal times mean the op adds nothing.
//   add   out = x + y of two n-element float32 tensors: reads 2 * 4 n bytes and writes 4 n,
//         so GB/s = 3 * 4 * n / time (n = 2^28 by default, 1 GiB per tensor).
//   copy  cudaMemcpyAsync device to device of `copy_bytes`: reads and writes each byte once,
//         GB/s = 2 * bytes / time; the practical ceiling of any memory-bound kernel.
//
// Inputs are fresh Tensor::randn / rand values made on the GPU (never zeros, whose products
// some hardware finishes faster). Before timing, each result is checked on a sample against
// the CPU: a GEMM's top-left 64 x 64 block against a double-precision loop, within the
// rounding bound (2 v + K u) sum_k |a_ik b_kj| (u: the accumulator's unit roundoff, 2^-24 or
// 2^-53; v: the rounding of each input, 0, or 2^-10 for TF32, which keeps 10 mantissa bits;
// Higham, Accuracy and Stability of Numerical Algorithms, sec. 3.5); add and copy on their
// first 2^20 elements, exactly. A result outside its bound prints FAIL and the exit status is 1.
//
// Timing: --warmup untimed runs, then --runs runs each bracketed by CUDA events recorded on
// the device's stream; the table gives the median and, in brackets, the fastest and slowest.
//
//   build/bench_cuda
//   build/bench_cuda --runs 50 --device 1
// In a build without CUDA (NO_CUDA=1, or nvcc absent) or on a machine without a GPU it says
// so and exits with status 0.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#ifdef SSM_CUDA
#include "cuda/check.h"
#include "cuda/runtime.h"
#endif
#include "bench/timing.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "train/flags.h"

using namespace ssm;

#ifdef SSM_CUDA

namespace {

using bench::time_on_stream;
using bench::Timing;

struct Row {
  std::string what, size, unit;
  Timing timing;
  double work = 0;         // flops or bytes per run
  std::string unavailable; // why there is no figure, when there is none
};

void print_table(const std::vector<Row>& rows) {
  std::printf("\n| measurement | size | median ms | rate (fastest - slowest) |\n");
  std::printf("|---|---|---|---|\n");
  for (const Row& r : rows) {
    if (!r.unavailable.empty()) {
      std::printf("| %s | %s | - | not available: %s |\n", r.what.c_str(), r.size.c_str(),
                  r.unavailable.c_str());
      continue;
    }
    const double scale = r.unit == "TFLOP/s" ? 1e-12 : 1e-9;
    auto rate = [&](double ms) { return r.work / (ms * 1e-3) * scale; };
    std::printf("| %s | %s | %.3f | %.1f %s (%.1f - %.1f) |\n", r.what.c_str(), r.size.c_str(),
                r.timing.median_ms, rate(r.timing.median_ms), r.unit.c_str(),
                rate(r.timing.fastest_ms), rate(r.timing.slowest_ms));
  }
}

// ---- GEMM ----------------------------------------------------------------------------------

// The bare cuBLAS call matmul makes for contiguous row-major (n, n) operands: the
// column-major C^T = B^T A^T (cuda/matmul.h).
template <typename T>
void cublas_square_gemm(cublasHandle_t handle, int n, const T* a, const T* b, T* c) {
  const T one = 1, zero = 0;
  if constexpr (std::is_same_v<T, float>)
    SSM_CUBLAS_CHECK(
        cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, b, n, a, n, &zero, c, n));
  else
    SSM_CUBLAS_CHECK(
        cublasDgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, b, n, a, n, &zero, c, n));
}

// Largest |C - ref| / bound over the top-left 64 x 64 block of c = a b (all (n, n) on the
// GPU), with ref and the bound (2 v + K u) sum_k |a_ik b_kj| computed in double on the CPU.
template <typename T>
double check_gemm_block(const Tensor& a, const Tensor& b, const Tensor& c, double input_rounding) {
  const int64_t K = a.size(1), block = std::min<int64_t>(64, K);
  const Tensor a_rows = a.narrow(0, 0, block).to(Device::cpu());              // (block, K)
  const Tensor b_cols = b.narrow(1, 0, block).to(Device::cpu()).contiguous(); // (K, block)
  const Tensor c_block = c.narrow(0, 0, block).narrow(1, 0, block).to(Device::cpu()).contiguous();
  const T* pa = a_rows.data<T>();
  const T* pb = b_cols.data<T>();
  const T* pc = c_block.data<T>();
  const double u = std::ldexp(1.0, -std::numeric_limits<T>::digits);
  double worst_error = 0, worst_ratio = 0;
  for (int64_t i = 0; i < block; ++i)
    for (int64_t j = 0; j < block; ++j) {
      double sum = 0, magnitude = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double product = static_cast<double>(pa[i * K + k]) * pb[k * block + j];
        sum += product;
        magnitude += std::fabs(product);
      }
      const double error = std::fabs(pc[i * block + j] - sum);
      worst_error = std::max(worst_error, error);
      worst_ratio =
          std::max(worst_ratio, error / (1.01 * (2 * input_rounding + K * u) * magnitude));
    }
  std::printf("  check: max |error| on the %lld x %lld block %.3g (%.3f of the bound)\n",
              static_cast<long long>(block), static_cast<long long>(block), worst_error,
              worst_ratio);
  return worst_ratio;
}

struct GemmCase {
  int64_t n;
  DType dtype;
  bool tf32;
};

// Appends the op row and the bare-cuBLAS row of one GEMM case; false when the check failed.
bool bench_gemm(const GemmCase& g, int device, int64_t warmup, int64_t runs, Generator& gen,
                std::vector<Row>& rows) {
  const std::string name = g.tf32 ? "TF32" : dtype_name(g.dtype);
  const std::string size = std::to_string(g.n) + "^3";
  std::printf("GEMM %s %s\n", name.c_str(), size.c_str());
  cuda::set_tf32(g.tf32);
  const Device gpu = Device::cuda(device);
  const Tensor a = Tensor::randn({g.n, g.n}, g.dtype, &gen, gpu);
  const Tensor b = Tensor::randn({g.n, g.n}, g.dtype, &gen, gpu);
  Tensor c = matmul(a, b);
  // TF32 keeps 10 of float32's 23 stored mantissa bits: each input is off by up to 2^-10
  // relative when truncated (2^-11 when rounded), each product by twice that.
  const double input_rounding = g.tf32 ? std::ldexp(1.0, -10) : 0;
  const double ratio = dispatch_floating(g.dtype, "bench_cuda", [&](auto zero) {
    return check_gemm_block<decltype(zero)>(a, b, c, input_rounding);
  });
  if (!(ratio <= 1)) {
    std::printf("  FAIL: the error exceeds the rounding bound\n");
    cuda::set_tf32(false);
    return false;
  }
  const double flops = 2.0 * g.n * g.n * g.n;
  const cudaStream_t stream = cuda::stream(device);
  rows.push_back({name + " GEMM, matmul op", size, "TFLOP/s",
                  time_on_stream(stream, warmup, runs, [&] { c = matmul(a, b); }), flops, ""});
  const cublasHandle_t handle = cuda::cublas(device);
  const int n = static_cast<int>(g.n);
  const Timing direct = dispatch_floating(g.dtype, "bench_cuda", [&](auto zero) {
    using T = decltype(zero);
    return time_on_stream(stream, warmup, runs, [&] {
      cublas_square_gemm<T>(handle, n, a.data<T>(), b.data<T>(), c.data<T>());
    });
  });
  rows.push_back({name + " GEMM, cuBLAS direct", size, "TFLOP/s", direct, flops, ""});
  cuda::set_tf32(false);
  return true;
}

// ---- memory-bound ------------------------------------------------------------------------

// The first `count` elements (or all) of a 1-D float32 tensor, copied to the CPU.
std::vector<float> head_values(const Tensor& t, int64_t count) {
  const Tensor head = t.narrow(0, 0, std::min(count, t.size(0))).to(Device::cpu());
  const float* p = head.data<float>();
  return std::vector<float>(p, p + head.numel());
}

// add of two n-element float32 tensors through the public op; false when the check failed.
bool bench_add(int64_t n, int device, int64_t warmup, int64_t runs, Generator& gen,
               std::vector<Row>& rows) {
  const std::string size = std::to_string(n) + " float32";
  std::printf("add %s\n", size.c_str());
  const Device gpu = Device::cuda(device);
  const Tensor x = Tensor::randn({n}, DType::Float32, &gen, gpu);
  const Tensor y = Tensor::randn({n}, DType::Float32, &gen, gpu);
  Tensor out;
  try {
    out = add(x, y);
  } catch (const std::exception& e) {
    std::printf("  not available: %s\n", e.what());
    rows.push_back({"elementwise add op", size, "GB/s", {}, 0, e.what()});
    return true;
  }
  const int64_t sample = int64_t(1) << 20;
  const std::vector<float> xs = head_values(x, sample), ys = head_values(y, sample),
                           outs = head_values(out, sample);
  int64_t mismatches = 0;
  for (size_t i = 0; i < outs.size(); ++i) mismatches += outs[i] != xs[i] + ys[i];
  std::printf("  check: %lld of the first %zu sums differ from the CPU's\n",
              static_cast<long long>(mismatches), outs.size());
  if (mismatches != 0) {
    std::printf("  FAIL: float32 addition is exact-rounded on both sides\n");
    return false;
  }
  const double bytes = 3.0 * 4.0 * static_cast<double>(n);
  rows.push_back({"elementwise add op", size, "GB/s",
                  time_on_stream(cuda::stream(device), warmup, runs, [&] { out = add(x, y); }),
                  bytes, ""});
  return true;
}

// cudaMemcpyAsync device to device of `bytes`; false when the copy differs from its source.
bool bench_copy(int64_t bytes, int device, int64_t warmup, int64_t runs, Generator& gen,
                std::vector<Row>& rows) {
  const int64_t n = bytes / 4;
  const std::string size = std::to_string(n * 4 / (1 << 20)) + " MiB";
  std::printf("device-to-device copy %s\n", size.c_str());
  const Device gpu = Device::cuda(device);
  const Tensor src = Tensor::rand({n}, DType::Float32, &gen, gpu);
  const Tensor dst = Tensor::empty({n}, DType::Float32, gpu);
  const cudaStream_t stream = cuda::stream(device);
  auto copy = [&] {
    SSM_CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), static_cast<size_t>(n) * 4,
                                   cudaMemcpyDeviceToDevice, stream));
  };
  copy();
  const int64_t sample = int64_t(1) << 20;
  const bool same = head_values(src, sample) == head_values(dst, sample);
  std::printf("  check: the first %lld elements %s\n", static_cast<long long>(std::min(sample, n)),
              same ? "match" : "DIFFER");
  if (!same) {
    std::printf("  FAIL: the copy differs from its source\n");
    return false;
  }
  rows.push_back({"cudaMemcpy device to device", size, "GB/s",
                  time_on_stream(stream, warmup, runs, copy), 2.0 * static_cast<double>(n) * 4,
                  ""});
  return true;
}

void print_device(int device) {
  cudaDeviceProp prop;
  SSM_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  int memory_khz = 0, bus_bits = 0, runtime = 0, cublas_version = 0;
  SSM_CUDA_CHECK(cudaDeviceGetAttribute(&memory_khz, cudaDevAttrMemoryClockRate, device));
  SSM_CUDA_CHECK(cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, device));
  SSM_CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
  SSM_CUBLAS_CHECK(cublasGetVersion(cuda::cublas(device), &cublas_version));
  // Double data rate: two transfers of bus_bits per memory clock.
  const double peak_gbs = 2.0 * memory_khz * 1e3 * (bus_bits / 8.0) * 1e-9;
  std::printf(
      "device %d: %s, %d SMs, %.0f GiB, memory bus %d bits at %.0f MHz (%.0f GB/s "
      "nominal); CUDA runtime %d, cuBLAS %d\n",
      device, prop.name, prop.multiProcessorCount,
      static_cast<double>(prop.totalGlobalMem) / (1 << 30), bus_bits, memory_khz * 1e-3, peak_gbs,
      runtime, cublas_version);
}

} // namespace

static int run(int argc, char** argv) {
  int64_t device = 0, runs = 25, warmup = 10, add_elements = int64_t(1) << 28,
          copy_bytes = int64_t(1) << 30;
  train::Flags flags("bench_cuda",
                     "GPU throughput: float32, TF32 and float64 GEMM through the matmul op and "
                     "directly through cuBLAS, a large float32 add through the add op, and "
                     "device-to-device copy bandwidth; each result is checked before it is "
                     "timed.");
  flags.add("device", &device, "CUDA device index");
  flags.add("runs", &runs, "timed runs per measurement (the median is reported; at least 20)");
  flags.add("warmup", &warmup, "untimed runs before timing");
  flags.add("add-elements", &add_elements, "elements of each float32 operand of add");
  flags.add("copy-bytes", &copy_bytes, "bytes copied device to device");
  if (!flags.parse(argc, argv)) return 0;
  if (runs < 20 || warmup < 0 || add_elements < 1 || copy_bytes < 4)
    throw std::invalid_argument(
        "bench_cuda: expected --runs >= 20, --warmup >= 0, --add-elements >= 1, "
        "--copy-bytes >= 4");
  if (!cuda_available()) {
    std::printf("bench_cuda: CUDA is not available (no usable GPU on this machine)\n");
    return 0;
  }
  cuda::select_device(static_cast<int>(device));
  const int dev = static_cast<int>(device);
  print_device(dev);
  std::printf("median of %lld runs after %lld warm-up runs, timed with CUDA events\n",
              static_cast<long long>(runs), static_cast<long long>(warmup));

  Generator gen(0);
  std::vector<Row> rows;
  bool all_correct = true;
  const std::vector<GemmCase> gemms = {{4096, DType::Float32, false},
                                       {8192, DType::Float32, false},
                                       {4096, DType::Float32, true},
                                       {8192, DType::Float32, true},
                                       {4096, DType::Float64, false}};
  for (const GemmCase& g : gemms) all_correct &= bench_gemm(g, dev, warmup, runs, gen, rows);
  all_correct &= bench_add(add_elements, dev, warmup, runs, gen, rows);
  all_correct &= bench_copy(copy_bytes, dev, warmup, runs, gen, rows);
  print_table(rows);
  return all_correct ? 0 : 1;
}

#else

static int run(int argc, char** argv) {
  train::Flags flags("bench_cuda",
                     "GPU throughput (GEMM, elementwise add, copy bandwidth); needs a build "
                     "with CUDA.");
  if (!flags.parse(argc, argv)) return 0;
  std::printf(
      "bench_cuda: CUDA is not available (this build has no CUDA: nvcc was not found "
      "or NO_CUDA=1)\n");
  return 0;
}

#endif

int main(int argc, char** argv) { return train::run_program(run, argc, argv); }
