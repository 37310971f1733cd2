// helpers.h: small comparisons shared by the test files.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace ssm::test {

// max_i |a_i - b_i| / (atol + rtol * |b_i|): <= 1 means every element is within tolerance.
inline double normalized_error(const Tensor& a, const Tensor& b, double atol, double rtol) {
  REQUIRE(a.shape() == b.shape());
  std::vector<double> va = a.to_doubles(), vb = b.to_doubles();
  double worst = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    const double d = std::fabs(va[i] - vb[i]);
    // Equal values pass even at zero tolerance (0 / 0 would read as NaN).
    const double e = d == 0 ? 0 : d / (atol + rtol * std::fabs(vb[i]));
    if (!(e <= worst)) worst = e; // NaN propagates as a failure
  }
  return worst;
}

// Checks every value of `t` against `expected` (row-major): relative tolerance `tol`
// (doctest::Approx), or bit-exact equality when tol is 0.
inline void check_values(const Tensor& t, const std::vector<double>& expected, double tol = 1e-6) {
  std::vector<double> got = t.to_doubles();
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    if (tol == 0)
      CHECK(got[i] == expected[i]);
    else
      CHECK(got[i] == doctest::Approx(expected[i]).epsilon(tol));
  }
}

// 0, 1, 2, ... laid out row-major in `shape`: element [i][j][k] of (A, B, C) is i*B*C + j*C + k.
inline Tensor iota(const Shape& shape, DType dtype = DType::Float32) {
  return Tensor::arange(0, static_cast<double>(numel_of(shape)), 1, dtype).reshape(shape);
}

// A float64 tensor of values uniform in [lo, hi), drawn from its own generator seeded `seed`.
inline Tensor rand64(const Shape& shape, uint64_t seed, double lo = -1, double hi = 1) {
  Generator gen(seed);
  return Tensor::uniform(shape, lo, hi, DType::Float64, &gen);
}

// Gradient-checks f at `inputs` with the default tolerances (autograd/gradcheck.h); on failure
// the report names each input's worst error and the first failing element.
inline void expect_gradcheck(const std::function<Var(const std::vector<Var>&)>& f,
                             const std::vector<Tensor>& inputs) {
  GradcheckResult r = gradcheck(f, inputs);
  INFO(r.report);
  CHECK(r.ok);
}

// Runs f, expecting an exception of type E whose message contains every string of `parts`.
template <typename E>
void check_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  bool thrown = false;
  try {
    f();
  } catch (const E& e) {
    thrown = true;
    const std::string message = e.what();
    INFO("message: " << message);
    for (const std::string& part : parts) CHECK(message.find(part) != std::string::npos);
  }
  CHECK(thrown);
}

} // namespace ssm::test
