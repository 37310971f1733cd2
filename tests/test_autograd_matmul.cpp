// Tests of the differentiable matrix products (autograd/ops_matmul.cpp): forward values against
// hand-computed results, float64 gradient checks of matmul (every 1-D / 2-D / batched case,
// broadcast batch dims, non-contiguous operands), bmm and linear (with and without bias,
// 1-D / 2-D / 3-D input), gradients when only one operand needs one, and error messages.
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

Var mat(const std::vector<double>& values, const Shape& shape, bool requires_grad = false) {
  return Var(Tensor::from_values(values, shape, DType::Float64), requires_grad);
}

} // namespace

// ---- forward values ------------------------------------------------------------------------

TEST_CASE("matmul: forward values for each operand rank") {
  const Var a = mat({1, 2, 3, 4, 5, 6}, {2, 3});  // [[1, 2, 3], [4, 5, 6]]
  const Var b = mat({1, 0, 2, 1, 0, -1}, {3, 2}); // [[1, 0], [2, 1], [0, -1]]
  const Var u = mat({1, -1, 2}, {3});
  const Var v = mat({3, 1}, {2});
  test::check_values(matmul(a, b).value(), {5, -1, 14, -1}, 0);
  const Var dot = matmul(u, u);
  CHECK(dot.shape() == Shape{});
  CHECK(dot.item() == 6);
  const Var av = matmul(a, u); // (2, 3) x (3) -> (2)
  CHECK(av.shape() == Shape{2});
  test::check_values(av.value(), {5, 11}, 0);
  const Var vb = matmul(v, transpose(b, 0, 1)); // (2) x (2, 3) -> (3)
  test::check_values(vb.value(), {3, 7, -1}, 0);
  // (2, 1, 2, 3) x (2, 3, 2): batch dims broadcast to (2, 2); entry [i][j] = a_i b_j.
  const Var a4 = stack({reshape(a, {1, 2, 3}), reshape(a * -1.0, {1, 2, 3})}, 0);
  const Var b3 = stack({b, b * 2.0}, 0);
  const Var y = matmul(a4, b3);
  CHECK(y.shape() == Shape{2, 2, 2, 2});
  test::check_values(select(select(y, 0, 1), 0, 1).value(), {-10, 2, -28, 2}, 0);
}

TEST_CASE("bmm and linear: forward values") {
  const Var a = mat({1, 2, 3, 4, 1, 0, 0, 1}, {2, 2, 2});
  const Var b = mat({1, 1, 0, 1, 5, 6, 7, 8}, {2, 2, 2});
  test::check_values(bmm(a, b).value(), {1, 3, 3, 7, 5, 6, 7, 8}, 0);

  // y = x W^T + b with x (2, 3), W (2, 3), b (2).
  const Var x = mat({1, 2, 3, 4, 5, 6}, {2, 3});
  const Var w = mat({1, 0, -1, 0, 2, 0}, {2, 3});
  const Var bias = mat({10, 20}, {2});
  test::check_values(linear(x, w, bias).value(), {8, 24, 8, 30}, 0);
  test::check_values(linear(x, w).value(), {-2, 4, -2, 10}, 0);
  const Var x1 = mat({1, 1, 1}, {3});
  CHECK(linear(x1, w, bias).shape() == Shape{2});
  test::check_values(linear(x1, w, bias).value(), {10, 22}, 0);
  const Var x3 = reshape(concat({x, x * 2.0}, 0), {2, 2, 3});
  const Var y3 = linear(x3, w, bias);
  CHECK(y3.shape() == Shape{2, 2, 2});
  test::check_values(y3.value(), {8, 24, 8, 30, 6, 28, 6, 40}, 0);
}

// ---- gradient checks -----------------------------------------------------------------------

TEST_CASE("gradcheck: matmul of every rank, broadcast batch dims and odd sizes") {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{3, 4}, {4, 5}},          // matrix x matrix
      {{1, 1}, {1, 1}},          // size-1 everything
      {{2, 1, 3, 4}, {5, 4, 2}}, // broadcast batch: (2, 1) against (5) -> (2, 5)
      {{3, 4}, {2, 4, 3}},       // matrix shared by a batch on the left
      {{2, 3, 4}, {4, 5}},       // batch on the left, matrix on the right
      {{2, 3, 5}, {2, 5, 1}},    // equal batch dims
      {{1, 3, 2}, {4, 2, 3}},    // size-1 batch broadcast on the left
      {{4}, {4, 3}},             // vector x matrix
      {{3, 4}, {4}},             // matrix x vector
      {{4}, {4}},                // dot product
      {{5}, {2, 5, 3}},          // vector x batch
      {{2, 3, 5}, {5}},          // batch x vector
      {{1}, {1, 1}},             // size-1 vector x matrix
  };
  uint64_t seed = 100;
  for (const auto& [sa, sb] : shapes) {
    CAPTURE(shape_str(sa));
    CAPTURE(shape_str(sb));
    expect_gradcheck([](auto& v) { return matmul(v[0], v[1]); },
                     {rand64(sa, seed), rand64(sb, seed + 1)});
    seed += 2;
  }
}

TEST_CASE("gradcheck: matmul of non-contiguous operands") {
  // Transposed matrices, a permuted batch and a narrowed (row-strided) operand.
  expect_gradcheck([](auto& v) { return matmul(transpose(v[0], 0, 1), v[1]); },
                   {rand64({4, 3}, 200), rand64({4, 5}, 201)});
  expect_gradcheck([](auto& v) { return matmul(v[0], transpose(v[1], -1, -2)); },
                   {rand64({2, 3, 4}, 202), rand64({5, 4}, 203)});
  expect_gradcheck(
      [](auto& v) {
        return matmul(permute(v[0], {1, 0, 2}), v[1]);
      },
      {rand64({3, 2, 4}, 204), rand64({2, 4, 3}, 205)});
  expect_gradcheck([](auto& v) { return matmul(narrow(v[0], 1, 1, 3), v[1]); },
                   {rand64({2, 5}, 206), rand64({3, 2}, 207)});
  expect_gradcheck([](auto& v) { return matmul(select(v[0], 1, 2), v[1]); },
                   {rand64({3, 4}, 208), rand64({3, 2}, 209)}); // strided 1-D operand
  // The same Var on both sides: d(x x)/dx = g x^T + x^T g.
  expect_gradcheck([](auto& v) { return matmul(v[0], v[0]); }, {rand64({3, 3}, 210)});
}

TEST_CASE("gradcheck: bmm") {
  expect_gradcheck([](auto& v) { return bmm(v[0], v[1]); },
                   {rand64({2, 3, 4}, 300), rand64({2, 4, 5}, 301)});
  expect_gradcheck([](auto& v) { return bmm(v[0], v[1]); },
                   {rand64({1, 1, 1}, 302), rand64({1, 1, 1}, 303)});
  expect_gradcheck(
      [](auto& v) {
        return bmm(transpose(v[0], 1, 2), permute(v[1], {1, 0, 2}));
      },
      {rand64({3, 2, 3}, 304), rand64({2, 3, 1}, 305)});
}

TEST_CASE("gradcheck: linear with 1-D, 2-D and 3-D input, with and without bias") {
  const Fn with_bias = [](auto& v) { return linear(v[0], v[1], v[2]); };
  const Fn without_bias = [](auto& v) { return linear(v[0], v[1]); };
  expect_gradcheck(with_bias, {rand64({2, 3}, 400), rand64({4, 3}, 401), rand64({4}, 402)});
  expect_gradcheck(with_bias, {rand64({2, 3, 5}, 403), rand64({3, 5}, 404), rand64({3}, 405)});
  expect_gradcheck(without_bias, {rand64({2, 3, 5}, 406), rand64({3, 5}, 407)});
  expect_gradcheck(with_bias, {rand64({3}, 408), rand64({2, 3}, 409), rand64({2}, 410)});
  expect_gradcheck(with_bias, {rand64({1, 1}, 411), rand64({1, 1}, 412), rand64({1}, 413)});
  // Non-contiguous input (x stored transposed) and weight (a transposed (in, out) matrix).
  expect_gradcheck(
      [](auto& v) { return linear(transpose(v[0], 0, 1), transpose(v[1], 0, 1), v[2]); },
      {rand64({3, 2}, 414), rand64({3, 4}, 415), rand64({4}, 416)});
  expect_gradcheck(
      [](auto& v) {
        return linear(permute(v[0], {1, 0, 2}), v[1]);
      },
      {rand64({3, 2, 5}, 417), rand64({4, 5}, 418)});
}

TEST_CASE("linear equals matmul with the transposed weight plus the bias") {
  const Var x(rand64({2, 3, 5}, 500), true), w(rand64({4, 5}, 501), true),
      b(rand64({4}, 502), true);
  const Var y = linear(x, w, b);
  const Var ref = matmul(x, transpose(w, 0, 1)) + b;
  CHECK(test::normalized_error(y.value(), ref.value(), 1e-14, 1e-12) <= 1);
}

// ---- gradients of one operand ------------------------------------------------------------

TEST_CASE("matmul, bmm and linear: only the operands that need a gradient get one") {
  // L = sum(a b): dL/da[i][k] = sum_n b[k][n] (row sums of b), and b gets nothing.
  const Var a(rand64({2, 3}, 600), true);
  const Var b = mat({1, 2, 3, 4, 5, 6}, {3, 2});
  sum(matmul(a, b)).backward();
  test::check_values(a.grad(), {3, 7, 11, 3, 7, 11}, 0);
  CHECK_FALSE(b.grad().defined());

  // dL/db[k][n] = sum_m a[m][k] (column sums of a), a constant.
  const Var a2 = mat({1, 2, 3, 4, 5, 6}, {2, 3});
  const Var b2(rand64({3, 2}, 601), true);
  sum(matmul(a2, b2)).backward();
  test::check_values(b2.grad(), {5, 5, 7, 7, 9, 9}, 0);

  // bmm with only the right operand: dL/db[i][k][n] = sum_m a[i][m][k].
  const Var a3 = mat({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2});
  const Var b3(rand64({2, 2, 1}, 602), true);
  sum(bmm(a3, b3)).backward();
  test::check_values(b3.grad(), {4, 6, 12, 14}, 0);

  // linear with a frozen weight: dL/dx = sum over outputs of W rows, dL/db = rows of x.
  const Var x(rand64({3, 2}, 603), true);
  const Var w = mat({1, 2, 3, 4, 5, 6}, {3, 2});
  const Var bias(rand64({3}, 604), true);
  sum(linear(x, w, bias)).backward();
  test::check_values(x.grad(), {9, 12, 9, 12, 9, 12}, 0);
  test::check_values(bias.grad(), {3, 3, 3}, 0);
  CHECK_FALSE(w.grad().defined());
}

TEST_CASE("matmul: a weight shared across a broadcast batch gets the summed gradient") {
  // y = x W for x (2, 2, 3) and W (3, 1): dL/dW[k] = sum over all rows of x[.., k].
  const Var x(Tensor::arange(0, 12, 1, DType::Float64).reshape({2, 2, 3}), false);
  const Var w(rand64({3, 1}, 700), true);
  sum(matmul(x, w)).backward();
  CHECK(w.grad().shape() == Shape{3, 1});
  test::check_values(w.grad(), {0 + 3 + 6 + 9, 1 + 4 + 7 + 10, 2 + 5 + 8 + 11}, 0);
  // And broadcast on the left: a (3) shared by a batch of b (2, 3, 2).
  const Var a(rand64({3}, 701), true);
  const Var b(Tensor::ones({2, 3, 2}, DType::Float64));
  sum(matmul(a, b)).backward();
  test::check_values(a.grad(), {4, 4, 4}, 0);
}

// ---- errors --------------------------------------------------------------------------------

TEST_CASE("matrix products: bad shapes raise errors naming the op and the shapes") {
  const Var a(rand64({2, 3}, 800), true), b(rand64({4, 5}, 801), true);
  CHECK_THROWS_WITH_AS(matmul(a, b),
                       doctest::Contains("matmul: inner dims differ: [2, 3] x [4, 5]"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      matmul(Var(rand64({2, 2, 3}, 802)), Var(rand64({3, 3, 1}, 803))),
      doctest::Contains("matmul: batch dims do not broadcast: [2, 2, 3] x [3, 3, 1]"),
      std::invalid_argument);
  CHECK_THROWS_WITH_AS(matmul(Var(Tensor::scalar(1, DType::Float64)), a),
                       doctest::Contains("matmul"), std::invalid_argument);
  const Var f32(Tensor::ones({3, 2}, DType::Float32));
  CHECK_THROWS_WITH_AS(matmul(a, f32), doctest::Contains("matmul: inputs must share dtype"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(bmm(a, b), doctest::Contains("bmm: expected 3-D operands"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(bmm(Var(rand64({2, 2, 3}, 804)), Var(rand64({2, 4, 1}, 805))),
                       doctest::Contains("bmm: inner dims differ: [2, 2, 3] x [2, 4, 1]"),
                       std::invalid_argument);

  const Var x(rand64({5, 3}, 806)), w(rand64({4, 2}, 807)), bias(rand64({4}, 808));
  CHECK_THROWS_WITH_AS(linear(x, w, bias),
                       doctest::Contains("linear: input of shape [5, 3] does not match weight "
                                         "of shape [4, 2]"),
                       std::invalid_argument);
  const Var w_ok(rand64({4, 3}, 809));
  CHECK_THROWS_WITH_AS(linear(x, w_ok, Var(rand64({3}, 810))),
                       doctest::Contains("linear: bias of shape [3] does not match weight of "
                                         "shape [4, 3]"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(linear(x, Var(rand64({3}, 811))),
                       doctest::Contains("linear: weight must be 2-D"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(linear(Var(Tensor::scalar(1, DType::Float64)), w_ok),
                       doctest::Contains("linear: input of shape []"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(linear(x, Var(Tensor::ones({4, 3}, DType::Float32))),
                       doctest::Contains("linear: inputs must share dtype"), std::invalid_argument);
}
