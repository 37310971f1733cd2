// ops_elementwise.cpp: differentiable elementwise ops, forward and backward side by side.
//
// Shapes: inputs broadcast against each other (NumPy rules); the output has the broadcast
// shape, and each closure returns input gradients in that shape, which the engine sums back
// to each input's own shape. g denotes d(loss)/d(output), the closure's argument.
#include <cmath>

#include "autograd/functions.h"
#include "tensor/random.h"

namespace ssm {

// ---- arithmetic ----------------------------------------------------------------------------

// y = a + b: dy/da = 1, dy/db = 1.
Var add(const Var& a, const Var& b) {
  check_inputs("add", {a, b});
  return make_result("add", ssm::add(a.value(), b.value()), {a, b}, [](const Tensor& g) {
    return std::vector<Tensor>{g, g};
  });
}

// y = a - b: dy/da = 1, dy/db = -1.
Var sub(const Var& a, const Var& b) {
  check_inputs("sub", {a, b});
  return make_result("sub", ssm::sub(a.value(), b.value()), {a, b}, [](const Tensor& g) {
    return std::vector<Tensor>{g, ssm::neg(g)};
  });
}

// y = a * b: dy/da = b, dy/db = a.
Var mul(const Var& a, const Var& b) {
  check_inputs("mul", {a, b});
  const Tensor av = a.value(), bv = b.value();
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  return make_result("mul", ssm::mul(av, bv), {a, b}, [=](const Tensor& g) {
    return std::vector<Tensor>{need_a ? ssm::mul(g, bv) : Tensor(),
                               need_b ? ssm::mul(g, av) : Tensor()};
  });
}

// y = a / b: dy/da = 1 / b, dy/db = -a / b^2 = -y / b.
Var div(const Var& a, const Var& b) {
  check_inputs("div", {a, b});
  const Tensor bv = b.value();
  const Tensor y = ssm::div(a.value(), bv);
  const bool need_b = b.requires_grad();
  return make_result("div", y, {a, b}, [=](const Tensor& g) {
    const Tensor ga = ssm::div(g, bv);
    return std::vector<Tensor>{ga, need_b ? ssm::neg(ssm::mul(ga, y)) : Tensor()};
  });
}

// y = a + s: dy/da = 1.
Var add(const Var& a, double s) {
  return make_result("add_scalar", ssm::add(a.value(), s), {a},
                     [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

// y = a * s: dy/da = s.
Var mul(const Var& a, double s) {
  return make_result("mul_scalar", ssm::mul(a.value(), s), {a},
                     [=](const Tensor& g) { return std::vector<Tensor>{ssm::mul(g, s)}; });
}

// y = -x: dy/dx = -1.
Var neg(const Var& x) {
  return make_result("neg", ssm::neg(x.value()), {x},
                     [](const Tensor& g) { return std::vector<Tensor>{ssm::neg(g)}; });
}

// y = x^p: dy/dx = p x^(p-1); for p = 0 the gradient is 0 everywhere (also at x = 0, where
// the formula would read 0 * inf).
Var pow(const Var& x, double p) {
  const Tensor xv = x.value();
  return make_result("pow_scalar", ssm::pow(xv, p), {x}, [=](const Tensor& g) {
    if (p == 0) return std::vector<Tensor>{ssm::mul(g, 0.0)};
    return std::vector<Tensor>{ssm::mul(g, ssm::mul(ssm::pow(xv, p - 1), p))};
  });
}

// y = x^e: dy/dx = e x^(e-1), dy/de = y log(x) (defined for x > 0). As in PyTorch, the
// limits are taken where the formulas read 0 * inf: dy/dx = 0 where e = 0, dy/de = 0 where
// x = 0.
Var pow(const Var& x, const Var& e) {
  check_inputs("pow", {x, e});
  const Tensor xv = x.value(), ev = e.value();
  const Tensor y = ssm::pow(xv, ev);
  const bool need_x = x.requires_grad(), need_e = e.requires_grad();
  return make_result("pow", y, {x, e}, [=](const Tensor& g) {
    Tensor gx, ge;
    const Tensor zero = Tensor::scalar(0, xv.dtype(), xv.device());
    if (need_x)
      gx = ssm::where(ssm::eq(ev, zero), zero,
                      ssm::mul(g, ssm::mul(ev, ssm::pow(xv, ssm::sub(ev, 1.0)))));
    if (need_e) ge = ssm::where(ssm::eq(xv, zero), zero, ssm::mul(g, ssm::mul(y, ssm::log(xv))));
    return std::vector<Tensor>{gx, ge};
  });
}

// ---- unary functions -----------------------------------------------------------------------

// y = exp(x): dy/dx = y.
Var exp(const Var& x) {
  const Tensor y = ssm::exp(x.value());
  return make_result("exp", y, {x},
                     [=](const Tensor& g) { return std::vector<Tensor>{ssm::mul(g, y)}; });
}

// y = log(x): dy/dx = 1 / x.
Var log(const Var& x) {
  const Tensor xv = x.value();
  return make_result("log", ssm::log(xv), {x},
                     [=](const Tensor& g) { return std::vector<Tensor>{ssm::div(g, xv)}; });
}

// y = sqrt(x): dy/dx = 1 / (2 y).
Var sqrt(const Var& x) {
  const Tensor y = ssm::sqrt(x.value());
  return make_result("sqrt", y, {x}, [=](const Tensor& g) {
    return std::vector<Tensor>{ssm::div(g, ssm::mul(y, 2.0))};
  });
}

// y = |x|: dy/dx = sign(x), taken as 0 at x = 0.
Var abs(const Var& x) {
  const Tensor xv = x.value();
  return make_result("abs", ssm::abs(xv), {x}, [=](const Tensor& g) {
    return std::vector<Tensor>{ssm::mul(g, ssm::sign(xv))};
  });
}

// y = min(max(x, lo), hi): dy/dx = 1 where lo <= x <= hi, else 0 (PyTorch's convention at
// the boundaries).
Var clamp(const Var& x, double lo, double hi) {
  const Tensor xv = x.value();
  return make_result("clamp", ssm::clamp(xv, lo, hi), {x}, [=](const Tensor& g) {
    const Tensor inside =
        ssm::mul(binary_scalar(BinaryOp::Ge, xv, lo), binary_scalar(BinaryOp::Le, xv, hi));
    return std::vector<Tensor>{ssm::mul(g, inside)};
  });
}

// y = tanh(x): dy/dx = 1 - y^2.
Var tanh(const Var& x) {
  const Tensor y = ssm::tanh(x.value());
  return make_result("tanh", y, {x}, [=](const Tensor& g) {
    return std::vector<Tensor>{
        ssm::mul(g, ssm::sub(Tensor::scalar(1, y.dtype(), y.device()), ssm::square(y)))};
  });
}

// y = sigmoid(x) = 1 / (1 + e^-x): dy/dx = y (1 - y).
Var sigmoid(const Var& x) {
  const Tensor y = ssm::sigmoid(x.value());
  return make_result("sigmoid", y, {x}, [=](const Tensor& g) {
    return std::vector<Tensor>{
        ssm::mul(g, ssm::mul(y, ssm::sub(Tensor::scalar(1, y.dtype(), y.device()), y)))};
  });
}

// y = max(x, 0): dy/dx = 1 for x > 0, else 0.
Var relu(const Var& x) {
  const Tensor xv = x.value();
  return make_result("relu", ssm::relu(xv), {x}, [=](const Tensor& g) {
    return std::vector<Tensor>{ssm::mul(g, binary_scalar(BinaryOp::Gt, xv, 0.0))};
  });
}

// y = x s(x) with s = sigmoid: dy/dx = s (1 + x (1 - s)).
Var silu(const Var& x) {
  const Tensor xv = x.value();
  return make_result("silu", ssm::silu(xv), {x}, [=](const Tensor& g) {
    const Tensor s = ssm::sigmoid(xv);
    const Tensor one = Tensor::scalar(1, xv.dtype(), xv.device());
    return std::vector<Tensor>{
        ssm::mul(g, ssm::mul(s, ssm::add(one, ssm::mul(xv, ssm::sub(one, s)))))};
  });
}

// erf form: y = x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2:
//   dy/dx = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
// tanh form: y = x (1 + tanh(u)) / 2, u = k (x + c x^3), k = sqrt(2 / pi), c = 0.044715:
//   dy/dx = (1 + tanh u) / 2 + x (1 - tanh^2 u) k (1 + 3 c x^2) / 2.
Var gelu(const Var& x, GeluForm form) {
  const Tensor xv = x.value();
  if (form == GeluForm::Erf) {
    return make_result("gelu_erf", unary(UnaryOp::GeluErf, xv), {x}, [=](const Tensor& g) {
      const Tensor cdf = ssm::mul(ssm::add(ssm::erf(ssm::mul(xv, M_SQRT1_2)), 1.0), 0.5);
      const Tensor pdf =
          ssm::mul(ssm::exp(ssm::mul(ssm::square(xv), -0.5)), 1.0 / std::sqrt(2 * M_PI));
      return std::vector<Tensor>{ssm::mul(g, ssm::add(cdf, ssm::mul(xv, pdf)))};
    });
  }
  return make_result("gelu_tanh", unary(UnaryOp::GeluTanh, xv), {x}, [=](const Tensor& g) {
    const double k = std::sqrt(2.0 / M_PI), c = 0.044715;
    const Tensor x2 = ssm::square(xv);
    const Tensor t = ssm::tanh(ssm::mul(ssm::mul(ssm::add(ssm::mul(x2, c), 1.0), xv), k));
    const Tensor left = ssm::mul(ssm::add(t, 1.0), 0.5);
    const Tensor sech2 = ssm::sub(Tensor::scalar(1, xv.dtype(), xv.device()), ssm::square(t));
    const Tensor right =
        ssm::mul(ssm::mul(ssm::mul(xv, sech2), ssm::add(ssm::mul(x2, 3 * c), 1.0)), 0.5 * k);
    return std::vector<Tensor>{ssm::mul(g, ssm::add(left, right))};
  });
}

// y = log(1 + e^x) (x for x > 20): dy/dx = sigmoid(x) (1 for x > 20, matching the forward).
Var softplus(const Var& x) {
  const Tensor xv = x.value();
  return make_result("softplus", ssm::softplus(xv), {x}, [=](const Tensor& g) {
    const Tensor slope = ssm::where(binary_scalar(BinaryOp::Gt, xv, 20.0),
                                    Tensor::scalar(1, xv.dtype(), xv.device()), ssm::sigmoid(xv));
    return std::vector<Tensor>{ssm::mul(g, slope)};
  });
}

// ---- selection -----------------------------------------------------------------------------

// y = cond ? a : b: dy/da = cond, dy/db = 1 - cond.
Var where(const Tensor& cond, const Var& a, const Var& b) {
  check_inputs("where", {a, b});
  return make_result("where", ssm::where(cond, a.value(), b.value()), {a, b}, [=](const Tensor& g) {
    const Tensor zero = Tensor::scalar(0, g.dtype(), g.device());
    return std::vector<Tensor>{ssm::where(cond, g, zero), ssm::where(cond, zero, g)};
  });
}

// y = mask ? value : x: dy/dx = 1 - mask.
Var masked_fill(const Var& x, const Tensor& mask, double value) {
  return make_result(
      "masked_fill", ssm::masked_fill(x.value(), mask, value), {x},
      [=](const Tensor& g) { return std::vector<Tensor>{ssm::masked_fill(g, mask, 0.0)}; });
}

// y = x * m / (1 - p), m ~ Bernoulli(1 - p) drawn once per call: dy/dx = m / (1 - p).
Var dropout(const Var& x, double p, bool training, Generator* gen) {
  if (!(p >= 0 && p < 1))
    throw std::invalid_argument("dropout: p must be in [0, 1), got " + std::to_string(p));
  if (!training || p == 0) return x;
  dispatch_floating(x.dtype(), "dropout", [](auto) {});
  const Tensor keep =
      binary_scalar(BinaryOp::Ge, Tensor::rand(x.shape(), x.dtype(), gen, x.device()), p);
  const Tensor scale = ssm::mul(keep, 1.0 / (1.0 - p)); // (shape of x): 0 or 1/(1-p)
  return make_result("dropout", ssm::mul(x.value(), scale), {x},
                     [=](const Tensor& g) { return std::vector<Tensor>{ssm::mul(g, scale)}; });
}

} // namespace ssm
