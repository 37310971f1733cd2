// test_s4_block.cpp: the S4 layer and block: gradient checks through the whole layer (input
// and every parameter) for each kernel family, shapes, and bad input.
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/functions.h"
#include "s4/s4_block.h"
#include "tensor/ops.h"
#include "tests/helpers.h"

namespace ssm::s4 {
namespace {

S4Config small_config(S4Kernel kernel, bool zoh = true) {
  S4Config c;
  c.d_model = 3;
  c.d_state = 4;
  c.kernel = kernel;
  c.zoh = zoh;
  return c;
}

// d(sum(out * g))/d(every parameter) against a central difference along a random direction.
void check_parameter_gradients(const nn::Module& module, const std::function<Var()>& f,
                               uint64_t seed) {
  Generator gen(seed);
  const Tensor g = Tensor::randn(f().shape(), DType::Float64, &gen);
  for (const auto& [name, p] : module.named_parameters()) p.zero_grad();
  sum(mul(f(), Var(g))).backward();
  double analytic = 0;
  std::vector<Tensor> dirs;
  for (const auto& [name, p] : module.named_parameters()) {
    dirs.push_back(Tensor::randn(p.shape(), DType::Float64, &gen));
    analytic += sum(mul(p.grad(), dirs.back())).item();
  }
  auto value_at = [&](double eps) {
    std::vector<Tensor> saved;
    size_t i = 0;
    for (const auto& [name, p] : module.named_parameters()) {
      saved.push_back(p.value().clone());
      p.assign(add(p.value(), mul(dirs[i++], eps)));
    }
    NoGradGuard no_grad;
    const double v = sum(mul(f().value(), g)).item();
    i = 0;
    for (const auto& [name, p] : module.named_parameters()) p.assign(saved[i++]);
    return v;
  };
  const double numeric = (value_at(1e-6) - value_at(-1e-6)) / 2e-6;
  CHECK(std::fabs(analytic - numeric) <= 1e-6 * (1 + std::fabs(numeric)));
}

TEST_CASE("gradcheck S4 layer (float64): input and every parameter, each kernel family") {
  const std::pair<S4Kernel, bool> cases[] = {{S4Kernel::S4D_LegS, true},
                                             {S4Kernel::S4D_Lin, false},
                                             {S4Kernel::S4D_Inv, true},
                                             {S4Kernel::S4D_Real, true},
                                             {S4Kernel::DPLR_LegS, false}};
  for (const auto& [kernel, zoh] : cases) {
    INFO(s4_kernel_name(kernel) << (zoh ? " zoh" : " bilinear"));
    Generator gen(3);
    S4Layer layer(small_config(kernel, zoh), {DType::Float64, &gen});
    const Tensor u = Tensor::randn({2, 6, 3}, DType::Float64, &gen);
    test::expect_gradcheck([&](const std::vector<Var>& v) { return layer.forward(v[0]); }, {u});
    check_parameter_gradients(
        layer, [&] { return layer.forward(Var(u)); }, 4);
  }
}

TEST_CASE("S4 block: shapes, residual, eval-mode dropout") {
  S4Config c = small_config(S4Kernel::S4D_LegS);
  c.d_model = 8;
  c.d_state = 16;
  c.dropout = 0.5;
  Generator gen(5);
  S4Block block(c, {DType::Float32, &gen});
  block.eval();
  const Tensor x = Tensor::randn({2, 33, 8}, DType::Float32, &gen);
  const Var y = block.forward(Var(x));
  CHECK(y.shape() == Shape{2, 33, 8});
  // In eval mode the block is deterministic.
  CHECK(block.forward(Var(x)).value().to_doubles() == y.value().to_doubles());
  // Parameter names say where each lives.
  const Var A_imag = block.parameter("layer.A_imag");
  CHECK(A_imag.shape() == Shape{8, 8});
  CHECK(block.parameter("layer.B").shape() == Shape{8, 8, 2});
  // The kernel decays: an S4D-LegS kernel's late taps are smaller than its early ones.
  NoGradGuard no_grad;
  const Tensor K = block.layer.kernel(512).value(); // (8, 512)
  CHECK(max(abs(K.narrow(1, 384, 128))).item() < max(abs(K.narrow(1, 0, 128))).item());
}

TEST_CASE("S4 layer: bad configuration and input") {
  using test::check_error;
  check_error<std::invalid_argument>([] { parse_s4_kernel("s5"); },
                                     {"unknown S4 kernel \"s5\"", "s4d-legs", "dplr-legs"});
  CHECK(parse_s4_kernel("dplr-legs") == S4Kernel::DPLR_LegS);
  S4Config odd = small_config(S4Kernel::S4D_Lin);
  odd.d_state = 5;
  check_error<std::invalid_argument>([&] { S4Layer layer(odd, {}); },
                                     {"d_state must be even", "s4d-lin", "5"});
  S4Layer layer(small_config(S4Kernel::S4D_Real), {});
  check_error<std::invalid_argument>(
      [&] {
        layer.forward(Var(Tensor::zeros({2, 5, 4})));
      },
      {"S4Layer", "d_model = 3", "[2, 5, 4]"});
}

} // namespace
} // namespace ssm::s4
