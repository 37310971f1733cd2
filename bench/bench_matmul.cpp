// bench_matmul.cpp: GFLOP/s of matmul on the CPU (tensor/cpu/gemm.cpp).
//
//   C (M, N) = A (M, K) B (K, N): 2 M N K flops.
//
// For each case: random inputs from Tensor::randn (seed 0); one product is first checked
// against a naive double-precision loop on its top-left 64 x 64 block, printing the largest
// |error| and its ratio to the rounding bound K u sum_k |a_ik b_kj| (u = 2^-24 for float32,
// 2^-53 for float64; Higham, Accuracy and Stability of Numerical Algorithms, eq. 3.5); a ratio
// above 1 is a wrong result and the program exits with status 1. Then untimed runs for
// --warmup seconds and --runs timed ones; GFLOP/s is computed from the median time.
//
//   build/bench_matmul                 all hardware threads (or SSM_NUM_THREADS)
//   build/bench_matmul --threads 1     one thread
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "tensor/cpu/parallel.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "train/flags.h"

using namespace ssm;

struct Case {
  int64_t M, K, N;
  DType dtype;
  bool transposed_b; // b is the transpose of a contiguous (N, K) matrix, as x W^T in Linear
};

// Largest |C - ref| / bound over the top-left block of C, ref and bound computed in double;
// a, b and c contiguous.
template <typename T>
static double check_block(const Tensor& a, const Tensor& b, const Tensor& c) {
  const int64_t K = a.size(1), N = b.size(1);
  const int64_t rows = std::min<int64_t>(64, a.size(0)), cols = std::min<int64_t>(64, N);
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  const T* pc = c.data<T>();
  const double u = std::ldexp(1.0, -(std::numeric_limits<T>::digits));
  double worst_error = 0, worst_ratio = 0;
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      double sum = 0, magnitude = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double product = static_cast<double>(pa[i * K + k]) * pb[k * N + j];
        sum += product;
        magnitude += std::fabs(product);
      }
      const double error = std::fabs(pc[i * N + j] - sum);
      worst_error = std::max(worst_error, error);
      worst_ratio = std::max(worst_ratio, error / (1.01 * K * u * magnitude));
    }
  std::printf("  check: max |error| on the %lld x %lld block %.3g (%.3f of the bound)\n",
              static_cast<long long>(rows), static_cast<long long>(cols), worst_error, worst_ratio);
  return worst_ratio;
}

static int run(int argc, char** argv) {
  int64_t threads = 0, runs = 11;
  double warmup_seconds = 0.3;
  train::Flags flags("bench_matmul",
                     "GFLOP/s of matmul on the CPU for 512^3, 1024^3, 2048^3 float32, 1024^3 "
                     "float64 and 1024^3 float32 with a transposed right operand, each checked "
                     "first against a naive loop on a 64 x 64 block.");
  flags.add("threads", &threads,
            "threads (sets SSM_NUM_THREADS); 0 keeps SSM_NUM_THREADS or all hardware threads");
  flags.add("runs", &runs, "timed runs per case (the median is reported)");
  flags.add("warmup", &warmup_seconds,
            "seconds of untimed runs per case before timing (at least one run; the clock of an "
            "idle core takes tens of milliseconds to come up to speed)");
  if (!flags.parse(argc, argv)) return 0;
  if (threads < 0 || runs < 1 || !(warmup_seconds >= 0))
    throw std::invalid_argument("bench_matmul: --threads must be >= 0, --runs >= 1, --warmup >= 0");
  if (threads > 0) setenv("SSM_NUM_THREADS", std::to_string(threads).c_str(), 1);
  std::printf("bench_matmul: %d threads, median of %lld runs after %.2f s of warm-up runs\n",
              cpu::num_threads(), static_cast<long long>(runs), warmup_seconds);

  const std::vector<Case> cases = {{512, 512, 512, DType::Float32, false},
                                   {1024, 1024, 1024, DType::Float32, false},
                                   {2048, 2048, 2048, DType::Float32, false},
                                   {1024, 1024, 1024, DType::Float64, false},
                                   {1024, 1024, 1024, DType::Float32, true}};
  bool all_correct = true;
  for (const Case& c : cases) {
    std::printf("matmul (%lld, %lld) x (%lld, %lld)%s %s\n", static_cast<long long>(c.M),
                static_cast<long long>(c.K), static_cast<long long>(c.K),
                static_cast<long long>(c.N), c.transposed_b ? " transposed view" : "",
                dtype_name(c.dtype));
    manual_seed(0);
    const Tensor a = Tensor::randn({c.M, c.K}, c.dtype);
    const Tensor b = c.transposed_b ? Tensor::randn({c.N, c.K}, c.dtype).transpose(0, 1)
                                    : Tensor::randn({c.K, c.N}, c.dtype);
    const Tensor product = matmul(a, b);
    const double ratio = dispatch_floating(c.dtype, "bench_matmul", [&](auto zero) {
      return check_block<decltype(zero)>(a, b.contiguous(), product);
    });
    if (!(ratio <= 1)) {
      std::printf("  FAIL: the error exceeds the rounding bound\n");
      all_correct = false;
      continue;
    }
    const auto warmup_start = std::chrono::steady_clock::now();
    do {
      matmul(a, b);
    } while (
        std::chrono::duration<double>(std::chrono::steady_clock::now() - warmup_start).count() <
        warmup_seconds);
    std::vector<double> seconds;
    for (int64_t i = 0; i < runs; ++i) {
      const auto start = std::chrono::steady_clock::now();
      matmul(a, b);
      seconds.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(seconds.begin(), seconds.end());
    const double median = seconds[seconds.size() / 2];
    const double flops = 2.0 * c.M * c.N * c.K;
    std::printf("  median %.3f ms: %.1f GFLOP/s (fastest %.1f, slowest %.1f)\n", median * 1e3,
                flops / median * 1e-9, flops / seconds.front() * 1e-9,
                flops / seconds.back() * 1e-9);
  }
  return all_correct ? 0 : 1;
}

int main(int argc, char** argv) { return train::run_program(run, argc, argv); }
