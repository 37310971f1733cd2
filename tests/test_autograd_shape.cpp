// Tests of the differentiable shape ops (autograd/ops_shape.cpp): forward values against
// hand-computed results, float64 gradient checks at several shapes (size-1 dims, odd sizes,
// negative dims, non-contiguous inputs), gradients of one input reached through several views,
// and error messages.
#include <doctest/doctest.h>

#include "autograd/functions.h"
#include "autograd/gradcheck.h"
#include "tensor/random.h"
#include "tests/helpers.h"

using namespace ssm;
using test::expect_gradcheck;
using test::rand64;

namespace {

using Fn = std::function<Var(const std::vector<Var>&)>;

// 0, 1, 2, ... in `shape`, float64.
Tensor iota64(const Shape& shape) {
  return Tensor::arange(0, static_cast<double>(numel_of(shape)), 1, DType::Float64).reshape(shape);
}

// Gradient-checks f on x as given, and on a non-contiguous x: the same values stored
// transposed, x = transpose(x_t), so the op reads strided memory.
void expect_gradcheck_strided(const Fn& f, const Shape& shape, uint64_t seed) {
  expect_gradcheck(f, {rand64(shape, seed)});
  if (shape.size() < 2) return;
  Shape t_shape = shape;
  std::swap(t_shape[0], t_shape[1]);
  expect_gradcheck([&](const std::vector<Var>& v) { return f({transpose(v[0], 0, 1)}); },
                   {rand64(t_shape, seed + 1)});
}

} // namespace

// ---- forward values ------------------------------------------------------------------------

TEST_CASE("shape ops: forward values") {
  const Var x(iota64({2, 3})); // [[0, 1, 2], [3, 4, 5]]
  test::check_values(reshape(x, {3, 2}).value(), {0, 1, 2, 3, 4, 5}, 0);
  CHECK(reshape(x, {-1}).shape() == Shape{6});
  test::check_values(transpose(x, 0, -1).value(), {0, 3, 1, 4, 2, 5}, 0);
  test::check_values(permute(Var(iota64({2, 1, 3})), {2, 0, 1}).value(), {0, 3, 1, 4, 2, 5}, 0);
  test::check_values(slice(x, 1, 0, 3, 2).value(), {0, 2, 3, 5}, 0);
  test::check_values(slice(x, -1, -2, 100).value(), {1, 2, 4, 5}, 0);
  test::check_values(narrow(x, 1, 1, 2).value(), {1, 2, 4, 5}, 0);
  test::check_values(select(x, 0, -1).value(), {3, 4, 5}, 0);
  CHECK(select(x, 1, 2).shape() == Shape{2});
  CHECK(squeeze(Var(iota64({2, 1, 3})), 1).shape() == Shape{2, 3});
  CHECK(squeeze(x, 0).shape() == Shape{2, 3}); // size 2: unchanged
  CHECK(unsqueeze(x, -1).shape() == Shape{2, 3, 1});
  CHECK(unsqueeze(x, 0).shape() == Shape{1, 2, 3});
  test::check_values(expand(Var(iota64({2, 1})), {2, 2, 3}).value(),
                     {0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1}, 0);
  const Var y(Tensor::from_values({6, 7}, {2, 1}, DType::Float64));
  test::check_values(concat({x, y}, 1).value(), {0, 1, 2, 6, 3, 4, 5, 7}, 0);
  test::check_values(concat({x, x}, 0).value(), {0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5}, 0);
  const Var s = stack({select(x, 0, 0), select(x, 0, 1)}, -1); // (3, 2)
  CHECK(s.shape() == Shape{3, 2});
  test::check_values(s.value(), {0, 3, 1, 4, 2, 5}, 0);
  const std::vector<Var> pieces = split(x, {1, 0, 2}, -1);
  REQUIRE(pieces.size() == 3);
  test::check_values(pieces[0].value(), {0, 3}, 0);
  CHECK(pieces[1].shape() == Shape{2, 0});
  test::check_values(pieces[2].value(), {1, 2, 4, 5}, 0);
  const Tensor index = Tensor::from_vector<int64_t>({2, 0, 2}, {3});
  test::check_values(index_select(x, 1, index).value(), {2, 0, 2, 5, 3, 5}, 0);
}

TEST_CASE("shape ops: the graph records each op by name") {
  const Var x(iota64({2, 3}), true);
  CHECK(reshape(x, {6}).op_name() == "reshape");
  CHECK(transpose(x, 0, 1).op_name() == "transpose");
  CHECK(split(x, {1, 2}, 1)[1].op_name() == "split");
  CHECK(concat({x, x}, 0).op_name() == "concat");
  NoGradGuard no_grad;
  CHECK(slice(x, 0, 0, 1).is_leaf());
}

// ---- gradient checks -----------------------------------------------------------------------

TEST_CASE("gradcheck: views that keep every element") {
  uint64_t seed = 100;
  expect_gradcheck_strided([](auto& v) { return reshape(v[0], {3, -1}); }, {2, 3, 2}, seed++);
  expect_gradcheck_strided([](auto& v) { return reshape(v[0], {7}); }, {7, 1}, seed++);
  expect_gradcheck_strided([](auto& v) { return reshape(v[0], {1, 5, 1}); }, {5}, seed++);
  expect_gradcheck_strided([](auto& v) { return permute(v[0], {2, 0, 1}); }, {2, 3, 5}, seed++);
  expect_gradcheck_strided([](auto& v) { return permute(v[0], {-1, 1, 0}); }, {3, 1, 2}, seed++);
  expect_gradcheck_strided([](auto& v) { return transpose(v[0], 0, 1); }, {3, 4}, seed++);
  expect_gradcheck_strided([](auto& v) { return transpose(v[0], -1, 0); }, {2, 1, 5}, seed++);
  expect_gradcheck_strided([](auto& v) { return squeeze(v[0], 1); }, {3, 1, 2}, seed++);
  expect_gradcheck_strided([](auto& v) { return squeeze(v[0], -1); }, {2, 3, 1}, seed++);
  expect_gradcheck_strided([](auto& v) { return squeeze(v[0], 0); }, {3, 2}, seed++); // no-op
  expect_gradcheck_strided([](auto& v) { return unsqueeze(v[0], 1); }, {3, 2}, seed++);
  expect_gradcheck_strided([](auto& v) { return unsqueeze(v[0], -1); }, {5}, seed++);
}

TEST_CASE("gradcheck: slice, narrow and select") {
  uint64_t seed = 200;
  expect_gradcheck_strided([](auto& v) { return slice(v[0], 0, 1, 4); }, {5, 3}, seed++);
  expect_gradcheck_strided([](auto& v) { return slice(v[0], -1, 0, 7, 3); }, {3, 7}, seed++);
  expect_gradcheck_strided([](auto& v) { return slice(v[0], 1, -3, 100, 2); }, {2, 5, 3}, seed++);
  expect_gradcheck_strided([](auto& v) { return slice(v[0], 0, 0, 1); }, {1, 4}, seed++);
  expect_gradcheck_strided([](auto& v) { return narrow(v[0], 1, 2, 3); }, {3, 5}, seed++);
  expect_gradcheck_strided([](auto& v) { return narrow(v[0], -1, -2, 2); }, {2, 3, 4}, seed++);
  expect_gradcheck_strided([](auto& v) { return select(v[0], 0, 2); }, {3, 4}, seed++);
  expect_gradcheck_strided([](auto& v) { return select(v[0], -1, -1); }, {2, 3, 5}, seed++);
  expect_gradcheck_strided([](auto& v) { return select(v[0], 0, 0); }, {1}, seed++);
}

TEST_CASE("gradcheck: expand sums the gradient over the repeats") {
  uint64_t seed = 300;
  expect_gradcheck_strided([](auto& v) { return expand(v[0], {2, 3, 4}); }, {3, 1}, seed++);
  expect_gradcheck_strided([](auto& v) { return expand(v[0], {5, -1}); }, {1, 3}, seed++);
  expect_gradcheck_strided([](auto& v) { return expand(v[0], {2, 1, 3}); }, {1, 3}, seed++);
  expect_gradcheck_strided([](auto& v) { return expand(v[0], {4, 2}); }, {2}, seed++);
  // By hand: x (2, 1) expanded to (3, 2, 4) reads each element 12 times.
  const Var x(rand64({2, 1}, seed++), true);
  sum(expand(x, {3, 2, 4})).backward();
  test::check_values(x.grad(), {12, 12}, 0);
}

TEST_CASE("gradcheck: concat and stack") {
  const Tensor a = rand64({2, 3}, 400), b = rand64({2, 1}, 401), c = rand64({2, 4}, 402);
  expect_gradcheck([](auto& v) { return concat({v[0], v[1], v[2]}, 1); }, {a, b, c});
  expect_gradcheck([](auto& v) { return concat({v[0], v[1], v[2]}, -1); }, {a, b, c});
  // Non-contiguous pieces joined along dim 0: (3, 2) + (1, 2) + (4, 2).
  expect_gradcheck(
      [](auto& v) {
        return concat({transpose(v[0], 0, 1), transpose(v[1], 0, 1), transpose(v[2], 0, 1)}, 0);
      },
      {a, b, c});
  // The same Var twice gets both parts of the gradient.
  expect_gradcheck([](auto& v) { return concat({v[0], v[0] * v[0]}, 0); }, {a});
  expect_gradcheck([](auto& v) { return concat({v[0]}, 0); }, {rand64({5}, 403)});

  const Tensor p = rand64({3, 2}, 404), q = rand64({3, 2}, 405);
  for (int64_t dim : {0, 1, 2, -1, -3}) {
    CAPTURE(dim);
    expect_gradcheck([&](auto& v) { return stack({v[0], v[1]}, dim); }, {p, q});
  }
  expect_gradcheck(
      [](auto& v) {
        return stack({transpose(v[0], 0, 1), v[1]}, 1);
      },
      {p, rand64({2, 3}, 406)});
  expect_gradcheck([](auto& v) { return stack({v[0], v[0], v[0]}, 0); }, {rand64({1}, 407)});
}

TEST_CASE("gradcheck: split, with pieces used, reordered, reused and unused") {
  const Tensor x = rand64({2, 7}, 500);
  // Pieces recombined out of order and weighted differently, so a gradient routed to the
  // wrong slice would fail.
  expect_gradcheck(
      [](auto& v) {
        const std::vector<Var> p = split(v[0], {2, 1, 4}, 1);
        return concat({p[2] * 3.0, p[0], p[1] * p[1]}, -1);
      },
      {x});
  expect_gradcheck(
      [](auto& v) {
        const std::vector<Var> p = split(transpose(v[0], 0, 1), {3, 4}, 0); // (3, 2), (4, 2)
        return p[1] * 2.0;
      },
      {x});
  expect_gradcheck([](auto& v) { return split(v[0], {1, 1}, -2)[0]; }, {x});
  expect_gradcheck([](auto& v) { return split(v[0], {5}, 0)[0]; }, {rand64({5}, 501)});

  // By hand: only the middle piece is used; the other elements get exactly 0.
  const Var y(rand64({5}, 502), true);
  sum(split(y, {1, 3, 1}, 0)[1] * 2.0).backward();
  test::check_values(y.grad(), {0, 2, 2, 2, 0}, 0);
}

TEST_CASE("gradcheck: index_select with repeated and skipped rows") {
  const Tensor rows = Tensor::from_vector<int64_t>({3, 0, 3, 1, 3}, {5});
  expect_gradcheck([&](auto& v) { return index_select(v[0], 0, rows); }, {rand64({4, 3}, 600)});
  expect_gradcheck([&](auto& v) { return index_select(v[0], -1, rows); }, {rand64({2, 3, 4}, 601)});
  expect_gradcheck([&](auto& v) { return index_select(transpose(v[0], 0, 1), 0, rows); },
                   {rand64({2, 4}, 602)});
  const Tensor one = Tensor::from_vector<int64_t>({0}, {1});
  expect_gradcheck([&](auto& v) { return index_select(v[0], 1, one); }, {rand64({3, 1}, 603)});

  // By hand: dL/dx[i] counts how often row i is picked.
  const Var x(rand64({4}, 604), true);
  sum(index_select(x, 0, rows)).backward();
  test::check_values(x.grad(), {1, 1, 0, 3}, 0);
}

TEST_CASE("gradcheck: chains of shape ops") {
  expect_gradcheck(
      [](auto& v) {
        Var t = permute(reshape(v[0], {2, 3, 2}), {1, 2, 0}); // (3, 2, 2), strided
        t = narrow(slice(t, 0, 0, 3, 2), -1, 1, 1);           // (2, 2, 1)
        const Var row = narrow(select(v[0], 0, 0), 0, 0, 2);  // (2)
        return unsqueeze(squeeze(t, -1), 0) * expand(row, {1, 2, 2});
      },
      {rand64({4, 3}, 700)});
}

// ---- one input reached through several views -----------------------------------------------

TEST_CASE("shape ops: one input used by two views accumulates both gradients") {
  // L = sum(slice(x, 0, 0, 2)) + sum(transpose(x) * w), x (3, 2), w (2, 3):
  //   dL/dx[i][j] = [i < 2] + w[j][i].
  const Tensor xv = rand64({3, 2}, 800);
  const Tensor wv = Tensor::from_values({10, 20, 30, 40, 50, 60}, {2, 3}, DType::Float64);
  const Var x(xv, true), w(wv);
  Var loss = sum(slice(x, 0, 0, 2)) + sum(transpose(x, 0, 1) * w);
  loss.backward();
  test::check_values(x.grad(), {11, 41, 21, 51, 30, 60}, 0);
  expect_gradcheck(
      [&](auto& v) { return sum(slice(v[0], 0, 0, 2)) + sum(transpose(v[0], 0, 1) * w); }, {xv});

  // A non-contiguous leaf value: the gradient has the leaf's shape and lands element-wise.
  const Var xt(iota64({2, 3}).transpose(0, 1), true); // (3, 2) view of a (2, 3) buffer
  (sum(select(xt, 1, 0) * 2.0) + sum(select(xt, 0, 2))).backward();
  // select(xt, 1, 0) is column 0 (3 elements, weight 2); select(xt, 0, 2) is row 2.
  test::check_values(xt.grad(), {2, 0, 2, 0, 3, 1}, 0);
}

// ---- errors --------------------------------------------------------------------------------

TEST_CASE("shape ops: bad arguments raise errors naming the op and the shapes") {
  const Var x(iota64({2, 3}), true);
  CHECK_THROWS_WITH_AS(reshape(x, {4}), doctest::Contains("reshape: cannot reshape [2, 3]"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(permute(x, {0}), doctest::Contains("permute"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(permute(x, {1, 1}), doctest::Contains("repeated"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(transpose(x, 0, 2), doctest::Contains("transpose"), std::out_of_range);
  CHECK_THROWS_WITH_AS(slice(x, 1, 0, 2, 0), doctest::Contains("slice: step"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(narrow(x, 1, 2, 2), doctest::Contains("narrow"), std::out_of_range);
  CHECK_THROWS_WITH_AS(select(x, 0, 2), doctest::Contains("select: index 2"), std::out_of_range);
  CHECK_THROWS_WITH_AS(squeeze(x, 2), doctest::Contains("squeeze"), std::out_of_range);
  CHECK_THROWS_WITH_AS(unsqueeze(x, 4), doctest::Contains("unsqueeze"), std::out_of_range);
  CHECK_THROWS_WITH_AS(expand(x, {2, 4}), doctest::Contains("expand: cannot expand [2, 3]"),
                       std::invalid_argument);
  const Var y(iota64({3, 3}));
  CHECK_THROWS_WITH_AS(concat({x, y}, 1), doctest::Contains("concat: tensor at position 1"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(concat(std::vector<Var>{}, 0), doctest::Contains("concat"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(stack({x, y}, 0), doctest::Contains("stack"), std::invalid_argument);
  const Var f32(Tensor::ones({2, 3}, DType::Float32));
  CHECK_THROWS_WITH_AS(concat({x, f32}, 0), doctest::Contains("concat"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(split(x, {1, 1}, 1), doctest::Contains("split: sizes add up to 2"),
                       std::invalid_argument);
  const Tensor bad = Tensor::from_vector<int64_t>({0, 3}, {2});
  CHECK_THROWS_WITH_AS(index_select(x, 1, bad), doctest::Contains("index_select: index 3"),
                       std::out_of_range);
  CHECK_THROWS_WITH_AS(index_select(x, 0, Tensor::zeros({2}, DType::Float64)),
                       doctest::Contains("index_select: index must be an int64"),
                       std::invalid_argument);
}
