// GPU parity tests of the selective scan's CUDA kernels (mamba/selective_scan.cu) against the
// CPU reference loops (mamba/selective_scan_cpu.cpp): the output, the last state and every
// input gradient, for a random grad_out and a random grad_last_state, at lengths 1 to 8192
// (one chunk, many, a partial last one), with each option off and on (D, z, delta_bias,
// softplus), with groups whose channels fill a warp, part of one or several, odd d_inner and n
// from 1 to 64; one case with more warps than a launch covers; then once through the autograd
// op, which covers the dispatch by device. Each comparison prints one PASS/FAIL line
// (tests/parity.h) whose label ends with the largest absolute difference. The CUDA outputs and
// gradients start as NaN, so an element the kernels forget to write fails. Skipped without a
// GPU.
//
// Inputs, drawn on the CPU with Philox (the same every run), never zero:
//   u, B, C, D, z, grad_out, grad_last_state ~ N(0, 1)
//   A = -exp(0.5 N(0, 1)): negative, 95% in [-2.7, -0.37], as Mamba's A = -exp(A_log)
//   with softplus: delta ~ N(0, 1), delta_bias ~ U(-1, 0.5), so dt = softplus(x) is ~0.05 to 3;
//     one case draws delta ~ 10 N(0, 1) to cross softplus' threshold (x > 20: dt = x)
//   without softplus: delta ~ U(0.05, 0.6), delta_bias ~ U(0, 0.3) (dt itself must be > 0)
// so exp(dt A) is mostly between 0.001 and 0.98: states remember tens of steps, as in a trained
// model, and a wrong carry between chunks shows.
//
// Tolerances, and why:
//   float64: test::kF64Atol/kF64Rtol (1e-12). Both sides evaluate the same recurrences in
//     double; they differ by the chunking (a chunk's start state is P H + S, not the product
//     step by step), the order of the sums (over k, the channels of a group, time and batch),
//     exp2(x log2 e) for exp(x), and nvcc's fused multiply-adds: a few ulps of the largest
//     terms, 1e-14 or less on the O(1)-O(100) values here.
//   float32: atol 2e-3, rtol 6e-4, the tolerances of the official Mamba tests
//     (state-spaces/mamba, tests/ops/test_selective_scan.py). The CPU loop adds dA, dD and
//     ddelta_bias over up to batch * length terms in float32, in sequence, so its own error
//     grows with the length (about 1e-5 relative at 4097 steps); the kernel's, summing per
//     chunk then over chunks, is smaller. Every other difference is a few ulps. A wrong
//     formula or a wrong carry is off by 1e-2 or more, and the float64 runs catch it at 1e-12.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "autograd/variable.h"
#include "mamba/selective_scan.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tests/parity.h"

using namespace ssm;

namespace {

const Device kGpu = Device::cuda(0);
const std::vector<DType> kFloatDTypes = {DType::Float64, DType::Float32};

struct Tolerance {
  double atol, rtol;
};
constexpr Tolerance kF64{test::kF64Atol, test::kF64Rtol};
constexpr Tolerance kF32{2e-3, 6e-4};

Tolerance tolerance(DType dtype) { return dtype == DType::Float64 ? kF64 : kF32; }

// One scan configuration. B and C are (batch, length, n) when groups is 1, unless group_dim
// asks for (batch, length, 1, n); (batch, length, groups, n) otherwise.
struct ScanCase {
  int64_t batch, length, d_inner, n, groups;
  bool D = true, z = true, delta_bias = true, softplus = true;
  bool grad_last = true;  // a random grad_last_state; undefined (zero) otherwise
  bool group_dim = false; // B, C with a groups dimension even when groups is 1
  double delta_scale = 1; // delta ~ delta_scale N(0, 1) (with softplus)

  std::string label() const {
    std::string s = "b" + std::to_string(batch) + " l" + std::to_string(length) + " d" +
                    std::to_string(d_inner) + "/g" + std::to_string(groups) + " n" +
                    std::to_string(n);
    if (group_dim) s += " bc4";
    s += std::string(" ") + (D ? "D" : "-") + (z ? "z" : "-") + (delta_bias ? "b" : "-") +
         (softplus ? "s" : "-") + (grad_last ? "H" : "-");
    if (delta_scale != 1) s += " delta*" + std::to_string(static_cast<int>(delta_scale));
    return s;
  }
};

// The inputs of `c` on the CPU (see the file's header for the distributions).
ScanInputs make_inputs(const ScanCase& c, DType dtype, uint64_t seed) {
  Generator gen(seed);
  const Shape rows{c.batch, c.length, c.d_inner};
  const Shape bc = c.groups > 1 || c.group_dim ? Shape{c.batch, c.length, c.groups, c.n}
                                               : Shape{c.batch, c.length, c.n};
  ScanInputs in;
  in.u = Tensor::randn(rows, dtype, &gen);
  in.delta = c.softplus ? mul(Tensor::randn(rows, dtype, &gen), c.delta_scale)
                        : Tensor::uniform(rows, 0.05, 0.6, dtype, &gen);
  in.A = neg(exp(mul(Tensor::randn({c.d_inner, c.n}, dtype, &gen), 0.5)));
  in.B = Tensor::randn(bc, dtype, &gen);
  in.C = Tensor::randn(bc, dtype, &gen);
  if (c.D) in.D = Tensor::randn({c.d_inner}, dtype, &gen);
  if (c.z) in.z = Tensor::randn(rows, dtype, &gen);
  if (c.delta_bias)
    in.delta_bias = c.softplus ? Tensor::uniform({c.d_inner}, -1, 0.5, dtype, &gen)
                               : Tensor::uniform({c.d_inner}, 0, 0.3, dtype, &gen);
  return in;
}

ScanInputs to_device(const ScanInputs& in, Device device) {
  auto move = [&](const Tensor& t) { return t.defined() ? t.to(device) : Tensor(); };
  return {move(in.u), move(in.delta), move(in.A), move(in.B),
          move(in.C), move(in.D),     move(in.z), move(in.delta_bias)};
}

// A tensor shaped like `like` on `device`, filled with `value`, when `needed`; else undefined.
Tensor filled_like(bool needed, const Tensor& like, double value, Device device) {
  return needed && like.defined() ? Tensor::full(like.shape(), value, like.dtype(), device)
                                  : Tensor();
}

// Gradient buffers for the inputs of `in`, each filled with `value`; mask picks which
// (u, delta, A, B, C, D, z, delta_bias), all by default.
ScanGrads grads_for(const ScanInputs& in, double value, Device device,
                    const std::vector<bool>& mask = std::vector<bool>(8, true)) {
  ScanGrads g;
  g.u = filled_like(mask[0], in.u, value, device);
  g.delta = filled_like(mask[1], in.delta, value, device);
  g.A = filled_like(mask[2], in.A, value, device);
  g.B = filled_like(mask[3], in.B, value, device);
  g.C = filled_like(mask[4], in.C, value, device);
  g.D = filled_like(mask[5], in.D, value, device);
  g.z = filled_like(mask[6], in.z, value, device);
  g.delta_bias = filled_like(mask[7], in.delta_bias, value, device);
  return g;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> va = a.to_doubles(), vb = b.to_doubles();
  double worst = 0;
  for (size_t i = 0; i < va.size() && i < vb.size(); ++i) {
    const double d = std::fabs(va[i] - vb[i]);
    if (!(d <= worst)) worst = d; // NaN sticks
  }
  return worst;
}

// One PASS/FAIL line: "selective_scan <what>", the case's label and the largest |cuda - cpu|.
void check(const std::string& what, const std::string& label, const Tensor& cuda_value,
           const Tensor& cpu_value, Tolerance tol) {
  REQUIRE(cuda_value.defined());
  REQUIRE(cpu_value.defined());
  CHECK(cuda_value.device() == kGpu);
  const Tensor on_cpu = cuda_value.to(Device::cpu());
  char diff[32];
  std::snprintf(diff, sizeof diff, " |d| %.2g", max_abs_diff(on_cpu, cpu_value));
  test::check_parity("selective_scan " + what, label + diff, on_cpu, cpu_value, tol.atol, tol.rtol);
}

// The kernels exist in a CUDA build only; without one the tests below are skipped and these
// are never called.
void scan_fwd_cuda(const ScanInputs& in, const ScanShape& s, Tensor& out, Tensor& last_state) {
#ifdef SSM_CUDA
  selective_scan_fwd_cuda(in, s, out, last_state);
#else
  (void)in, (void)s, (void)out, (void)last_state;
  throw_no_cuda("selective_scan_fwd_cuda");
#endif
}
void scan_bwd_cuda(const ScanInputs& in, const ScanShape& s, const Tensor& grad_out,
                   const Tensor& grad_last_state, ScanGrads& grads) {
#ifdef SSM_CUDA
  selective_scan_bwd_cuda(in, s, grad_out, grad_last_state, grads);
#else
  (void)in, (void)s, (void)grad_out, (void)grad_last_state, (void)grads;
  throw_no_cuda("selective_scan_bwd_cuda");
#endif
}

const char* const kGradNames[8] = {"du", "ddelta", "dA", "dB", "dC", "dD", "dz", "ddelta_bias"};

std::vector<const Tensor*> grad_list(const ScanGrads& g) {
  return {&g.u, &g.delta, &g.A, &g.B, &g.C, &g.D, &g.z, &g.delta_bias};
}

// Runs selective_scan_fwd/bwd on the CPU and on CUDA from the same inputs and compares the
// output, the last state and the gradients picked by `mask` (all by default).
void check_case(const ScanCase& c, DType dtype, uint64_t seed,
                const std::vector<bool>& mask = std::vector<bool>(8, true)) {
  const std::string label = c.label();
  INFO("case " << label << " " << dtype_name(dtype));
  const Tolerance tol = tolerance(dtype);
  const ScanInputs cpu_in = make_inputs(c, dtype, seed);
  const ScanShape s = make_scan_shape("test", cpu_in, c.softplus);
  Generator gen(seed + 1);
  const Shape rows{c.batch, c.length, c.d_inner}, states{c.batch, c.d_inner, c.n};
  const Tensor grad_out = Tensor::randn(rows, dtype, &gen);
  const Tensor grad_last = c.grad_last ? Tensor::randn(states, dtype, &gen) : Tensor();

  Tensor cpu_out = Tensor::empty(rows, dtype), cpu_last = Tensor::empty(states, dtype);
  selective_scan_fwd_cpu(cpu_in, s, cpu_out, cpu_last);
  ScanGrads cpu_grads = grads_for(cpu_in, 0, Device::cpu());
  selective_scan_bwd_cpu(cpu_in, s, grad_out, grad_last, cpu_grads);

  const double nan = std::numeric_limits<double>::quiet_NaN();
  const ScanInputs gpu_in = to_device(cpu_in, kGpu);
  Tensor gpu_out = Tensor::full(rows, nan, dtype, kGpu);
  Tensor gpu_last = Tensor::full(states, nan, dtype, kGpu);
  scan_fwd_cuda(gpu_in, s, gpu_out, gpu_last);
  ScanGrads gpu_grads = grads_for(gpu_in, nan, kGpu, mask);
  scan_bwd_cuda(gpu_in, s, grad_out.to(kGpu), grad_last.defined() ? grad_last.to(kGpu) : Tensor(),
                gpu_grads);

  check("out", label, gpu_out, cpu_out, tol);
  check("last_state", label, gpu_last, cpu_last, tol);
  const std::vector<const Tensor*> gpu = grad_list(gpu_grads), cpu = grad_list(cpu_grads);
  for (size_t i = 0; i < gpu.size(); ++i)
    if (gpu[i]->defined()) check(kGradNames[i], label, *gpu[i], *cpu[i], tol);
}

} // namespace

// ---- the kernels against the CPU loops ---------------------------------------------------

GPU_TEST_CASE("cuda selective_scan: lengths 1 to 8192 with every option on") {
  // 1: a single step; 7: one partial chunk; 128, 2048: whole chunks only; 1000, 4097: a
  // partial last chunk; 4097, 8192: hundreds of chunks carried (the chunks are 4 to 32 steps).
  uint64_t seed = 100;
  for (DType dtype : kFloatDTypes) {
    for (int64_t length : {1, 7, 128, 1000, 2048, 4097})
      check_case({2, length, 6, 5, 3}, dtype, seed++);
    check_case({1, 8192, 4, 3, 1}, dtype, seed++);
  }
}

GPU_TEST_CASE("cuda selective_scan: each option off and on") {
  // Every combination of D, z, delta_bias and softplus; grad_last_state given in two of three.
  // d_inner 40 is one full warp of channels and 8 more; length 301 ends in a partial chunk
  // for every chunk length.
  uint64_t seed = 200;
  for (DType dtype : kFloatDTypes)
    for (int options = 0; options < 16; ++options) {
      ScanCase c{2, 301, 40, 4, 1};
      c.D = options & 1;
      c.z = options & 2;
      c.delta_bias = options & 4;
      c.softplus = options & 8;
      c.grad_last = options % 3 != 0;
      check_case(c, dtype, seed++);
    }
}

GPU_TEST_CASE("cuda selective_scan: groups, warp tiles and state sizes") {
  // A warp owns up to 32 channels of one group: 2 channels per group leaves most lanes idle,
  // 35 is a full warp and a nearly empty one, 32 exactly one; n from 1 to 64 (bench: 16, 64).
  std::vector<ScanCase> cases = {
      {2, 129, 6, 5, 3},  // 2 channels per group
      {2, 129, 6, 5, 1},  // one group, B and C (batch, length, n)
      {1, 129, 6, 5, 1},  // the same with B and C (batch, length, 1, n)
      {2, 97, 64, 16, 1}, // two full warps
      {2, 97, 70, 16, 2}, // 35 channels per group
      {1, 97, 96, 1, 3},  // n = 1, 32 channels per group
      {1, 65, 33, 64, 1}, // n = 64
      {2, 50, 7, 17, 7},  // one channel per group, n = 17
  };
  cases[2].group_dim = true;
  uint64_t seed = 300;
  for (DType dtype : kFloatDTypes)
    for (const ScanCase& c : cases) check_case(c, dtype, seed++);
}

GPU_TEST_CASE("cuda selective_scan: softplus past its threshold") {
  // delta ~ 10 N(0, 1): about 2% of the x = delta + delta_bias exceed 20, where softplus is
  // the identity and its derivative 1, and many are below -10, where dt is nearly 0.
  ScanCase c{2, 200, 8, 4, 1};
  c.delta_scale = 10;
  uint64_t seed = 400;
  for (DType dtype : kFloatDTypes) check_case(c, dtype, seed++);
}

GPU_TEST_CASE("cuda selective_scan: more warps than one launch covers") {
  // The scan kernels launch at most 2048 blocks of 4 warps and loop over the rest of their
  // units (one warp per (batch, chunk, group, 32 channels)): here 4 x 129 x 16 = 8256 units
  // forward and 4 x 257 x 16 = 16448 backward (float32 chunks: 32 and 16 steps), and the
  // column sums of dB and dC loop over 4 x 4097 x 4 = 65552 columns (2048 blocks of 32).
  // float32 only: the float64 CPU reference at this size would add seconds.
  check_case({4, 4097, 512, 4, 1}, DType::Float32, 500);
}

GPU_TEST_CASE("cuda selective_scan: only the gradients asked for") {
  // The backward writes each defined gradient and skips the others; a gradient asked for an
  // absent input is an error.
  const ScanCase c{2, 100, 40, 8, 2};
  check_case(c, DType::Float64, 600, {true, false, false, true, false, false, true, false});
  check_case(c, DType::Float64, 601, {false, true, true, false, true, true, false, true});

  ScanCase no_options{1, 10, 4, 2, 1};
  no_options.D = no_options.z = no_options.delta_bias = false;
  const ScanInputs in = to_device(make_inputs(no_options, DType::Float64, 602), kGpu);
  const ScanShape s = make_scan_shape("test", in, true);
  ScanGrads grads;
  grads.D = Tensor::empty({4}, DType::Float64, kGpu);
  const Tensor grad_out = Tensor::zeros(in.u.shape(), DType::Float64, kGpu);
  CHECK_THROWS_AS(scan_bwd_cuda(in, s, grad_out, Tensor(), grads), std::invalid_argument);
}

// ---- through the autograd op -------------------------------------------------------------

GPU_TEST_CASE("cuda selective_scan: the autograd op on CUDA matches it on the CPU") {
  // selective_scan() on CUDA Vars reaches the kernels (forward and backward through the
  // graph) and gives what it gives on CPU Vars, last state included.
  ScanCase c{2, 300, 40, 16, 2};
  c.grad_last = false; // the op's backward has no gradient for the last state
  uint64_t seed = 700;
  for (DType dtype : kFloatDTypes) {
    const std::string label = c.label() + " (op)";
    const ScanInputs in = make_inputs(c, dtype, seed++);
    Generator gen(seed++);
    const Tensor upstream = Tensor::randn(in.u.shape(), dtype, &gen);
    struct Run {
      Tensor out, last;
      std::vector<Tensor> grads;
    };
    auto run = [&](Device device) {
      const std::vector<Tensor> values = {in.u, in.delta, in.A, in.B,
                                          in.C, in.D,     in.z, in.delta_bias};
      std::vector<Var> vars;
      for (const Tensor& t : values) vars.emplace_back(t.to(device), true);
      Run r;
      const Var out = selective_scan(vars[0], vars[1], vars[2], vars[3], vars[4], vars[5], vars[6],
                                     vars[7], c.softplus, &r.last);
      out.backward(upstream.to(device));
      r.out = out.value();
      for (const Var& v : vars) r.grads.push_back(v.grad());
      return r;
    };
    const Run cpu = run(Device::cpu()), gpu = run(kGpu);
    const Tolerance tol = tolerance(dtype);
    check("out", label, gpu.out, cpu.out, tol);
    check("last_state", label, gpu.last, cpu.last, tol);
    for (size_t i = 0; i < cpu.grads.size(); ++i)
      check(kGradNames[i], label, gpu.grads[i], cpu.grads[i], tol);
  }
}
