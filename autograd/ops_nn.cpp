// ops_nn.cpp: differentiable layers: embedding, layer_norm, rms_norm, conv1d and
// scaled_dot_product_attention. Each is one op with a fused, hand-written backward. The CPU
// loops of the norms and of conv1d are in tensor/cpu/nn_norm.cpp and tensor/cpu/nn_conv.cpp
// (their headers spell out the math of forward and backward), their CUDA kernels, of the same
// names, in cuda/nn_norm.cu and cuda/nn_conv.cu; embedding and attention use the raw index
// and matmul ops, and attention the softmax loops of tensor/cpu/nn_softmax.cpp (CUDA:
// cuda/nn_softmax.cu).
//
// g denotes d(loss)/d(output), the closure's argument. Shapes:
//   embedding:   weight (V, D), indices int64 (...) -> (..., D)
//   layer_norm:  x (..., normalized_shape), weight and bias (normalized_shape) or undefined
//   rms_norm:    x (..., n), weight (n) or undefined
//   conv1d:      x (B, C_in, L), weight (C_out, C_in / G, K), bias (C_out) -> (B, C_out, L_out)
//   attention:   q (..., L, E), k (..., S, E), v (..., S, Ev) -> (..., L, Ev); the batch dims
//                (...) broadcast against each other
//
// Saved for backward: embedding keeps the indices; the norms keep x, the weight and one mean
// and one 1/sigma per row (x-hat is recomputed); conv1d keeps x and the weight; attention
// keeps q, k, v and the probabilities P (..., L, S).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "autograd/functions.h"
#include "tensor/cpu/index.h"
#include "tensor/cpu/nn_conv.h"
#include "tensor/cpu/nn_norm.h"
#include "tensor/cpu/nn_softmax.h"

#ifdef SSM_CUDA
#include "cuda/nn_conv.h"
#include "cuda/nn_norm.h"
#include "cuda/nn_softmax.h"
#endif

namespace ssm {

namespace {
void check_given(const Var& v, const char* what, const char* op) {
  if (!v.defined()) throw std::invalid_argument(std::string(op) + ": " + what + " is undefined");
}

// The value of an optional parameter Var, contiguous and viewed as `shape`; undefined when the
// Var is.
Tensor param_as(const Var& v, const Shape& shape) {
  return v.defined() ? v.value().contiguous().view(shape) : Tensor();
}

// A new tensor of `shape` like `like` when `needed`, else undefined (a gradient to skip).
Tensor empty_if(bool needed, const Shape& shape, const Tensor& like) {
  return needed ? Tensor::empty(shape, like.dtype(), like.device()) : Tensor();
}

Tensor view_if_defined(const Tensor& t, const Shape& shape) {
  return t.defined() ? t.view(shape) : Tensor();
}

// The number of rows of a (..., n) tensor: the product of every dim but the last.
int64_t rows_of(const Tensor& t) { return numel_of(Shape(t.shape().begin(), t.shape().end() - 1)); }

// The fused layer_norm / rms_norm op: x viewed as (rows, n) with n = numel_of(norm_shape).
Var norm_op(cpu::NormKind kind, const char* op, const Var& x, const Shape& norm_shape,
            const Var& weight, const Var& bias, double eps) {
  const Tensor& xv = x.value();
  const int64_t n = numel_of(norm_shape);
  const Shape lead(xv.shape().begin(), xv.shape().end() - norm_shape.size());
  const int64_t rows = numel_of(lead);

  const Tensor x2 = xv.contiguous().view({rows, n});                    // (rows, n)
  const Tensor w = param_as(weight, {n});                               // (n) or undefined
  const Tensor b = param_as(bias, {n});                                 // (n) or undefined
  Tensor y = Tensor::empty({rows, n}, xv.dtype(), xv.device());         // (rows, n)
  Tensor mean = empty_if(kind == cpu::NormKind::LayerNorm, {rows}, xv); // (rows)
  Tensor rstd = Tensor::empty({rows}, xv.dtype(), xv.device());         // (rows)
  if (xv.device().is_cuda()) {
#ifdef SSM_CUDA
    cuda::norm_forward(kind, x2, w, b, eps, y, mean, rstd);
#else
    throw_no_cuda(op);
#endif
  } else {
    cpu::norm_forward(kind, x2, w, b, eps, y, mean, rstd);
  }

  const Shape x_shape = xv.shape();
  const bool need_x = x.requires_grad(), need_w = weight.requires_grad(),
             need_b = bias.requires_grad();
  return make_result(op, y.view(x_shape), {x, weight, bias}, [=](const Tensor& g) {
    Tensor dx = empty_if(need_x, {rows, n}, x2);      // (rows, n)
    Tensor dw = empty_if(need_w, {n}, x2);            // (n)
    Tensor db = empty_if(need_b, {n}, x2);            // (n)
    const Tensor g2 = g.contiguous().view({rows, n}); // (rows, n)
    if (x2.device().is_cuda()) {
#ifdef SSM_CUDA
      cuda::norm_backward(kind, x2, w, mean, rstd, g2, dx, dw, db);
#else
      throw_no_cuda(op);
#endif
    } else {
      cpu::norm_backward(kind, x2, w, mean, rstd, g2, dx, dw, db);
    }
    return std::vector<Tensor>{view_if_defined(dx, x_shape), view_if_defined(dw, norm_shape),
                               view_if_defined(db, norm_shape)};
  });
}

} // namespace

// ---- embedding -----------------------------------------------------------------------------

// y[p, :] = weight[indices[p], :] for every position p of indices:
//   dweight[v, :] = sum of g[p, :] over the positions p with indices[p] = v
// (a repeated index collects the gradient of every position that read it).
Var embedding(const Var& weight, const Tensor& indices) {
  const char* op = "embedding";
  check_given(weight, "weight", op);
  check_defined(indices, op);
  const Tensor& w = weight.value();
  if (w.dim() != 2)
    throw std::invalid_argument(
        "embedding: weight must be 2-D (num_embeddings, embedding_dim), "
        "got shape " +
        shape_str(w.shape()));
  if (indices.dtype() != DType::Int64)
    throw std::invalid_argument("embedding: indices must be int64, got " + indices.describe());
  if (indices.device() != w.device())
    throw std::invalid_argument("embedding: indices on " + indices.device().str() + ", weight on " +
                                w.device().str());
  const int64_t num_embeddings = w.size(0), dim = w.size(1);
  const Tensor flat = indices.reshape({indices.numel()}); // (P), P positions
  // CUDA indices are checked on a host copy (cuda/index.h says why).
  if (const std::optional<int64_t> bad =
          cpu::first_index_out_of_range(flat.to(Device::cpu()), num_embeddings))
    throw std::out_of_range("embedding: index " + std::to_string(*bad) + " is out of range for " +
                            std::to_string(num_embeddings) + " embeddings (expected 0 <= index < " +
                            std::to_string(num_embeddings) + ")");
  Shape out_shape = indices.shape();
  out_shape.push_back(dim);
  const Tensor y = index_select(w, 0, flat).view(out_shape); // (..., D)
  return make_result(op, y, {weight}, [=](const Tensor& g) {
    Tensor dw = Tensor::zeros({num_embeddings, dim}, g.dtype(), g.device()); // (V, D)
    index_add_(dw, 0, flat, g.reshape({flat.numel(), dim}));
    return std::vector<Tensor>{dw};
  });
}

// ---- normalisation -------------------------------------------------------------------------

// layer_norm over the trailing dims `normalized_shape` (math and derivative in
// tensor/cpu/nn_norm.h):
//   y = xhat w + b,  xhat = (x - mu) / sigma,  sigma = sqrt(var + eps), var biased
//   dx = (1 / sigma) (gh - mean(gh) - xhat mean(gh xhat)),  gh = g w
//   dw = sum over rows of g xhat,  db = sum over rows of g
Var layer_norm(const Var& x, const Shape& normalized_shape, const Var& weight, const Var& bias,
               double eps) {
  const char* op = "layer_norm";
  check_given(x, "input", op);
  check_inputs(op, {x, weight, bias});
  check_floating(x.value(), op);
  const Shape& x_shape = x.shape();
  const size_t k = normalized_shape.size();
  if (k == 0)
    throw std::invalid_argument("layer_norm: the normalized shape must have at least one dim");
  if (x_shape.size() < k || !std::equal(normalized_shape.begin(), normalized_shape.end(),
                                        x_shape.end() - static_cast<int64_t>(k)))
    throw std::invalid_argument("layer_norm: input of shape " + shape_str(x_shape) +
                                " does not end with the normalized shape " +
                                shape_str(normalized_shape));
  auto check_param = [&](const Var& param, const char* name) {
    if (param.defined() && param.shape() != normalized_shape)
      throw std::invalid_argument(
          std::string("layer_norm: ") + name + " of shape " + shape_str(param.shape()) +
          " does not match the normalized shape " + shape_str(normalized_shape));
  };
  check_param(weight, "weight");
  check_param(bias, "bias");
  return norm_op(cpu::NormKind::LayerNorm, op, x, normalized_shape, weight, bias, eps);
}

// The normalised dims are the weight's (or the bias's) shape; the last dim without either.
Var layer_norm(const Var& x, const Var& weight, const Var& bias, double eps) {
  check_given(x, "input", "layer_norm");
  if (x.dim() == 0 && !weight.defined() && !bias.defined())
    throw std::invalid_argument("layer_norm: a 0-d input has no dim to normalise");
  const Shape normalized_shape = weight.defined() ? weight.shape()
                                 : bias.defined() ? bias.shape()
                                                  : Shape{x.size(-1)};
  return layer_norm(x, normalized_shape, weight, bias, eps);
}

// rms_norm over the last dim (math and derivative in tensor/cpu/nn_norm.h):
//   y = xhat w,  xhat = x r,  r = 1 / sqrt(mean(x^2) + eps)
//   dx = r (gh - xhat mean(gh xhat)),  gh = g w;   dw = sum over rows of g xhat
// An undefined weight means no scale.
Var rms_norm(const Var& x, const Var& weight, double eps) {
  const char* op = "rms_norm";
  check_given(x, "input", op);
  check_inputs(op, {x, weight});
  check_floating(x.value(), op);
  if (x.dim() == 0) throw std::invalid_argument("rms_norm: a 0-d input has no dim to normalise");
  const Shape norm_shape{x.size(-1)};
  if (weight.defined() && weight.shape() != norm_shape)
    throw std::invalid_argument("rms_norm: weight of shape " + shape_str(weight.shape()) +
                                " does not match the last dim of the input of shape " +
                                shape_str(x.shape()) + " (expected " + shape_str(norm_shape) + ")");
  return norm_op(cpu::NormKind::RmsNorm, op, x, norm_shape, weight, Var(), eps);
}

// ---- convolution ---------------------------------------------------------------------------

// y[b, co, t] = bias[co] + sum_{c, k} w[co, c, k] x[b, grp C_in/G + c, t S + k D - P]; its
// three gradients (dx, dw, db) are written out in tensor/cpu/nn_conv.h.
Var conv1d(const Var& x, const Var& weight, const Var& bias, int64_t stride, int64_t padding,
           int64_t dilation, int64_t groups) {
  const char* op = "conv1d";
  check_given(x, "input", op);
  check_given(weight, "weight", op);
  check_inputs(op, {x, weight, bias});
  check_floating(x.value(), op);
  const Tensor& xv = x.value();
  const Tensor& wv = weight.value();
  const std::string shapes = "input " + shape_str(xv.shape()) + ", weight " + shape_str(wv.shape());
  auto fail = [&](const std::string& what) {
    throw std::invalid_argument("conv1d: " + what + " (" + shapes + ")");
  };
  if (xv.dim() != 3) fail("input must be 3-D (batch, in_channels, length)");
  if (wv.dim() != 3) fail("weight must be 3-D (out_channels, in_channels / groups, kernel)");
  if (stride < 1) fail("stride must be >= 1, got " + std::to_string(stride));
  if (padding < 0) fail("padding must be >= 0, got " + std::to_string(padding));
  if (dilation < 1) fail("dilation must be >= 1, got " + std::to_string(dilation));
  if (groups < 1) fail("groups must be >= 1, got " + std::to_string(groups));

  cpu::Conv1dShape s;
  s.batch = xv.size(0);
  s.in_channels = xv.size(1);
  s.length = xv.size(2);
  s.out_channels = wv.size(0);
  s.kernel = wv.size(2);
  s.stride = stride;
  s.padding = padding;
  s.dilation = dilation;
  s.groups = groups;
  if (s.in_channels % groups != 0)
    fail("in_channels " + std::to_string(s.in_channels) + " is not divisible by groups " +
         std::to_string(groups));
  if (s.out_channels % groups != 0)
    fail("out_channels " + std::to_string(s.out_channels) + " is not divisible by groups " +
         std::to_string(groups));
  if (wv.size(1) != s.in_channels / groups)
    fail("weight expects " + std::to_string(wv.size(1)) +
         " input channels per group, the input has " + std::to_string(s.in_channels) + " / " +
         std::to_string(groups) + " = " + std::to_string(s.in_channels / groups));
  if (s.kernel < 1) fail("kernel size must be >= 1");
  if (bias.defined() && bias.shape() != Shape{s.out_channels})
    fail("bias of shape " + shape_str(bias.shape()) + " does not match out_channels " +
         std::to_string(s.out_channels));
  const int64_t span = s.length + 2 * padding - dilation * (s.kernel - 1) - 1;
  s.out_length = span < 0 ? 0 : span / stride + 1;
  if (s.out_length < 1)
    fail("output length floor((L + 2 padding - dilation (K - 1) - 1) / stride) + 1 = floor((" +
         std::to_string(s.length) + " + 2*" + std::to_string(padding) + " - " +
         std::to_string(dilation) + "*" + std::to_string(s.kernel - 1) + " - 1) / " +
         std::to_string(stride) + ") + 1 is < 1: the input is shorter than the dilated kernel");

  const Tensor xc = xv.contiguous();                                       // (B, C_in, L)
  const Tensor wc = wv.contiguous();                                       // (C_out, C_in / G, K)
  const Tensor bc = bias.defined() ? bias.value().contiguous() : Tensor(); // (C_out)
  // (B, C_out, L_out)
  Tensor y = Tensor::empty({s.batch, s.out_channels, s.out_length}, xv.dtype(), xv.device());
  if (xc.device().is_cuda()) {
#ifdef SSM_CUDA
    cuda::conv1d_forward(xc, wc, bc, s, y);
#else
    throw_no_cuda(op);
#endif
  } else {
    cpu::conv1d_forward(xc, wc, bc, s, y);
  }

  const bool need_x = x.requires_grad(), need_w = weight.requires_grad(),
             need_b = bias.requires_grad();
  return make_result(op, y, {x, weight, bias}, [=](const Tensor& g) {
    Tensor dx = empty_if(need_x, xc.shape(), xc);       // (B, C_in, L)
    Tensor dw = empty_if(need_w, wc.shape(), wc);       // (C_out, C_in / G, K)
    Tensor db = empty_if(need_b, {s.out_channels}, wc); // (C_out)
    if (xc.device().is_cuda()) {
#ifdef SSM_CUDA
      cuda::conv1d_backward(xc, wc, g.contiguous(), s, dx, dw, db);
#else
      throw_no_cuda(op);
#endif
    } else {
      cpu::conv1d_backward(xc, wc, g.contiguous(), s, dx, dw, db);
    }
    return std::vector<Tensor>{dx, dw, db};
  });
}

// ---- attention -----------------------------------------------------------------------------

// Z = q k^T * scale (..., L, S); causal sets Z[i, j] = -inf for j > i (torch's is_causal: the
// allowed pattern is tril(ones(L, S)), aligned at the top left also when L != S);
// P = softmax(Z) over the keys; out = P v (..., L, Ev). Backward:
//   dv = P^T g,  dP = g v^T,  dZ = P (dP - rowsum(dP P))  (softmax backward; 0 where masked),
//   dq = dZ k * scale,  dk = dZ^T q * scale.
// One op: the saved P is the only (..., L, S) buffer; the masked entries of P are exactly 0.
Var scaled_dot_product_attention(const Var& q, const Var& k, const Var& v, bool causal,
                                 std::optional<double> scale) {
  const char* op = "scaled_dot_product_attention";
  check_given(q, "q", op);
  check_given(k, "k", op);
  check_given(v, "v", op);
  check_inputs(op, {q, k, v});
  check_floating(q.value(), op);
  const Tensor &qv = q.value(), &kv = k.value(), &vv = v.value();
  const std::string shapes = "q " + shape_str(qv.shape()) + ", k " + shape_str(kv.shape()) +
                             ", v " + shape_str(vv.shape());
  if (qv.dim() < 2 || kv.dim() < 2 || vv.dim() < 2)
    throw std::invalid_argument(
        std::string(op) + ": q, k and v need at least 2 dims (..., seq, features), got " + shapes);
  if (qv.size(-1) != kv.size(-1))
    throw std::invalid_argument(std::string(op) +
                                ": q and k must have the same feature size E, got " + shapes);
  if (kv.size(-2) != vv.size(-2))
    throw std::invalid_argument(std::string(op) +
                                ": k and v must have the same number of keys S, got " + shapes);
  auto batch_of = [](const Tensor& t) { return Shape(t.shape().begin(), t.shape().end() - 2); };
  try {
    broadcast_shapes(batch_of(qv), broadcast_shapes(batch_of(kv), batch_of(vv), op), op);
  } catch (const std::invalid_argument&) {
    throw std::invalid_argument(std::string(op) + ": batch dims do not broadcast: " + shapes);
  }
  const int64_t L = qv.size(-2), S = kv.size(-2), E = qv.size(-1);
  const double sc = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(E));

  Tensor scores = ssm::mul(matmul(qv, kv.transpose(-2, -1)), sc); // (..., L, S)
  if (causal) {
    const Device device = scores.device();
    const Tensor key_after_query =
        ssm::gt(Tensor::arange(0, S, 1, DType::Int64, device),
                Tensor::arange(0, L, 1, DType::Int64, device).reshape({L, 1})); // (L, S): j > i
    scores = ssm::masked_fill(scores, key_after_query, -std::numeric_limits<double>::infinity());
  }
  Tensor probs = Tensor::empty(scores.shape(), scores.dtype(), scores.device()); // (..., L, S)
  if (scores.device().is_cuda()) {
#ifdef SSM_CUDA
    cuda::softmax_forward(scores, rows_of(scores), S, 1, false, probs);
#else
    throw_no_cuda(op);
#endif
  } else {
    cpu::softmax_forward(scores, rows_of(scores), S, 1, false, probs);
  }
  const Tensor out = matmul(probs, vv); // (..., L, Ev)

  const bool need_q = q.requires_grad(), need_k = k.requires_grad(), need_v = v.requires_grad();
  return make_result(op, out, {q, k, v}, [=](const Tensor& g) {
    const Tensor d_probs = matmul(g, vv.transpose(-2, -1));                   // (batch..., L, S)
    const Tensor dv = need_v ? matmul(probs.transpose(-2, -1), g) : Tensor(); // (..., S, Ev)
    if (!need_q && !need_k) return std::vector<Tensor>{Tensor(), Tensor(), dv};
    const Tensor probs_full = probs.expand(d_probs.shape()).contiguous(); // (batch..., L, S)
    Tensor d_scores = Tensor::empty(d_probs.shape(), d_probs.dtype(), d_probs.device());
    if (d_probs.device().is_cuda()) {
#ifdef SSM_CUDA
      cuda::softmax_backward(probs_full, d_probs, rows_of(d_probs), S, 1, false, d_scores);
#else
      throw_no_cuda(op);
#endif
    } else {
      cpu::softmax_backward(probs_full, d_probs, rows_of(d_probs), S, 1, false, d_scores);
    }
    const Tensor d_z = ssm::mul(d_scores, sc);                               // (batch..., L, S)
    const Tensor dq = need_q ? matmul(d_z, kv) : Tensor();                   // (batch..., L, E)
    const Tensor dk = need_k ? matmul(d_z.transpose(-2, -1), qv) : Tensor(); // (batch..., S, E)
    return std::vector<Tensor>{dq, dk, dv};
  });
}

} // namespace ssm
