// GPU tests of the elementwise kernels (cuda/elementwise.cu) and the random fills
// (cuda/random.cu): every UnaryOp and BinaryOp, where, clamp, masked_fill and add_ against the
// CPU loops on the same inputs, over contiguous, broadcast, strided and very large layouts; and
// the random fills against the CPU's for one Generator state. Skipped without a GPU.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "tensor/ops.h"
#include "tensor/random.h"
#include "tests/helpers.h"
#include "tests/parity.h"

using namespace ssm;

namespace {

const Device kGpu = Device::cuda(0);

struct Tolerance {
  double atol, rtol;
};

// float64: test::kF64Atol / kF64Rtol. float32: CUDA's single-precision exp, log, tanh, erf,
// sin, cos are within 2 ulps of the exact value (CUDA C++ Programming Guide, "Mathematical
// Functions"), glibc's within 1-2, and nvcc fuses multiply-adds (gelu's cubic) that g++ may
// round twice: results lie a few ulps (2^-23 = 1.2e-7 relative each) apart, and rtol 1e-5
// leaves a wide margin. atol 1e-6 covers results near 0 that come out of a cancellation
// (1 + tanh(z) for z near -4 in gelu_tanh). int64: integers that differ do so by at least 1,
// so atol 0.5 asks for equality.
Tolerance tolerance(DType dtype) {
  switch (dtype) {
    case DType::Float32: return {1e-6, 1e-5};
    case DType::Float64: return {test::kF64Atol, test::kF64Rtol};
    case DType::Int64: return {0.5, 0};
  }
  return {0, 0};
}

void check_parity(const std::string& op, const std::string& config, const Tensor& gpu_out,
                  const Tensor& cpu_out) {
  CHECK(gpu_out.device() == kGpu);
  CHECK(gpu_out.dtype() == cpu_out.dtype());
  const Tolerance tol = tolerance(cpu_out.dtype());
  test::check_parity(op, config, gpu_out, cpu_out, tol.atol, tol.rtol);
}

// One input on both devices: a tensor drawn on the CPU and its copy on the GPU, or the same
// view of each.
struct Operand {
  Tensor cpu, gpu;
};

Operand on_both(const Tensor& host) { return {host, host.to(kGpu)}; }

using View = std::function<Tensor(const Tensor&)>;
const View kWhole = [](const Tensor& t) { return t; };

Operand view_of(const Operand& x, const View& view) { return {view(x.cpu), view(x.gpu)}; }

// A layout an op is tested on: its name in the report, the shape drawn, and the view taken.
struct Layout {
  std::string name;
  Shape drawn;
  View view;
};

const std::vector<Layout> kUnaryLayouts = {
    {"[1]", {1}, kWhole},
    {"[7, 13]", {7, 13}, kWhole},
    {"[3, 700] (several blocks)", {3, 700}, kWhole},
    {"[13, 7] transposed", {13, 7}, [](const Tensor& t) { return t.transpose(0, 1); }},
    {"[7, 26] columns step 2", {7, 26}, [](const Tensor& t) { return t.slice(1, 0, 26, 2); }},
    {"[1] expanded to [5, 6]",
     {1},
     [](const Tensor& t) {
       return t.expand({5, 6});
     }},
};

bool unary_allows_int(UnaryOp op) {
  return op == UnaryOp::Neg || op == UnaryOp::Abs || op == UnaryOp::Sign || op == UnaryOp::Square;
}

// Inputs inside each op's domain, so that both devices compute finite numbers.
Tensor unary_input(UnaryOp op, const Shape& shape, DType dtype, Generator& gen) {
  if (dtype == DType::Int64) return Tensor::randint(-20, 21, shape, dtype, &gen);
  switch (op) {
    case UnaryOp::Log:
    case UnaryOp::Sqrt:
    case UnaryOp::Rsqrt:
    case UnaryOp::Reciprocal: return Tensor::uniform(shape, 0.1, 5, dtype, &gen);
    case UnaryOp::Log1p: return Tensor::uniform(shape, -0.9, 5, dtype, &gen);
    // Both sides of the threshold 20 where softplus turns linear.
    case UnaryOp::Softplus: return Tensor::uniform(shape, -30, 30, dtype, &gen);
    default: return Tensor::uniform(shape, -4, 4, dtype, &gen);
  }
}

// maximum, minimum and the comparisons: their interesting cases are ties.
bool needs_ties(BinaryOp op) { return op >= BinaryOp::Maximum; }

// Operand `side` (0 left, 1 right) of a binary op: divisors away from 0, positive bases for
// pow, and small integers for comparisons and maximum/minimum so that ties occur.
Tensor binary_input(BinaryOp op, int side, const Shape& shape, DType dtype, Generator& gen) {
  if (dtype == DType::Int64) {
    if (op == BinaryOp::Div && side == 1) {
      const Tensor magnitude = Tensor::randint(1, 6, shape, dtype, &gen);
      const Tensor sign = sub(mul(Tensor::randint(0, 2, shape, dtype, &gen), 2.0), 1.0);
      return mul(magnitude, sign);
    }
    if (op == BinaryOp::Pow) return Tensor::randint(side == 0 ? -4 : 0, 5, shape, dtype, &gen);
    return Tensor::randint(-5, 6, shape, dtype, &gen);
  }
  if (needs_ties(op)) return Tensor::randint(-2, 3, shape, dtype, &gen);
  if (op == BinaryOp::Pow)
    return side == 0 ? Tensor::uniform(shape, 0.5, 2, dtype, &gen)
                     : Tensor::uniform(shape, -2, 2, dtype, &gen);
  if (op == BinaryOp::Div && side == 1) return Tensor::uniform(shape, 0.5, 2, dtype, &gen);
  return Tensor::uniform(shape, -3, 3, dtype, &gen);
}

struct BinaryLayout {
  std::string name;
  Shape a_drawn, b_drawn;
  View a_view, b_view;
};

const std::vector<BinaryLayout> kBinaryLayouts = {
    {"[5, 7] x [5, 7]", {5, 7}, {5, 7}, kWhole, kWhole},
    {"[3, 1] x [1, 4]", {3, 1}, {1, 4}, kWhole, kWhole},
    {"[2, 3, 4] x [4]", {2, 3, 4}, {4}, kWhole, kWhole},
    {"[] x [6, 5]", {}, {6, 5}, kWhole, kWhole},
    {"[7, 5] transposed x [5, 14] step 2",
     {7, 5},
     {5, 14},
     [](const Tensor& t) { return t.transpose(0, 1); },
     [](const Tensor& t) { return t.slice(1, 0, 14, 2); }},
    {"[4, 3, 2] permuted x [4, 1]",
     {4, 3, 2},
     {4, 1},
     [](const Tensor& t) {
       return t.permute({2, 0, 1});
     },
     kWhole},
    {"[3, 700] x [3, 700] (several blocks)", {3, 700}, {3, 700}, kWhole, kWhole},
};

// The scalar of the binary_scalar test: a non-zero divisor, a small exponent, and 2 for the
// comparisons (the integer inputs equal it now and then).
double scalar_for(BinaryOp op) {
  if (op == BinaryOp::Div) return -3;
  if (op == BinaryOp::Pow) return 3;
  return 2;
}

const std::vector<DType> kAllDtypes = {DType::Float32, DType::Float64, DType::Int64};

} // namespace

// ---- unary and binary ops
// ------------------------------------------------------------------------

GPU_TEST_CASE("cuda elementwise: every unary op matches the CPU on every layout") {
  Generator gen(11);
  for (int i = 0; i <= static_cast<int>(UnaryOp::Expm1); ++i) {
    const UnaryOp op = static_cast<UnaryOp>(i);
    for (DType dtype : kAllDtypes) {
      if (dtype == DType::Int64 && !unary_allows_int(op)) continue;
      for (const Layout& layout : kUnaryLayouts) {
        const Operand x = view_of(on_both(unary_input(op, layout.drawn, dtype, gen)), layout.view);
        check_parity(unary_name(op), layout.name, unary(op, x.gpu), unary(op, x.cpu));
      }
    }
  }
}

GPU_TEST_CASE("cuda elementwise: every binary op matches the CPU, broadcast, strided and scalar") {
  Generator gen(12);
  for (int i = 0; i <= static_cast<int>(BinaryOp::Ge); ++i) {
    const BinaryOp op = static_cast<BinaryOp>(i);
    for (DType dtype : kAllDtypes) {
      for (const BinaryLayout& layout : kBinaryLayouts) {
        const Operand a =
            view_of(on_both(binary_input(op, 0, layout.a_drawn, dtype, gen)), layout.a_view);
        const Operand b =
            view_of(on_both(binary_input(op, 1, layout.b_drawn, dtype, gen)), layout.b_view);
        check_parity(binary_name(op), layout.name, binary(op, a.gpu, b.gpu),
                     binary(op, a.cpu, b.cpu));
      }
      const double s = scalar_for(op);
      const Operand a = on_both(binary_input(op, 0, {6, 5}, dtype, gen));
      check_parity(binary_name(op), "[6, 5] x scalar " + std::to_string(s),
                   binary_scalar(op, a.gpu, s), binary_scalar(op, a.cpu, s));
    }
  }
}

GPU_TEST_CASE("cuda elementwise: more elements than one grid covers (grid-stride loop)") {
  // 17 * 1000 * 1000 = 17e6 > 65535 blocks * 256 threads = 16776960, so some threads handle a
  // second element; a missed element would keep whatever the allocator's block held.
  Generator gen(13);
  const Operand x = on_both(Tensor::uniform({17000, 1000}, -4, 4, DType::Float32, &gen));
  check_parity("sigmoid", "[17000, 1000] flat", sigmoid(x.gpu), sigmoid(x.cpu));
  // A row broadcast to every row: the strided kernel.
  const Operand row = on_both(Tensor::uniform({1000}, -2, 2, DType::Float32, &gen));
  check_parity("mul", "[17000, 1000] x [1000] strided", mul(x.gpu, row.gpu), mul(x.cpu, row.cpu));
}

GPU_TEST_CASE("cuda elementwise: empty tensors, comparison dtype, NaN in maximum/minimum") {
  const Tensor empty = Tensor::zeros({0, 3}, DType::Float32, kGpu);
  CHECK(exp(empty).shape() == (Shape{0, 3}));
  CHECK(add(empty, empty).numel() == 0);

  const Tensor a = Tensor::from_values({1, 2, 3}, {3}, DType::Float64, kGpu);
  const Tensor b = Tensor::from_values({3, 2, 1}, {3}, DType::Float64, kGpu);
  const Tensor equal = eq(a, b);
  CHECK(equal.dtype() == DType::Float64);
  test::check_values(equal, {0, 1, 0}, 0);

  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Tensor x = Tensor::from_values({nan, 1, 2, nan}, {4}, DType::Float32, kGpu);
  const Tensor y = Tensor::from_values({0, nan, 1, nan}, {4}, DType::Float32, kGpu);
  for (const Tensor& r : {maximum(x, y), minimum(x, y)}) {
    const std::vector<double> v = r.to_doubles();
    CHECK(std::isnan(v[0]));
    CHECK(std::isnan(v[1]));
    CHECK(std::isnan(v[3]));
  }
  CHECK(maximum(x, y).at({2}) == 2);
  CHECK(minimum(x, y).at({2}) == 1);
}

GPU_TEST_CASE("cuda elementwise: integer division by zero throws as on the CPU") {
  const Operand a = on_both(Tensor::from_values({6, -7, 8, 9}, {4}, DType::Int64));
  const Operand zero_in_b = on_both(Tensor::from_values({2, 3, 0, 4}, {4}, DType::Int64));
  const char* message = "div: integer division by zero";
  CHECK_THROWS_WITH_AS(div(a.cpu, zero_in_b.cpu), message, std::domain_error);
  CHECK_THROWS_WITH_AS(div(a.gpu, zero_in_b.gpu), message, std::domain_error);
  CHECK_THROWS_WITH_AS(div(a.gpu, 0.0), message, std::domain_error);
  // The flag does not outlive the failed call; division truncates toward zero (-7 / 3 = -2).
  const Tensor b = Tensor::from_values({2, 3, -3, 4}, {4}, DType::Int64, kGpu);
  test::check_values(div(a.gpu, b), {3, -2, -2, 2}, 0);
  // Floating-point division by zero is IEEE's infinity, no exception.
  const Tensor f = div(Tensor::ones({1}, DType::Float32, kGpu), 0.0);
  CHECK(std::isinf(f.item()));
}

// ---- where, clamp, masked_fill, add_
// -------------------------------------------------------------

GPU_TEST_CASE("cuda elementwise: where, clamp and masked_fill match the CPU") {
  Generator gen(14);
  for (DType dtype : kAllDtypes) {
    const auto values = [&](const Shape& shape) {
      return dtype == DType::Int64 ? Tensor::randint(-50, 51, shape, dtype, &gen)
                                   : Tensor::uniform(shape, -3, 3, dtype, &gen);
    };
    for (DType cond_dtype : kAllDtypes) {
      const Operand cond = on_both(Tensor::randint(0, 2, {3, 1}, cond_dtype, &gen));
      const Operand a = on_both(values({3, 4}));
      const Operand b = on_both(values({4}));
      check_parity("where", std::string("[3, 1] ") + dtype_name(cond_dtype) + " ? [3, 4] : [4]",
                   where(cond.gpu, a.gpu, b.gpu), where(cond.cpu, a.cpu, b.cpu));
    }
    const Operand cond =
        view_of(on_both(Tensor::randint(0, 2, {5, 2, 3}, DType::Int64, &gen)), [](const Tensor& t) {
          return t.permute({1, 2, 0});
        });
    const Operand a =
        view_of(on_both(values({2, 3, 10})), [](const Tensor& t) { return t.slice(2, 1, 10, 2); });
    const Operand b = on_both(values({}));
    check_parity("where", "[5, 2, 3] permuted ? [2, 3, 10] step 2 : []",
                 where(cond.gpu, a.gpu, b.gpu), where(cond.cpu, a.cpu, b.cpu));

    const Operand x = on_both(values({6, 9}));
    check_parity("clamp", "[6, 9] in [-1, 2]", clamp(x.gpu, -1, 2), clamp(x.cpu, -1, 2));
    const Operand xt = view_of(x, [](const Tensor& t) { return t.transpose(0, 1); });
    check_parity("clamp", "[6, 9] transposed in [-2, 0.5]", clamp(xt.gpu, -2, 0.5),
                 clamp(xt.cpu, -2, 0.5));

    const Operand mask = on_both(Tensor::randint(0, 2, {9}, DType::Int64, &gen));
    check_parity("masked_fill", "[6, 9] mask [9] value 7", masked_fill(x.gpu, mask.gpu, 7),
                 masked_fill(x.cpu, mask.cpu, 7));
  }
}

GPU_TEST_CASE("cuda elementwise: add_ into contiguous and strided views") {
  Generator gen(15);
  for (DType dtype : kAllDtypes) {
    const auto values = [&](const Shape& shape) {
      return dtype == DType::Int64 ? Tensor::randint(-50, 51, shape, dtype, &gen)
                                   : Tensor::uniform(shape, -3, 3, dtype, &gen);
    };
    // The whole destination is compared, so elements outside the view must stay untouched.
    Operand dst = on_both(values({6, 8}));
    const Operand same = on_both(values({6, 8}));
    add_(dst.gpu, same.gpu);
    add_(dst.cpu, same.cpu);
    check_parity("add_", "[6, 8] += [6, 8]", dst.gpu, dst.cpu);

    Operand columns = view_of(dst, [](const Tensor& t) { return t.slice(1, 1, 8, 2); });
    const Operand row = on_both(values({4}));
    add_(columns.gpu, row.gpu);
    add_(columns.cpu, row.cpu);
    check_parity("add_", "[6, 8] odd columns += [4]", dst.gpu, dst.cpu);

    Operand transposed = view_of(dst, [](const Tensor& t) { return t.transpose(0, 1); });
    const Operand src =
        view_of(on_both(values({6, 8})), [](const Tensor& t) { return t.transpose(0, 1); });
    add_(transposed.gpu, src.gpu);
    add_(transposed.cpu, src.cpu);
    check_parity("add_", "[6, 8] transposed += [6, 8] transposed", dst.gpu, dst.cpu);
  }
}

// ---- random fills
// ----------------------------------------------------------------------------------

// Two generators in one state: `skip` counters already drawn.
struct GeneratorPair {
  Generator cpu, gpu;
  GeneratorPair(uint64_t seed, uint64_t skip) : cpu(seed), gpu(seed) {
    cpu.reserve(skip);
    gpu.reserve(skip);
  }
};

GPU_TEST_CASE("cuda random: one Generator state gives bit-identical uniform values") {
  for (DType dtype : {DType::Float32, DType::Float64}) {
    INFO(dtype_name(dtype));
    // A seed using both key words, and counters that cross 2^32 so both counter words move.
    const uint64_t skip = (uint64_t(1) << 32) - 100;
    GeneratorPair gens(0x0123456789abcdefULL, skip);
    const Tensor on_gpu = Tensor::rand({3, 67}, dtype, &gens.gpu, kGpu);
    CHECK(on_gpu.device() == kGpu);
    test::check_values(on_gpu, Tensor::rand({3, 67}, dtype, &gens.cpu).to_doubles(), 0);
    // A range narrow enough that float32 often rounds onto `high`: the half-open correction.
    const Tensor narrow_gpu = Tensor::uniform({1000}, 1, 1 + 1e-7, dtype, &gens.gpu, kGpu);
    test::check_values(narrow_gpu,
                       Tensor::uniform({1000}, 1, 1 + 1e-7, dtype, &gens.cpu).to_doubles(), 0);
    const Tensor wide_gpu = Tensor::uniform({70000}, -2, 3, dtype, &gens.gpu, kGpu);
    CHECK(wide_gpu.to_doubles() == Tensor::uniform({70000}, -2, 3, dtype, &gens.cpu).to_doubles());
    CHECK(gens.gpu.offset() == skip + 201 + 1000 + 70000);
    CHECK(gens.cpu.offset() == gens.gpu.offset());
  }
  // The default generator, reseeded, on either device.
  manual_seed(21);
  const std::vector<double> from_gpu =
      Tensor::rand({50}, DType::Float32, nullptr, kGpu).to_doubles();
  manual_seed(21);
  CHECK(Tensor::rand({50}).to_doubles() == from_gpu);
}

GPU_TEST_CASE("cuda random: randint is bit-identical, up to the whole int64 range") {
  GeneratorPair gens(99, 5);
  const int64_t lowest = std::numeric_limits<int64_t>::min();
  const int64_t highest = std::numeric_limits<int64_t>::max();
  const std::vector<std::pair<int64_t, int64_t>> ranges = {
      {-3, 4}, {-1000000000000, 1000000000000}, {lowest, highest}};
  for (const auto& range : ranges) {
    const int64_t low = range.first, high = range.second;
    INFO("[" << low << ", " << high << ")");
    const Tensor on_gpu = Tensor::randint(low, high, {4099}, DType::Int64, &gens.gpu, kGpu);
    const Tensor on_cpu = Tensor::randint(low, high, {4099}, DType::Int64, &gens.cpu);
    CHECK(on_gpu.to_vector<int64_t>() == on_cpu.to_vector<int64_t>());
  }
  const Tensor floats_gpu = Tensor::randint(-1000, 1000, {2, 50}, DType::Float32, &gens.gpu, kGpu);
  test::check_values(
      floats_gpu, Tensor::randint(-1000, 1000, {2, 50}, DType::Float32, &gens.cpu).to_doubles(), 0);
  CHECK(gens.gpu.offset() == 5 + 3 * 4099 + 100);
  CHECK(gens.cpu.offset() == gens.gpu.offset());
}

GPU_TEST_CASE("cuda random: randn matches the CPU to the last bits of log and cos") {
  GeneratorPair gens(7, 12345);
  // float64: the CPU's libm and CUDA's log and cos are each within 1-2 ulps of the exact
  // value (sqrt is exact), so the two agree to a few ulps of |z| <= 9: rtol 1e-14 is about 45
  // ulps; atol 1e-15 for the samples near a zero of cos.
  const Tensor z64_gpu = Tensor::randn({100000}, DType::Float64, &gens.gpu, kGpu);
  const Tensor z64_cpu = Tensor::randn({100000}, DType::Float64, &gens.cpu);
  test::check_parity("randn", "[100000] seed 7", z64_gpu, z64_cpu, 1e-15, 1e-14);
  // float32: the same double is rounded once, so the values agree unless the doubles straddle
  // a rounding boundary: one float32 ulp (2^-23 relative), no absolute slack.
  const Tensor z32_gpu = Tensor::randn({100000}, DType::Float32, &gens.gpu, kGpu);
  const Tensor z32_cpu = Tensor::randn({100000}, DType::Float32, &gens.cpu);
  test::check_parity("randn", "[100000] seed 7", z32_gpu, z32_cpu, 1e-30, 1.2e-7);
  CHECK(gens.gpu.offset() == 12345 + 200000);
  CHECK(gens.cpu.offset() == gens.gpu.offset());
}

// ---- CPU side of the shared random-fill code ---------------------------------------------------

TEST_CASE("random: randint over the whole int64 range reaches both signs") {
  Generator gen(3);
  const std::vector<int64_t> v =
      Tensor::randint(std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(),
                      {1000}, DType::Int64, &gen)
          .to_vector<int64_t>();
  int64_t negatives = 0;
  for (int64_t x : v) negatives += x < 0;
  // Half of 1000 uniform 64-bit values are negative, standard deviation 16: 400..600 is 6 sigma.
  CHECK(negatives > 400);
  CHECK(negatives < 600);
  CHECK(gen.offset() == 1000);
}
