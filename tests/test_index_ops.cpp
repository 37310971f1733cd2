// Tests of the indexing, joining and splitting ops and cumsum (tensor/ops_index.cpp): values
// against hand-computed results (small cases written out, larger odd shapes against the
// closed form of an arange input), views and non-contiguous inputs, the gather/scatter_add
// adjoint identity, and every error path.
#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <string>

#include "tensor/ops.h"
#include "tensor/random.h"
#include "tests/helpers.h"

using namespace ssm;
using test::check_error;
using test::check_values;
using test::iota;

namespace {

Tensor int64s(const std::vector<double>& values, const Shape& shape) {
  return Tensor::from_values(values, shape, DType::Int64);
}

double dot(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  const std::vector<double> va = a.to_doubles(), vb = b.to_doubles();
  double s = 0;
  for (size_t i = 0; i < va.size(); ++i) s += va[i] * vb[i];
  return s;
}

} // namespace

// ---- index_select --------------------------------------------------------------------------

TEST_CASE("index_select: rows and columns of a matrix, repeats allowed") {
  const Tensor x = iota({3, 4}); // [[0 1 2 3] [4 5 6 7] [8 9 10 11]]
  Tensor rows = index_select(x, 0, int64s({2, 0, 2}, {3}));
  CHECK(rows.shape() == Shape{3, 4});
  check_values(rows, {8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11});
  Tensor cols = index_select(x, -1, int64s({3, 1}, {2}));
  CHECK(cols.shape() == Shape{3, 2});
  check_values(cols, {3, 1, 7, 5, 11, 9});
  CHECK(index_select(x, 1, int64s({3, 1}, {2})).to_doubles() == cols.to_doubles());
}

TEST_CASE("index_select: size-1 input, empty index and int64 values") {
  const Tensor one = Tensor::from_values({7}, {1}, DType::Float64);
  check_values(index_select(one, 0, int64s({0, 0, 0}, {3})), {7, 7, 7});
  Tensor none = index_select(iota({3, 4}), 0, Tensor::zeros({0}, DType::Int64));
  CHECK(none.shape() == Shape{0, 4});
  Tensor ints = index_select(iota({2, 3}, DType::Int64), 1, int64s({2, 2, 0}, {3}));
  CHECK(ints.dtype() == DType::Int64);
  CHECK(ints.to_vector<int64_t>() == std::vector<int64_t>{2, 2, 0, 5, 5, 3});
}

TEST_CASE("index_select: odd 3-D shape along each dim against the arange closed form") {
  const int64_t A = 3, B = 5, C = 7;
  const Tensor x = iota({A, B, C}, DType::Float64);
  const std::vector<int64_t> picks = {4, 0, 2, 2};
  for (int64_t dim = -3; dim < 3; ++dim) {
    INFO("dim " << dim);
    const int64_t d = dim < 0 ? dim + 3 : dim;
    // Only indices valid for the picked dim: clamp to its size.
    std::vector<int64_t> clamped(picks);
    for (int64_t& p : clamped) p = std::min<int64_t>(p, x.size(d) - 1);
    Tensor out = index_select(x, dim, Tensor::from_vector(clamped, {4}));
    REQUIRE(out.size(d) == 4);
    for (int64_t i = 0; i < out.size(0); ++i)
      for (int64_t j = 0; j < out.size(1); ++j)
        for (int64_t k = 0; k < out.size(2); ++k) {
          int64_t src[3] = {i, j, k};
          src[d] = clamped[src[d]];
          CHECK(out.at({i, j, k}) == src[0] * B * C + src[1] * C + src[2]);
        }
  }
}

TEST_CASE("index_select: transposed and sliced inputs, strided index") {
  const Tensor xt = iota({2, 3}).transpose(0, 1); // [[0 3] [1 4] [2 5]]
  REQUIRE(!xt.is_contiguous());
  check_values(index_select(xt, 0, int64s({2, 1}, {2})), {2, 5, 1, 4});
  check_values(index_select(xt, 1, int64s({1}, {1})), {3, 4, 5});
  const Tensor xs = iota({3, 6}).slice(1, 1, 6, 2); // columns 1, 3, 5
  check_values(index_select(xs, 1, int64s({2, 0}, {2})), {5, 1, 11, 7, 17, 13});
  const Tensor strided_index = Tensor::arange(0, 6, 1).slice(0, 0, 6, 2); // {0, 2, 4}
  check_values(index_select(iota({5}), 0, strided_index), {0, 2, 4});
}

// ---- gather --------------------------------------------------------------------------------

TEST_CASE("gather: 2-D along each dim") {
  const Tensor x = Tensor::from_values({1, 2, 3, 4}, {2, 2});
  // out[i][j] = x[i][index[i][j]]
  check_values(gather(x, 1, int64s({0, 0, 1, 0}, {2, 2})), {1, 1, 4, 3});
  // out[i][j] = x[index[i][j]][j]
  check_values(gather(x, 0, int64s({0, 1, 1, 0}, {2, 2})), {1, 4, 3, 2});
  check_values(gather(x, -2, int64s({1, 1}, {1, 2})), {3, 4});
  // index smaller than x in the other dim, and longer along dim: (3, 4) -> index (2, 5).
  const Tensor y = iota({3, 4});
  Tensor out = gather(y, 1, int64s({3, 3, 0, 1, 2, 0, 0, 0, 0, 1}, {2, 5}));
  CHECK(out.shape() == Shape{2, 5});
  check_values(out, {3, 3, 0, 1, 2, 4, 4, 4, 4, 5});
}

TEST_CASE("gather: size-1 and odd 3-D shapes against the arange closed form") {
  check_values(gather(Tensor::full({1}, 2.5), 0, int64s({0, 0}, {2})), {2.5, 2.5});
  const int64_t B = 5, C = 3;
  const Tensor x = iota({3, B, C}, DType::Float64);
  Generator gen(7);
  for (int64_t d = 0; d < 3; ++d) {
    INFO("dim " << d);
    const Tensor index = Tensor::randint(0, x.size(d), {2, 3, 3}, DType::Int64, &gen);
    const Tensor out = gather(x, d - 3, index);
    CHECK(out.shape() == index.shape());
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < 3; ++j)
        for (int64_t k = 0; k < 3; ++k) {
          int64_t src[3] = {i, j, k};
          src[d] = static_cast<int64_t>(index.at({i, j, k}));
          CHECK(out.at({i, j, k}) == src[0] * B * C + src[1] * C + src[2]);
        }
  }
}

TEST_CASE("gather: transposed input and transposed index") {
  const Tensor xt = iota({3, 2}).transpose(0, 1); // [[0 2 4] [1 3 5]]
  check_values(gather(xt, 1, int64s({2, 0, 1, 1}, {2, 2})), {4, 0, 3, 3});
  const Tensor index_t = int64s({0, 1, 2, 0}, {2, 2}).transpose(0, 1); // [[0 2] [1 0]]
  check_values(gather(xt, 1, index_t), {0, 4, 3, 1});
}

// ---- scatter_add and index_add_ ------------------------------------------------------------

TEST_CASE("scatter_add: duplicates accumulate and the input is not modified") {
  const Tensor x = Tensor::zeros({3, 5});
  const Tensor src = iota({2, 5}, DType::Float32); // [[0 1 2 3 4] [5 6 7 8 9]]
  const Tensor index = int64s({0, 1, 2, 0, 0, 0, 1, 2, 2, 2}, {2, 5});
  // out[index[i][j]][j] += src[i][j]
  Tensor out = scatter_add(x, 0, index, src);
  check_values(out, {0 + 5, 0, 0, 3, 4, 0, 1 + 6, 0, 0, 0, 0, 0, 2 + 7, 8, 9});
  check_values(x, std::vector<double>(15, 0));
  // Along dim 1 with an index narrower than src: out[i][index[i][j]] += src[i][j], j < 2.
  Tensor ones = Tensor::ones({2, 3});
  check_values(scatter_add(ones, -1, int64s({2, 2, 0, 1}, {2, 2}), src),
               {1, 1, 1 + 0 + 1, 1 + 5, 1 + 6, 1});
}

TEST_CASE("scatter_add: int64 values, size-1 dims and a transposed source") {
  Tensor out = scatter_add(Tensor::zeros({1, 3}, DType::Int64), 1, int64s({2, 2, 2}, {1, 3}),
                           iota({1, 3}, DType::Int64));
  CHECK(out.to_vector<int64_t>() == std::vector<int64_t>{0, 0, 3});
  const Tensor src_t = iota({2, 2}).transpose(0, 1); // [[0 2] [1 3]]
  check_values(scatter_add(Tensor::zeros({2, 2}), 1, int64s({1, 1, 0, 1}, {2, 2}), src_t),
               {0, 2, 1, 3});
}

TEST_CASE("gather and scatter_add are adjoint: <gather(x, i), g> = <x, scatter_add(0, i, g)>") {
  Generator gen(11);
  const Tensor base = Tensor::randn({4, 5, 3}, DType::Float64, &gen);
  // A contiguous input and a transposed view of the same numbers, each gathered along every
  // dim with an index longer than the dim (so rows repeat and scatter_add accumulates).
  for (const Tensor& x : {base, base.transpose(0, 2)}) {
    for (int64_t d = 0; d < 3; ++d) {
      INFO("x " << shape_str(x.shape()) << " dim " << d);
      Shape index_shape = x.shape();
      index_shape[d] = x.size(d) + 3;
      for (int64_t k = 0; k < 3; ++k)
        if (k != d && index_shape[k] > 1) index_shape[k] -= 1; // smaller in the other dims
      const Tensor index = Tensor::randint(0, x.size(d), index_shape, DType::Int64, &gen);
      const Tensor g = Tensor::randn(index_shape, DType::Float64, &gen);
      const double lhs = dot(gather(x, d, index), g);
      const Tensor scattered = scatter_add(Tensor::zeros(x.shape(), DType::Float64), d, index, g);
      const double rhs = dot(x, scattered);
      // Both sides add the same ~50 products in a different order: float64 rounding only.
      CHECK(lhs == doctest::Approx(rhs).epsilon(1e-12));
    }
  }
}

TEST_CASE("index_add_: rows, columns and duplicates") {
  Tensor dst = Tensor::zeros({4, 3});
  const Tensor src = iota({3, 3}); // [[0 1 2] [3 4 5] [6 7 8]]
  index_add_(dst, 0, int64s({0, 2, 0}, {3}), src);
  check_values(dst, {0 + 6, 1 + 7, 2 + 8, 0, 0, 0, 3, 4, 5, 0, 0, 0});
  Tensor cols = Tensor::ones({2, 2}, DType::Int64);
  index_add_(cols, -1, int64s({1, 1, 1}, {3}), iota({2, 3}, DType::Int64));
  CHECK(cols.to_vector<int64_t>() == std::vector<int64_t>{1, 1 + 0 + 1 + 2, 1, 1 + 3 + 4 + 5});
  Tensor single = Tensor::zeros({1});
  index_add_(single, 0, int64s({0, 0}, {2}), Tensor::from_values({1.5, 2}, {2}));
  check_values(single, {3.5});
}

TEST_CASE("index_add_: writes through a strided view into its base") {
  Tensor base = Tensor::zeros({3, 6});
  Tensor even_cols = base.slice(1, 0, 6, 2); // (3, 3), column stride 2
  index_add_(even_cols, 0, int64s({2, 0}, {2}), iota({2, 3}));
  check_values(base, {3, 0, 4, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 0});
  Tensor base2 = Tensor::zeros({2, 3});
  Tensor transposed = base2.transpose(0, 1); // (3, 2)
  index_add_(transposed, 0, int64s({1}, {1}), Tensor::from_values({10, 20}, {1, 2}));
  check_values(base2, {0, 10, 0, 0, 20, 0});
  // The source may be a view too.
  Tensor dst = Tensor::zeros({2, 2});
  index_add_(dst, 1, int64s({1, 0}, {2}), iota({2, 2}).transpose(0, 1)); // [[0 2] [1 3]]
  check_values(dst, {2, 0, 3, 1});
}

// ---- concat, stack, split ------------------------------------------------------------------

TEST_CASE("concat: along each dim, with views and an empty piece") {
  const Tensor a = iota({2, 2});                        // [[0 1] [2 3]]
  const Tensor b = Tensor::from_values({9, 8}, {1, 2}); // [[9 8]]
  check_values(concat({a, b}, 0), {0, 1, 2, 3, 9, 8});
  CHECK(concat({a, b}, 0).shape() == Shape{3, 2});
  Tensor c = concat({a, a.transpose(0, 1), b.transpose(0, 1).expand({2, 3})}, -1);
  CHECK(c.shape() == Shape{2, 7});
  check_values(c, {0, 1, 0, 2, 9, 9, 9, 2, 3, 1, 3, 8, 8, 8});
  check_values(concat({Tensor::zeros({0, 2}), b, Tensor::zeros({0, 2})}, 0), {9, 8});
  check_values(concat({b}, 1), {9, 8});
  const Tensor ints = concat({iota({3}, DType::Int64), iota({2}, DType::Int64)}, 0);
  CHECK(ints.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 0, 1});
}

TEST_CASE("concat and split round trip on an odd 3-D shape") {
  Generator gen(3);
  const Tensor x = Tensor::randn({3, 7, 5}, DType::Float64, &gen);
  for (int64_t d = -3; d < 3; ++d) {
    INFO("dim " << d);
    const int64_t n = x.size(d);
    std::vector<Tensor> pieces = split(x, {1, 0, n - 1}, d);
    REQUIRE(pieces.size() == 3);
    CHECK(pieces[1].size(d) == 0);
    CHECK(concat(pieces, d).to_doubles() == x.to_doubles());
    std::vector<Tensor> chunks = split(x, 2, d);
    CHECK(static_cast<int64_t>(chunks.size()) == (n + 1) / 2);
    CHECK(chunks.back().size(d) == (n % 2 ? 1 : 2));
    CHECK(concat(chunks, d).to_doubles() == x.to_doubles());
  }
}

TEST_CASE("split: pieces are views sharing the input's storage") {
  Tensor x = iota({2, 5});
  std::vector<Tensor> pieces = split(x, {2, 3}, 1);
  CHECK(pieces[0].shape() == Shape{2, 2});
  CHECK(pieces[1].shape() == Shape{2, 3});
  check_values(pieces[1], {2, 3, 4, 7, 8, 9});
  CHECK((pieces[1].storage() == x.storage()));
  pieces[1].set({1, 0}, -1);
  CHECK(x.at({1, 2}) == -1);
  std::vector<Tensor> chunks = split(x, 3, -1);
  REQUIRE(chunks.size() == 2);
  CHECK(chunks[0].shape() == Shape{2, 3});
  CHECK(chunks[1].shape() == Shape{2, 2});
  check_values(split(x, 10, 1)[0], x.to_doubles()); // one chunk larger than the dim
  std::vector<Tensor> of_empty = split(Tensor::zeros({0, 3}), 2, 0);
  REQUIRE(of_empty.size() == 1);
  CHECK(of_empty[0].shape() == Shape{0, 3});
}

TEST_CASE("stack: new dim at each position, and of 0-d tensors") {
  const Tensor a = iota({2, 3});            // [[0 1 2] [3 4 5]]
  const Tensor b = add(iota({2, 3}), 10.0); // [[10 11 12] [13 14 15]]
  Tensor s0 = stack({a, b}, 0);
  CHECK(s0.shape() == Shape{2, 2, 3});
  check_values(s0, {0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15});
  Tensor s1 = stack({a, b}, 1);
  CHECK(s1.shape() == Shape{2, 2, 3});
  check_values(s1, {0, 1, 2, 10, 11, 12, 3, 4, 5, 13, 14, 15});
  const Tensor c = add(iota({3, 2}), 10.0).transpose(0, 1); // [[10 12 14] [11 13 15]], a view
  Tensor s2 = stack({a, c}, -1);
  CHECK(s2.shape() == Shape{2, 3, 2});
  check_values(s2, {0, 10, 1, 12, 2, 14, 3, 11, 4, 13, 5, 15});
  Tensor scalars = stack({Tensor::scalar(1.5), Tensor::scalar(-2), Tensor::scalar(4)}, 0);
  CHECK(scalars.shape() == Shape{3});
  check_values(scalars, {1.5, -2, 4});
  CHECK(stack({Tensor::scalar(3)}, -1).shape() == Shape{1});
}

// ---- cumsum --------------------------------------------------------------------------------

TEST_CASE("cumsum: 2-D along each dim, int64, 0-d and size-1") {
  const Tensor x = Tensor::from_values({1, 2, 3, 4, 5, 6}, {2, 3});
  check_values(cumsum(x, 1), {1, 3, 6, 4, 9, 15});
  check_values(cumsum(x, -1), {1, 3, 6, 4, 9, 15});
  check_values(cumsum(x, 0), {1, 2, 3, 5, 7, 9});
  const Tensor xi = Tensor::from_values({3, -1, 4, 1, -5}, {5}, DType::Int64);
  Tensor ci = cumsum(xi, 0);
  CHECK(ci.dtype() == DType::Int64);
  CHECK(ci.to_vector<int64_t>() == std::vector<int64_t>{3, 2, 6, 7, 2});
  check_values(cumsum(Tensor::scalar(2.5, DType::Float64), 0), {2.5});
  check_values(cumsum(Tensor::from_values({4, 5}, {1, 2}), 0), {4, 5});
  CHECK(cumsum(Tensor::zeros({0, 3}), 0).shape() == Shape{0, 3});
}

TEST_CASE("cumsum: odd 3-D shape over each dim, float64 and int64, and a transposed input") {
  // For x[i][j][k] = i*B*C + j*C + k, the prefix sum along dim 1 is
  // sum_{t <= j} (i*B*C + t*C + k) = (j + 1) (i*B*C + k) + C j (j + 1) / 2, and so on.
  const int64_t A = 3, B = 4, C = 5;
  for (DType dtype : {DType::Float64, DType::Int64}) {
    const Tensor x = iota({A, B, C}, dtype);
    const Tensor c0 = cumsum(x, 0), c1 = cumsum(x, 1), c2 = cumsum(x, -1);
    CHECK(c1.dtype() == dtype);
    for (int64_t i = 0; i < A; ++i)
      for (int64_t j = 0; j < B; ++j)
        for (int64_t k = 0; k < C; ++k) {
          CHECK(c0.at({i, j, k}) == (i + 1) * (j * C + k) + B * C * i * (i + 1) / 2);
          CHECK(c1.at({i, j, k}) == (j + 1) * (i * B * C + k) + C * j * (j + 1) / 2);
          CHECK(c2.at({i, j, k}) == (k + 1) * (i * B * C + j * C) + k * (k + 1) / 2);
        }
  }
  const Tensor xt = iota({2, 3}).transpose(0, 1); // [[0 3] [1 4] [2 5]]
  check_values(cumsum(xt, 0), {0, 3, 1, 7, 3, 12});
  check_values(cumsum(xt, 1), {0, 3, 1, 5, 2, 7});
}

TEST_CASE("cumsum: float32 accumulates without drift over a long sequence") {
  // 100000 copies of 0.1f: a float32 running sum ends at 9998.56 (each add rounds to the ulp
  // of the running sum, ~1e-3 near 1e4, always the same way), 1.4 below the true 10000.00015.
  // The double accumulator only rounds the stored result: within half a float32 ulp (4.9e-4).
  const int64_t n = 100000;
  const Tensor x = Tensor::full({n}, 0.1);
  const double expected = n * static_cast<double>(0.1f);
  const Tensor c = cumsum(x, 0);
  CHECK(std::fabs(c.at({n - 1}) - expected) < 1e-3);
  CHECK(std::fabs(c.at({n / 2 - 1}) - expected / 2) < 1e-3);
}

// ---- errors --------------------------------------------------------------------------------

TEST_CASE("index ops: an index that is not int64 is rejected, naming the op") {
  const Tensor x = iota({3, 4});
  const Tensor float_index = Tensor::from_values({0, 1}, {2});
  check_error<std::invalid_argument>([&] { index_select(x, 0, float_index); },
                                     {"index_select", "int64", "float32"});
  check_error<std::invalid_argument>(
      [&] {
        gather(x, 0, Tensor::zeros({1, 4}, DType::Float64));
      },
      {"gather", "int64"});
  check_error<std::invalid_argument>(
      [&] {
        scatter_add(x, 0, Tensor::zeros({1, 4}), Tensor::ones({1, 4}));
      },
      {"scatter_add", "int64"});
  Tensor dst = Tensor::zeros({3, 4});
  check_error<std::invalid_argument>(
      [&] {
        index_add_(dst, 0, float_index, iota({2, 4}));
      },
      {"index_add_", "int64"});
}

TEST_CASE("index ops: out-of-range and negative indices name the op, value, dim and size") {
  const Tensor x = iota({2, 3});
  check_error<std::out_of_range>(
      [&] {
        index_select(x, 1, int64s({0, 3}, {2}));
      },
      {"index_select", "index 3", "dim 1", "size 3"});
  check_error<std::out_of_range>([&] { index_select(x, -2, int64s({-1}, {1})); },
                                 {"index_select", "index -1", "dim 0", "size 2", "negative"});
  check_error<std::out_of_range>(
      [&] {
        gather(x, 1, int64s({0, 5}, {1, 2}));
      },
      {"gather", "index 5", "dim 1", "size 3"});
  check_error<std::out_of_range>(
      [&] {
        scatter_add(x, 0, int64s({2}, {1, 1}), Tensor::ones({1, 1}));
      },
      {"scatter_add", "index 2", "dim 0", "size 2"});
  Tensor dst = Tensor::zeros({2, 3});
  check_error<std::out_of_range>(
      [&] {
        index_add_(dst, 1, int64s({0, -4}, {2}), Tensor::ones({2, 2}));
      },
      {"index_add_", "index -4", "dim 1", "size 3"});
  // The failed index_add_ left dst untouched: every index is checked before any write.
  check_values(dst, std::vector<double>(6, 0));
  check_error<std::out_of_range>([&] { index_select(x, 2, int64s({0}, {1})); },
                                 {"index_select", "dim 2"});
}

TEST_CASE("index ops: shape mismatches are rejected with both shapes") {
  const Tensor x = iota({2, 3});
  check_error<std::invalid_argument>(
      [&] {
        index_select(x, 0, int64s({0, 1}, {1, 2}));
      },
      {"index_select", "1-D", "[1, 2]"});
  check_error<std::invalid_argument>(
      [&] {
        gather(x, 0, int64s({0, 1}, {2}));
      },
      {"gather", "[2]", "[2, 3]"});
  check_error<std::invalid_argument>(
      [&] {
        gather(x, 0, int64s({0, 0, 0, 0}, {1, 4}));
      },
      {"gather", "[1, 4]", "[2, 3]", "dim 1"});
  check_error<std::invalid_argument>(
      [&] {
        scatter_add(x, 0, int64s({0, 0}, {1, 2}), Tensor::ones({1, 1}));
      },
      {"scatter_add", "src", "[1, 1]"});
  check_error<std::invalid_argument>(
      [&] {
        scatter_add(x, 0, int64s({0}, {1, 1}), Tensor::ones({1, 1}, DType::Float64));
      },
      {"scatter_add", "float64", "float32"});
  Tensor dst = Tensor::zeros({2, 3});
  check_error<std::invalid_argument>(
      [&] {
        index_add_(dst, 0, int64s({0, 1}, {2}), Tensor::ones({2, 2}));
      },
      {"index_add_", "[2, 2]", "[2, 3]"});
  check_error<std::invalid_argument>(
      [&] {
        index_add_(dst, 0, int64s({0}, {1}), Tensor::ones({1, 3}, DType::Float64));
      },
      {"index_add_", "dtypes differ"});
}

TEST_CASE("concat, stack, split: empty lists, mismatches and bad sizes") {
  check_error<std::invalid_argument>([] { concat({}, 0); }, {"concat", "non-empty"});
  check_error<std::invalid_argument>([] { stack({}, 0); }, {"stack", "non-empty"});
  const Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({2, 4});
  check_error<std::invalid_argument>(
      [&] {
        concat({a, a, b}, 0);
      },
      {"concat", "position 2", "[2, 4]", "[2, 3]", "dim 0"});
  check_error<std::invalid_argument>(
      [&] {
        concat({a, Tensor::zeros({2, 3, 1})}, 1);
      },
      {"concat", "position 1", "[2, 3, 1]"});
  check_error<std::invalid_argument>(
      [&] {
        concat({a, Tensor::zeros({2, 3}, DType::Int64)}, 0);
      },
      {"concat", "position 1", "int64", "float32"});
  check_error<std::invalid_argument>(
      [&] {
        concat({a, Tensor()}, 0);
      },
      {"concat", "position 1", "undefined"});
  check_error<std::invalid_argument>(
      [] {
        concat({Tensor::scalar(1), Tensor::scalar(2)}, 0);
      },
      {"concat", "0-d"});
  check_error<std::out_of_range>([&] { concat({a, a}, 2); }, {"concat", "dim 2"});
  check_error<std::invalid_argument>(
      [&] {
        stack({a, b}, 0);
      },
      {"stack", "position 1", "[2, 4]", "[2, 3]"});
  check_error<std::out_of_range>([&] { stack({a, a}, 3); }, {"stack", "dim 3"});
  check_error<std::invalid_argument>(
      [&] {
        split(a, {1, 1}, 1);
      },
      {"split", "add up to 2", "size 3"});
  check_error<std::invalid_argument>([&] { split(a, {4, -1}, 1); }, {"split", "negative"});
  check_error<std::invalid_argument>([&] { split(a, 0, 1); }, {"split", "positive"});
  check_error<std::out_of_range>([&] { cumsum(a, 2); }, {"cumsum", "dim 2"});
}
