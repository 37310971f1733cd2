// functions.h: every differentiable op, on Vars.
//
// Each op computes its output with the raw tensor ops of tensor/ops.h and records, through
// make_result(), a backward closure that captures exactly what the derivative needs. The
// forward and backward of an op sit side by side in one file per family, with the derivative
// written in a comment above them:
//
//   ops_elementwise.cpp  add sub mul div neg pow exp log sqrt abs clamp tanh sigmoid relu silu
//                        gelu softplus where masked_fill dropout
//   ops_reduce.cpp       sum mean max
//   ops_shape.cpp        reshape permute transpose slice narrow select squeeze unsqueeze expand
//                        concat stack split index_select
//   ops_matmul.cpp       matmul bmm linear
//   ops_loss.cpp         softmax log_softmax cross_entropy mse
//   ops_nn.cpp           embedding layer_norm rms_norm conv1d scaled_dot_product_attention
//
// All ops check that their Var inputs share one dtype and device (check_inputs) and raise
// errors that name the op and the shapes involved.
#pragma once

#include <optional>
#include <vector>

#include "autograd/variable.h"

namespace ssm {

class Generator;

// ---- elementwise (NumPy broadcasting) ------------------------------------------------------
Var add(const Var& a, const Var& b);
Var sub(const Var& a, const Var& b);
Var mul(const Var& a, const Var& b);
Var div(const Var& a, const Var& b);
Var add(const Var& a, double s);
Var mul(const Var& a, double s);
Var neg(const Var& x);
Var pow(const Var& x, double exponent);     // x^p
Var pow(const Var& x, const Var& exponent); // x^y, x > 0 where y's gradient is needed
Var exp(const Var& x);
Var log(const Var& x);
Var sqrt(const Var& x);
Var abs(const Var& x);                         // d|x|/dx = sign(x), 0 at 0 (as PyTorch)
Var clamp(const Var& x, double lo, double hi); // gradient 1 inside [lo, hi], else 0
Var tanh(const Var& x);
Var sigmoid(const Var& x);
Var relu(const Var& x);
Var silu(const Var& x);
enum class GeluForm { Erf, Tanh };
Var gelu(const Var& x, GeluForm form = GeluForm::Erf);
Var softplus(const Var& x); // PyTorch's: beta 1, threshold 20
// cond (a Tensor: no gradient) ? a : b, broadcasting all three.
Var where(const Tensor& cond, const Var& a, const Var& b);
Var masked_fill(const Var& x, const Tensor& mask, double value);
// Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1-p),
// using a seeded generator; identity when !training or p == 0.
Var dropout(const Var& x, double p, bool training, Generator* gen = nullptr);

inline Var operator+(const Var& a, const Var& b) { return add(a, b); }
inline Var operator-(const Var& a, const Var& b) { return sub(a, b); }
inline Var operator*(const Var& a, const Var& b) { return mul(a, b); }
inline Var operator/(const Var& a, const Var& b) { return div(a, b); }
inline Var operator-(const Var& x) { return neg(x); }
inline Var operator+(const Var& a, double s) { return add(a, s); }
inline Var operator-(const Var& a, double s) { return add(a, -s); }
inline Var operator*(const Var& a, double s) { return mul(a, s); }
inline Var operator*(double s, const Var& a) { return mul(a, s); }
inline Var operator/(const Var& a, double s) { return mul(a, 1.0 / s); }

// ---- reductions ----------------------------------------------------------------------------
// Empty dims = all dims. max's gradient is split evenly between tied maxima (like torch.amax).
Var sum(const Var& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Var mean(const Var& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Var max(const Var& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);

// ---- shape ---------------------------------------------------------------------------------
Var reshape(const Var& x, const Shape& shape);
Var permute(const Var& x, const std::vector<int64_t>& dims);
Var transpose(const Var& x, int64_t dim0, int64_t dim1);
Var slice(const Var& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Var narrow(const Var& x, int64_t dim, int64_t start, int64_t length);
Var select(const Var& x, int64_t dim, int64_t index);
Var squeeze(const Var& x, int64_t dim);
Var unsqueeze(const Var& x, int64_t dim);
Var expand(const Var& x, const Shape& shape);
Var concat(const std::vector<Var>& xs, int64_t dim);
Var stack(const std::vector<Var>& xs, int64_t dim);
std::vector<Var> split(const Var& x, const std::vector<int64_t>& sizes, int64_t dim);
Var index_select(const Var& x, int64_t dim, const Tensor& index);

// ---- matrix products -----------------------------------------------------------------------
Var matmul(const Var& a, const Var& b); // torch.matmul semantics
Var bmm(const Var& a, const Var& b);
// y = x W^T + b; x (..., in), weight (out, in), bias (out) or undefined.
Var linear(const Var& x, const Var& weight, const Var& bias = Var());

// ---- softmax and losses --------------------------------------------------------------------
Var softmax(const Var& x, int64_t dim);
Var log_softmax(const Var& x, int64_t dim);
enum class Reduction { Mean, Sum, None };
// logits (N, C) or (N, C, d1, ...) as PyTorch; targets int64 (N) or (N, d1, ...); entries
// equal to ignore_index contribute nothing, and Mean divides by the number of other entries.
Var cross_entropy(const Var& logits, const Tensor& targets, int64_t ignore_index = -100,
                  Reduction reduction = Reduction::Mean);
Var mse_loss(const Var& input, const Var& target, Reduction reduction = Reduction::Mean);

// ---- layers --------------------------------------------------------------------------------
// weight (num_embeddings, dim), indices int64 of any shape -> (..., dim).
Var embedding(const Var& weight, const Tensor& indices);
// Normalise over the last weight.dim() dims: (x - mean) / sqrt(var + eps) * weight + bias.
// weight and bias may be undefined (no affine); with both undefined this normalises over the
// last dim only, and the overload below takes the normalised dims explicitly.
Var layer_norm(const Var& x, const Var& weight, const Var& bias, double eps = 1e-5);
Var layer_norm(const Var& x, const Shape& normalized_shape, const Var& weight, const Var& bias,
               double eps = 1e-5);
// x / sqrt(mean(x^2) + eps) * weight over the last dim.
Var rms_norm(const Var& x, const Var& weight, double eps = 1e-5);
// x (batch, in_channels, length), weight (out_channels, in_channels / groups, kernel),
// bias (out_channels) or undefined -> (batch, out_channels, out_length) as torch conv1d with
// zero padding on both sides. Mamba's causal depthwise conv is groups = channels,
// padding = kernel - 1, keeping the first `length` outputs.
Var conv1d(const Var& x, const Var& weight, const Var& bias, int64_t stride = 1,
           int64_t padding = 0, int64_t dilation = 1, int64_t groups = 1);
// softmax(q k^T * scale + mask) v over (..., L, E) q, (..., S, E) k and (..., S, Ev) v;
// causal masks key positions j > i; scale defaults to 1/sqrt(E).
Var scaled_dot_product_attention(const Var& q, const Var& k, const Var& v, bool causal,
                                 std::optional<double> scale = std::nullopt);

} // namespace ssm
