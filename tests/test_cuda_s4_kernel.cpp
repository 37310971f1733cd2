// GPU parity tests of the S4D and DPLR kernel generators (s4/s4_kernel.cu) against the CPU
// reference loops (s4/s4_kernel_cpu.cpp): the S4D kernel K and the gradients of log_dt, A, B,
// C (ZOH and bilinear); the DPLR Cauchy step K^ and the gradients of log_dt, Lambda, P, B, C~
// for a random gradient of K^; then both autograd ops end to end (which adds the dispatch by
// device and, for DPLR, cuFFT's irfft and rfft). Float64 and float32, at (H, N2, L) from
// (1, 1, 1) to (2, 64, 2049) with odd sizes, one case with more (h, n) pairs than a launch has
// blocks (the reduction kernels loop) and one with more (h, l) outputs than a launch has
// threads (the S4D forward loops). The CUDA outputs start as NaN, so an element the kernels
// forget to write fails. One PASS/FAIL line per comparison (tests/parity.h). Skipped without
// a GPU.
//
// Inputs, drawn on the CPU with Philox (the same every run):
//   log_dt ~ U(log 0.001, log 0.1)                 (S4's initialisation range)
//   A, Lambda: Re ~ U(-1, -0.2), Im = pi n + U(-0.5, 0.5)   (S4D-Lin-like, spread out)
//   B, C, P, grad_K, grad_K^ ~ N(0, 1) (real and imaginary parts)
//
// Tolerances, per compared tensor, with scale = max |CPU value| of that tensor:
//   max_err = max |cuda - cpu| / (tol scale + tol |cpu|) <= 1, i.e. every element within
//   tol of the tensor's largest value, or within tol relative.
//   float64: tol = 1e-12 for the kernels (K, K^), 1e-11 for the gradients. Both sides compute
//     in double; they differ by the order of the sums (the backward's sums over l or the nodes:
//     strided, then a tree, on the GPU), nvcc's fused multiply-adds and an ulp of exp, sin, cos,
//     log1p, atan2 (CUDA's double functions are within 1 or 2 ulps, glibc's within 1). An ulp
//     of dt or of log dA matters more than rounding: it moves the phase of the power of lag l
//     by l |Im log dA| 1.1e-16, which the l-weighted sums of the backward (U = sum gK_l l dA^l)
//     feel most, and dL/d log_dt adds such terms over the states with cancellation. Emulated on
//     the CPU (every dt, log dA, dB and power moved by up to 1 ulp, at these shapes): the kernels
//     move by at most 1e-13 of their scale, the gradients by up to 1.8e-12 (dL/d log_dt at
//     (2, 64, 2049) bilinear; 5e-13 for the other gradients). The scale makes the criterion
//     relative to the tensor: a sum that cancels (an element far below its tensor's largest)
//     carries the rounding of its largest terms.
//   float32: tol = 1e-5. dt and log dA are the same float32 bits on both sides (formed in
//     double and rounded once, s4_kernel.h "Precision"), and DPLR runs in double throughout, so
//     the differences are a few float32 ulps of each S4D power's exp, sin and cos (CUDA's are
//     within 2 ulps, glibc's within 1; nothing amplifies them), the final rounding, and for the
//     DPLR op cuFFT against the CPU FFT (a few ulps times log L). Measured by emulation on the
//     CPU (every float32 power moved by up to 2 ulps): at most 5e-7 of a tensor's scale at these
//     shapes; DPLR in float32 against float64 on the same inputs: at most 2.3e-7. A wrong
//     formula or index is off by O(1), and the float64 runs catch anything at 1e-12.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "autograd/variable.h"
#include "s4/s4_kernel.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tests/parity.h"

using namespace ssm;
using namespace ssm::s4;

namespace {

const Device kGpu = Device::cuda(0);
const std::vector<DType> kFloatDTypes = {DType::Float64, DType::Float32};

struct KernelCase {
  int64_t H, N2, L;
  std::string label() const {
    return "H=" + std::to_string(H) + " N2=" + std::to_string(N2) + " L=" + std::to_string(L);
  }
};

// From one state and one length up to long kernels, odd sizes included; the last case has
// 1100 * 64 = 70400 (h, n) pairs, more than the 65535 blocks of one launch.
const KernelCase kCases[] = {{1, 1, 1},     {3, 2, 7},     {5, 7, 33},   {8, 16, 256},
                             {4, 32, 1000}, {2, 64, 2049}, {6, 5, 4096}, {1100, 64, 16}};
// 2100 * 8192 outputs, more than the 65535 * 256 threads of one launch of the S4D forward.
const KernelCase kWideCase = {2100, 1, 8192};

// ---- inputs -----------------------------------------------------------------------------------

// Diagonal states (H, N2, 2): Re ~ U(-1, -0.2), Im = pi n + U(-0.5, 0.5).
Tensor diagonal_states(const KernelCase& c, DType dtype, Generator* gen) {
  const Tensor re = Tensor::uniform({c.H, c.N2, 1}, -1.0, -0.2, dtype, gen);
  const Tensor n = Tensor::arange(0, static_cast<double>(c.N2), 1, dtype).reshape({1, c.N2, 1});
  const Tensor im = add(mul(n, M_PI), Tensor::uniform({c.H, c.N2, 1}, -0.5, 0.5, dtype, gen));
  return concat({re, im}, 2);
}

Tensor log_dt_of(const KernelCase& c, DType dtype, Generator* gen) {
  return Tensor::uniform({c.H}, std::log(0.001), std::log(0.1), dtype, gen);
}

S4DInputs s4d_inputs(const KernelCase& c, DType dtype, uint64_t seed) {
  Generator gen(seed);
  S4DInputs in;
  in.log_dt = log_dt_of(c, dtype, &gen);
  in.A = diagonal_states(c, dtype, &gen);
  in.B = Tensor::randn({c.H, c.N2, 2}, dtype, &gen);
  in.C = Tensor::randn({c.H, c.N2, 2}, dtype, &gen);
  return in;
}

DplrInputs dplr_inputs(const KernelCase& c, DType dtype, uint64_t seed) {
  Generator gen(seed);
  DplrInputs in;
  in.log_dt = log_dt_of(c, dtype, &gen);
  in.Lambda = diagonal_states(c, dtype, &gen);
  in.P = Tensor::randn({c.H, c.N2, 2}, dtype, &gen);
  in.B = Tensor::randn({c.H, c.N2, 2}, dtype, &gen);
  in.C = Tensor::randn({c.H, c.N2, 2}, dtype, &gen);
  return in;
}

S4DInputs to_gpu(const S4DInputs& in) {
  return {in.log_dt.to(kGpu), in.A.to(kGpu), in.B.to(kGpu), in.C.to(kGpu)};
}
DplrInputs to_gpu(const DplrInputs& in) {
  return {in.log_dt.to(kGpu), in.Lambda.to(kGpu), in.P.to(kGpu), in.B.to(kGpu), in.C.to(kGpu)};
}

// A buffer shaped like `like` on `device`: NaN on the GPU (unwritten elements fail), empty on
// the CPU; undefined when not needed.
Tensor output_like(const Tensor& like, Device device, bool needed = true) {
  if (!needed) return Tensor();
  if (device.is_cuda())
    return Tensor::full(like.shape(), std::numeric_limits<double>::quiet_NaN(), like.dtype(),
                        device);
  return Tensor::empty(like.shape(), like.dtype(), device);
}

// ---- the CUDA entry points ----------------------------------------------------------------------
// They exist in a CUDA build only; without one the tests below are skipped and these are never
// called.
void s4d_fwd_cuda(const S4DInputs& in, const KernelShape& s, Discretization disc, Tensor& K) {
#ifdef SSM_CUDA
  s4d_kernel_fwd_cuda(in, s, disc, K);
#else
  (void)in, (void)s, (void)disc, (void)K;
  throw_no_cuda("s4d_kernel_fwd_cuda");
#endif
}
void s4d_bwd_cuda(const S4DInputs& in, const KernelShape& s, Discretization disc,
                  const Tensor& grad_K, S4DGrads& grads) {
#ifdef SSM_CUDA
  s4d_kernel_bwd_cuda(in, s, disc, grad_K, grads);
#else
  (void)in, (void)s, (void)disc, (void)grad_K, (void)grads;
  throw_no_cuda("s4d_kernel_bwd_cuda");
#endif
}
void cauchy_fwd_cuda(const DplrInputs& in, const KernelShape& s, Tensor& K_hat) {
#ifdef SSM_CUDA
  dplr_cauchy_fwd_cuda(in, s, K_hat);
#else
  (void)in, (void)s, (void)K_hat;
  throw_no_cuda("dplr_cauchy_fwd_cuda");
#endif
}
void cauchy_bwd_cuda(const DplrInputs& in, const KernelShape& s, const Tensor& grad_K_hat,
                     DplrGrads& grads) {
#ifdef SSM_CUDA
  dplr_cauchy_bwd_cuda(in, s, grad_K_hat, grads);
#else
  (void)in, (void)s, (void)grad_K_hat, (void)grads;
  throw_no_cuda("dplr_cauchy_bwd_cuda");
#endif
}

// ---- comparison -------------------------------------------------------------------------------

// One PASS/FAIL line (see the file's header for the tolerances).
enum class Kind { Kernel, Gradient };
void check(const std::string& what, const std::string& label, const Tensor& cuda_value,
           const Tensor& cpu_value, Kind kind) {
  REQUIRE(cuda_value.defined());
  REQUIRE(cpu_value.defined());
  CHECK(cuda_value.device() == kGpu);
  const bool gradient = kind == Kind::Gradient;
  const double tol = cpu_value.dtype() == DType::Float32 ? 1e-5 : (gradient ? 1e-11 : 1e-12);
  double scale = 0;
  for (double v : cpu_value.to_doubles()) scale = std::max(scale, std::fabs(v));
  test::check_parity(what, label, cuda_value.to(Device::cpu()), cpu_value,
                     scale > 0 ? tol * scale : tol, tol);
}

// ---- S4D ----------------------------------------------------------------------------------------

void s4d_parity(const KernelCase& c, DType dtype, Discretization disc, bool backward,
                uint64_t seed) {
  const std::string label = c.label() + " " + discretization_name(disc);
  const S4DInputs in = s4d_inputs(c, dtype, seed);
  const S4DInputs gin = to_gpu(in);
  const KernelShape s = make_s4d_shape("test", in, c.L);
  const Tensor K_like = Tensor::empty({c.H, c.L}, dtype);
  Tensor K = output_like(K_like, Device::cpu()), gK = output_like(K_like, kGpu);
  s4d_kernel_fwd_cpu(in, s, disc, K);
  s4d_fwd_cuda(gin, s, disc, gK);
  check("s4d_kernel K", label, gK, K, Kind::Kernel);
  if (!backward) return;

  Generator gen(seed + 1);
  const Tensor grad_K = Tensor::randn({c.H, c.L}, dtype, &gen);
  S4DGrads g{output_like(in.log_dt, Device::cpu()), output_like(in.A, Device::cpu()),
             output_like(in.B, Device::cpu()), output_like(in.C, Device::cpu())};
  S4DGrads gg{output_like(in.log_dt, kGpu), output_like(in.A, kGpu), output_like(in.B, kGpu),
              output_like(in.C, kGpu)};
  s4d_kernel_bwd_cpu(in, s, disc, grad_K, g);
  s4d_bwd_cuda(gin, s, disc, grad_K.to(kGpu), gg);
  check("s4d_kernel dlog_dt", label, gg.log_dt, g.log_dt, Kind::Gradient);
  check("s4d_kernel dA", label, gg.A, g.A, Kind::Gradient);
  check("s4d_kernel dB", label, gg.B, g.B, Kind::Gradient);
  check("s4d_kernel dC", label, gg.C, g.C, Kind::Gradient);
}

GPU_TEST_CASE("cuda s4d_kernel: forward and every gradient match the CPU loops") {
  uint64_t seed = 100;
  for (const KernelCase& c : kCases)
    for (DType dtype : kFloatDTypes)
      for (Discretization disc : {Discretization::ZOH, Discretization::Bilinear})
        s4d_parity(c, dtype, disc, true, seed++);
  for (DType dtype : kFloatDTypes) s4d_parity(kWideCase, dtype, Discretization::ZOH, false, 900);
}

// ---- DPLR ---------------------------------------------------------------------------------------

GPU_TEST_CASE("cuda dplr_cauchy: K_hat and every gradient match the CPU loops") {
  uint64_t seed = 1000;
  for (const KernelCase& c : kCases)
    for (DType dtype : kFloatDTypes) {
      const std::string label = c.label();
      const DplrInputs in = dplr_inputs(c, dtype, seed++);
      const DplrInputs gin = to_gpu(in);
      const KernelShape s = make_dplr_shape("test", in, c.L);
      const Tensor K_hat_like = Tensor::empty({c.H, s.nodes(), 2}, dtype);
      Tensor K_hat = output_like(K_hat_like, Device::cpu()), gK_hat = output_like(K_hat_like, kGpu);
      dplr_cauchy_fwd_cpu(in, s, K_hat);
      cauchy_fwd_cuda(gin, s, gK_hat);
      check("dplr_cauchy K_hat", label, gK_hat, K_hat, Kind::Kernel);

      Generator gen(seed++);
      const Tensor grad_K_hat = Tensor::randn(K_hat_like.shape(), dtype, &gen);
      const Device cpu = Device::cpu();
      DplrGrads g{output_like(in.log_dt, cpu), output_like(in.Lambda, cpu), output_like(in.P, cpu),
                  output_like(in.B, cpu), output_like(in.C, cpu)};
      DplrGrads gg{output_like(in.log_dt, kGpu), output_like(in.Lambda, kGpu),
                   output_like(in.P, kGpu), output_like(in.B, kGpu), output_like(in.C, kGpu)};
      dplr_cauchy_bwd_cpu(in, s, grad_K_hat, g);
      cauchy_bwd_cuda(gin, s, grad_K_hat.to(kGpu), gg);
      check("dplr_cauchy dlog_dt", label, gg.log_dt, g.log_dt, Kind::Gradient);
      check("dplr_cauchy dLambda", label, gg.Lambda, g.Lambda, Kind::Gradient);
      check("dplr_cauchy dP", label, gg.P, g.P, Kind::Gradient);
      check("dplr_cauchy dB", label, gg.B, g.B, Kind::Gradient);
      check("dplr_cauchy dC", label, gg.C, g.C, Kind::Gradient);
    }
}

// Only some gradients asked for: the others stay undefined and nothing else is written.
GPU_TEST_CASE("cuda s4d_kernel and dplr_cauchy: a subset of the gradients") {
  const KernelCase c{3, 5, 40};
  const Device cpu = Device::cpu();
  for (DType dtype : kFloatDTypes) {
    const S4DInputs in = s4d_inputs(c, dtype, 2000);
    const KernelShape s = make_s4d_shape("test", in, c.L);
    Generator gen(2001);
    const Tensor grad_K = Tensor::randn({c.H, c.L}, dtype, &gen);
    S4DGrads g{Tensor(), output_like(in.A, cpu), Tensor(), Tensor()};
    S4DGrads gg{Tensor(), output_like(in.A, kGpu), Tensor(), Tensor()};
    s4d_kernel_bwd_cpu(in, s, Discretization::ZOH, grad_K, g);
    s4d_bwd_cuda(to_gpu(in), s, Discretization::ZOH, grad_K.to(kGpu), gg);
    check("s4d_kernel dA only", c.label(), gg.A, g.A, Kind::Gradient);
    CHECK_FALSE(gg.log_dt.defined());

    const DplrInputs d = dplr_inputs(c, dtype, 2002);
    const KernelShape ds = make_dplr_shape("test", d, c.L);
    const Tensor grad_K_hat = Tensor::randn({c.H, ds.nodes(), 2}, dtype, &gen);
    DplrGrads dg{output_like(d.log_dt, cpu), Tensor(), Tensor(), Tensor(), output_like(d.C, cpu)};
    DplrGrads dgg{output_like(d.log_dt, kGpu), Tensor(), Tensor(), Tensor(),
                  output_like(d.C, kGpu)};
    dplr_cauchy_bwd_cpu(d, ds, grad_K_hat, dg);
    cauchy_bwd_cuda(to_gpu(d), ds, grad_K_hat.to(kGpu), dgg);
    check("dplr_cauchy dlog_dt (subset)", c.label(), dgg.log_dt, dg.log_dt, Kind::Gradient);
    check("dplr_cauchy dC (subset)", c.label(), dgg.C, dg.C, Kind::Gradient);
    CHECK_FALSE(dgg.P.defined());
  }
}

// ---- the autograd ops, end to end ---------------------------------------------------------------

// Runs `op` on leaves made from `inputs` on `device`, backpropagates grad_out, returns the
// output and the inputs' gradients (on the CPU).
std::vector<Tensor> run_op(const std::function<Var(const std::vector<Var>&)>& op,
                           const std::vector<Tensor>& inputs, const Tensor& grad_out,
                           Device device) {
  std::vector<Var> vars;
  for (const Tensor& t : inputs) vars.emplace_back(t.to(device), true);
  const Var out = op(vars);
  out.backward(grad_out.to(device));
  std::vector<Tensor> results = {out.value()};
  for (const Var& v : vars) results.push_back(v.grad());
  return results;
}

GPU_TEST_CASE("cuda s4d_kernel and dplr_kernel ops: the CUDA path matches the CPU path") {
  const KernelCase cases[] = {{3, 4, 1}, {5, 7, 33}, {4, 16, 256}, {2, 32, 2049}};
  uint64_t seed = 3000;
  for (const KernelCase& c : cases)
    for (DType dtype : kFloatDTypes) {
      Generator gen(seed++);
      const Tensor grad_K = Tensor::randn({c.H, c.L}, dtype, &gen);

      const S4DInputs s = s4d_inputs(c, dtype, seed++);
      for (Discretization disc : {Discretization::ZOH, Discretization::Bilinear}) {
        auto op = [&](const std::vector<Var>& v) {
          return s4d_kernel(v[0], v[1], v[2], v[3], c.L, disc);
        };
        const std::vector<Tensor> inputs = {s.log_dt, s.A, s.B, s.C};
        const std::vector<Tensor> on_cpu = run_op(op, inputs, grad_K, Device::cpu());
        const std::vector<Tensor> on_gpu = run_op(op, inputs, grad_K, kGpu);
        const char* names[] = {"K", "dlog_dt", "dA", "dB", "dC"};
        for (size_t i = 0; i < on_cpu.size(); ++i)
          check(std::string("s4d_kernel op ") + names[i],
                c.label() + " " + discretization_name(disc), on_gpu[i], on_cpu[i],
                i == 0 ? Kind::Kernel : Kind::Gradient);
      }

      const DplrInputs d = dplr_inputs(c, dtype, seed++);
      auto op = [&](const std::vector<Var>& v) {
        return dplr_kernel(v[0], v[1], v[2], v[3], v[4], c.L);
      };
      const std::vector<Tensor> inputs = {d.log_dt, d.Lambda, d.P, d.B, d.C};
      const std::vector<Tensor> on_cpu = run_op(op, inputs, grad_K, Device::cpu());
      const std::vector<Tensor> on_gpu = run_op(op, inputs, grad_K, kGpu);
      const char* names[] = {"K", "dlog_dt", "dLambda", "dP", "dB", "dC"};
      for (size_t i = 0; i < on_cpu.size(); ++i)
        check(std::string("dplr_kernel op ") + names[i], c.label(), on_gpu[i], on_cpu[i],
              i == 0 ? Kind::Kernel : Kind::Gradient);
    }
}

} // namespace
