// Tests of autograd/nn.h (modules, names, initialisations) and autograd/optim.h (SGD, AdamW,
// clipping, schedules), with update values computed by hand from PyTorch's formulas.
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/nn.h"
#include "autograd/optim.h"
#include "tests/helpers.h"

using namespace ssm;

namespace {

struct Block : nn::Module {
  nn::Linear proj;
  nn::LayerNorm norm;
  Block(nn::Init init) : proj(4, 3, true, init), norm({3}, 1e-5, true, init) {
    register_module("proj", proj);
    register_module("norm", norm);
  }
};

struct Net : nn::Module {
  nn::Embedding embed;
  Block block0, block1;
  Var scale;
  Net(nn::Init init) : embed(10, 4, init), block0(init), block1(init) {
    register_module("embed", embed);
    register_module("layers.0", block0);
    register_module("layers.1", block1);
    scale = register_parameter("scale", Tensor::ones({1}, init.dtype));
  }
};

// One scalar parameter with a chosen gradient.
Var scalar_param(double value, double grad) {
  Var p(Tensor::from_values({value}, {1}, DType::Float64), true);
  p.set_grad(Tensor::from_values({grad}, {1}, DType::Float64));
  return p;
}

} // namespace

TEST_CASE("nn: dotted parameter names, counts, lookup") {
  Net net({});
  std::vector<std::string> names;
  for (auto& [name, p] : net.named_parameters()) names.push_back(name);
  const std::vector<std::string> expected = {"scale",
                                             "embed.weight",
                                             "layers.0.proj.weight",
                                             "layers.0.proj.bias",
                                             "layers.0.norm.weight",
                                             "layers.0.norm.bias",
                                             "layers.1.proj.weight",
                                             "layers.1.proj.bias",
                                             "layers.1.norm.weight",
                                             "layers.1.norm.bias"};
  CHECK(names == expected);
  CHECK(net.num_parameters() == 1 + 40 + 2 * (12 + 3 + 3 + 3));
  CHECK(net.parameter("layers.1.proj.bias").shape() == Shape{3});
  CHECK_THROWS_WITH_AS(net.parameter("layers.2.proj.bias"),
                       doctest::Contains("layers.0.proj.weight"), std::out_of_range);
}

TEST_CASE("nn: PyTorch default initialisations") {
  Generator gen(1);
  nn::Linear fc(100, 50, true, {DType::Float64, &gen});
  const double bound = 1.0 / std::sqrt(100.0);
  CHECK(ssm::max(ssm::abs(fc.weight.value())).item() <= bound);
  CHECK(ssm::max(ssm::abs(fc.weight.value())).item() > 0.9 * bound); // fills the interval
  CHECK(ssm::max(ssm::abs(fc.bias.value())).item() <= bound);
  nn::Conv1d conv(8, 8, 4, 1, 3, 1, 8, true, {DType::Float64, &gen});
  CHECK(conv.weight.shape() == Shape{8, 1, 4});
  CHECK(ssm::max(ssm::abs(conv.weight.value())).item() <= 0.5); // 1/sqrt(1*4)
  nn::Embedding emb(200, 50, {DType::Float64, &gen});
  const double m = ssm::mean(emb.weight.value()).item();
  const double sd = std::sqrt(ssm::mean(ssm::square(emb.weight.value())).item() - m * m);
  CHECK(std::fabs(m) < 0.02); // 10000 N(0,1) samples: sd of the mean is 0.01
  CHECK(std::fabs(sd - 1) < 0.03);
  nn::RMSNorm rms(6);
  test::check_values(rms.weight.value(), {1, 1, 1, 1, 1, 1}, 0);
  CHECK_THROWS_AS(nn::Conv1d(6, 4, 3, 1, 0, 1, 4), std::invalid_argument);
  CHECK_THROWS_AS(nn::Linear(0, 3), std::invalid_argument);
  CHECK_THROWS_AS(nn::Dropout(1.5), std::invalid_argument);
}

TEST_CASE("nn: train/eval propagates to children and switches dropout") {
  struct WithDropout : nn::Module {
    nn::Dropout drop{0.5};
    WithDropout() { register_module("drop", drop); }
  } m;
  Var x(Tensor::ones({100}, DType::Float64));
  m.eval();
  CHECK_FALSE(m.drop.is_training());
  test::check_values(m.drop.forward(x).value(), std::vector<double>(100, 1.0), 0);
  m.train();
  CHECK(ssm::min(m.drop.forward(x).value()).item() == 0);
}

TEST_CASE("optim: AdamW matches PyTorch's update for two steps, with decoupled decay") {
  Var p = scalar_param(1.0, 0.5);
  optim::AdamW adam({{"w", p}}, {0.1, 0.9, 0.999, 1e-8, 0.01, {}});
  adam.step();
  CHECK(p.value().item() == doctest::Approx(0.899000002).epsilon(1e-12));
  p.set_grad(Tensor::from_values({-0.25}, {1}, DType::Float64));
  adam.step();
  CHECK(p.value().item() == doctest::Approx(0.8714672987058463).epsilon(1e-12));
}

TEST_CASE("optim: AdamW no_decay excludes parameters by name") {
  Var w = scalar_param(1.0, 0.0), b = scalar_param(1.0, 0.0);
  optim::AdamW adam({{"layer.weight", w}, {"layer.bias", b}},
                    {0.1, 0.9, 0.999, 1e-8, 0.5, {"bias"}});
  CHECK(adam.decays("layer.weight"));
  CHECK_FALSE(adam.decays("layer.bias"));
  adam.step(); // zero gradient: only decay moves a parameter
  CHECK(w.value().item() == doctest::Approx(0.95).epsilon(1e-12));
  CHECK(b.value().item() == 1.0);
}

TEST_CASE("optim: SGD with momentum, weight decay and Nesterov") {
  Var p = scalar_param(1.0, 0.5);
  optim::SGD sgd({{"w", p}}, {0.1, 0.9, 0.1, false});
  sgd.step();
  CHECK(p.value().item() == doctest::Approx(0.94).epsilon(1e-12));
  p.set_grad(Tensor::from_values({-0.25}, {1}, DType::Float64));
  sgd.step();
  CHECK(p.value().item() == doctest::Approx(0.9016).epsilon(1e-12));

  Var q = scalar_param(1.0, 0.5);
  optim::SGD nesterov({{"w", q}}, {0.1, 0.9, 0.1, true});
  nesterov.step();
  q.set_grad(Tensor::from_values({-0.25}, {1}, DType::Float64));
  nesterov.step();
  CHECK(q.value().item() == doctest::Approx(0.868066).epsilon(1e-12));

  Var r = scalar_param(1.0, 0.5); // no momentum: plain gradient descent
  optim::SGD plain({{"w", r}}, {0.2});
  plain.step();
  CHECK(r.value().item() == doctest::Approx(0.9).epsilon(1e-12));
  CHECK_THROWS_AS(optim::SGD({{"w", r}}, {0.1, 0.0, 0.0, true}), std::invalid_argument);
}

TEST_CASE("optim: parameters without a gradient are skipped; zero_grad clears") {
  Var p = scalar_param(2.0, 1.0), q(Tensor::from_values({3.0}, {1}, DType::Float64), true);
  optim::SGD sgd({{"p", p}, {"q", q}}, {0.5});
  sgd.step();
  CHECK(p.value().item() == 1.5);
  CHECK(q.value().item() == 3.0);
  sgd.zero_grad();
  CHECK_FALSE(p.grad().defined());
}

TEST_CASE("optim: clip_grad_norm scales all gradients by one factor") {
  Var a = scalar_param(0, 3), b(Tensor::zeros({1}, DType::Float64), true);
  b.set_grad(Tensor::from_values({4}, {1}, DType::Float64));
  const double norm = optim::clip_grad_norm({a, b}, 1.0);
  CHECK(norm == doctest::Approx(5));
  CHECK(a.grad().item() == doctest::Approx(0.6).epsilon(1e-6));
  CHECK(b.grad().item() == doctest::Approx(0.8).epsilon(1e-6));
  CHECK(optim::clip_grad_norm({a, b}, 10.0) == doctest::Approx(1).epsilon(1e-5));
  CHECK(a.grad().item() == doctest::Approx(0.6).epsilon(1e-6)); // below max: unchanged
  CHECK_THROWS_AS(optim::clip_grad_norm({a}, 0), std::invalid_argument);
}

TEST_CASE("optim: warmup + cosine schedule") {
  optim::WarmupCosineLR schedule(1.0, 10, 110, 0.1);
  CHECK(schedule.lr_at(0) == doctest::Approx(0.1));
  CHECK(schedule.lr_at(9) == doctest::Approx(1.0));
  CHECK(schedule.lr_at(10) == doctest::Approx(1.0));
  CHECK(schedule.lr_at(60) == doctest::Approx(0.55)); // halfway: (1 + cos(pi/2)) / 2
  CHECK(schedule.lr_at(110) == doctest::Approx(0.1));
  CHECK(schedule.lr_at(500) == doctest::Approx(0.1));
  CHECK(optim::ConstantLR(0.3).lr_at(1000) == 0.3);
  CHECK_THROWS_AS(optim::WarmupCosineLR(1, 20, 10), std::invalid_argument);
}

TEST_CASE("optim: a parameter assigned a non-contiguous value is updated element by element") {
  Var p(Tensor::zeros({2, 3}, DType::Float64), true);
  optim::SGD sgd({{"p", p}}, {1.0});
  // A transposed view and a stride-0 expansion: assign packs both.
  p.assign(Tensor::from_values({1, 2, 3, 4, 5, 6}, {3, 2}, DType::Float64).transpose(0, 1));
  CHECK(p.value().is_contiguous());
  p.set_grad(Tensor::ones({2, 3}, DType::Float64));
  sgd.step();
  test::check_values(p.value(), {0, 2, 4, 1, 3, 5}, 0);
  p.assign(Tensor::from_values({7}, {1, 1}, DType::Float64).expand({2, 3}));
  p.set_grad(Tensor::ones({2, 3}, DType::Float64));
  sgd.step();
  test::check_values(p.value(), {6, 6, 6, 6, 6, 6}, 0);
}
