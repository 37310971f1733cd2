// nn_norm.h: CPU loops of layer_norm and rms_norm (the differentiable ops are in
// autograd/ops_nn.cpp).
//
// The caller views x as (rows, n) contiguous: each row is normalised over its n elements.
//
//   layer_norm:  mu = mean_j x_j,  var = mean_j (x_j - mu)^2 (biased, as PyTorch)
//   rms_norm:    mu = 0,           var = mean_j x_j^2
//   both:        r = 1 / sqrt(var + eps),  xhat_j = (x_j - mu) r,  y_j = xhat_j w_j + b_j
// (w = 1 and b = 0 when undefined; rms_norm has no b). rms_norm is layer_norm without the
// centring, so one loop serves both.
//
// Backward, with gh_j = g_j w_j (g = dL/dy) and mean_j over the n elements of a row:
//   dx_j = r (gh_j - mean(gh) - xhat_j mean(gh xhat))       (layer_norm)
//   dx_j = r (gh_j            - xhat_j mean(gh xhat))       (rms_norm: mu does not depend on x)
//   dw_j = sum over rows of g_j xhat_j,   db_j = sum over rows of g_j
// Only mu and r (one each per row) are saved; xhat is recomputed from x, which the autograd
// op keeps anyway. Row statistics accumulate in double. Rows are split across threads; dw
// and db are summed over rows in row order on one thread, so no result depends on threads.
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace ssm::cpu {

enum class NormKind { LayerNorm, RmsNorm };

// x (rows, n), weight and bias (n) or undefined (bias always undefined for RmsNorm), all
// contiguous. Writes y (rows, n), rstd (rows) = r, and for LayerNorm mean (rows) = mu (mean
// is left alone, and may be undefined, for RmsNorm).
void norm_forward(NormKind kind, const Tensor& x, const Tensor& weight, const Tensor& bias,
                  double eps, Tensor& y, Tensor& mean, Tensor& rstd);
// g (rows, n) contiguous. Writes each of dx (rows, n), dweight (n), dbias (n) that is
// defined; an undefined one is not needed.
void norm_backward(NormKind kind, const Tensor& x, const Tensor& weight, const Tensor& mean,
                   const Tensor& rstd, const Tensor& g, Tensor& dx, Tensor& dweight, Tensor& dbias);

} // namespace ssm::cpu
