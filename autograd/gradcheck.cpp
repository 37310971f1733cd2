#include "autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "tensor/random.h"

namespace ssm {

// L = sum(f(inputs) * upstream), evaluated without recording a graph.
static double weighted_output(const std::function<Var(const std::vector<Var>&)>& f,
                              const std::vector<Tensor>& values, const Tensor& upstream) {
  NoGradGuard no_grad;
  std::vector<Var> vars;
  for (const Tensor& t : values) vars.emplace_back(t, false);
  return sum(mul(f(vars).value(), upstream)).item();
}

GradcheckResult gradcheck(const std::function<Var(const std::vector<Var>&)>& f,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& options) {
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].dtype() != DType::Float64)
      throw std::invalid_argument("gradcheck: input " + std::to_string(i) + " is " +
                                  inputs[i].describe() + "; gradient checks run in float64");

  // Own contiguous copies, perturbed in place below.
  std::vector<Tensor> values;
  for (const Tensor& t : inputs) values.push_back(t.clone());

  std::vector<Var> leaves;
  for (const Tensor& t : values) leaves.emplace_back(t.clone(), true);
  Var output = f(leaves);
  Generator gen(options.seed);
  const Tensor upstream = Tensor::randn(output.shape(), DType::Float64, &gen);
  output.backward(upstream);

  GradcheckResult result;
  std::ostringstream report;
  for (size_t i = 0; i < values.size(); ++i) {
    const Tensor analytic = leaves[i].grad().defined()
                                ? leaves[i].grad()
                                : Tensor::zeros(values[i].shape(), DType::Float64);
    double* x = values[i].data<double>();
    double worst = 0;
    std::string first_failure;
    for (int64_t j = 0; j < values[i].numel(); ++j) {
      const double saved = x[j];
      x[j] = saved + options.eps;
      const double plus = weighted_output(f, values, upstream);
      x[j] = saved - options.eps;
      const double minus = weighted_output(f, values, upstream);
      x[j] = saved;
      const double numeric = (plus - minus) / (2 * options.eps);
      const double a = analytic.reshape({-1}).at({j});
      const double err =
          std::fabs(a - numeric) / (options.atol + options.rtol * std::fabs(numeric));
      if (!(err <= worst)) worst = err;
      if (!(err <= 1) && first_failure.empty()) {
        std::ostringstream s;
        s << "; first failure at element " << j << ": analytic " << a << " vs numeric " << numeric;
        first_failure = s.str();
      }
    }
    report << "input " << i << " " << shape_str(values[i].shape()) << ": worst error " << worst
           << (worst <= 1 ? " (pass)" : " (FAIL)") << first_failure << "\n";
    if (!(worst <= 1)) result.ok = false;
    if (!(worst <= result.worst)) result.worst = worst;
  }
  result.report = report.str();
  return result;
}

} // namespace ssm
