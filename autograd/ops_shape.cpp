// ops_shape.cpp: differentiable shape ops, forward and backward side by side.
//
// Each op moves elements without changing their values, so its backward routes g, the
// gradient of the output, back to the input positions the elements came from:
//   views that keep every element (reshape, permute, transpose, squeeze, unsqueeze): the
//     inverse view of g, shape of x;
//   views that keep some elements (slice, narrow, select, the pieces of split): g written into
//     the same view of a zero tensor of x's shape, every skipped element getting gradient 0;
//   expand: g itself, of the expanded shape; the engine's sum_to_shape adds up the copies
//     that each broadcast element was read into;
//   joins (concat, stack): each input gets the part of g that its elements went to;
//   index_select: the adjoint scatter, index_add_ of g into zeros (a row picked twice gets
//     both rows of g).
// Forward results are views of x where the tensor layer makes views (reshape only when x is
// contiguous); nothing is saved for backward except shapes and the view's parameters.
#include <string>

#include "autograd/functions.h"

namespace ssm {

// ---- views that keep every element ---------------------------------------------------------

// y = x viewed as `shape` (same elements, row-major order): dy/dx is g viewed as x's shape.
Var reshape(const Var& x, const Shape& shape) {
  const Shape x_shape = x.shape();
  return make_result("reshape", x.value().reshape(shape), {x},
                     [=](const Tensor& g) { return std::vector<Tensor>{g.reshape(x_shape)}; });
}

// y.dim(i) = x.dim(dims[i]): g goes back through the inverse permutation,
// inverse[dims[i]] = i.
Var permute(const Var& x, const std::vector<int64_t>& dims) {
  const Tensor y = x.value().permute(dims); // checks dims
  std::vector<int64_t> inverse(dims.size());
  for (size_t i = 0; i < dims.size(); ++i)
    inverse[wrap_dim(dims[i], x.dim(), "permute")] = static_cast<int64_t>(i);
  return make_result("permute", y, {x},
                     [=](const Tensor& g) { return std::vector<Tensor>{g.permute(inverse)}; });
}

// y = x with dims dim0 and dim1 swapped: a swap is its own inverse.
Var transpose(const Var& x, int64_t dim0, int64_t dim1) {
  return make_result("transpose", x.value().transpose(dim0, dim1), {x},
                     [=](const Tensor& g) { return std::vector<Tensor>{g.transpose(dim0, dim1)}; });
}

// y = x without dim `dim` when its size is 1 (else y = x): g gets the size-1 dim back.
Var squeeze(const Var& x, int64_t dim) {
  const int64_t d = wrap_dim(dim, x.dim(), "squeeze");
  const bool removed = x.size(d) == 1;
  return make_result("squeeze", x.value().squeeze(d), {x}, [=](const Tensor& g) {
    return std::vector<Tensor>{removed ? g.unsqueeze(d) : g};
  });
}

// y = x with a new size-1 dim at `dim`: g drops it.
Var unsqueeze(const Var& x, int64_t dim) {
  const int64_t d = wrap_dim(dim, x.dim() + 1, "unsqueeze");
  return make_result("unsqueeze", x.value().unsqueeze(d), {x},
                     [=](const Tensor& g) { return std::vector<Tensor>{g.squeeze(d)}; });
}

// ---- views that keep some elements ---------------------------------------------------------

// The gradient of a view that picked some elements of x: zeros of x's shape, with g written
// where `pick` takes the view's elements from. `pick` maps a tensor of x's shape to the view.
template <typename Pick>
static Tensor scatter_into_zeros(const Tensor& g, const Shape& x_shape, const Pick& pick) {
  Tensor grad = Tensor::zeros(x_shape, g.dtype(), g.device());
  pick(grad).copy_(g);
  return grad;
}

// y = x[start:end:step] along `dim`: dy/dx is 1 at the picked elements, 0 elsewhere.
Var slice(const Var& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  const Shape x_shape = x.shape();
  return make_result("slice", x.value().slice(dim, start, end, step), {x}, [=](const Tensor& g) {
    return std::vector<Tensor>{scatter_into_zeros(
        g, x_shape, [&](const Tensor& t) { return t.slice(dim, start, end, step); })};
  });
}

// y = x[start : start + length] along `dim`, recorded as `op` (narrow, or a piece of split):
// dy/dx is 1 inside the window, 0 outside.
static Var narrow_as(const char* op, const Var& x, const Tensor& y, int64_t dim, int64_t start,
                     int64_t length) {
  const Shape x_shape = x.shape();
  return make_result(op, y, {x}, [=](const Tensor& g) {
    return std::vector<Tensor>{scatter_into_zeros(
        g, x_shape, [&](const Tensor& t) { return t.narrow(dim, start, length); })};
  });
}

Var narrow(const Var& x, int64_t dim, int64_t start, int64_t length) {
  return narrow_as("narrow", x, x.value().narrow(dim, start, length), dim, start, length);
}

// y = x[index] along `dim`, which y lacks: g fills that one hyperplane of zeros.
Var select(const Var& x, int64_t dim, int64_t index) {
  const Shape x_shape = x.shape();
  return make_result("select", x.value().select(dim, index), {x}, [=](const Tensor& g) {
    return std::vector<Tensor>{
        scatter_into_zeros(g, x_shape, [&](const Tensor& t) { return t.select(dim, index); })};
  });
}

// Piece k is x[start_k : start_k + sizes[k]] along `dim`, start_k = sizes[0] + ... +
// sizes[k-1]. The engine records one output per op, so each piece is its own narrow-like op;
// x's gradient is the sum of the pieces' zero-padded gradients, which the engine adds up
// (backward costs one zero tensor of x's shape per piece that carries a gradient).
std::vector<Var> split(const Var& x, const std::vector<int64_t>& sizes, int64_t dim) {
  const std::vector<Tensor> pieces = ssm::split(x.value(), sizes, dim); // checks the sizes
  const int64_t d = wrap_dim(dim, x.dim(), "split");
  std::vector<Var> result;
  result.reserve(pieces.size());
  int64_t start = 0;
  for (size_t k = 0; k < pieces.size(); ++k) {
    result.push_back(narrow_as("split", x, pieces[k], d, start, sizes[k]));
    start += sizes[k];
  }
  return result;
}

// ---- broadcasting --------------------------------------------------------------------------

// y = x broadcast to `shape` (size-1 and new leading dims repeated): each element of x is read
// into many elements of y, so dx = g summed over the repeats. The closure returns g in y's
// shape and the engine's sum_to_shape does that sum.
Var expand(const Var& x, const Shape& shape) {
  return make_result("expand", x.value().expand(shape), {x},
                     [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

// ---- joining -------------------------------------------------------------------------------

// y = [x_0, x_1, ...] along `dim`: x_k gets g[offset_k : offset_k + x_k.size(dim)] along dim.
Var concat(const std::vector<Var>& xs, int64_t dim) {
  check_inputs("concat", xs);
  std::vector<Tensor> values;
  for (const Var& x : xs) values.push_back(x.value());
  const Tensor y = ssm::concat(values, dim); // checks the list and the shapes
  const int64_t d = wrap_dim(dim, y.dim(), "concat");
  std::vector<int64_t> sizes;
  for (const Tensor& v : values) sizes.push_back(v.size(d));
  return make_result("concat", y, xs, [=](const Tensor& g) { return ssm::split(g, sizes, d); });
}

// y (shape of each x_k with a new dim of size k at `dim`) stacks the x_k: x_k gets g[k] along
// that dim.
Var stack(const std::vector<Var>& xs, int64_t dim) {
  check_inputs("stack", xs);
  std::vector<Tensor> values;
  for (const Var& x : xs) values.push_back(x.value());
  const Tensor y = ssm::stack(values, dim); // checks the list and the shapes
  const int64_t d = wrap_dim(dim, y.dim(), "stack");
  const int64_t count = static_cast<int64_t>(xs.size());
  return make_result("stack", y, xs, [=](const Tensor& g) {
    std::vector<Tensor> grads;
    for (int64_t k = 0; k < count; ++k) grads.push_back(g.select(d, k));
    return grads;
  });
}

// ---- indexing ------------------------------------------------------------------------------

// y.select(dim, i) = x.select(dim, index[i]): dx.select(dim, index[i]) += g.select(dim, i),
// so rows picked several times add up their gradients and rows never picked get 0.
Var index_select(const Var& x, int64_t dim, const Tensor& index) {
  const Shape x_shape = x.shape();
  const Tensor y = ssm::index_select(x.value(), dim, index); // checks dim and index
  const int64_t d = wrap_dim(dim, x.dim(), "index_select");
  return make_result("index_select", y, {x}, [=](const Tensor& g) {
    Tensor grad = Tensor::zeros(x_shape, g.dtype(), g.device());
    index_add_(grad, d, index, g);
    return std::vector<Tensor>{grad};
  });
}

} // namespace ssm
