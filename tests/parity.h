// parity.h: CPU-vs-CUDA checks. The CPU loop is the ground truth; each CUDA result is compared
// with it and reported on one line, in the manner of a backend-ops test:
//     PASS  softmax  dim=-1 [3, 1000] float32   max_err 0.02  rel_l2 3.1e-08
// max_err is max |cuda - cpu| / (atol + rtol * |cpu|) (<= 1 passes), rel_l2 is
// ||cuda - cpu|| / ||cpu||. GPU_TEST_CASE skips (and counts as skipped) without a GPU.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "tensor/tensor.h"

#define GPU_TEST_CASE(name) TEST_CASE(name* doctest::skip(!::ssm::cuda_available()))

namespace ssm::test {

// Tolerances of a float64 comparison: the CPU loop and the kernel may sum in different orders,
// so they agree to a few ulps of the largest partial sum, far inside 1e-12.
constexpr double kF64Atol = 1e-12, kF64Rtol = 1e-12;

struct ParityResult {
  double max_err = 0; // max |a - b| / (atol + rtol |b|)
  double rel_l2 = 0;  // ||a - b|| / ||b||
  bool ok = false;
};

inline ParityResult compare(const Tensor& cuda_out, const Tensor& cpu_out, double atol,
                            double rtol) {
  ParityResult r;
  if (cuda_out.shape() != cpu_out.shape()) return r;
  const std::vector<double> a = cuda_out.to_doubles(), b = cpu_out.to_doubles();
  double diff2 = 0, ref2 = 0;
  r.ok = true;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(a[i] - b[i]);
    // Equal values pass even at zero tolerance (0 / 0 would read as NaN).
    const double e = d == 0 ? 0 : d / (atol + rtol * std::fabs(b[i]));
    if (!(e <= r.max_err)) r.max_err = e; // NaN sticks
    diff2 += d * d;
    ref2 += b[i] * b[i];
    if (!(e <= 1)) r.ok = false;
  }
  r.rel_l2 = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
  return r;
}

// Compares, prints the one-line report, and records a doctest CHECK.
inline void check_parity(const std::string& op, const std::string& config, const Tensor& cuda_out,
                         const Tensor& cpu_out, double atol, double rtol) {
  REQUIRE(cuda_out.defined());
  REQUIRE(cpu_out.defined());
  const ParityResult r = compare(cuda_out, cpu_out, atol, rtol);
  std::printf("%s  %-24s %-40s %-8s max_err %-9.3g rel_l2 %.3g\n", r.ok ? "PASS" : "FAIL",
              op.c_str(), config.c_str(), dtype_name(cpu_out.dtype()), r.max_err, r.rel_l2);
  std::fflush(stdout); // a log cut short by a crash or a timeout still ends at the last check
  INFO(op << " " << config << ": shapes " << shape_str(cuda_out.shape()) << " vs "
          << shape_str(cpu_out.shape()) << ", max_err " << r.max_err);
  CHECK(r.ok);
}

} // namespace ssm::test
