// GPU parity tests of every differentiable op of autograd/functions.h, forward and backward:
// check_op runs an op on the CPU and on CUDA from the same inputs, backpropagates the same
// random upstream gradient on both, and compares the output and every input gradient with
// test::check_parity (one PASS/FAIL line each). Also: SGD and AdamW steps and gradient
// clipping on CUDA against the CPU, and a checkpoint saved from CUDA parameters. Skipped
// without a GPU.
//
// Tolerances, and why:
//   float64: test::kF64Atol/kF64Rtol (1e-12) for every op but one case. Both sides evaluate
//     the same formulas in double; they differ by the order of sums (tree vs in order), by
//     nvcc's fused multiply-adds and by last-ulp differences of exp/log/tanh: a few ulps of
//     the largest term, 1e-15 or less on the O(1)-O(300) values here.
//   The exception, kF64LongSum (atol 1e-10): dweight and dbias of the norms over 70000 rows.
//     Each is a sum of 70000 terms of size ~1 and random sign, which the CPU adds in sequence:
//     its own rounding error is about u R / sqrt(6) (u = 1.1e-16, R rows; the partial sums
//     wander up to ~sqrt(R)), 3e-12 here, while a column's total can land near 0, where
//     rtol gives no room. 1e-10 leaves a margin of 30 such errors.
//   float32, kF32 (atol = rtol = 1e-5) for elementwise, reduction, shape, loss, norm, conv,
//     embedding and dropout ops. CUDA's expf, logf, tanhf, erff are within 2 ulps of the exact
//     value and the host's within 1-2; nvcc fuses multiply-adds that the CPU rounds twice;
//     float32 sums accumulate in double on both sides and are rounded once; embedding's
//     backward adds repeated rows with float32 atomics in a varying order. Each effect is a
//     few ulps (2^-23 = 1.2e-7 relative each) of values up to ~10, so 1e-5 relative keeps a
//     margin of ~10x; atol 1e-5 covers results that cancel to near 0 (1 - tanh^2 near
//     saturation, y (g - sum g y) in softmax, the three-term dx of layer_norm), where the
//     error is a few ulps of the terms rather than of the result. A wrong formula is off by
//     1e-2 or more.
//   float32, kF32Matmul (1e-4) for matmul, bmm, linear and attention: cuBLAS and the CPU GEMM
//     add the K products of each dot product in different orders in float32 (no double
//     accumulator), so they differ by about K ulps of the largest partial sum; with K up to
//     ~10 and terms up to ~10 that is ~1e-5 absolute.
//   Optimizers, float32: atol 1e-7, rtol 1e-6. The updates are computed in double on both
//     sides and rounded to float32 once per step; a fused double multiply-add moves a result
//     across a float32 rounding boundary only rarely, by one ulp (6e-8 relative), which later
//     steps carry along.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "autograd/nn.h"
#include "autograd/optim.h"
#include "data/checkpoint.h"
#include "tensor/random.h"
#include "tests/helpers.h"
#include "tests/parity.h"

using namespace ssm;

namespace {

const Device kGpu = Device::cuda(0);
const std::vector<DType> kFloatDTypes = {DType::Float64, DType::Float32};

struct Tolerance {
  double atol, rtol;
};
constexpr Tolerance kF64{test::kF64Atol, test::kF64Rtol};
constexpr Tolerance kF32{1e-5, 1e-5};
constexpr Tolerance kF32Matmul{1e-4, 1e-4};
constexpr Tolerance kF32Optim{1e-7, 1e-6};
constexpr Tolerance kF64LongSum{1e-10, test::kF64Rtol};
// Normalising over a single element: x - mean is 0 in exact arithmetic, so x-hat and dx are
// float32 rounding noise multiplied by 1/sqrt(eps) ~ 316; the CPU and CUDA noise differ (seen:
// 1.8x the standard float32 tolerance). 1e-3 absolute still catches a wrong formula, whose dx
// would be of the order of g.
constexpr Tolerance kF32DegenerateNorm{1e-3, 1e-5};

// The tolerance of a case in each dtype.
struct Tolerances {
  Tolerance f64, f32;
};
constexpr Tolerances kStandard{kF64, kF32};
constexpr Tolerances kMatmul{kF64, kF32Matmul};
constexpr Tolerances kLongRowSums{kF64LongSum, kF32};
constexpr Tolerances kSingleElementNorm{kF64, kF32DegenerateNorm};

Tolerance tolerance(DType dtype, Tolerances tol) {
  return dtype == DType::Float64 ? tol.f64 : tol.f32;
}

// An op under test: its differentiable inputs as Vars on `device` (in the order check_op was
// given them) -> its output. Non-differentiable arguments (targets, indices, masks) are
// captured as CPU tensors and moved to `device` inside.
using OpFn = std::function<Var(const std::vector<Var>&, Device)>;

struct Outcome {
  Tensor out;
  std::vector<Tensor> grads; // one per input
};

// f's output on `device` and the input gradients for the upstream gradient drawn from `seed`.
Outcome run_on(Device device, const std::vector<Tensor>& inputs, const OpFn& f, uint64_t seed) {
  std::vector<Var> vars;
  for (const Tensor& t : inputs) vars.emplace_back(t.to(device), true);
  const Var out = f(vars, device);
  Generator gen(seed);
  const Tensor upstream = Tensor::randn(out.shape(), out.dtype(), &gen); // drawn on the CPU
  out.backward(upstream.to(device));
  Outcome result{out.value(), {}};
  for (const Var& v : vars) result.grads.push_back(v.grad());
  return result;
}

std::string shapes_of(const std::vector<Tensor>& inputs) {
  std::string s;
  for (const Tensor& t : inputs) s += (s.empty() ? "" : " ") + shape_str(t.shape());
  return s;
}

// Runs f forward and backward on both devices and checks the output and each input gradient.
// `config` describes the case beyond the input shapes.
void check_op(const std::string& op, const std::string& config, const std::vector<Tensor>& inputs,
              const OpFn& f, Tolerances tolerances = kStandard) {
  const Tolerance tol = tolerance(inputs.at(0).dtype(), tolerances);
  const std::string label = shapes_of(inputs) + (config.empty() ? "" : " " + config);
  const Outcome cpu = run_on(Device::cpu(), inputs, f, 2024);
  const Outcome gpu = run_on(kGpu, inputs, f, 2024);
  CHECK(gpu.out.device() == kGpu);
  test::check_parity(op, label + " out", gpu.out, cpu.out, tol.atol, tol.rtol);
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string name = label + " grad" + std::to_string(i);
    INFO(op << " " << name);
    REQUIRE(cpu.grads[i].defined());
    REQUIRE(gpu.grads[i].defined());
    CHECK(gpu.grads[i].device() == kGpu);
    test::check_parity(op, name, gpu.grads[i], cpu.grads[i], tol.atol, tol.rtol);
  }
}

Tensor normal(const Shape& shape, DType dtype, uint64_t seed) {
  Generator gen(seed);
  return Tensor::randn(shape, dtype, &gen);
}

Tensor uniform(const Shape& shape, double lo, double hi, DType dtype, uint64_t seed) {
  Generator gen(seed);
  return Tensor::uniform(shape, lo, hi, dtype, &gen);
}

// Class indices in [0, classes), with exactly the entries 0, n, 2n, ... (n = ignore_every;
// none when 0) equal to `ignore`: a random target that happens to equal an in-range ignore
// index is moved to the next class, so no case ends up with every target ignored.
Tensor targets_for(const Shape& shape, int64_t classes, int64_t ignore_every, int64_t ignore,
                   uint64_t seed) {
  Generator gen(seed);
  Tensor t = Tensor::randint(0, classes, shape, DType::Int64, &gen);
  int64_t* p = t.data<int64_t>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (ignore_every > 0 && i % ignore_every == 0)
      p[i] = ignore;
    else if (p[i] == ignore)
      p[i] = (ignore + 1) % classes;
  }
  return t;
}

std::string list_str(const std::vector<int64_t>& values) {
  std::string s = "{";
  for (size_t i = 0; i < values.size(); ++i) s += (i ? "," : "") + std::to_string(values[i]);
  return s + "}";
}

} // namespace

// ---- elementwise ---------------------------------------------------------------------------

GPU_TEST_CASE("cuda autograd: unary elementwise ops, forward and backward") {
  struct Unary {
    const char* name;
    std::function<Var(const Var&)> fn;
    bool positive; // the op needs x > 0
  };
  const std::vector<Unary> ops = {
      {"neg", [](const Var& x) { return neg(x); }, false},
      {"exp", [](const Var& x) { return exp(x); }, false},
      {"log", [](const Var& x) { return log(x); }, true},
      {"sqrt", [](const Var& x) { return sqrt(x); }, true},
      {"abs", [](const Var& x) { return abs(x); }, false},
      {"clamp", [](const Var& x) { return clamp(x, -0.5, 0.7); }, false},
      {"tanh", [](const Var& x) { return tanh(x); }, false},
      {"sigmoid", [](const Var& x) { return sigmoid(x); }, false},
      {"relu", [](const Var& x) { return relu(x); }, false},
      {"silu", [](const Var& x) { return silu(x); }, false},
      {"gelu_erf", [](const Var& x) { return gelu(x, GeluForm::Erf); }, false},
      {"gelu_tanh", [](const Var& x) { return gelu(x, GeluForm::Tanh); }, false},
      {"softplus", [](const Var& x) { return softplus(x); }, false},
      {"pow_scalar", [](const Var& x) { return pow(x, 2.5); }, true},
      {"add_scalar", [](const Var& x) { return add(x, 1.75); }, false},
      {"mul_scalar", [](const Var& x) { return mul(x, -3.0); }, false},
  };
  const std::vector<Shape> shapes = {{1}, {7}, {3, 5}, {2, 3, 33}};
  for (DType dtype : kFloatDTypes)
    for (const Unary& op : ops)
      for (const Shape& shape : shapes) {
        const Tensor x =
            op.positive ? uniform(shape, 0.2, 3.0, dtype, 1) : uniform(shape, -3.0, 3.0, dtype, 1);
        check_op(op.name, "", {x}, [&](const std::vector<Var>& v, Device) { return op.fn(v[0]); });
        // A transposed (non-contiguous) input.
        if (shape.size() >= 2)
          check_op(op.name, "transposed", {x}, [&](const std::vector<Var>& v, Device) {
            return op.fn(transpose(v[0], 0, -1));
          });
      }
}

GPU_TEST_CASE("cuda autograd: binary elementwise ops with broadcasting") {
  struct Binary {
    const char* name;
    std::function<Var(const Var&, const Var&)> fn;
  };
  const std::vector<Binary> ops = {
      {"add", [](const Var& a, const Var& b) { return add(a, b); }},
      {"sub", [](const Var& a, const Var& b) { return sub(a, b); }},
      {"mul", [](const Var& a, const Var& b) { return mul(a, b); }},
      {"div", [](const Var& a, const Var& b) { return div(a, b); }},
      {"pow", [](const Var& a, const Var& b) { return pow(a, b); }},
  };
  // (a shape, b shape): equal, broadcast both ways, scalar-like, size 1.
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{1}, {1}}, {{7}, {7}}, {{3, 1, 5}, {4, 5}}, {{4, 5}, {1}}, {{2, 3, 33}, {3, 1}}};
  for (DType dtype : kFloatDTypes)
    for (const Binary& op : ops)
      for (const auto& [sa, sb] : cases) {
        // Positive operands keep div away from 0 and pow's base inside its domain.
        const Tensor a = uniform(sa, 0.5, 2.0, dtype, 2), b = uniform(sb, 0.5, 2.0, dtype, 3);
        check_op(op.name, "", {a, b},
                 [&](const std::vector<Var>& v, Device) { return op.fn(v[0], v[1]); });
      }
}

GPU_TEST_CASE("cuda autograd: where, masked_fill and dropout") {
  for (DType dtype : kFloatDTypes) {
    const Tensor a = normal({4, 33}, dtype, 4), b = normal({4, 33}, dtype, 5);
    Generator gen(6);
    const Tensor cond = Tensor::randint(0, 2, {4, 33}, DType::Int64, &gen);
    check_op("where", "", {a, b}, [&](const std::vector<Var>& v, Device device) {
      return where(cond.to(device), v[0], v[1]);
    });
    const Tensor row_mask = Tensor::randint(0, 2, {1, 33}, DType::Int64, &gen); // broadcast
    check_op("masked_fill", "mask [1, 33]", {a}, [&](const std::vector<Var>& v, Device device) {
      return masked_fill(v[0], row_mask.to(device), -2.5);
    });
    // One seed on both devices gives one mask (the Philox fills agree bit for bit).
    for (const Shape& shape : {Shape{1}, Shape{4, 33}, Shape{3, 1000}})
      check_op("dropout", "p=0.3", {normal(shape, dtype, 7)},
               [&](const std::vector<Var>& v, Device) {
                 Generator mask_gen(99);
                 return dropout(v[0], 0.3, true, &mask_gen);
               });
  }
}

// ---- reductions and shapes -----------------------------------------------------------------

GPU_TEST_CASE("cuda autograd: sum, mean and max over dims") {
  struct Case {
    Shape shape;
    std::vector<int64_t> dims;
    bool keepdim;
  };
  const std::vector<Case> cases = {
      {{1}, {}, false},       {{7}, {0}, false},           {{4, 5}, {}, false},
      {{4, 5}, {1}, true},    {{2, 3, 33}, {0, 2}, false}, {{2, 3, 33}, {-2}, true},
      {{3, 2000}, {1}, false}};
  for (DType dtype : kFloatDTypes)
    for (const Case& c : cases) {
      const std::string config = "dims=" + list_str(c.dims) + (c.keepdim ? " keepdim" : "");
      const Tensor x = normal(c.shape, dtype, 8);
      check_op("sum", config, {x},
               [&](const std::vector<Var>& v, Device) { return sum(v[0], c.dims, c.keepdim); });
      check_op("mean", config, {x},
               [&](const std::vector<Var>& v, Device) { return mean(v[0], c.dims, c.keepdim); });
      check_op("max", config, {x},
               [&](const std::vector<Var>& v, Device) { return max(v[0], c.dims, c.keepdim); });
      // Ties: integer values in [0, 3), so the gradient is split between equal maxima.
      Generator gen(9);
      const Tensor ties = Tensor::randint(0, 3, c.shape, DType::Int64, &gen).to(dtype);
      check_op("max", config + " ties", {ties},
               [&](const std::vector<Var>& v, Device) { return max(v[0], c.dims, c.keepdim); });
    }
}

GPU_TEST_CASE("cuda autograd: shape ops, concat, stack, split and index_select") {
  for (DType dtype : kFloatDTypes) {
    const Tensor x = normal({2, 3, 5}, dtype, 10);
    const Tensor y = normal({2, 4, 5}, dtype, 11);
    auto one = [&](const char* name, std::function<Var(const Var&)> fn) {
      check_op(name, "", {x}, [&](const std::vector<Var>& v, Device) { return fn(v[0]); });
    };
    one("reshape", [](const Var& v) { return reshape(v, {6, 5}); });
    one("permute", [](const Var& v) { return permute(v, {2, 0, 1}); });
    one("transpose", [](const Var& v) { return transpose(v, 0, 2); });
    one("slice", [](const Var& v) { return slice(v, 2, 1, 5, 2); });
    one("narrow", [](const Var& v) { return narrow(v, 1, 1, 2); });
    one("select", [](const Var& v) { return select(v, 1, 2); });
    one("unsqueeze", [](const Var& v) { return unsqueeze(v, 1); });
    one("squeeze", [](const Var& v) { return squeeze(unsqueeze(v, 3), 3); });
    one("expand", [](const Var& v) { return expand(unsqueeze(v, 0), {4, 2, 3, 5}); });
    // A strided view fed to a differentiable op: its gradient scatters back through the view.
    one("transpose+exp", [](const Var& v) { return exp(transpose(v, 1, 2)); });
    check_op("concat", "dim=1", {x, y}, [](const std::vector<Var>& v, Device) {
      return concat({v[0], v[1]}, 1);
    });
    check_op("stack", "dim=2", {x, x}, [](const std::vector<Var>& v, Device) {
      return stack({v[0], mul(v[1], 2.0)}, 2);
    });
    check_op("split", "sizes={1,3,1} dim=2", {x}, [](const std::vector<Var>& v, Device) {
      const std::vector<Var> parts = split(v[0], {1, 3, 1}, 2);
      return concat({mul(parts[2], 3.0), parts[0], exp(parts[1])}, 2);
    });
    // Repeated indices: their gradients add up.
    const Tensor index = Tensor::from_vector<int64_t>({2, 0, 2, 1, 2}, {5});
    check_op("index_select", "dim=1 index {2,0,2,1,2}", {x},
             [&](const std::vector<Var>& v, Device device) {
               return index_select(v[0], 1, index.to(device));
             });
  }
}

// ---- matrix products -----------------------------------------------------------------------

GPU_TEST_CASE("cuda autograd: matmul, bmm and linear") {
  for (DType dtype : kFloatDTypes) {
    const std::vector<std::pair<Shape, Shape>> matmul_cases = {
        {{1, 1}, {1, 1}}, {{3, 4}, {4, 5}}, {{2, 1, 3, 4}, {3, 4, 5}},
        {{4}, {4, 5}},    {{3, 4}, {4}},    {{7}, {7}}};
    for (const auto& [sa, sb] : matmul_cases)
      check_op(
          "matmul", "", {normal(sa, dtype, 12), normal(sb, dtype, 13)},
          [](const std::vector<Var>& v, Device) { return matmul(v[0], v[1]); }, kMatmul);
    check_op(
        "matmul", "a transposed", {normal({4, 3}, dtype, 12), normal({4, 5}, dtype, 13)},
        [](const std::vector<Var>& v, Device) { return matmul(transpose(v[0], 0, 1), v[1]); },
        kMatmul);
    check_op(
        "bmm", "", {normal({2, 3, 4}, dtype, 14), normal({2, 4, 5}, dtype, 15)},
        [](const std::vector<Var>& v, Device) { return bmm(v[0], v[1]); }, kMatmul);
    for (const Shape& x_shape : {Shape{1, 7}, Shape{5, 7}, Shape{2, 3, 7}}) {
      const Tensor x = normal(x_shape, dtype, 16), w = normal({3, 7}, dtype, 17),
                   b = normal({3}, dtype, 18);
      check_op(
          "linear", "bias", {x, w, b},
          [](const std::vector<Var>& v, Device) { return linear(v[0], v[1], v[2]); }, kMatmul);
      check_op(
          "linear", "no bias", {x, w},
          [](const std::vector<Var>& v, Device) { return linear(v[0], v[1]); }, kMatmul);
    }
  }
}

// ---- softmax and losses --------------------------------------------------------------------

GPU_TEST_CASE("cuda autograd: softmax and log_softmax along every kind of dim") {
  struct Case {
    Shape shape;
    int64_t dim;
  };
  // Last dim with short rows (a warp per row) and long rows (a block per row), inner dims
  // (the column kernel), size 1, and large cases.
  const std::vector<Case> cases = {
      {{1, 1}, -1},
      {{5}, 0},
      {{4, 33}, 1},
      {{4, 33}, 0},
      {{2, 3, 7}, 1},
      {{3, 2000}, 1},
      {{3, 70000}, 0},
      {{3, 70000}, 1},
      {{70000, 33}, 1},
      {{2, 1025, 3}, 1},
      // Past one grid: 600000 rows of 3 (a warp each, 8 per block) and 4.4M columns of 2 (32
      // per block): the kernels loop over rows and tiles.
      {{600000, 3}, 1},
      {{2, 2200000}, 0}};
  for (DType dtype : kFloatDTypes)
    for (const Case& c : cases) {
      const std::string config = "dim=" + std::to_string(c.dim);
      const Tensor x = uniform(c.shape, -4, 4, dtype, 19);
      check_op("softmax", config, {x},
               [&](const std::vector<Var>& v, Device) { return softmax(v[0], c.dim); });
      check_op("log_softmax", config, {x},
               [&](const std::vector<Var>& v, Device) { return log_softmax(v[0], c.dim); });
    }
  // Large logits (the row maximum is subtracted first) and a transposed input.
  for (DType dtype : kFloatDTypes) {
    const Tensor big = uniform({6, 40}, 900, 1000, dtype, 20);
    check_op("softmax", "logits ~1000", {big},
             [](const std::vector<Var>& v, Device) { return softmax(v[0], 1); });
    check_op(
        "log_softmax", "transposed dim=1", {normal({33, 4}, dtype, 21)},
        [](const std::vector<Var>& v, Device) { return log_softmax(transpose(v[0], 0, 1), 1); });
  }
}

GPU_TEST_CASE("cuda autograd: cross_entropy with ignore_index and every reduction") {
  struct Case {
    Shape logits;
    int64_t ignore_every; // every n-th target is the ignore index (0: none)
  };
  const std::vector<Case> cases = {{{5}, 0},          {{1, 1}, 0},    {{6, 5}, 3},
                                   {{2, 5, 7}, 4},    {{4, 2000}, 2}, {{70000, 33}, 5},
                                   {{3, 4, 70000}, 7}};
  const std::vector<std::pair<Reduction, const char*>> reductions = {
      {Reduction::Mean, "mean"}, {Reduction::Sum, "sum"}, {Reduction::None, "none"}};
  for (DType dtype : kFloatDTypes)
    for (const Case& c : cases)
      for (const auto& [reduction, reduction_name] : reductions)
        for (int64_t ignore : {int64_t(-100), int64_t(2)}) { // the default, and a class index
          const int64_t classes = c.logits.size() == 1 ? c.logits[0] : c.logits[1];
          Shape target_shape = c.logits;
          target_shape.erase(target_shape.begin() + (c.logits.size() == 1 ? 0 : 1));
          const Tensor targets = targets_for(target_shape, classes, c.ignore_every, ignore, 22);
          const std::string config =
              std::string(reduction_name) + " ignore_index=" + std::to_string(ignore);
          check_op("cross_entropy", config, {uniform(c.logits, -3, 3, dtype, 23)},
                   [&](const std::vector<Var>& v, Device device) {
                     return cross_entropy(v[0], targets.to(device), ignore, reduction);
                   });
        }
}

GPU_TEST_CASE("cuda autograd: mse_loss with broadcasting and every reduction") {
  for (DType dtype : kFloatDTypes)
    for (Reduction reduction : {Reduction::Mean, Reduction::Sum, Reduction::None})
      for (const auto& [si, st] :
           std::vector<std::pair<Shape, Shape>>{{{1}, {1}}, {{3, 4}, {3, 4}}, {{3, 4}, {4}}}) {
        const std::string config =
            reduction == Reduction::Mean ? "mean" : (reduction == Reduction::Sum ? "sum" : "none");
        check_op(
            "mse_loss", config, {normal(si, dtype, 24), normal(st, dtype, 25)},
            [&](const std::vector<Var>& v, Device) { return mse_loss(v[0], v[1], reduction); });
      }
}

// ---- layers --------------------------------------------------------------------------------

GPU_TEST_CASE("cuda autograd: embedding with repeated indices") {
  for (DType dtype : kFloatDTypes) {
    const Tensor indices =
        Tensor::from_vector<int64_t>({3, 0, 9, 3, 3, 1, 0, 7, 2, 3, 9, 5}, {3, 4});
    check_op("embedding", "indices [3, 4]", {normal({10, 6}, dtype, 26)},
             [&](const std::vector<Var>& v, Device device) {
               return embedding(v[0], indices.to(device));
             });
    const Tensor one = Tensor::from_vector<int64_t>({0}, {1});
    check_op(
        "embedding", "indices [1]", {normal({1, 1}, dtype, 27)},
        [&](const std::vector<Var>& v, Device device) { return embedding(v[0], one.to(device)); });
  }
}

GPU_TEST_CASE("cuda autograd: layer_norm and rms_norm") {
  struct Case {
    Shape shape;
    Tolerances tol;
  };
  // Rows of one element, short rows (a warp per row), long rows (a block per row), and many
  // rows (the dweight/dbias sums over several chunks; see kF64LongSum for 70000 rows).
  const std::vector<Case> cases = {{{3, 1}, kSingleElementNorm}, {{4, 7}, kStandard},
                                   {{2, 3, 33}, kStandard},      {{5, 3000}, kStandard},
                                   {{1500, 40}, kStandard},      {{70000, 33}, kLongRowSums}};
  for (DType dtype : kFloatDTypes)
    for (const Case& c : cases) {
      const int64_t n = c.shape.back();
      const Tensor x = normal(c.shape, dtype, 28), w = normal({n}, dtype, 29),
                   b = normal({n}, dtype, 30);
      check_op(
          "layer_norm", "affine", {x, w, b},
          [](const std::vector<Var>& v, Device) { return layer_norm(v[0], v[1], v[2]); }, c.tol);
      check_op("layer_norm", "no affine", {x},
               [](const std::vector<Var>& v, Device) { return layer_norm(v[0], Var(), Var()); });
      check_op(
          "rms_norm", "weight", {x, w},
          [](const std::vector<Var>& v, Device) { return rms_norm(v[0], v[1]); }, c.tol);
      check_op("rms_norm", "no weight", {x},
               [](const std::vector<Var>& v, Device) { return rms_norm(v[0], Var()); });
    }
  // More rows than a grid of 65535 blocks of 8 rows holds: warps loop over rows. Without
  // affine parameters (no long sums over the rows).
  for (DType dtype : kFloatDTypes) {
    const Tensor x = normal({600000, 8}, dtype, 47);
    check_op("layer_norm", "no affine", {x},
             [](const std::vector<Var>& v, Device) { return layer_norm(v[0], Var(), Var()); });
    check_op("rms_norm", "no weight", {x},
             [](const std::vector<Var>& v, Device) { return rms_norm(v[0], Var()); });
  }
  for (DType dtype : kFloatDTypes) {
    // Normalised over the last two dims, from a transposed input.
    const Tensor x = normal({3, 5, 4}, dtype, 31), w = normal({4, 5}, dtype, 32),
                 b = normal({4, 5}, dtype, 33);
    check_op("layer_norm", "normalized_shape [4, 5]", {x, w, b},
             [](const std::vector<Var>& v, Device) {
               return layer_norm(transpose(v[0], 1, 2), {4, 5}, v[1], v[2]);
             });
    // An offset mean (|mu| >> spread), where a one-pass variance would cancel.
    check_op("layer_norm", "mean 100", {uniform({6, 50}, 99, 101, dtype, 34)},
             [](const std::vector<Var>& v, Device) { return layer_norm(v[0], Var(), Var()); });
  }
}

GPU_TEST_CASE("cuda autograd: conv1d with stride, padding, dilation and groups") {
  struct Case {
    int64_t batch, in_channels, length, out_channels, kernel;
    int64_t stride, padding, dilation, groups;
    bool bias;
  };
  const std::vector<Case> cases = {
      {1, 1, 1, 1, 1, 1, 0, 1, 1, true},   // everything size 1
      {2, 3, 11, 4, 3, 1, 0, 1, 1, true},  // plain
      {2, 3, 11, 4, 3, 2, 1, 1, 1, true},  // stride 2, padding 1
      {2, 3, 11, 4, 3, 1, 2, 2, 1, false}, // dilation 2, no bias
      {3, 4, 13, 6, 3, 1, 1, 1, 2, true},  // two groups
      {2, 6, 17, 3, 4, 3, 2, 2, 3, true},  // stride, padding, dilation and groups at once
      {2, 3, 30, 2, 11, 1, 5, 1, 1, true}, // 11 taps: two tap groups in dweight
      {2, 5, 9, 5, 4, 1, 3, 1, 5, true},   // depthwise causal (Mamba's, small)
      {1, 7, 1, 7, 4, 1, 3, 1, 7, true},   // depthwise causal, length 1
  };
  for (DType dtype : kFloatDTypes)
    for (const Case& c : cases) {
      const Tensor x = normal({c.batch, c.in_channels, c.length}, dtype, 35);
      const Tensor w = normal({c.out_channels, c.in_channels / c.groups, c.kernel}, dtype, 36);
      const Tensor b = normal({c.out_channels}, dtype, 37);
      const std::string config =
          "S=" + std::to_string(c.stride) + " P=" + std::to_string(c.padding) +
          " D=" + std::to_string(c.dilation) + " G=" + std::to_string(c.groups);
      std::vector<Tensor> inputs = {x, w};
      if (c.bias) inputs.push_back(b);
      check_op("conv1d", config, inputs, [&](const std::vector<Var>& v, Device) {
        return conv1d(v[0], v[1], c.bias ? v[2] : Var(), c.stride, c.padding, c.dilation, c.groups);
      });
    }
  // Mamba's causal depthwise conv at full size: padding K - 1 on both sides, then the first L
  // outputs kept, so output t sees inputs t - 3 .. t.
  const int64_t B = 8, C = 1536, L = 1024, K = 4;
  check_op("conv1d", "Mamba depthwise causal",
           {normal({B, C, L}, DType::Float32, 38), normal({C, 1, K}, DType::Float32, 39),
            normal({C}, DType::Float32, 40)},
           [&](const std::vector<Var>& v, Device) {
             return narrow(conv1d(v[0], v[1], v[2], 1, K - 1, 1, C), 2, 0, L);
           });
}

GPU_TEST_CASE("cuda autograd: scaled_dot_product_attention, causal and not") {
  struct Case {
    Shape q, k, v;
  };
  const std::vector<Case> cases = {
      {{1, 1, 1}, {1, 1, 1}, {1, 1, 1}},          // size 1
      {{2, 3, 5, 4}, {2, 3, 5, 4}, {2, 3, 5, 7}}, // L = S
      {{2, 5, 4}, {2, 6, 4}, {2, 6, 3}},          // L < S
      {{2, 1, 5, 4}, {3, 6, 4}, {3, 6, 4}},       // broadcast batch dims
  };
  for (DType dtype : kFloatDTypes)
    for (const Case& c : cases)
      for (bool causal : {false, true}) {
        check_op(
            "attention", causal ? "causal" : "full",
            {normal(c.q, dtype, 41), normal(c.k, dtype, 42), normal(c.v, dtype, 43)},
            [&](const std::vector<Var>& v, Device) {
              return scaled_dot_product_attention(v[0], v[1], v[2], causal);
            },
            kMatmul);
      }
  for (DType dtype : kFloatDTypes)
    check_op(
        "attention", "scale 0.3",
        {normal({2, 4, 3}, dtype, 44), normal({2, 4, 3}, dtype, 45), normal({2, 4, 3}, dtype, 46)},
        [](const std::vector<Var>& v, Device) {
          return scaled_dot_product_attention(v[0], v[1], v[2], true, 0.3);
        },
        kMatmul);
}

// ---- optimizers ----------------------------------------------------------------------------

namespace {

// Parameters of several shapes (including size 1 and past one block of threads), named so
// that "bias" matches a no-decay pattern.
optim::NamedParameters make_params(DType dtype, Device device) {
  const std::vector<std::pair<std::string, Shape>> specs = {
      {"layer.weight", {33, 70}}, {"layer.bias", {70}}, {"scale", {1}}, {"table", {3, 5}}};
  optim::NamedParameters params;
  uint64_t seed = 50;
  for (const auto& [name, shape] : specs)
    params.emplace_back(name, Var(normal(shape, dtype, seed++).to(device), true));
  return params;
}

// The same gradients on both devices: step s, parameter i.
void set_grads(const optim::NamedParameters& params, int step) {
  for (size_t i = 0; i < params.size(); ++i) {
    const Var& p = params[i].second;
    p.set_grad(normal(p.shape(), p.dtype(), 100 + 10 * step + i).to(p.device()));
  }
}

// Runs `steps` steps of the optimizer that `make` builds on each device from the same
// parameters and gradients (changing lr between steps, as a schedule does), and compares
// every parameter after each step.
void check_optimizer(
    const std::string& name, DType dtype,
    const std::function<std::unique_ptr<optim::Optimizer>(optim::NamedParameters)>& make) {
  const Tolerance tol = tolerance(dtype, {kF64, kF32Optim});
  const optim::NamedParameters cpu_params = make_params(dtype, Device::cpu());
  const optim::NamedParameters gpu_params = make_params(dtype, kGpu);
  auto cpu_opt = make(cpu_params);
  auto gpu_opt = make(gpu_params);
  for (int step = 0; step < 4; ++step) {
    set_grads(cpu_params, step);
    set_grads(gpu_params, step);
    cpu_opt->lr *= 0.8;
    gpu_opt->lr *= 0.8;
    cpu_opt->step();
    gpu_opt->step();
    for (size_t i = 0; i < cpu_params.size(); ++i) {
      const Tensor& gpu_value = gpu_params[i].second.value();
      CHECK(gpu_value.device() == kGpu);
      test::check_parity(name, cpu_params[i].first + " step " + std::to_string(step + 1), gpu_value,
                         cpu_params[i].second.value(), tol.atol, tol.rtol);
    }
  }
}

} // namespace

GPU_TEST_CASE("cuda autograd: SGD and AdamW steps equal the CPU's") {
  for (DType dtype : kFloatDTypes) {
    check_optimizer("SGD", dtype, [](optim::NamedParameters p) {
      return std::make_unique<optim::SGD>(std::move(p), optim::SGDOptions{0.1, 0, 0.01, false});
    });
    check_optimizer("SGD momentum", dtype, [](optim::NamedParameters p) {
      return std::make_unique<optim::SGD>(std::move(p), optim::SGDOptions{0.1, 0.9, 0, false});
    });
    check_optimizer("SGD nesterov", dtype, [](optim::NamedParameters p) {
      return std::make_unique<optim::SGD>(std::move(p), optim::SGDOptions{0.1, 0.9, 0.01, true});
    });
    check_optimizer("AdamW", dtype, [](optim::NamedParameters p) {
      return std::make_unique<optim::AdamW>(
          std::move(p), optim::AdamWOptions{1e-2, 0.9, 0.999, 1e-8, 0.1, {"bias"}});
    });
  }
}

GPU_TEST_CASE("cuda autograd: clip_grad_norm on CUDA gradients") {
  for (DType dtype : kFloatDTypes) {
    const Tolerance tol = tolerance(dtype, kStandard);
    const optim::NamedParameters cpu_params = make_params(dtype, Device::cpu());
    const optim::NamedParameters gpu_params = make_params(dtype, kGpu);
    set_grads(cpu_params, 0);
    set_grads(gpu_params, 0);
    std::vector<Var> cpu_vars, gpu_vars;
    for (const auto& [name, p] : cpu_params) cpu_vars.push_back(p);
    for (const auto& [name, p] : gpu_params) gpu_vars.push_back(p);
    // The norm (~50 for 2400 standard normal entries) is far above 1: every gradient is scaled.
    const double cpu_norm = optim::clip_grad_norm(cpu_vars, 1.0);
    const double gpu_norm = optim::clip_grad_norm(gpu_vars, 1.0);
    // Both sum the squares in float64; only the order differs.
    CHECK(gpu_norm == doctest::Approx(cpu_norm).epsilon(1e-12));
    CHECK(cpu_norm > 1.0);
    for (size_t i = 0; i < cpu_vars.size(); ++i)
      test::check_parity("clip_grad_norm", cpu_params[i].first, gpu_vars[i].grad(),
                         cpu_vars[i].grad(), tol.atol, tol.rtol);
  }
}

// ---- checkpoints ---------------------------------------------------------------------------

namespace {

struct SmallModel : nn::Module {
  nn::Linear fc;
  nn::LayerNorm norm;
  nn::Conv1d conv;
  explicit SmallModel(nn::Init init)
      : fc(6, 4, true, init), norm({4}, 1e-5, true, init), conv(4, 4, 3, 1, 2, 1, 4, true, init) {
    register_module("fc", fc);
    register_module("norm", norm);
    register_module("conv", conv);
  }
};

} // namespace

GPU_TEST_CASE("cuda autograd: a model saved from CUDA tensors loads back") {
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() /
      ("test_cuda_autograd_" + std::to_string(::getpid()) + ".safetensors");
  Generator saved_init(60), other_init(61);
  SmallModel saved({DType::Float32, &saved_init});
  saved.to(kGpu);
  save_module(saved, path.string(), {{"note", "from cuda"}});

  SmallModel on_cpu({DType::Float32, &other_init});
  const LoadReport report = load_module(on_cpu, path.string());
  CHECK(report.metadata.at("note") == "from cuda");
  SmallModel on_gpu({DType::Float32, &other_init});
  on_gpu.to(kGpu);
  load_module(on_gpu, path.string());
  std::filesystem::remove(path);

  const auto expected = saved.named_parameters();
  const auto cpu_loaded = on_cpu.named_parameters(), gpu_loaded = on_gpu.named_parameters();
  REQUIRE(expected.size() == cpu_loaded.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const std::vector<double> want = expected[i].second.value().to_doubles();
    CHECK(cpu_loaded[i].second.device() == Device::cpu());
    CHECK(gpu_loaded[i].second.device() == kGpu);
    INFO(expected[i].first);
    test::check_values(cpu_loaded[i].second.value(), want, 0);
    test::check_values(gpu_loaded[i].second.value(), want, 0);
  }
}
