// nn_softmax.h: CPU loops of softmax, log_softmax and cross-entropy (the differentiable ops
// that call them are in autograd/ops_loss.cpp and autograd/ops_nn.cpp).
//
// Layout: the caller hands every loop contiguous tensors viewed as (outer, n, inner), n the
// size of the softmax dim (the number of classes C for cross-entropy); element (o, j, i) sits
// at (o * n + j) * inner + i. A softmax row is the n elements sharing (o, i), `inner` apart.
// The loops walk j outside and i inside, keeping `inner` running maxima and sums, so memory is
// read in order whatever the dim (inner = 1 for the last dim, the common case).
//
//   softmax:      y_j = exp(x_j - m) / s,         m = max_k x_k,  s = sum_k exp(x_k - m)
//   log_softmax:  y_j = (x_j - m) - log s
//   cross-entropy at one position with target t:  loss = lse - x_t,  lse = m + log s
// Subtracting the row maximum leaves the results unchanged and keeps every exp() <= 1, so
// logits like 1000 neither overflow nor lose the small differences between them. Sums
// accumulate in double. A NaN anywhere in a row makes the whole row NaN (through s).
#pragma once

#include <cstdint>
#include <optional>

#include "tensor/tensor.h"

namespace ssm::cpu {

// y = softmax(x) (log_softmax when `log`) along n; x and y contiguous, (outer, n, inner).
void softmax_forward(const Tensor& x, int64_t outer, int64_t n, int64_t inner, bool log, Tensor& y);
// Given y = the forward's output and g = dL/dy (both contiguous, (outer, n, inner)):
//   softmax:      dx_j = y_j (g_j - sum_k g_k y_k)
//   log_softmax:  dx_j = g_j - exp(y_j) sum_k g_k
void softmax_backward(const Tensor& y, const Tensor& g, int64_t outer, int64_t n, int64_t inner,
                      bool log, Tensor& dx);

// What a scan of cross-entropy targets found: how many are not ignore_index, and the first
// value (row-major) that is neither ignore_index nor in [0, classes).
struct TargetScan {
  int64_t counted = 0;
  std::optional<int64_t> out_of_range;
};
TargetScan scan_targets(const Tensor& targets, int64_t classes, int64_t ignore_index);

// logits (outer, C, inner), targets (outer, inner) int64 with every value in [0, C) or equal
// to ignore_index. Writes loss (outer, inner): lse - x_t, or 0 where the target is ignored;
// and lse (outer, inner), saved for the backward.
void cross_entropy_forward(const Tensor& logits, const Tensor& targets, int64_t outer,
                           int64_t classes, int64_t inner, int64_t ignore_index, Tensor& loss,
                           Tensor& lse);
// dlogits[o, c, i] = w[o, i] (exp(x[o, c, i] - lse[o, i]) - [c == t[o, i]]), and 0 for every c
// where t[o, i] is ignore_index; w (outer, inner) = dL/dloss[o, i].
void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                            const Tensor& w, int64_t outer, int64_t classes, int64_t inner,
                            int64_t ignore_index, Tensor& dlogits);

} // namespace ssm::cpu
