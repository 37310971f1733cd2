// Tests of the softmax and loss ops (autograd/ops_loss.cpp) and of the layers
// (autograd/ops_nn.cpp): float64 gradient checks at several shapes, including size-1 and odd
// sizes; forward values against closed forms or hand computations; and the errors that bad
// shapes and indices raise.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "autograd/functions.h"
#include "autograd/gradcheck.h"
#include "tensor/random.h"
#include "tests/helpers.h"

using namespace ssm;
using test::expect_gradcheck;
using test::rand64;

namespace {

using Fn = std::function<Var(const std::vector<Var>&)>;

Tensor int64s(const std::vector<int64_t>& values, const Shape& shape) {
  return Tensor::from_vector(values, shape);
}

// conv1d straight from its definition (torch.nn.functional.conv1d), one output at a time.
Tensor conv1d_reference(const Tensor& x, const Tensor& w, const Tensor& bias, int64_t stride,
                        int64_t padding, int64_t dilation, int64_t groups) {
  const int64_t batch = x.size(0), length = x.size(2);
  const int64_t cout = w.size(0), cin_g = w.size(1), kernel = w.size(2);
  const int64_t out_length = (length + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1;
  Tensor y = Tensor::zeros({batch, cout, out_length}, DType::Float64);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t co = 0; co < cout; ++co)
      for (int64_t t = 0; t < out_length; ++t) {
        double acc = bias.defined() ? bias.at({co}) : 0.0;
        const int64_t grp = co / (cout / groups);
        for (int64_t c = 0; c < cin_g; ++c)
          for (int64_t k = 0; k < kernel; ++k) {
            const int64_t pos = t * stride + k * dilation - padding;
            if (pos >= 0 && pos < length) acc += w.at({co, c, k}) * x.at({b, grp * cin_g + c, pos});
          }
        y.set({b, co, t}, acc);
      }
  return y;
}

} // namespace

// ---- softmax and log_softmax ---------------------------------------------------------------

TEST_CASE("softmax: values of [1, 2, 3], rows sum to 1 along any dim") {
  const Tensor x = Tensor::from_values({1, 2, 3}, {3}, DType::Float64);
  // e^k / (e + e^2 + e^3) and k - log(e + e^2 + e^3) for k = 1, 2, 3.
  test::check_values(softmax(Var(x), 0).value(),
                     {0.09003057317038046, 0.24472847105479767, 0.6652409557748219}, 1e-12);
  test::check_values(log_softmax(Var(x), -1).value(),
                     {-2.4076059644443806, -1.4076059644443806, -0.4076059644443806}, 1e-12);
  const Tensor m = rand64({3, 4, 5}, 1, -3, 3);
  for (int64_t dim : {0, 1, 2, -1}) {
    CAPTURE(dim);
    const Tensor y = softmax(Var(m), dim).value();
    test::check_values(ssm::sum(y, {dim}), std::vector<double>(60 / m.size(dim), 1.0), 1e-12);
    // log_softmax = log(softmax).
    test::check_values(log_softmax(Var(m), dim).value(), ssm::log(y).to_doubles(), 1e-12);
  }
}

TEST_CASE("softmax: numerically stable for logits like 1000, in float32 and float64") {
  for (DType dtype : {DType::Float32, DType::Float64}) {
    CAPTURE(dtype_name(dtype));
    const Tensor big = Tensor::from_values({1000, 1001, 1002}, {3}, dtype);
    const Tensor small = Tensor::from_values({0, 1, 2}, {3}, dtype);
    test::check_values(softmax(Var(big), 0).value(), softmax(Var(small), 0).value().to_doubles(),
                       1e-6);
    test::check_values(log_softmax(Var(big), 0).value(),
                       log_softmax(Var(small), 0).value().to_doubles(), 1e-6);
    // A huge gap: the small entry underflows to exactly 0, its log_softmax stays finite.
    const Tensor gap = Tensor::from_values({-1000, 1000}, {2}, dtype);
    test::check_values(softmax(Var(gap), 0).value(), {0, 1}, 0);
    test::check_values(log_softmax(Var(gap), 0).value(), {-2000, 0}, 1e-6);
  }
}

TEST_CASE("gradcheck: softmax and log_softmax over dims 0, 1, -1 at several shapes") {
  const std::vector<Shape> shapes = {{2, 3, 4}, {1, 5}, {4, 1}, {3, 7}, {1}};
  uint64_t seed = 10;
  for (const Shape& shape : shapes) {
    const Tensor x = rand64(shape, seed++, -2, 2);
    for (int64_t dim : {0, 1, -1}) {
      if (dim >= static_cast<int64_t>(shape.size())) continue;
      CAPTURE(shape_str(shape));
      CAPTURE(dim);
      expect_gradcheck([&](auto& v) { return softmax(v[0], dim); }, {x});
      expect_gradcheck([&](auto& v) { return log_softmax(v[0], dim); }, {x});
    }
  }
  // A non-contiguous input (a transposed view) goes through the same path.
  const Tensor xt = rand64({4, 3}, seed++).transpose(0, 1);
  expect_gradcheck([](auto& v) { return softmax(v[0], 1); }, {xt});
}

TEST_CASE("softmax: bad dim and integer input name the op") {
  const Var x(rand64({2, 3}, 20));
  CHECK_THROWS_WITH_AS(softmax(x, 2), doctest::Contains("softmax"), std::out_of_range);
  CHECK_THROWS_WITH_AS(log_softmax(Var(Tensor::zeros({3}, DType::Int64)), 0),
                       doctest::Contains("log_softmax"), std::invalid_argument);
}

// ---- cross_entropy -------------------------------------------------------------------------

TEST_CASE("cross_entropy: uniform logits give log C; a hand-computed case; reductions") {
  const Tensor uniform = Tensor::zeros({4, 7}, DType::Float64);
  const Tensor targets = int64s({0, 6, 3, 3}, {4});
  CHECK(cross_entropy(Var(uniform), targets).item() == doctest::Approx(std::log(7.0)));
  CHECK(cross_entropy(Var(uniform), targets, -100, Reduction::Sum).item() ==
        doctest::Approx(4 * std::log(7.0)));
  const Tensor none = cross_entropy(Var(uniform), targets, -100, Reduction::None).value();
  CHECK(none.shape() == Shape{4});
  test::check_values(none, std::vector<double>(4, std::log(7.0)), 1e-12);

  // logits [1, 2, 3], target 2: log(e + e^2 + e^3) - 3.
  const Tensor one = Tensor::from_values({1, 2, 3}, {1, 3}, DType::Float64);
  CHECK(cross_entropy(Var(one), int64s({2}, {1})).item() ==
        doctest::Approx(0.4076059644443806).epsilon(1e-12));
  // Unbatched logits (C) with a 0-d target, as PyTorch allows.
  CHECK(cross_entropy(Var(one.reshape({3})), int64s({2}, {})).item() ==
        doctest::Approx(0.4076059644443806).epsilon(1e-12));

  // The gradient of the summed loss is softmax - one_hot, row by row.
  Var logits(rand64({2, 3}, 30), true);
  cross_entropy(logits, int64s({1, 0}, {2}), -100, Reduction::Sum).backward();
  const Tensor p = softmax(Var(logits.value()), 1).value();
  test::check_values(
      logits.grad(),
      {p.at({0, 0}), p.at({0, 1}) - 1, p.at({0, 2}), p.at({1, 0}) - 1, p.at({1, 1}), p.at({1, 2})},
      1e-12);
}

TEST_CASE("cross_entropy: ignore_index entries count for nothing; all ignored gives NaN") {
  const Tensor x = rand64({5, 4}, 31, -2, 2);
  const Tensor targets = int64s({1, -100, 3, -100, 0}, {5});
  const Tensor none = cross_entropy(Var(x), targets, -100, Reduction::None).value();
  CHECK(none.at({1}) == 0);
  CHECK(none.at({3}) == 0);
  const double sum = cross_entropy(Var(x), targets, -100, Reduction::Sum).item();
  CHECK(sum == doctest::Approx(none.at({0}) + none.at({2}) + none.at({4})).epsilon(1e-12));
  // Mean divides by the 3 targets that are not ignored.
  CHECK(cross_entropy(Var(x), targets).item() == doctest::Approx(sum / 3).epsilon(1e-12));
  // A custom ignore_index, here a valid class id: class 3 is then never a target.
  const Tensor custom = int64s({3, 3, 1, 2, 3}, {5});
  CHECK(cross_entropy(Var(x), custom, 3, Reduction::Sum).item() ==
        doctest::Approx(
            cross_entropy(Var(x.narrow(0, 2, 2)), int64s({1, 2}, {2}), -100, Reduction::Sum).item())
            .epsilon(1e-12));

  Var all_ignored(x, true);
  Var loss = cross_entropy(all_ignored, int64s({-100, -100, -100, -100, -100}, {5}));
  CHECK(std::isnan(loss.item()));
  loss.backward();
  test::check_values(all_ignored.grad(), std::vector<double>(20, 0.0), 0);
}

TEST_CASE("gradcheck: cross_entropy with (N, C) and (N, C, L) logits, ignore_index, reductions") {
  const Tensor x2 = rand64({4, 5}, 40, -2, 2);
  const Tensor t2 = int64s({4, 0, -100, 2}, {4});
  const Tensor x3 = rand64({2, 3, 5}, 41, -2, 2); // (N, C, L)
  const Tensor t3 = int64s({0, 2, 1, -100, 2, 1, 1, 0, -100, 2}, {2, 5});
  const Tensor x4 = rand64({1, 3, 1, 2}, 42, -2, 2); // (N, C, d1, d2) with size-1 dims
  const Tensor t4 = int64s({2, 0}, {1, 1, 2});
  const Tensor x1 = rand64({6}, 43, -2, 2); // unbatched (C)
  const Tensor t1 = int64s({5}, {});
  for (Reduction reduction : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    CAPTURE(static_cast<int>(reduction));
    expect_gradcheck([&](auto& v) { return cross_entropy(v[0], t2, -100, reduction); }, {x2});
    expect_gradcheck([&](auto& v) { return cross_entropy(v[0], t3, -100, reduction); }, {x3});
    expect_gradcheck([&](auto& v) { return cross_entropy(v[0], t4, -100, reduction); }, {x4});
    expect_gradcheck([&](auto& v) { return cross_entropy(v[0], t1, -100, reduction); }, {x1});
  }
}

TEST_CASE("cross_entropy: float32 matches float64") {
  const Tensor x = rand64({3, 4, 2}, 44, -5, 5);
  const Tensor t = int64s({0, 3, 2, 1, -100, 2}, {3, 2});
  Var x32(x.to(DType::Float32), true), x64(x, true);
  Var l32 = cross_entropy(x32, t), l64 = cross_entropy(x64, t);
  CHECK(l32.dtype() == DType::Float32);
  CHECK(l32.item() == doctest::Approx(l64.item()).epsilon(1e-6));
  l32.backward();
  l64.backward();
  CHECK(test::normalized_error(x32.grad(), x64.grad(), 1e-6, 1e-5) <= 1); // float32 rounding
}

TEST_CASE("cross_entropy: bad targets and shapes raise errors naming the op") {
  const Var x(rand64({3, 5}, 45));
  CHECK_THROWS_WITH_AS(cross_entropy(x, int64s({0, 7, 1}, {3})),
                       doctest::Contains("cross_entropy: target 7 is out of range for 5 classes"),
                       std::out_of_range);
  CHECK_THROWS_WITH_AS(cross_entropy(x, int64s({0, -1, 1}, {3})),
                       doctest::Contains("cross_entropy: target -1"), std::out_of_range);
  CHECK_THROWS_WITH_AS(cross_entropy(x, int64s({0, 5, 1}, {3})), doctest::Contains("5 classes"),
                       std::out_of_range);
  CHECK_THROWS_WITH_AS(cross_entropy(x, int64s({0, 1}, {2})),
                       doctest::Contains("cross_entropy: logits of shape [3, 5] need targets of "
                                         "shape [3], got [2]"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(cross_entropy(x, Tensor::zeros({3}, DType::Float64)),
                       doctest::Contains("int64"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(cross_entropy(Var(Tensor::scalar(1, DType::Float64)), int64s({0}, {})),
                       doctest::Contains("cross_entropy"), std::invalid_argument);
}

// ---- mse_loss ------------------------------------------------------------------------------

TEST_CASE("mse_loss: values for each reduction, gradients to input and target") {
  const Tensor a = Tensor::from_values({1, 2, 3}, {3}, DType::Float64);
  const Tensor b = Tensor::from_values({1, 3, 5}, {3}, DType::Float64);
  CHECK(mse_loss(Var(a), Var(b)).item() == doctest::Approx(5.0 / 3));
  CHECK(mse_loss(Var(a), Var(b), Reduction::Sum).item() == doctest::Approx(5.0));
  test::check_values(mse_loss(Var(a), Var(b), Reduction::None).value(), {0, 1, 4}, 0);
  Var va(a, true), vb(b, true);
  mse_loss(va, vb, Reduction::Sum).backward();
  test::check_values(va.grad(), {0, -2, -4}, 0); // 2 (a - b)
  test::check_values(vb.grad(), {0, 2, 4}, 0);

  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{2, 3}, {2, 3}}, {{2, 3}, {3}}, {{4, 1}, {1, 5}}, {{1}, {1}}, {{3, 1, 2}, {2}}};
  uint64_t seed = 50;
  for (const auto& [sa, sb] : shapes)
    for (Reduction reduction : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
      CAPTURE(shape_str(sa));
      CAPTURE(shape_str(sb));
      CAPTURE(static_cast<int>(reduction));
      expect_gradcheck([&](auto& v) { return mse_loss(v[0], v[1], reduction); },
                       {rand64(sa, seed++), rand64(sb, seed++)});
    }
  CHECK_THROWS_WITH_AS(mse_loss(Var(rand64({2, 3}, 60)), Var(rand64({4}, 61))),
                       doctest::Contains("mse_loss"), std::invalid_argument);
}

// ---- embedding -----------------------------------------------------------------------------

TEST_CASE("embedding: rows by index, repeated indices accumulate their gradients") {
  const Tensor w = rand64({4, 3}, 70);
  const Tensor idx = int64s({1, 1, 3, 1}, {2, 2});
  Var weight(w, true);
  Var y = embedding(weight, idx);
  CHECK(y.shape() == Shape{2, 2, 3});
  for (int64_t j = 0; j < 3; ++j) {
    CHECK(y.value().at({0, 1, j}) == w.at({1, j}));
    CHECK(y.value().at({1, 0, j}) == w.at({3, j}));
  }
  sum(y).backward();
  test::check_values(weight.grad(), {0, 0, 0, 3, 3, 3, 0, 0, 0, 1, 1, 1}, 0);
  // A 0-d index gives one row.
  CHECK(embedding(Var(w), int64s({2}, {})).shape() == Shape{3});

  expect_gradcheck([&](auto& v) { return embedding(v[0], idx); }, {w});
  expect_gradcheck(
      [&](auto& v) {
        return embedding(v[0], int64s({0, 4, 4, 2, 0, 4}, {3, 2}));
      },
      {rand64({5, 1}, 71)});
  expect_gradcheck([&](auto& v) { return embedding(v[0], int64s({0}, {1})); },
                   {rand64({1, 2}, 72)});
}

TEST_CASE("embedding: bad indices and shapes raise errors naming the op") {
  const Var w(rand64({4, 3}, 73));
  CHECK_THROWS_WITH_AS(embedding(w, int64s({0, 4}, {2})),
                       doctest::Contains("embedding: index 4 is out of range for 4 embeddings"),
                       std::out_of_range);
  CHECK_THROWS_WITH_AS(embedding(w, int64s({-1}, {1})), doctest::Contains("embedding: index -1"),
                       std::out_of_range);
  CHECK_THROWS_WITH_AS(embedding(w, Tensor::zeros({2}, DType::Float64)),
                       doctest::Contains("embedding: indices must be int64"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(embedding(Var(rand64({4}, 74)), int64s({0}, {1})),
                       doctest::Contains("embedding: weight must be 2-D"), std::invalid_argument);
}

// ---- layer_norm and rms_norm ---------------------------------------------------------------

TEST_CASE("layer_norm: output has mean 0 and variance 1; affine scales and shifts") {
  const Tensor x = rand64({3, 6}, 80, -5, 9);
  const Tensor y = layer_norm(Var(x), Var(), Var(), 0.0).value();
  const Tensor mean = ssm::mean(y, {1});
  const Tensor var = ssm::mean(ssm::square(y), {1}); // biased variance (mean is 0)
  for (int64_t r = 0; r < 3; ++r) {
    CHECK(std::fabs(mean.at({r})) < 1e-12);
    CHECK(var.at({r}) == doctest::Approx(1).epsilon(1e-12));
  }
  // Hand case: [1, 2, 3] has mean 2 and biased variance 2/3.
  const Tensor row = Tensor::from_values({1, 2, 3}, {3}, DType::Float64);
  const Tensor w = Tensor::from_values({1, 2, -1}, {3}, DType::Float64);
  const Tensor b = Tensor::from_values({0, 1, 0.5}, {3}, DType::Float64);
  const double s = std::sqrt(2.0 / 3 + 1e-5);
  test::check_values(layer_norm(Var(row), Var(w), Var(b)).value(), {-1 / s, 1, 0.5 - 1 / s}, 1e-12);
  // Over two dims, the (2, 3) trailing block is one group of six.
  const Tensor x3 = rand64({2, 2, 3}, 81, -3, 3);
  const Tensor y3 = layer_norm(Var(x3), Shape{2, 3}, Var(), Var(), 0.0).value();
  for (int64_t r = 0; r < 2; ++r) {
    const Tensor block = y3.select(0, r);
    CHECK(std::fabs(ssm::mean(block).item()) < 1e-12);
    CHECK(ssm::mean(ssm::square(block)).item() == doctest::Approx(1).epsilon(1e-12));
  }
}

TEST_CASE("gradcheck: layer_norm with 1-D and 2-D normalized shapes, with and without affine") {
  uint64_t seed = 90;
  struct Case {
    Shape x, normalized;
  };
  for (const Case& c : {Case{{3, 5}, {5}}, Case{{1, 4}, {4}}, Case{{2, 3, 4}, {3, 4}},
                        Case{{7}, {7}}, Case{{2, 1, 3}, {1, 3}}}) {
    CAPTURE(shape_str(c.x));
    CAPTURE(shape_str(c.normalized));
    const Tensor x = rand64(c.x, seed++, -2, 2);
    const Tensor w = rand64(c.normalized, seed++, 0.5, 1.5);
    const Tensor b = rand64(c.normalized, seed++);
    const Shape n = c.normalized;
    expect_gradcheck([](auto& v) { return layer_norm(v[0], v[1], v[2]); }, {x, w, b});
    expect_gradcheck([&](auto& v) { return layer_norm(v[0], n, Var(), Var()); }, {x});
    expect_gradcheck([&](auto& v) { return layer_norm(v[0], n, v[1], Var()); }, {x, w});
    expect_gradcheck([&](auto& v) { return layer_norm(v[0], n, Var(), v[1]); }, {x, b});
  }
  // A single normalised element: x-hat is 0 and the output is the bias, whatever x is.
  expect_gradcheck([](auto& v) { return layer_norm(v[0], v[1], v[2]); },
                   {rand64({3, 1}, seed++), rand64({1}, seed++), rand64({1}, seed++)});
}

TEST_CASE("rms_norm: values and gradcheck") {
  const Tensor row = Tensor::from_values({3, 4}, {1, 2}, DType::Float64);
  const Tensor w = Tensor::from_values({2, -1}, {2}, DType::Float64);
  const double rms = std::sqrt((9 + 16) / 2.0 + 1e-5);
  test::check_values(rms_norm(Var(row), Var(w)).value(), {6 / rms, -4 / rms}, 1e-12);
  test::check_values(rms_norm(Var(row), Var()).value(), {3 / rms, 4 / rms}, 1e-12);
  uint64_t seed = 100;
  for (const Shape& shape : std::vector<Shape>{{2, 5}, {1, 1}, {3, 1, 4}, {6}}) {
    CAPTURE(shape_str(shape));
    const Tensor x = rand64(shape, seed++, -2, 2);
    const Tensor weight = rand64({shape.back()}, seed++, 0.5, 1.5);
    expect_gradcheck([](auto& v) { return rms_norm(v[0], v[1]); }, {x, weight});
    expect_gradcheck([](auto& v) { return rms_norm(v[0], Var(), 1e-3); }, {x});
  }
}

TEST_CASE("layer_norm and rms_norm: shape errors name the op") {
  const Var x(rand64({2, 3}, 110));
  CHECK_THROWS_WITH_AS(layer_norm(x, Var(rand64({4}, 111)), Var()),
                       doctest::Contains("layer_norm: input of shape [2, 3] does not end with "
                                         "the normalized shape [4]"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(layer_norm(x, Shape{3}, Var(rand64({3}, 112)), Var(rand64({2}, 113))),
                       doctest::Contains("layer_norm: bias of shape [2]"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(rms_norm(x, Var(rand64({2}, 114))),
                       doctest::Contains("rms_norm: weight of shape [2]"), std::invalid_argument);
}

// ---- conv1d --------------------------------------------------------------------------------

TEST_CASE("conv1d: hand-computed cases") {
  // x = [1, 2, 3, 4], w = [1, 0, -1], bias 0.5, padding 1: the padded input is
  // [0, 1, 2, 3, 4, 0] and y[t] = xp[t] - xp[t + 2] + 0.5.
  const Tensor x = Tensor::from_values({1, 2, 3, 4}, {1, 1, 4}, DType::Float64);
  const Tensor w = Tensor::from_values({1, 0, -1}, {1, 1, 3}, DType::Float64);
  const Tensor b = Tensor::from_values({0.5}, {1}, DType::Float64);
  test::check_values(conv1d(Var(x), Var(w), Var(b), 1, 1).value(), {-1.5, -1.5, -1.5, 3.5}, 0);
  // x = [1..7], w = [1, 2], dilation 2, stride 2: y[t] = x[2t] + 2 x[2t + 2] (0-based),
  // output length floor((7 - 2 - 1) / 2) + 1 = 3.
  const Tensor x7 = Tensor::from_values({1, 2, 3, 4, 5, 6, 7}, {1, 1, 7}, DType::Float64);
  const Tensor w2 = Tensor::from_values({1, 2}, {1, 1, 2}, DType::Float64);
  test::check_values(conv1d(Var(x7), Var(w2), Var(), 2, 0, 2).value(), {7, 13, 19}, 0);
}

TEST_CASE("conv1d: matches the definition, and gradcheck, across stride/padding/dilation/groups") {
  struct Case {
    int64_t batch, cin, cout, length, kernel, stride, padding, dilation, groups;
    bool bias;
  };
  const std::vector<Case> cases = {
      {2, 3, 4, 7, 3, 1, 0, 1, 1, true},   // plain
      {1, 2, 3, 8, 3, 2, 1, 1, 1, true},   // stride 2, padding 1
      {2, 2, 2, 9, 3, 1, 2, 2, 1, false},  // dilation 2, padding 2, no bias
      {1, 4, 6, 5, 2, 1, 1, 1, 2, true},   // groups 2
      {2, 3, 3, 6, 3, 1, 1, 1, 3, true},   // depthwise: groups = channels
      {2, 3, 3, 5, 4, 1, 3, 1, 3, true},   // Mamba's causal depthwise: padding K - 1
      {1, 1, 1, 1, 1, 1, 0, 1, 1, true},   // all sizes 1
      {1, 2, 2, 10, 3, 3, 1, 2, 2, false}, // stride 3 leaving a tail, dilation, groups
  };
  uint64_t seed = 120;
  for (const Case& c : cases) {
    CAPTURE(c.batch);
    CAPTURE(c.cin);
    CAPTURE(c.cout);
    CAPTURE(c.length);
    CAPTURE(c.kernel);
    CAPTURE(c.stride);
    CAPTURE(c.padding);
    CAPTURE(c.dilation);
    CAPTURE(c.groups);
    const Tensor x = rand64({c.batch, c.cin, c.length}, seed++);
    const Tensor w = rand64({c.cout, c.cin / c.groups, c.kernel}, seed++);
    const Tensor b = c.bias ? rand64({c.cout}, seed++) : Tensor();
    const Tensor y =
        conv1d(Var(x), Var(w), c.bias ? Var(b) : Var(), c.stride, c.padding, c.dilation, c.groups)
            .value();
    const Tensor expected = conv1d_reference(x, w, b, c.stride, c.padding, c.dilation, c.groups);
    CHECK(y.shape() == expected.shape());
    CHECK(test::normalized_error(y, expected, 1e-14, 1e-12) <= 1);
    if (c.bias)
      expect_gradcheck(
          [&](auto& v) {
            return conv1d(v[0], v[1], v[2], c.stride, c.padding, c.dilation, c.groups);
          },
          {x, w, b});
    else
      expect_gradcheck(
          [&](auto& v) {
            return conv1d(v[0], v[1], Var(), c.stride, c.padding, c.dilation, c.groups);
          },
          {x, w});
  }
}

TEST_CASE("conv1d: the causal depthwise form never reads the future") {
  // groups = channels, padding = K - 1: output t (of the first L) depends on x[.., :t+1] only.
  const int64_t channels = 3, length = 6, kernel = 4;
  const Tensor x = rand64({1, channels, length}, 130);
  const Tensor w = rand64({channels, 1, kernel}, 131);
  const Tensor y = conv1d(Var(x), Var(w), Var(), 1, kernel - 1, 1, channels).value();
  CHECK(y.shape() == Shape{1, channels, length + kernel - 1});
  Tensor changed = x.clone();
  changed.set({0, 1, 3}, 100.0);
  const Tensor y2 = conv1d(Var(changed), Var(w), Var(), 1, kernel - 1, 1, channels).value();
  for (int64_t t = 0; t < length; ++t) {
    CAPTURE(t);
    CHECK((y2.at({0, 1, t}) != y.at({0, 1, t})) == (t >= 3)); // channel 1 from t = 3 on
    CHECK(y2.at({0, 0, t}) == y.at({0, 0, t}));               // other channels untouched
  }
}

TEST_CASE("conv1d: bad arguments raise errors naming the op and shapes") {
  const Var x(rand64({2, 4, 5}, 140));
  const Var w(rand64({6, 2, 3}, 141));
  CHECK_THROWS_WITH_AS(conv1d(x, w, Var(), 1, 0, 1, 3),
                       doctest::Contains("conv1d: in_channels 4 is not divisible by groups 3"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(conv1d(x, Var(rand64({6, 3, 3}, 142)), Var(), 1, 0, 1, 2),
                       doctest::Contains("weight [6, 3, 3]"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(conv1d(x, Var(rand64({5, 2, 3}, 143)), Var(), 1, 0, 1, 2),
                       doctest::Contains("conv1d: out_channels 5 is not divisible by groups 2"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(conv1d(x, w, Var(rand64({5}, 144)), 1, 0, 1, 2),
                       doctest::Contains("conv1d: bias of shape [5]"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(conv1d(x, Var(rand64({6, 2, 4}, 145)), Var(), 1, 0, 2, 2),
                       doctest::Contains("conv1d: output length"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(conv1d(Var(rand64({4, 5}, 146)), w, Var()),
                       doctest::Contains("input [4, 5]"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(conv1d(x, w, Var(), 0, 0, 1, 2), doctest::Contains("conv1d: stride"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(conv1d(x, w, Var(), 1, -1, 1, 2), doctest::Contains("conv1d: padding"),
                       std::invalid_argument);
}

// ---- scaled_dot_product_attention ----------------------------------------------------------

TEST_CASE("attention: one key returns v; causal first position returns v[0]") {
  const Tensor q = rand64({2, 4, 3}, 150);
  const Tensor k1 = rand64({2, 1, 3}, 151);
  const Tensor v1 = rand64({2, 1, 5}, 152);
  const Tensor out = scaled_dot_product_attention(Var(q), Var(k1), Var(v1), false).value();
  CHECK(out.shape() == Shape{2, 4, 5});
  test::check_values(out, v1.expand({2, 4, 5}).to_doubles(), 1e-12);

  const Tensor k = rand64({2, 6, 3}, 153), v = rand64({2, 6, 5}, 154);
  const Tensor causal = scaled_dot_product_attention(Var(q), Var(k), Var(v), true).value();
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t e = 0; e < 5; ++e) CHECK(causal.at({b, 0, e}) == doctest::Approx(v.at({b, 0, e})));

  // Against softmax(q k^T / sqrt(E)) v written out; causal row i over keys 0..i only.
  const Tensor scores = ssm::mul(matmul(q, k.transpose(-2, -1)), 1 / std::sqrt(3.0));
  const Tensor full = matmul(softmax(Var(scores), -1).value(), v);
  test::check_values(scaled_dot_product_attention(Var(q), Var(k), Var(v), false).value(),
                     full.to_doubles(), 1e-12);
  const Tensor rows3 = matmul(softmax(Var(scores.narrow(2, 0, 3)), -1).value(), v.narrow(1, 0, 3));
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t e = 0; e < 5; ++e)
      CHECK(causal.at({b, 2, e}) == doctest::Approx(rows3.at({b, 2, e})).epsilon(1e-12));
}

TEST_CASE("attention: causal with L != S follows tril(ones(L, S))") {
  // L = 4 queries, S = 2 keys: query 0 sees key 0, queries 1..3 see both (as non-causal).
  const Tensor q = rand64({4, 3}, 160), k = rand64({2, 3}, 161), v = rand64({2, 2}, 162);
  const Tensor causal = scaled_dot_product_attention(Var(q), Var(k), Var(v), true).value();
  const Tensor plain = scaled_dot_product_attention(Var(q), Var(k), Var(v), false).value();
  test::check_values(causal.narrow(0, 0, 1), v.narrow(0, 0, 1).to_doubles(), 1e-12);
  test::check_values(causal.narrow(0, 1, 3), plain.narrow(0, 1, 3).to_doubles(), 1e-12);
  // L = 2, S = 5: query 1 sees keys 0 and 1 only, so keys 2..4 do not matter.
  const Tensor q2 = rand64({2, 3}, 163), k5 = rand64({5, 3}, 164), v5 = rand64({5, 2}, 165);
  Tensor v5_changed = v5.clone();
  for (int64_t j = 2; j < 5; ++j) v5_changed.set({j, 0}, 50.0);
  test::check_values(
      scaled_dot_product_attention(Var(q2), Var(k5), Var(v5_changed), true).value(),
      scaled_dot_product_attention(Var(q2), Var(k5), Var(v5), true).value().to_doubles(), 1e-12);
}

TEST_CASE("gradcheck: attention causal and not, L != S, batch dims, custom scale") {
  struct Case {
    Shape q, k, v;
  };
  const std::vector<Case> cases = {
      {{3, 4}, {3, 4}, {3, 2}},                   // no batch dims
      {{2, 3, 4}, {2, 5, 4}, {2, 5, 3}},          // L < S
      {{2, 4, 2}, {2, 2, 2}, {2, 2, 3}},          // L > S
      {{2, 2, 3, 2}, {2, 2, 3, 2}, {2, 2, 3, 1}}, // two batch dims, Ev = 1
      {{2, 3, 4}, {5, 4}, {5, 3}},                // k and v broadcast over q's batch
      {{1, 1}, {1, 1}, {1, 1}},                   // all sizes 1
  };
  uint64_t seed = 170;
  for (const Case& c : cases) {
    CAPTURE(shape_str(c.q));
    CAPTURE(shape_str(c.k));
    CAPTURE(shape_str(c.v));
    const Tensor q = rand64(c.q, seed++), k = rand64(c.k, seed++), v = rand64(c.v, seed++);
    for (bool causal : {false, true}) {
      CAPTURE(causal);
      expect_gradcheck(
          [&](auto& x) { return scaled_dot_product_attention(x[0], x[1], x[2], causal); },
          {q, k, v});
    }
    expect_gradcheck(
        [&](auto& x) { return scaled_dot_product_attention(x[0], x[1], x[2], true, 0.7); },
        {q, k, v});
  }
}

TEST_CASE("attention: mismatched shapes raise errors naming the op") {
  const Var q(rand64({2, 3, 4}, 180));
  CHECK_THROWS_WITH_AS(
      scaled_dot_product_attention(q, Var(rand64({2, 5, 3}, 181)), Var(rand64({2, 5, 2}, 182)),
                                   false),
      doctest::Contains("scaled_dot_product_attention: q and k must have the same feature size"),
      std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      scaled_dot_product_attention(q, Var(rand64({2, 5, 4}, 183)), Var(rand64({2, 6, 2}, 184)),
                                   false),
      doctest::Contains("scaled_dot_product_attention: k and v must have the same number of keys"),
      std::invalid_argument);
  CHECK_THROWS_WITH_AS(scaled_dot_product_attention(q, Var(rand64({3, 5, 4}, 185)),
                                                    Var(rand64({3, 5, 2}, 186)), false),
                       doctest::Contains("batch dims do not broadcast"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(scaled_dot_product_attention(Var(rand64({4}, 187)), q, q, false),
                       doctest::Contains("at least 2 dims"), std::invalid_argument);
}

TEST_CASE("float32 forward and gradients match float64 for the norms, conv1d and attention") {
  // Each op runs in float32 and float64 on the same inputs; the float32 results (values and
  // every input gradient) must agree to float32 rounding, scaled up by the sums inside.
  using Op = std::function<Var(const std::vector<Var>&)>;
  struct Case {
    const char* name;
    Op op;
    std::vector<Tensor> inputs;
  };
  const std::vector<Case> cases = {
      {"layer_norm",
       [](auto& v) { return layer_norm(v[0], v[1], v[2]); },
       {rand64({5, 33}, 190, -3, 3), rand64({33}, 191), rand64({33}, 192)}},
      {"rms_norm",
       [](auto& v) { return rms_norm(v[0], v[1]); },
       {rand64({5, 33}, 193, -3, 3), rand64({33}, 194)}},
      {"conv1d",
       [](auto& v) { return conv1d(v[0], v[1], v[2], 2, 3, 2, 2); },
       {rand64({3, 4, 37}, 195), rand64({6, 2, 5}, 196), rand64({6}, 197)}},
      {"attention",
       [](auto& v) { return scaled_dot_product_attention(v[0], v[1], v[2], true); },
       {rand64({2, 9, 8}, 198), rand64({2, 11, 8}, 199), rand64({2, 11, 3}, 200)}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    std::vector<Var> v32, v64;
    for (const Tensor& t : c.inputs) {
      v32.emplace_back(t.to(DType::Float32), true);
      v64.emplace_back(t, true);
    }
    Var y32 = c.op(v32), y64 = c.op(v64);
    CHECK(y32.dtype() == DType::Float32);
    CHECK(test::normalized_error(y32.value(), y64.value(), 1e-5, 1e-4) <= 1);
    const Tensor g = rand64(y64.shape(), 201);
    y32.backward(g.to(DType::Float32));
    y64.backward(g);
    for (size_t i = 0; i < v32.size(); ++i) {
      CAPTURE(i);
      CHECK(test::normalized_error(v32[i].grad(), v64[i].grad(), 1e-4, 1e-4) <= 1);
    }
  }
}
