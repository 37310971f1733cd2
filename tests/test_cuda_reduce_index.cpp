// GPU parity tests of the reductions and cumsum (cuda/reduce.cu, cuda/index.cu) and of the
// indexing and joining ops (cuda/index.cu): each op runs on a CPU tensor and on the same values
// moved to the GPU (views taken on each side), and the results are compared with
// test::check_parity, one PASS/FAIL line per op and shape. Skipped without a GPU.
//
// Tolerances, and why:
//   float64 sums, means, cumsums: test::kF64Atol/kF64Rtol (1e-12). Both sides accumulate in
//     double; the kernels add in another order, which moves the result by a few ulps of the
//     largest partial sum. The long sums and scans use positive inputs (uniform in [0.5, 1.5])
//     so that no result cancels to near zero, where those few ulps would dwarf 1e-12 of it:
//     that would test the CPU's own rounding, not the kernel.
//   float32 sums and cumsums: rtol 1.2e-7 >= 2^-23 (one float32 ulp relative to the value).
//     Both sides round a double accumulator to float32, and the two accumulators differ far
//     less than a float32 ulp, so the results are equal or one ulp apart; atol 1e-9 covers
//     results that cancel to near zero, where one ulp of the double partial sums is more than
//     one ulp of the result.
//   float32 means: two ulps (2.4e-7): the sum's ulp, then the division's rounding.
//   scatter_add and index_add_ on float32: atol = rtol = 1e-5. Atomics add repeated indices in
//     float32 in an order that varies between runs, and the CPU adds them in order; each of the
//     (at most ~10) additions into one element rounds by 2^-24 of the running value.
//   max, min, argmax, index_select, gather, concat, int64 anything: exact (kExact).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <string>
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
// Exact agreement: the smallest normal double as atol only keeps 0/0 out of the error ratio.
constexpr Tolerance kExact{std::numeric_limits<double>::min(), 0};
constexpr Tolerance kF64{test::kF64Atol, test::kF64Rtol};
constexpr Tolerance kF32Sum{1e-9, 1.2e-7};
constexpr Tolerance kF32Mean{1e-9, 2.4e-7};
constexpr Tolerance kF32Atomic{1e-5, 1e-5};

Tolerance sum_tolerance(DType dtype) {
  return dtype == DType::Float64 ? kF64 : (dtype == DType::Float32 ? kF32Sum : kExact);
}

Tolerance atomic_tolerance(DType dtype) {
  return dtype == DType::Float64 ? kF64 : (dtype == DType::Float32 ? kF32Atomic : kExact);
}

// A tensor on the CPU and the same values on the GPU.
struct Pair {
  Tensor cpu, gpu;
};

Pair on_both(const Tensor& host) { return {host, host.to(kGpu)}; }

// The same view of both sides (the GPU side stays a strided view of GPU memory).
Pair view_of(const Pair& p, const std::function<Tensor(const Tensor&)>& view) {
  return {view(p.cpu), view(p.gpu)};
}

// Random values of `dtype`: standard normal, or integers in [-50, 50) for int64.
Tensor random(const Shape& shape, DType dtype, Generator& gen) {
  if (dtype == DType::Int64) return Tensor::randint(-50, 50, shape, dtype, &gen);
  return Tensor::randn(shape, dtype, &gen);
}

// Positive values for long sums and scans (see the tolerances above).
Tensor positive(const Shape& shape, DType dtype, Generator& gen) {
  if (dtype == DType::Int64) return Tensor::randint(1, 100, shape, dtype, &gen);
  return Tensor::uniform(shape, 0.5, 1.5, dtype, &gen);
}

void check(const std::string& op, const std::string& config, const Tensor& gpu_out,
           const Tensor& cpu_out, Tolerance tol) {
  CHECK(gpu_out.device() == kGpu);
  test::check_parity(op, config, gpu_out, cpu_out, tol.atol, tol.rtol);
}

// Like check, for results holding NaNs: NaN must sit at the same places on both sides, and the
// other values agree within `tol`. Prints the same kind of line as test::check_parity.
void check_with_nans(const std::string& op, const std::string& config, const Tensor& gpu_out,
                     const Tensor& cpu_out, Tolerance tol) {
  REQUIRE(gpu_out.shape() == cpu_out.shape());
  const std::vector<double> a = gpu_out.to_doubles(), b = cpu_out.to_doubles();
  int64_t mismatches = 0, nans = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(b[i])) {
      ++nans;
      if (!std::isnan(a[i])) ++mismatches;
    } else if (!(std::fabs(a[i] - b[i]) <= tol.atol + tol.rtol * std::fabs(b[i]))) {
      ++mismatches;
    }
  }
  std::printf("%s  %-24s %-40s %-8s mismatches %lld of %zu (%lld NaN)\n",
              mismatches == 0 ? "PASS" : "FAIL", op.c_str(), config.c_str(),
              dtype_name(cpu_out.dtype()), static_cast<long long>(mismatches), a.size(),
              static_cast<long long>(nans));
  INFO(op << " " << config << ": " << mismatches << " mismatches");
  CHECK(mismatches == 0);
}

std::string list_str(const std::vector<int64_t>& values) {
  std::string s = "{";
  for (size_t i = 0; i < values.size(); ++i) s += (i ? "," : "") + std::to_string(values[i]);
  return s + "}";
}

// "[3, 4, 5, 7] dims={0,2} keepdim" and the like.
std::string config_of(const Tensor& x, const std::string& detail) {
  return shape_str(x.shape()) + (x.is_contiguous() ? " " : " strided ") + detail;
}

// The message of the std::out_of_range that fn throws, or a marker when it throws none.
std::string out_of_range_message(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::out_of_range& e) {
    return e.what();
  }
  return "(no std::out_of_range)";
}

} // namespace

// ---- reductions ----------------------------------------------------------------------------

GPU_TEST_CASE("cuda reduce: sum, mean, max, min over every subset of dims of a 4-d tensor") {
  Generator gen(101);
  for (DType dtype : {DType::Float64, DType::Float32, DType::Int64}) {
    const Pair base = on_both(random({3, 4, 5, 7}, dtype, gen));
    // The permuted view is packed by the dispatch layer, so it reaches the post == 1 kernel.
    const Pair permuted = view_of(base, [](const Tensor& t) { return t.permute({2, 0, 3, 1}); });
    for (const Pair& x : {base, permuted}) {
      for (int mask = 0; mask < 16; ++mask) { // mask 0: every dim
        std::vector<int64_t> dims;
        for (int64_t d = 0; d < 4; ++d)
          if (mask & (1 << d)) dims.push_back(d);
        const bool keepdim = mask % 3 == 1;
        const std::string config =
            config_of(x.cpu, "dims=" + list_str(dims) + (keepdim ? " keepdim" : ""));
        check("sum", config, sum(x.gpu, dims, keepdim), sum(x.cpu, dims, keepdim),
              sum_tolerance(dtype));
        check("max", config, max(x.gpu, dims, keepdim), max(x.cpu, dims, keepdim), kExact);
        check("min", config, min(x.gpu, dims, keepdim), min(x.cpu, dims, keepdim), kExact);
        if (dtype != DType::Int64)
          check("mean", config, mean(x.gpu, dims, keepdim), mean(x.cpu, dims, keepdim),
                dtype == DType::Float64 ? kF64 : kF32Mean);
      }
    }
  }
}

GPU_TEST_CASE("cuda reduce: argmax along each dim, contiguous and permuted, with ties") {
  Generator gen(102);
  for (DType dtype : {DType::Float64, DType::Float32, DType::Int64}) {
    // Integers in [0, 4) make many ties, so the first maximum must win in both kernels.
    const Tensor ties = Tensor::randint(0, 4, {3, 4, 5, 7}, DType::Int64, &gen).to(dtype);
    for (const Tensor& host : {random({3, 4, 5, 7}, dtype, gen), ties}) {
      const Pair base = on_both(host);
      const Pair permuted = view_of(base, [](const Tensor& t) { return t.permute({3, 1, 0, 2}); });
      for (const Pair& x : {base, permuted})
        for (int64_t d = -1; d < 4; ++d) {
          const bool keepdim = d % 2 == 0;
          const std::string config =
              config_of(x.cpu, "dim=" + std::to_string(d) + (keepdim ? " keepdim" : ""));
          check("argmax", config, argmax(x.gpu, d, keepdim), argmax(x.cpu, d, keepdim), kExact);
        }
    }
  }
}

GPU_TEST_CASE("cuda reduce: NaN propagates through max, min and sum; argmax picks the first NaN") {
  for (DType dtype : {DType::Float64, DType::Float32}) {
    Generator gen(103);
    Tensor host = Tensor::randn({5, 9, 7}, dtype, &gen);
    for (const std::vector<int64_t>& at :
         {std::vector<int64_t>{0, 0, 0}, {1, 4, 3}, {1, 6, 3}, {3, 8, 6}, {4, 2, 0}, {4, 2, 5}})
      host.set(at, NAN);
    // A long row (block-per-row kernel) with two NaNs in one row.
    Tensor long_rows = Tensor::randn({3, 2000}, dtype, &gen);
    long_rows.set({1, 1500}, NAN);
    long_rows.set({2, 10}, NAN);
    long_rows.set({2, 1999}, NAN);
    for (const Tensor& t : {host, long_rows}) {
      const Pair x = on_both(t);
      for (int64_t d = 0; d < x.cpu.dim(); ++d) {
        const std::string config = config_of(x.cpu, "dim=" + std::to_string(d));
        check_with_nans("max", config, max(x.gpu, {d}), max(x.cpu, {d}), kExact);
        check_with_nans("min", config, min(x.gpu, {d}), min(x.cpu, {d}), kExact);
        check_with_nans("sum", config, sum(x.gpu, {d}), sum(x.cpu, {d}), sum_tolerance(dtype));
        check("argmax", config, argmax(x.gpu, d), argmax(x.cpu, d), kExact);
      }
      check_with_nans("max", config_of(x.cpu, "all dims"), max(x.gpu), max(x.cpu), kExact);
    }
    // Row 2 holds NaN at columns 10 and 1999: the first one is the argmax.
    CHECK(argmax(long_rows.to(kGpu), 1).at({2}) == 10);
  }
}

GPU_TEST_CASE("cuda reduce: empty dims") {
  Generator gen(104);
  const Pair x = on_both(Tensor::randn({3, 0, 4}, DType::Float64, &gen));
  for (const std::vector<int64_t>& dims : {std::vector<int64_t>{1}, {0}, {0, 1}, {1, 2}, {}, {2}}) {
    const std::string config = config_of(x.cpu, "dims=" + list_str(dims));
    // Sums over an empty range are 0; outputs with no elements are empty.
    check("sum", config, sum(x.gpu, dims, true), sum(x.cpu, dims, true), kExact);
  }
  check("max", "[3, 0, 4] dims={0}", max(x.gpu, {0}), max(x.cpu, {0}), kExact);
  CHECK(max(x.gpu, {0}).shape() == Shape{0, 4});
  CHECK_THROWS_WITH_AS(max(x.gpu, {1}), doctest::Contains("cannot reduce over an empty dim"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(argmax(x.gpu, 1), doctest::Contains("is empty"), std::invalid_argument);
  CHECK(sum(x.gpu).item() == 0);
}

GPU_TEST_CASE("cuda reduce: long rows, long columns, and more outputs than 65535 blocks") {
  Generator gen(105);
  for (DType dtype : {DType::Float64, DType::Float32}) {
    // (70000, 3): a 70000-long reduction per output over the leading dim (post = 3, the
    // column kernel), and 70000 rows of 3 over the trailing dim (a warp per row).
    const Pair tall = on_both(positive({70000, 3}, dtype, gen));
    check("sum", config_of(tall.cpu, "dims={0}"), sum(tall.gpu, {0}), sum(tall.cpu, {0}),
          sum_tolerance(dtype));
    check("sum", config_of(tall.cpu, "dims={1}"), sum(tall.gpu, {1}), sum(tall.cpu, {1}),
          sum_tolerance(dtype));
    check("max", config_of(tall.cpu, "dims={0}"), max(tall.gpu, {0}), max(tall.cpu, {0}), kExact);
    check("argmax", config_of(tall.cpu, "dim=0"), argmax(tall.gpu, 0), argmax(tall.cpu, 0), kExact);
    // (3, 5000000): three rows of five million (a block per row).
    const Pair wide = on_both(positive({3, 5000000}, dtype, gen));
    check("sum", config_of(wide.cpu, "dims={1}"), sum(wide.gpu, {1}), sum(wide.cpu, {1}),
          sum_tolerance(dtype));
    check("min", config_of(wide.cpu, "dims={1}"), min(wide.gpu, {1}), min(wide.cpu, {1}), kExact);
    check("argmax", config_of(wide.cpu, "dim=1"), argmax(wide.gpu, 1), argmax(wide.cpu, 1), kExact);
    check("sum", config_of(wide.cpu, "all dims"), sum(wide.gpu), sum(wide.cpu),
          sum_tolerance(dtype));
  }
  // Rows of 1500 (a block per row, 2000 blocks), and a transposed view of them.
  const Pair block_rows = on_both(Tensor::randn({2000, 1500}, DType::Float64, &gen));
  check("sum", config_of(block_rows.cpu, "dims={1}"), sum(block_rows.gpu, {1}),
        sum(block_rows.cpu, {1}), kF64);
  const Pair transposed = view_of(block_rows, [](const Tensor& t) { return t.transpose(0, 1); });
  check("sum", config_of(transposed.cpu, "dims={0}"), sum(transposed.gpu, {0}),
        sum(transposed.cpu, {0}), kF64);
  // 600000 rows of 5: 75000 blocks of 8 warps, more than one grid of 65535.
  const Pair many_rows = on_both(Tensor::randn({600000, 5}, DType::Float32, &gen));
  check("sum", config_of(many_rows.cpu, "dims={1}"), sum(many_rows.gpu, {1}),
        sum(many_rows.cpu, {1}), kF32Sum);
  check("argmax", config_of(many_rows.cpu, "dim=1"), argmax(many_rows.gpu, 1),
        argmax(many_rows.cpu, 1), kExact);
  // (3, 2, 1100000) over dim 1: 3.3M outputs in 103125 tiles of 32, more than 65535.
  const Pair many_columns = on_both(Tensor::randn({3, 2, 1100000}, DType::Float64, &gen));
  check("sum", config_of(many_columns.cpu, "dims={1}"), sum(many_columns.gpu, {1}),
        sum(many_columns.cpu, {1}), kF64);
  check("min", config_of(many_columns.cpu, "dims={1}"), min(many_columns.gpu, {1}),
        min(many_columns.cpu, {1}), kExact);
  check("argmax", config_of(many_columns.cpu, "dim=1"), argmax(many_columns.gpu, 1),
        argmax(many_columns.cpu, 1), kExact);
  const Pair ints = on_both(Tensor::randint(-1000, 1000, {3, 2, 1100000}, DType::Int64, &gen));
  check("sum", config_of(ints.cpu, "dims={0,1}"), sum(ints.gpu, {0, 1}), sum(ints.cpu, {0, 1}),
        kExact);
  check("sum", config_of(ints.cpu, "all dims"), sum(ints.gpu), sum(ints.cpu), kExact);
}

// ---- cumsum --------------------------------------------------------------------------------

GPU_TEST_CASE("cuda cumsum: along each dim of a 4-d tensor, contiguous and permuted") {
  Generator gen(201);
  for (DType dtype : {DType::Float64, DType::Float32, DType::Int64}) {
    const Pair base = on_both(random({3, 4, 5, 7}, dtype, gen));
    const Pair permuted = view_of(base, [](const Tensor& t) { return t.permute({1, 3, 0, 2}); });
    for (const Pair& x : {base, permuted})
      for (int64_t d = -1; d < 4; ++d)
        check("cumsum", config_of(x.cpu, "dim=" + std::to_string(d)), cumsum(x.gpu, d),
              cumsum(x.cpu, d), sum_tolerance(dtype));
  }
}

GPU_TEST_CASE("cuda cumsum: a long row, many strided lines, size 1, 0-d and empty") {
  Generator gen(202);
  for (DType dtype : {DType::Float64, DType::Float32, DType::Int64}) {
    // One line of 100000 (a warp scans it in 3125 chunks).
    const Pair row = on_both(positive({1, 100000}, dtype, gen));
    check("cumsum", config_of(row.cpu, "dim=1"), cumsum(row.gpu, 1), cumsum(row.cpu, 1),
          sum_tolerance(dtype));
    // 20000 lines with stride 20000 (a thread per line), and a sliced view of them.
    const Pair lines = on_both(random({40, 20000}, dtype, gen));
    check("cumsum", config_of(lines.cpu, "dim=0"), cumsum(lines.gpu, 0), cumsum(lines.cpu, 0),
          sum_tolerance(dtype));
    const Pair wider = on_both(random({40, 40000}, dtype, gen));
    const Pair sliced = view_of(wider, [](const Tensor& t) { return t.slice(1, 1, 40000, 2); });
    check("cumsum", config_of(sliced.cpu, "dim=0"), cumsum(sliced.gpu, 0), cumsum(sliced.cpu, 0),
          sum_tolerance(dtype));
  }
  // 600000 lines of 3: 75000 blocks of 8 warps, more than one grid of 65535.
  const Pair many = on_both(Tensor::randn({600000, 3}, DType::Float64, &gen));
  check("cumsum", config_of(many.cpu, "dim=1"), cumsum(many.gpu, 1), cumsum(many.cpu, 1), kF64);
  const Pair one = on_both(Tensor::randn({1}, DType::Float64, &gen));
  check("cumsum", "[1] dim=0", cumsum(one.gpu, 0), cumsum(one.cpu, 0), kExact);
  const Pair scalar = on_both(Tensor::scalar(2.5, DType::Float64));
  check("cumsum", "0-d dim=-1", cumsum(scalar.gpu, -1), cumsum(scalar.cpu, -1), kExact);
  const Pair empty = on_both(Tensor::zeros({0, 5}, DType::Float32));
  CHECK(cumsum(empty.gpu, 0).shape() == Shape{0, 5});
  CHECK(cumsum(empty.gpu, 1).shape() == Shape{0, 5});
}

// ---- indexing ------------------------------------------------------------------------------

GPU_TEST_CASE("cuda index_select: each dim, repeated indices, strided input and index") {
  Generator gen(301);
  for (DType dtype : {DType::Float64, DType::Float32, DType::Int64}) {
    const Pair base = on_both(random({5, 6, 7}, dtype, gen));
    const Pair permuted = view_of(base, [](const Tensor& t) { return t.permute({2, 0, 1}); });
    for (const Pair& x : {base, permuted})
      for (int64_t d = 0; d < 3; ++d) {
        // 9 indices into a dim of 5..7: repeats are certain.
        const Pair index = on_both(Tensor::randint(0, x.cpu.size(d), {9}, DType::Int64, &gen));
        check("index_select", config_of(x.cpu, "dim=" + std::to_string(d) + " n=9"),
              index_select(x.gpu, d, index.gpu), index_select(x.cpu, d, index.cpu), kExact);
        // Every other entry of a longer index: a strided 1-D index.
        const Pair strided =
            view_of(on_both(Tensor::randint(0, x.cpu.size(d), {11}, DType::Int64, &gen)),
                    [](const Tensor& t) { return t.slice(0, 0, 11, 2); });
        check("index_select", config_of(x.cpu, "dim=" + std::to_string(d) + " strided index"),
              index_select(x.gpu, d, strided.gpu), index_select(x.cpu, d, strided.cpu), kExact);
      }
    const Pair none = on_both(Tensor::zeros({0}, DType::Int64));
    CHECK(index_select(base.gpu, 1, none.gpu).shape() == Shape{5, 0, 7});
  }
  // An embedding-sized lookup: 70000 rows of 256, more elements than 65535 blocks of 256.
  const Pair table = on_both(Tensor::randn({100, 256}, DType::Float32, &gen));
  const Pair ids = on_both(Tensor::randint(0, 100, {70000}, DType::Int64, &gen));
  check("index_select", config_of(table.cpu, "dim=0 n=70000"), index_select(table.gpu, 0, ids.gpu),
        index_select(table.cpu, 0, ids.cpu), kExact);
}

GPU_TEST_CASE("cuda gather: each dim, index smaller than the input, transposed operands") {
  Generator gen(302);
  for (DType dtype : {DType::Float64, DType::Float32, DType::Int64}) {
    const Pair x = on_both(random({5, 6, 7}, dtype, gen));
    const Pair x_t = view_of(x, [](const Tensor& t) { return t.transpose(0, 2); }); // (7, 6, 5)
    for (const Pair& input : {x, x_t})
      for (int64_t d = 0; d < 3; ++d) {
        // Index dims other than d are smaller than the input's; along d it may be longer.
        Shape shape = {input.cpu.size(0) - 1, input.cpu.size(1) - 2, input.cpu.size(2)};
        shape[d] = 9;
        const Pair index =
            on_both(Tensor::randint(0, input.cpu.size(d), shape, DType::Int64, &gen));
        check("gather", config_of(input.cpu, "dim=" + std::to_string(d)),
              gather(input.gpu, d, index.gpu), gather(input.cpu, d, index.cpu), kExact);
      }
    // A transposed index.
    const Pair index_t = view_of(on_both(Tensor::randint(0, 6, {5, 4, 3}, DType::Int64, &gen)),
                                 [](const Tensor& t) { return t.transpose(0, 2); }); // (3, 4, 5)
    check("gather", config_of(x.cpu, "dim=1 transposed index"), gather(x.gpu, 1, index_t.gpu),
          gather(x.cpu, 1, index_t.cpu), kExact);
  }
}

GPU_TEST_CASE("cuda scatter_add: repeated indices accumulate, src larger than index, views") {
  Generator gen(303);
  for (DType dtype : {DType::Float64, DType::Float32, DType::Int64}) {
    const Pair x = on_both(random({5, 6, 7}, dtype, gen));
    for (int64_t d = 0; d < 3; ++d) {
      Shape index_shape = {4, 5, 6};
      index_shape[d] = 9; // 9 writes into a dim of 5..7: repeats are certain
      const Pair index =
          on_both(Tensor::randint(0, x.cpu.size(d), index_shape, DType::Int64, &gen));
      // src is larger than index in every dim; only its leading part is added.
      const Pair src = on_both(random({10, 10, 10}, dtype, gen));
      const std::string config = config_of(x.cpu, "dim=" + std::to_string(d));
      check("scatter_add", config, scatter_add(x.gpu, d, index.gpu, src.gpu),
            scatter_add(x.cpu, d, index.cpu, src.cpu), atomic_tolerance(dtype));
      const Pair src_t = view_of(src, [](const Tensor& t) { return t.transpose(0, 1); });
      check("scatter_add", config + " transposed src", scatter_add(x.gpu, d, index.gpu, src_t.gpu),
            scatter_add(x.cpu, d, index.cpu, src_t.cpu), atomic_tolerance(dtype));
    }
  }
  // Many threads adding into few elements: 200000 values into 3 rows. Each output sums ~67000
  // normal values in two orders; the sums' roundings (2^-53 of partial sums ~500, ~sqrt(67000)
  // of them) differ by ~1e-11, far inside atol 1e-9.
  const Pair x = on_both(Tensor::zeros({3, 4}, DType::Float64));
  const Pair index = on_both(Tensor::randint(0, 3, {200000, 4}, DType::Int64, &gen));
  const Pair src = on_both(Tensor::randn({200000, 4}, DType::Float64, &gen));
  check("scatter_add", "[3, 4] dim=0 200000 sources", scatter_add(x.gpu, 0, index.gpu, src.gpu),
        scatter_add(x.cpu, 0, index.cpu, src.cpu), {1e-9, 1e-12});
}

GPU_TEST_CASE("cuda index_add_: each dim, repeated indices, into a strided view") {
  Generator gen(304);
  for (DType dtype : {DType::Float64, DType::Float32, DType::Int64}) {
    for (int64_t d = 0; d < 3; ++d) {
      // dst is every other column of a (5, 12, 7) tensor: the adds write through the view.
      const Pair base = on_both(random({5, 12, 7}, dtype, gen));
      Pair dst = view_of(base, [](const Tensor& t) { return t.slice(1, 0, 12, 2); }); // (5, 6, 7)
      const Pair index = on_both(Tensor::randint(0, dst.cpu.size(d), {9}, DType::Int64, &gen));
      Shape src_shape = dst.cpu.shape();
      src_shape[d] = 9;
      const Pair src = on_both(random(src_shape, dtype, gen));
      index_add_(dst.cpu, d, index.cpu, src.cpu);
      index_add_(dst.gpu, d, index.gpu, src.gpu);
      // The whole base: the odd columns must be untouched on both sides.
      check("index_add_", config_of(dst.cpu, "dim=" + std::to_string(d)), base.gpu, base.cpu,
            atomic_tolerance(dtype));
    }
  }
}

GPU_TEST_CASE("cuda index ops: an out-of-range index throws the CPU's message and writes nothing") {
  Generator gen(305);
  const Pair x = on_both(Tensor::randn({4, 5}, DType::Float32, &gen));
  const Pair bad_1d = on_both(Tensor::from_vector<int64_t>({0, 2, 5, -1}, {4}));
  const Pair negative_1d = on_both(Tensor::from_vector<int64_t>({1, -3, 0}, {3}));
  const Pair bad_2d = on_both(Tensor::from_vector<int64_t>({0, 1, 2, 3, 4, 7}, {2, 3}));
  const auto same_error = [](const std::string& op,
                             const std::function<void(const Tensor&)>& run_cpu,
                             const std::function<void(const Tensor&)>& run_gpu, const Pair& in) {
    const std::string cpu_message = out_of_range_message([&] { run_cpu(in.cpu); });
    const std::string gpu_message = out_of_range_message([&] { run_gpu(in.gpu); });
    INFO(op << ": cpu says '" << cpu_message << "', cuda says '" << gpu_message << "'");
    CHECK(cpu_message.find(op + ": index ") == 0);
    CHECK(gpu_message == cpu_message);
  };
  same_error(
      "index_select", [&](const Tensor& i) { index_select(x.cpu, 1, i); },
      [&](const Tensor& i) { index_select(x.gpu, 1, i); }, bad_1d);
  same_error(
      "index_select", [&](const Tensor& i) { index_select(x.cpu, 0, i); },
      [&](const Tensor& i) { index_select(x.gpu, 0, i); }, negative_1d);
  same_error(
      "gather", [&](const Tensor& i) { gather(x.cpu, 1, i); },
      [&](const Tensor& i) { gather(x.gpu, 1, i); }, bad_2d);
  const Pair src = on_both(Tensor::ones({4, 5}, DType::Float32));
  same_error(
      "scatter_add", [&](const Tensor& i) { scatter_add(x.cpu, 1, i, src.cpu); },
      [&](const Tensor& i) { scatter_add(x.gpu, 1, i, src.gpu); }, bad_2d);
  // index_add_ with one bad index among good ones leaves dst as it was.
  Pair dst = on_both(Tensor::randn({4, 5}, DType::Float32, &gen));
  const Tensor before = dst.cpu.clone();
  const Pair add_src = on_both(Tensor::ones({4, 4}, DType::Float32));
  same_error(
      "index_add_", [&](const Tensor& i) { index_add_(dst.cpu, 1, i, add_src.cpu); },
      [&](const Tensor& i) { index_add_(dst.gpu, 1, i, add_src.gpu); }, bad_1d);
  check("index_add_", "[4, 5] after a bad index", dst.gpu, before, kExact);
  // A strided index: the first bad value in row-major order of the view is reported.
  const Pair strided =
      view_of(on_both(Tensor::from_vector<int64_t>({0, 9, 1, 8, 6, 7}, {3, 2})),
              [](const Tensor& t) { return t.transpose(0, 1); }); // [[0, 1, 6], [9, 8, 7]]
  same_error(
      "gather", [&](const Tensor& i) { gather(x.cpu, 1, i); },
      [&](const Tensor& i) { gather(x.gpu, 1, i); }, strided);
  CHECK(out_of_range_message([&] { gather(x.gpu, 1, strided.gpu); }).find("index 6") !=
        std::string::npos);
}

// ---- joining and splitting -----------------------------------------------------------------

GPU_TEST_CASE("cuda concat, stack, split: each dim, views, empty pieces, round trips") {
  Generator gen(401);
  for (DType dtype : {DType::Float64, DType::Float32, DType::Int64}) {
    for (int64_t d = 0; d < 3; ++d) {
      Shape a_shape = {3, 4, 5}, b_shape = {3, 4, 5}, empty_shape = {3, 4, 5};
      a_shape[d] = 2;
      b_shape[d] = 6;
      empty_shape[d] = 0;
      const Pair a = on_both(random(a_shape, dtype, gen));
      // b is a transposed view with b_shape.
      Shape b_t_shape = b_shape;
      std::swap(b_t_shape[0], b_t_shape[2]);
      const Pair b = view_of(on_both(random(b_t_shape, dtype, gen)),
                             [](const Tensor& t) { return t.transpose(0, 2); });
      const Pair empty = on_both(Tensor::zeros(empty_shape, dtype));
      const std::string config = "[3, 4, 5] pieces dim=" + std::to_string(d);
      const Tensor joined_gpu = concat({a.gpu, empty.gpu, b.gpu}, d);
      const Tensor joined_cpu = concat({a.cpu, empty.cpu, b.cpu}, d);
      check("concat", config, joined_gpu, joined_cpu, kExact);
      // split undoes concat: the pieces are views of the GPU result.
      const std::vector<Tensor> pieces = split(joined_gpu, {2, 0, 6}, d);
      REQUIRE(pieces.size() == 3);
      check("split", config + " piece 0", pieces[0], a.cpu, kExact);
      check("split", config + " piece 2", pieces[2], b.cpu, kExact);
      CHECK(pieces[1].numel() == 0);
      const bool shares_storage = pieces[2].storage() == joined_gpu.storage();
      CHECK(shares_storage);
    }
    const Pair p = on_both(random({3, 5}, dtype, gen));
    const Pair q = view_of(on_both(random({5, 3}, dtype, gen)),
                           [](const Tensor& t) { return t.transpose(0, 1); });
    for (int64_t d = -3; d < 3; ++d)
      check("stack", "2 x [3, 5] dim=" + std::to_string(d), stack({p.gpu, q.gpu, p.gpu}, d),
            stack({p.cpu, q.cpu, p.cpu}, d), kExact);
    const Pair s0 = on_both(Tensor::scalar(1.5, dtype)), s1 = on_both(Tensor::scalar(-2, dtype));
    check("stack", "0-d tensors", stack({s0.gpu, s1.gpu}, 0), stack({s0.cpu, s1.cpu}, 0), kExact);
  }
  // Mixed devices are rejected, naming both.
  const Tensor on_cpu = Tensor::ones({2, 2});
  CHECK_THROWS_WITH_AS(concat({on_cpu, on_cpu.to(kGpu)}, 0), doctest::Contains("cuda:0"),
                       std::invalid_argument);
}
