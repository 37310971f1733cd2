// gradcheck.h: compares an op's backward with central finite differences in float64.
//
// For inputs x_1..x_k and output y = f(x_1..x_k), pick a fixed random upstream gradient g of
// y's shape and look at the scalar L = sum(y * g). Backward gives dL/dx_i analytically; the
// numeric estimate of each element is
//     dL/dx_i[j] ~ (L(x_i[j] + eps) - L(x_i[j] - eps)) / (2 eps),
// whose error is O(eps^2) from truncation plus O(machine_eps / eps) from rounding: with
// eps = 1e-6 in float64 both are around 1e-10 relative, far below the tolerance.
// An element passes when |analytic - numeric| <= atol + rtol * |numeric|.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "autograd/variable.h"

namespace ssm {

struct GradcheckOptions {
  double eps = 1e-6;    // finite-difference step (float64)
  double atol = 1e-5;   // absolute tolerance
  double rtol = 1e-3;   // relative tolerance
  uint64_t seed = 1234; // seed of the upstream gradient g
};

struct GradcheckResult {
  bool ok = true;
  double worst = 0;   // max over elements of |a - n| / (atol + rtol |n|); <= 1 passes
  std::string report; // one line per input: its shape and worst error; the first failure
};

// Every input must be a float64 tensor; each becomes a leaf Var that requires a gradient.
GradcheckResult gradcheck(const std::function<Var(const std::vector<Var>&)>& f,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& options = {});

} // namespace ssm
