// ops_reduce.cpp: differentiable sum, mean and max over any set of dims.
//
// x (shape S) -> y (S with the reduced dims removed, or kept as size 1 with keepdim).
// Every backward first gives g the keepdim shape (size 1 at each reduced dim), which then
// broadcasts against x.
#include "autograd/functions.h"

namespace ssm {

// The keepdim shape of a reduction of `shape` over `dims` (empty = all dims).
static Shape keepdim_shape(const Shape& shape, const std::vector<int64_t>& dims, const char* op) {
  Shape kept = shape;
  const int64_t ndim = static_cast<int64_t>(shape.size());
  if (dims.empty()) {
    for (int64_t& s : kept) s = 1;
  } else {
    for (int64_t d : dims) kept[wrap_dim(d, ndim, op)] = 1;
  }
  return kept;
}

// y = sum_i x_i over the reduced dims: dy/dx_i = 1, so g is broadcast back over them.
Var sum(const Var& x, const std::vector<int64_t>& dims, bool keepdim) {
  const Shape x_shape = x.shape();
  const Shape g_shape = keepdim_shape(x_shape, dims, "sum");
  return make_result("sum", ssm::sum(x.value(), dims, keepdim), {x}, [=](const Tensor& g) {
    return std::vector<Tensor>{g.reshape(g_shape).expand(x_shape)};
  });
}

// y = (1/n) sum_i x_i: dy/dx_i = 1/n, n the number of elements reduced.
Var mean(const Var& x, const std::vector<int64_t>& dims, bool keepdim) {
  const Shape x_shape = x.shape();
  const Shape g_shape = keepdim_shape(x_shape, dims, "mean");
  const double n = static_cast<double>(numel_of(x_shape)) / static_cast<double>(numel_of(g_shape));
  return make_result("mean", ssm::mean(x.value(), dims, keepdim), {x}, [=](const Tensor& g) {
    return std::vector<Tensor>{ssm::mul(g.reshape(g_shape), 1.0 / n).expand(x_shape)};
  });
}

// y = max_i x_i: the gradient goes to the maximal elements, split evenly between ties
// (dy/dx_i = [x_i == y] / #ties), as torch.amax does.
Var max(const Var& x, const std::vector<int64_t>& dims, bool keepdim) {
  const Tensor xv = x.value();
  const Shape g_shape = keepdim_shape(xv.shape(), dims, "max");
  const Tensor y = ssm::max(xv, dims, keepdim);
  return make_result("max", y, {x}, [=](const Tensor& g) {
    const Tensor is_max = ssm::eq(xv, y.reshape(g_shape)); // (shape of x): 0 or 1
    const Tensor ties = ssm::sum(is_max, dims, true);      // (g_shape)
    return std::vector<Tensor>{ssm::mul(is_max, ssm::div(g.reshape(g_shape), ties))};
  });
}

} // namespace ssm
