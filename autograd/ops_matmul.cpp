// ops_matmul.cpp: differentiable matrix products, forward and backward side by side.
//
// For one matrix product C = A B with A (M, K), B (K, N), C (M, N) and G = dL/dC:
//     dL/dA = G B^T   (M, N) x (N, K) -> (M, K)
//     dL/dB = A^T G   (K, M) x (M, N) -> (K, N)
// Batched products apply this per batch entry; an operand whose batch dims were broadcast was
// read by several entries, so its gradient is the sum over those entries (sum_to_shape).
// Transposes are views: the GEMM reads a transposed operand in place, no copy is made.
// Saved for backward: the operands (each only when the other one needs a gradient).
#include <string>

#include "autograd/functions.h"

namespace ssm {

// The product of the sizes of every dim but the last: the rows of t viewed as a matrix.
static int64_t leading_rows(const Shape& shape) {
  return numel_of(Shape(shape.begin(), shape.end() - 1));
}

// ---- matmul --------------------------------------------------------------------------------

// torch.matmul: a (..., M, K) x b (..., K, N) -> (batch..., M, N), batch dims broadcast; a 1-D
// a (K) acts as (1, K) and a 1-D b (K) as (K, 1), the stand-in dim removed from the result.
// Backward puts the stand-in dims back on a, b and g, applies the formulas above to the
// (batch..., M, N) gradient, sums broadcast batch dims and drops the stand-in dims again.
Var matmul(const Var& a, const Var& b) {
  check_inputs("matmul", {a, b});
  const Tensor av = a.value(), bv = b.value();
  const Tensor y = ssm::matmul(av, bv); // checks the shapes
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  const Tensor a_saved = need_b ? av : Tensor(), b_saved = need_a ? bv : Tensor();
  const Shape a_shape = av.shape(), b_shape = bv.shape();
  const bool a_vector = av.dim() == 1, b_vector = bv.dim() == 1;
  return make_result("matmul", y, {a, b}, [=](const Tensor& g) {
    Tensor g_mat = g;                                       // (batch..., M?, N?)
    if (b_vector) g_mat = g_mat.unsqueeze(g_mat.dim());     // (batch..., M?, 1)
    if (a_vector) g_mat = g_mat.unsqueeze(g_mat.dim() - 1); // (batch..., M, N)
    const int64_t N = g_mat.size(-1);
    Tensor ga, gb;
    if (need_a) {
      const Tensor b_mat = b_vector ? b_saved.unsqueeze(1) : b_saved; // (..., K, N)
      Shape a_mat_shape = a_shape;
      if (a_vector) a_mat_shape.insert(a_mat_shape.begin(), 1);        // (..., M, K)
      const Tensor full = ssm::matmul(g_mat, b_mat.transpose(-1, -2)); // (batch..., M, K)
      ga = sum_to_shape(full, a_mat_shape).reshape(a_shape);
    }
    if (need_b) {
      const Tensor a_mat = a_vector ? a_saved.unsqueeze(0) : a_saved; // (..., M, K)
      if (b_vector || b_shape.size() == 2) {
        // b has no batch dims, so g's batch dims are a's and b's gradient sums A^T G over
        // them: one product over all rows, (K, rows) x (rows, N) with rows = batch * M,
        // instead of a batch of (K, N) products summed afterwards.
        const int64_t rows = leading_rows(a_mat.shape());
        const Tensor a_rows = a_mat.reshape({rows, a_mat.size(-1)}); // (rows, K)
        const Tensor g_rows = g_mat.reshape({rows, N});              // (rows, N)
        gb = ssm::matmul(a_rows.transpose(0, 1), g_rows).reshape(b_shape);
      } else {
        const Tensor full = ssm::matmul(a_mat.transpose(-1, -2), g_mat); // (batch..., K, N)
        gb = sum_to_shape(full, b_shape);
      }
    }
    return std::vector<Tensor>{ga, gb};
  });
}

// ---- bmm -----------------------------------------------------------------------------------

// a (B, M, K) x b (B, K, N) -> (B, M, N): per batch entry, da = g b^T and db = a^T g.
Var bmm(const Var& a, const Var& b) {
  check_inputs("bmm", {a, b});
  const Tensor av = a.value(), bv = b.value();
  const Tensor y = ssm::bmm(av, bv); // checks the shapes
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  const Tensor a_saved = need_b ? av : Tensor(), b_saved = need_a ? bv : Tensor();
  return make_result("bmm", y, {a, b}, [=](const Tensor& g) {
    return std::vector<Tensor>{need_a ? ssm::bmm(g, b_saved.transpose(1, 2)) : Tensor(),
                               need_b ? ssm::bmm(a_saved.transpose(1, 2), g) : Tensor()};
  });
}

// ---- linear --------------------------------------------------------------------------------

// y = x W^T + b, x (..., in), W (out, in), b (out) -> y (..., out). The leading dims of x are
// folded into rows, X (rows, in), so forward and backward are one GEMM each:
//     Y  = X W^T    (rows, in) x (in, out), W^T a transposed view of W
//     dX = G W      (rows, out) x (out, in)
//     dW = G^T X    (out, rows) x (rows, in)
//     db = sum of G over rows
// with G = dL/dY (rows, out).
Var linear(const Var& x, const Var& weight, const Var& bias) {
  check_inputs("linear", {x, weight, bias});
  const Tensor xv = x.value(), wv = weight.value();
  if (wv.dim() != 2)
    throw std::invalid_argument(
        "linear: weight must be 2-D (out_features, in_features), got "
        "shape " +
        shape_str(wv.shape()));
  const int64_t out_features = wv.size(0), in_features = wv.size(1);
  if (xv.dim() == 0 || xv.size(-1) != in_features)
    throw std::invalid_argument("linear: input of shape " + shape_str(xv.shape()) +
                                " does not match weight of shape " + shape_str(wv.shape()) +
                                ": expected input (..., " + std::to_string(in_features) + ")");
  if (bias.defined() && bias.shape() != Shape{out_features})
    throw std::invalid_argument("linear: bias of shape " + shape_str(bias.shape()) +
                                " does not match weight of shape " + shape_str(wv.shape()) +
                                ": expected [" + std::to_string(out_features) + "]");

  const int64_t rows = leading_rows(xv.shape());
  const Tensor x_rows = xv.reshape({rows, in_features});   // (rows, in)
  Tensor y_rows = ssm::matmul(x_rows, wv.transpose(0, 1)); // (rows, out)
  if (bias.defined()) add_(y_rows, bias.value());          // own fresh buffer
  Shape y_shape = xv.shape();
  y_shape.back() = out_features;

  const bool need_x = x.requires_grad(), need_w = weight.requires_grad();
  const bool need_b = bias.requires_grad();
  const Tensor x_saved = need_w ? x_rows : Tensor(), w_saved = need_x ? wv : Tensor();
  const Shape x_shape = xv.shape();
  return make_result("linear", y_rows.view(y_shape), {x, weight, bias}, [=](const Tensor& g) {
    const Tensor g_rows = g.reshape({rows, out_features}); // (rows, out)
    return std::vector<Tensor>{need_x ? ssm::matmul(g_rows, w_saved).view(x_shape) : Tensor(),
                               need_w ? ssm::matmul(g_rows.transpose(0, 1), x_saved) : Tensor(),
                               need_b ? ssm::sum(g_rows, {0}) : Tensor()};
  });
}

} // namespace ssm
