// GPU parity tests of s4/fft.cu against the CPU (s4/fft_cpu.cpp, s4/fft_conv.cpp): rfft, irfft
// and fft at lengths from 1 to 4096 (powers of two, odd, even non-powers), then the causal
// convolution's output and every gradient through the autograd op at L from 1 to 2048, with and
// without D, with each subset of inputs asking for a gradient (which changes the buffers the
// kernels use), and with no batch; then more distinct plans than the cuFFT plan cache holds.
// Each comparison prints one PASS/FAIL line (tests/parity.h). Skipped without a GPU.
//
// Inputs: U(-1, 1) drawn on the CPU with Philox (the same every run) and copied to the GPU; the
// convolution kernel decays as exp(-3 s / L), like an SSM kernel.
//
// Error measure: as in tests/test_fft.cpp, relative to the largest magnitude of the CPU
// result: check_parity gets atol = tol * max |cpu| and rtol = 0, so its max_err is
// max |cuda - cpu| / (tol max |cpu|). An FFT's rounding error is spread over all its outputs
// (about eps log2 n times their norm), so a small output carries the absolute error of the
// large ones and an element-wise relative tolerance would fail on it for no fault.
// Tolerances, and why:
//   float64 1e-12: cuFFT and the CPU transforms each err by a few eps log2 n, ~1e-15 (the CPU
//     side measured at most 1.3e-15 against exact sums in tests/test_fft.cpp); the difference
//     is at most their sum.
//   float32 5e-6: the same with eps = 6e-8; the CPU side measured at most 6.2e-7 against
//     float64 references. A wrong twiddle, sign, scale or padding is off by 1e-2 or more.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "s4/fft.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tests/parity.h"

using namespace ssm;

namespace {

const Device kGpu = Device::cuda(0);
const std::vector<DType> kFloatDTypes = {DType::Float64, DType::Float32};

double tolerance(DType dtype) { return dtype == DType::Float64 ? 1e-12 : 5e-6; }

// U(-1, 1) on the CPU, in `dtype`.
Tensor uniform(const Shape& shape, uint64_t seed, DType dtype) {
  Generator gen(seed);
  return Tensor::uniform(shape, -1, 1, DType::Float64, &gen).to(dtype);
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.to_doubles()) m = std::max(m, std::fabs(v));
  return m;
}

// check_parity with the norm-relative tolerance described above.
void check(const std::string& op, const std::string& config, const Tensor& cuda_out,
           const Tensor& cpu_out) {
  REQUIRE(cuda_out.defined());
  REQUIRE(cuda_out.device() == kGpu);
  const double scale = std::max(max_abs(cpu_out), 1e-300);
  test::check_parity(op, config, cuda_out.to(Device::cpu()), cpu_out,
                     tolerance(cpu_out.dtype()) * scale, 0);
}

std::string label(const std::string& what, int64_t value) { return what + std::to_string(value); }

} // namespace

GPU_TEST_CASE("cuda fft: rfft, irfft and fft equal the CPU transforms") {
  const std::vector<int64_t> lengths = {1, 2, 3, 5, 8, 12, 100, 255, 256, 1000, 2048, 4096};
  for (DType dtype : kFloatDTypes)
    for (int64_t n : lengths) {
      const int64_t rows = 3, bins = n / 2 + 1;
      const std::string config = label("n=", n) + " rows=3";
      // rfft: exact length, zero padding (m < n) and truncation (m > n).
      for (int64_t m : {n, n / 2 + 1, n + 5}) {
        const Tensor x = uniform({rows, m}, 10 + n + m, dtype);
        check("rfft", config + label(" m=", m), s4::rfft(x.to(kGpu), n), s4::rfft(x, n));
      }
      // irfft of a random spectrum (not a real signal's: bins 0 and n/2 carry imaginary parts
      // that irfft must ignore), and of a real signal's spectrum.
      const Tensor X = uniform({rows, bins, 2}, 20 + n, dtype);
      check("irfft", config + " random", s4::irfft(X.to(kGpu), n), s4::irfft(X, n));
      const Tensor spectrum = s4::rfft(uniform({rows, n}, 30 + n, dtype), n);
      check("irfft", config + " rfft(x)", s4::irfft(spectrum.to(kGpu), n), s4::irfft(spectrum, n));
      // fft, both directions, with leading batch dims.
      const Tensor z = uniform({2, rows, n, 2}, 40 + n, dtype);
      check("fft", config + " x2 forward", s4::fft(z.to(kGpu)), s4::fft(z));
      check("fft", config + " x2 inverse", s4::fft(z.to(kGpu), true), s4::fft(z, true));
    }
}

namespace {

struct ConvCase {
  int64_t B, H, L;
  bool D = true;                                    // a skip term D
  bool grad_u = true, grad_K = true, grad_D = true; // which inputs ask for a gradient

  std::string label() const {
    std::string s = "B" + std::to_string(B) + " H" + std::to_string(H) + " L" + std::to_string(L);
    s += D ? " D" : " -";
    s += std::string(" grad:") + (grad_u ? "u" : "") + (grad_K ? "K" : "") +
         (D && grad_D ? "D" : "");
    return s;
  }
};

struct ConvRun {
  Tensor y, du, dK, dD;
};

// The op on `device`, then backward with grad_y; gradients of inputs that asked for none are
// left undefined.
ConvRun run_conv(const ConvCase& c, const Tensor& u, const Tensor& K, const Tensor& D,
                 const Tensor& grad_y, Device device) {
  const Var u_v(u.to(device), c.grad_u);
  const Var K_v(K.to(device), c.grad_K);
  const Var D_v = c.D ? Var(D.to(device), c.grad_D) : Var();
  const Var y = s4::causal_conv(u_v, K_v, D_v);
  ConvRun r;
  r.y = y.value();
  if (c.grad_u || c.grad_K || (c.D && c.grad_D)) {
    y.backward(grad_y.to(device));
    if (c.grad_u) r.du = u_v.grad();
    if (c.grad_K) r.dK = K_v.grad();
    if (c.D && c.grad_D) r.dD = D_v.grad();
  }
  return r;
}

void check_conv(const ConvCase& c, DType dtype, uint64_t seed) {
  const Tensor u = uniform({c.B, c.H, c.L}, seed, dtype);
  const Tensor decay = exp(mul(Tensor::arange(0, static_cast<double>(c.L), 1, DType::Float64),
                               -3.0 / static_cast<double>(c.L)));
  const Tensor K = mul(uniform({c.H, c.L}, seed + 1, DType::Float64), decay).to(dtype);
  const Tensor D = uniform({c.H}, seed + 2, dtype);
  const Tensor grad_y = uniform({c.B, c.H, c.L}, seed + 3, dtype);
  const ConvRun cpu = run_conv(c, u, K, D, grad_y, Device::cpu());
  const ConvRun gpu = run_conv(c, u, K, D, grad_y, kGpu);
  const std::string config = c.label();
  check("causal_conv y", config, gpu.y, cpu.y);
  if (c.grad_u) check("causal_conv du", config, gpu.du, cpu.du);
  if (c.grad_K) check("causal_conv dK", config, gpu.dK, cpu.dK);
  if (c.D && c.grad_D) check("causal_conv dD", config, gpu.dD, cpu.dD);
  CHECK(gpu.du.defined() == cpu.du.defined());
  CHECK(gpu.dK.defined() == cpu.dK.defined());
}

} // namespace

GPU_TEST_CASE("cuda causal_conv: output and every gradient equal the CPU's") {
  std::vector<ConvCase> cases;
  for (int64_t L : {1, 7, 100, 257, 1000, 2048}) cases.push_back({2, 3, L});
  cases.push_back({3, 5, 64, false});                    // no D
  cases.push_back({2, 4, 33, true, true, false, false}); // du only: u's spectrum is not kept
  cases.push_back({2, 4, 33, true, false, true, false}); // dK only
  cases.push_back({2, 4, 33, true, false, false, true}); // dD only
  cases.push_back({4, 64, 2048});                        // the benchmark's length, more channels
  cases.push_back({1, 1, 4095});                         // odd L, N = 8192
  uint64_t seed = 100;
  for (DType dtype : kFloatDTypes)
    for (const ConvCase& c : cases) check_conv(c, dtype, seed += 10);
}

GPU_TEST_CASE("cuda causal_conv: no batch") {
  for (DType dtype : kFloatDTypes) {
    const Var u(Tensor::zeros({0, 3, 5}, dtype, kGpu), true);
    const Var K(uniform({3, 5}, 1, dtype).to(kGpu), true);
    const Var D(uniform({3}, 2, dtype).to(kGpu), true);
    const Var y = s4::causal_conv(u, K, D);
    CHECK(y.shape() == Shape{0, 3, 5});
    sum(y).backward();
    CHECK(K.grad().to_doubles() == std::vector<double>(15, 0.0));
    CHECK(D.grad().to_doubles() == std::vector<double>(3, 0.0));
  }
}

GPU_TEST_CASE("cuda fft: more distinct plans than the cache keeps") {
  // 80 lengths x 1 type: the cache (64 plans) drops the least recently used ones on the way,
  // and the first lengths are planned again at the end.
  for (int pass = 0; pass < 2; ++pass)
    for (int64_t n = 1; n <= 80; ++n) {
      const Tensor x = uniform({2, n}, 500 + n, DType::Float64);
      const Tensor X_cpu = s4::rfft(x, n);
      const Tensor X_gpu = s4::rfft(x.to(kGpu), n).to(Device::cpu());
      const double scale = std::max(max_abs(X_cpu), 1e-300);
      const test::ParityResult r = test::compare(X_gpu, X_cpu, 1e-12 * scale, 0);
      INFO("pass " << pass << ", n = " << n << ": max_err " << r.max_err);
      CHECK(r.ok);
    }
}
