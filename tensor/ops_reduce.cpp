// ops_reduce.cpp: sum, mean, max, min, argmax and sum_to_shape over any set of dims.
//
// Every reduction is brought to one form, a contiguous tensor viewed as (pre, inner, post)
// with the reduced dims in the middle (see tensor/cpu/reduce.h). When x is contiguous and the
// reduced dims are adjacent (all trailing, all leading, or one block in between), that is a
// free view. Otherwise the kept dims are permuted to the front and the reduced dims to the
// back, and that permutation is packed once (post = 1).
#include <algorithm>
#include <string>

#include "tensor/cpu/reduce.h"
#include "tensor/ops.h"

#ifdef SSM_CUDA
#include "cuda/reduce.h"
#endif

namespace ssm {

namespace {

// Which dims a reduction removes, the output shape, and the (pre, inner, post) view.
struct ReducePlan {
  std::vector<bool> reduced; // per input dim
  Shape out_shape;           // with keepdim applied
  Tensor source;             // contiguous, viewed as (pre, inner, post)
  int64_t pre = 1, inner = 1, post = 1;
};

ReducePlan plan_reduction(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim,
                          const char* op) {
  ReducePlan plan;
  const int64_t ndim = x.dim();
  plan.reduced.assign(ndim, dims.empty());
  for (int64_t d : dims) {
    const int64_t w = wrap_dim(d, ndim, op);
    if (plan.reduced[w])
      throw std::invalid_argument(std::string(op) + ": dim " + std::to_string(d) + " listed twice");
    plan.reduced[w] = true;
  }
  int64_t first = ndim, last = -1; // the span of reduced dims
  for (int64_t d = 0; d < ndim; ++d) {
    if (plan.reduced[d]) {
      plan.inner *= x.size(d);
      first = std::min(first, d);
      last = d;
      if (keepdim) plan.out_shape.push_back(1);
    } else {
      plan.out_shape.push_back(x.size(d));
    }
  }
  bool adjacent = true;
  for (int64_t d = first; d <= last; ++d) adjacent = adjacent && plan.reduced[d];
  if (adjacent && x.is_contiguous()) {
    for (int64_t d = 0; d < first && d < ndim; ++d) plan.pre *= x.size(d);
    for (int64_t d = last + 1; d < ndim; ++d) plan.post *= x.size(d);
    plan.source = x;
    return plan;
  }
  std::vector<int64_t> order;
  for (int64_t d = 0; d < ndim; ++d)
    if (!plan.reduced[d]) order.push_back(d);
  for (int64_t d = 0; d < ndim; ++d)
    if (plan.reduced[d]) order.push_back(d);
  plan.source = x.permute(order).contiguous();
  plan.pre = x.numel() / std::max<int64_t>(plan.inner, 1);
  if (plan.inner == 0) plan.pre = numel_of(plan.out_shape);
  return plan;
}

Tensor reduce_op(cpu::ReduceKind kind, const Tensor& x, const std::vector<int64_t>& dims,
                 bool keepdim, const char* op) {
  check_defined(x, op);
  const ReducePlan plan = plan_reduction(x, dims, keepdim, op);
  Tensor out = Tensor::empty(plan.out_shape, x.dtype(), x.device());
  if (kind != cpu::ReduceKind::Sum && plan.inner == 0 && out.numel() > 0)
    throw std::invalid_argument(std::string(op) + ": cannot reduce over an empty dim of " +
                                x.describe());
  if (x.device().is_cuda()) {
#ifdef SSM_CUDA
    cuda::reduce(kind, plan.source, plan.pre, plan.inner, plan.post, out);
#else
    throw_no_cuda(op);
#endif
  } else {
    cpu::reduce(kind, plan.source, plan.pre, plan.inner, plan.post, out);
  }
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
    throw std::invalid_argument("mean: expected a float32 or float64 tensor, got " + x.describe());
  const Tensor total = sum(x, dims, keepdim);
  // The number of elements reduced into each output (numel ratio; 0 when x is empty).
  const int64_t reduced_dims_product = dims.empty() ? x.numel() : [&] {
    int64_t n = 1;
    for (int64_t d : dims) n *= x.size(d);
    return n;
  }();
  return div(total, static_cast<double>(reduced_dims_product));
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  check_defined(x, "argmax");
  const ReducePlan plan = plan_reduction(x, {dim}, keepdim, "argmax");
  if (plan.inner == 0)
    throw std::invalid_argument("argmax: dim " + std::to_string(dim) + " of " + x.describe() +
                                " is empty");
  Tensor out = Tensor::empty(plan.out_shape, DType::Int64, x.device());
  if (x.device().is_cuda()) {
#ifdef SSM_CUDA
    cuda::argmax(plan.source, plan.pre, plan.inner, plan.post, out);
#else
    throw_no_cuda("argmax");
#endif
  } else {
    cpu::argmax(plan.source, plan.pre, plan.inner, plan.post, out);
  }
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
