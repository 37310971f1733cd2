// ops_reduce.cpp: sum, mean, max, min, argmax and sum_to_shape over any set of dims.
//
// Every reduction is brought to one form: permute the kept dims to the front and the reduced
// dims to the back, make that contiguous (a copy only when the permutation is not already the
// memory order), and view it as (outer = product of kept sizes, inner = product of reduced
// sizes). The CPU loop in tensor/cpu/reduce.cpp then reduces each row of `inner` elements.
#include <string>

#include "tensor/cpu/reduce.h"
#include "tensor/ops.h"

namespace ssm {

namespace {

// Which dims a reduction removes, and the shapes before and after.
struct ReducePlan {
  std::vector<bool> reduced; // per input dim
  Shape out_shape;           // with keepdim applied
  int64_t outer = 1, inner = 1;
};

ReducePlan plan_reduction(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim,
                          const char* op) {
  ReducePlan plan;
  const int64_t ndim = x.dim();
  plan.reduced.assign(ndim, dims.empty());
  for (int64_t d : dims) {
    const int64_t w = wrap_dim(d, ndim, op);
    if (plan.reduced[w])
      throw std::invalid_argument(std::string(op) + ": dim " + std::to_string(d) +
                                  " listed twice");
    plan.reduced[w] = true;
  }
  for (int64_t d = 0; d < ndim; ++d) {
    if (plan.reduced[d]) {
      plan.inner *= x.size(d);
      if (keepdim) plan.out_shape.push_back(1);
    } else {
      plan.outer *= x.size(d);
      plan.out_shape.push_back(x.size(d));
    }
  }
  return plan;
}

// x permuted to (kept dims..., reduced dims...) and made contiguous.
Tensor reduction_layout(const Tensor& x, const ReducePlan& plan) {
  std::vector<int64_t> order;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (!plan.reduced[d]) order.push_back(d);
  for (int64_t d = 0; d < x.dim(); ++d)
    if (plan.reduced[d]) order.push_back(d);
  return x.permute(order).contiguous();
}

Tensor reduce_op(cpu::ReduceKind kind, const Tensor& x, const std::vector<int64_t>& dims,
                 bool keepdim, const char* op) {
  check_defined(x, op);
  const ReducePlan plan = plan_reduction(x, dims, keepdim, op);
  if (kind != cpu::ReduceKind::Sum && plan.inner == 0 && plan.outer > 0)
    throw std::invalid_argument(std::string(op) + ": cannot reduce over an empty dim of " +
                                x.describe());
  Tensor out = Tensor::empty(plan.out_shape, x.dtype(), x.device());
  check_cpu(x, op);
  cpu::reduce(kind, reduction_layout(x, plan), plan.outer, plan.inner, out);
  return out;
}

} // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return reduce_op(cpu::ReduceKind::Sum, x, dims, keepdim, "sum");
}

Tensor max(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return reduce_op(cpu::ReduceKind::Max, x, dims, keepdim, "max");
}

Tensor min(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return reduce_op(cpu::ReduceKind::Min, x, dims, keepdim, "min");
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  check_defined(x, "mean");
  if (!is_floating(x.dtype()))
    throw std::invalid_argument("mean: expected a float32 or float64 tensor, got " +
                                x.describe());
  const ReducePlan plan = plan_reduction(x, dims, keepdim, "mean");
  return div(sum(x, dims, keepdim), static_cast<double>(plan.inner));
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  check_defined(x, "argmax");
  const ReducePlan plan = plan_reduction(x, {dim}, keepdim, "argmax");
  if (plan.inner == 0)
    throw std::invalid_argument("argmax: dim " + std::to_string(dim) + " of " + x.describe() +
                                " is empty");
  Tensor out = Tensor::empty(plan.out_shape, DType::Int64, x.device());
  check_cpu(x, "argmax");
  cpu::argmax(reduction_layout(x, plan), plan.outer, plan.inner, out);
  return out;
}

Tensor sum_to_shape(const Tensor& x, const Shape& shape) {
  check_defined(x, "sum_to_shape");
  if (x.shape() == shape) return x;
  const int64_t lead = x.dim() - static_cast<int64_t>(shape.size());
  if (lead < 0)
    throw std::invalid_argument("sum_to_shape: cannot sum " + shape_str(x.shape()) + " to " +
                                shape_str(shape) + " (target has more dims)");
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (d < lead) {
      dims.push_back(d);
    } else if (shape[d - lead] == 1 && x.size(d) != 1) {
      dims.push_back(d);
    } else if (shape[d - lead] != x.size(d)) {
      throw std::invalid_argument("sum_to_shape: " + shape_str(x.shape()) +
                                  " is not a broadcast of " + shape_str(shape));
    }
  }
  return sum(x, dims, true).reshape(shape);
}

} // namespace ssm
