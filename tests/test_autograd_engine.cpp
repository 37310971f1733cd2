// Tests of the reverse-mode engine itself (autograd/variable.cpp) and of the elementwise ops'
// gradients (autograd/ops_elementwise.cpp).
#include <doctest/doctest.h>

#include "autograd/functions.h"
#include "autograd/gradcheck.h"
#include "tensor/random.h"
#include "tests/helpers.h"

using namespace ssm;
using test::expect_gradcheck;
using test::rand64;

TEST_CASE("engine: gradient of a small expression matches the hand derivative") {
  // L = sum(x * w + x), dL/dx = w + 1, dL/dw = x.
  Var x(Tensor::from_values({1, 2, 3}, {3}, DType::Float64), true);
  Var w(Tensor::from_values({4, 5, 6}, {3}, DType::Float64), true);
  Var loss = sum(x * w + x);
  CHECK(loss.item() == doctest::Approx(1 * 4 + 2 * 5 + 3 * 6 + 6));
  loss.backward();
  test::check_values(x.grad(), {5, 6, 7});
  test::check_values(w.grad(), {1, 2, 3});
}

TEST_CASE("engine: a Var used twice accumulates both paths, and backward twice adds") {
  Var x(Tensor::from_values({3}, {1}, DType::Float64), true);
  Var y = x * x + x; // dy/dx = 2x + 1 = 7
  y.backward(true);
  test::check_values(x.grad(), {7});
  y.backward();
  test::check_values(x.grad(), {14});
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("engine: broadcasting is undone in the gradient") {
  Var a(rand64({2, 3}, 1), true);
  Var b(rand64({3}, 2), true);
  Var c(rand64({2, 1}, 3), true);
  sum(a * b + c).backward();
  CHECK(b.grad().shape() == Shape{3});
  CHECK(c.grad().shape() == Shape{2, 1});
  // dL/db_j = sum_i a_ij; dL/dc_i = 3.
  test::check_values(b.grad(), sum(a.value(), {0}).to_doubles(), 1e-12);
  test::check_values(c.grad(), {3, 3}, 1e-12);
}

TEST_CASE("engine: errors for freed graphs, non-scalar outputs, and mixed dtypes") {
  Var x(rand64({2}, 4), true);
  Var y = exp(x);
  Var loss = sum(y);
  loss.backward();
  CHECK_THROWS_WITH_AS(loss.backward(), doctest::Contains("already freed"), std::logic_error);
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("without a gradient"),
                       std::invalid_argument);
  Var f32(Tensor::ones({2}, DType::Float32), true);
  CHECK_THROWS_WITH_AS(add(x, f32), doctest::Contains("add"), std::invalid_argument);
  Var constant(Tensor::ones({2}, DType::Float64));
  CHECK_THROWS_AS(sum(constant).backward(), std::logic_error);
}

TEST_CASE("engine: NoGradGuard records nothing and detach cuts the graph") {
  Var x(rand64({3}, 5), true);
  {
    NoGradGuard guard;
    Var y = x * x;
    CHECK_FALSE(y.requires_grad());
    CHECK(y.is_leaf());
  }
  CHECK(grad_enabled());
  Var d = (x * 2.0).detach();
  CHECK_FALSE(d.requires_grad());
  Var z = sum(d * x); // only the x factor carries a gradient: dz/dx = d
  z.backward();
  test::check_values(x.grad(), d.value().to_doubles(), 1e-12);
}

TEST_CASE("engine: a long chain does not overflow the stack") {
  Var x(Tensor::from_values({1}, {1}, DType::Float64), true);
  Var y = x;
  for (int i = 0; i < 20000; ++i) y = y * 1.0;
  sum(y).backward();
  test::check_values(x.grad(), {1});
}

TEST_CASE("gradcheck: detects a wrong gradient") {
  // A deliberately wrong backward (2x instead of 3x^2) must fail the check.
  auto wrong_cube = [](const std::vector<Var>& v) {
    const Tensor xv = v[0].value();
    return make_result("wrong_cube", ssm::pow(xv, 3.0), {v[0]}, [=](const Tensor& g) {
      return std::vector<Tensor>{ssm::mul(g, ssm::mul(xv, 2.0))};
    });
  };
  GradcheckResult r = gradcheck(wrong_cube, {rand64({4}, 6, 0.5, 2)});
  CHECK_FALSE(r.ok);
  CHECK(r.report.find("FAIL") != std::string::npos);
  CHECK_THROWS_AS(gradcheck(wrong_cube, {Tensor::ones({2}, DType::Float32)}),
                  std::invalid_argument);
}

TEST_CASE("gradcheck: binary elementwise ops with broadcasting, size-1 and odd shapes") {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{3}, {3}}, {{2, 3}, {3}}, {{4, 1}, {1, 5}}, {{1}, {2, 3}}, {{3, 1, 2}, {1, 5, 1}}};
  uint64_t seed = 10;
  for (const auto& [sa, sb] : shapes) {
    CAPTURE(shape_str(sa));
    CAPTURE(shape_str(sb));
    const Tensor a = rand64(sa, seed++), b = rand64(sb, seed++);
    const Tensor bpos = rand64(sb, seed++, 0.5, 2);
    expect_gradcheck([](const std::vector<Var>& v) { return v[0] + v[1]; }, {a, b});
    expect_gradcheck([](const std::vector<Var>& v) { return v[0] - v[1]; }, {a, b});
    expect_gradcheck([](const std::vector<Var>& v) { return v[0] * v[1]; }, {a, b});
    expect_gradcheck([](const std::vector<Var>& v) { return v[0] / v[1]; }, {a, bpos});
    expect_gradcheck([](const std::vector<Var>& v) { return pow(v[1], v[0]); }, {a, bpos});
    const Tensor cond = binary_scalar(BinaryOp::Gt, rand64(sa, seed++), 0.0);
    expect_gradcheck([&](const std::vector<Var>& v) { return where(cond, v[0], v[1]); }, {a, b});
  }
}

TEST_CASE("gradcheck: unary elementwise ops") {
  using F = std::function<Var(const std::vector<Var>&)>;
  const std::vector<std::pair<const char*, F>> ops = {
      {"neg", [](auto& v) { return -v[0]; }},
      {"exp", [](auto& v) { return exp(v[0]); }},
      {"abs", [](auto& v) { return abs(v[0]); }},
      {"tanh", [](auto& v) { return tanh(v[0]); }},
      {"sigmoid", [](auto& v) { return sigmoid(v[0]); }},
      {"relu", [](auto& v) { return relu(v[0]); }},
      {"silu", [](auto& v) { return silu(v[0]); }},
      {"gelu_erf", [](auto& v) { return gelu(v[0], GeluForm::Erf); }},
      {"gelu_tanh", [](auto& v) { return gelu(v[0], GeluForm::Tanh); }},
      {"softplus", [](auto& v) { return softplus(v[0] * 10.0); }}, // reaches the x > 20 branch
      {"clamp", [](auto& v) { return clamp(v[0], -1.03, 1.07); }},
      {"add_scalar", [](auto& v) { return v[0] + 2.5; }},
      {"mul_scalar", [](auto& v) { return v[0] * -1.5; }},
      {"pow_scalar", [](auto& v) { return pow(v[0], 3.0); }},
      {"log", [](auto& v) { return log(abs(v[0])); }},
      {"sqrt", [](auto& v) { return sqrt(abs(v[0])); }},
      {"pow_negative", [](auto& v) { return pow(abs(v[0]), -0.5); }},
  };
  // Inputs avoid the kinks of abs/relu/clamp (|x| > 0.05 from them) so central differences
  // with eps 1e-6 never straddle one. Shapes: odd 3-d, size 1, 0-d, and a transposed view.
  for (const Tensor& raw : {rand64({2, 3, 5}, 20, -3, 3), rand64({1}, 23, -3, 3),
                            rand64({}, 24, -3, 3), rand64({4, 3}, 25, -3, 3).transpose(0, 1)}) {
    const Tensor x =
        ssm::where(binary_scalar(BinaryOp::Lt, ssm::abs(raw), 0.05), ssm::add(raw, 0.1), raw);
    for (const auto& [name, f] : ops) {
      CAPTURE(std::string(name));
      CAPTURE(shape_str(x.shape()));
      expect_gradcheck(f, {x});
    }
  }
  const Tensor x = rand64({2, 3, 5}, 20, -3, 3);
  const Tensor mask = binary_scalar(BinaryOp::Gt, rand64({2, 1, 5}, 22), 0.0);
  expect_gradcheck([&](auto& v) { return masked_fill(v[0], mask, -7.0); }, {x});
  expect_gradcheck([&](auto& v) { return masked_fill(v[0], mask.select(0, 0), 7.0); },
                   {rand64({3, 5}, 26).transpose(0, 1).transpose(0, 1)});
}

TEST_CASE("dropout: seeded, scaled, identity in eval; gradcheck with a fixed mask") {
  Tensor x = rand64({1000}, 30, 1, 2);
  Generator g1(7), g2(7);
  Var a = dropout(Var(x), 0.3, true, &g1);
  Var b = dropout(Var(x), 0.3, true, &g2);
  test::check_values(a.value(), b.value().to_doubles(), 0);
  int zeros = 0;
  for (int64_t i = 0; i < 1000; ++i) {
    double v = a.value().at({i});
    if (v == 0)
      ++zeros;
    else
      CHECK(v == doctest::Approx(x.at({i}) / 0.7));
  }
  CHECK(zeros > 240); // Binomial(1000, 0.3): mean 300, sd 14.5; 240..360 is beyond 4 sd
  CHECK(zeros < 360);
  CHECK(dropout(Var(x), 0.3, false).value().raw_data() == x.raw_data());
  CHECK_THROWS_AS(dropout(Var(x), 1.0, true), std::invalid_argument);
  // The same generator state gives the same mask in every evaluation of gradcheck.
  expect_gradcheck(
      [](auto& v) {
        Generator g(3);
        return dropout(v[0], 0.5, true, &g);
      },
      {rand64({3, 4}, 31)});
}

TEST_CASE("gradcheck: sum, mean, max over dims, keepdim, all dims") {
  const Tensor x = rand64({3, 4, 5}, 40);
  const std::vector<std::vector<int64_t>> dim_sets = {{}, {0}, {-1}, {0, 2}, {2, 1}};
  for (const auto& dims : dim_sets) {
    for (bool keepdim : {false, true}) {
      CAPTURE(dims.size());
      CAPTURE(keepdim);
      expect_gradcheck([&](auto& v) { return sum(v[0], dims, keepdim); }, {x});
      expect_gradcheck([&](auto& v) { return mean(v[0], dims, keepdim); }, {x});
      expect_gradcheck([&](auto& v) { return max(v[0], dims, keepdim); }, {x});
    }
  }
  expect_gradcheck([&](auto& v) { return sum(v[0]); }, {rand64({1}, 41)});
}

TEST_CASE("max: ties share the gradient evenly") {
  Var x(Tensor::from_values({1, 3, 3, 2}, {4}, DType::Float64), true);
  max(x).backward();
  test::check_values(x.grad(), {0, 0.5, 0.5, 0});
}

TEST_CASE("pow: gradients at 0 are the PyTorch limits, not NaN") {
  Var x(Tensor::from_values({0, 2}, {2}, DType::Float64), true);
  sum(pow(x, 0.0)).backward();
  test::check_values(x.grad(), {0, 0}, 0);
  Var base(Tensor::from_values({0, 2}, {2}, DType::Float64), true);
  Var exponent(Tensor::from_values({0, 3}, {2}, DType::Float64), true);
  sum(pow(base, exponent)).backward();
  test::check_values(base.grad(), {0, 12}, 1e-12);                    // e x^(e-1), 0 where e = 0
  test::check_values(exponent.grad(), {0, 8 * std::log(2.0)}, 1e-12); // y log x, 0 where x = 0
}

TEST_CASE("engine: gradients never alias a caller's buffer") {
  Tensor mine = Tensor::from_values({1, 1, 1}, {3}, DType::Float64);
  Var x(Tensor::from_values({1, 2, 3}, {3}, DType::Float64), true);
  x.set_grad(mine);
  sum(x * 2.0).backward();
  test::check_values(x.grad(), {3, 3, 3}, 0);
  test::check_values(mine, {1, 1, 1}, 0); // untouched
  Var y(Tensor::from_values({1, 2, 3}, {3}, DType::Float64), true);
  y.set_grad(Tensor::from_values({1}, {1}, DType::Float64).expand({3})); // a stride-0 view
  sum(y * Var(Tensor::from_values({1, 2, 3}, {3}, DType::Float64))).backward();
  test::check_values(y.grad(), {2, 3, 4}, 0);
}
