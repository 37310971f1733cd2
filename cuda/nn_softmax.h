// nn_softmax.h: CUDA kernels of softmax, log_softmax and cross-entropy, with the names,
// signatures and semantics of tensor/cpu/nn_softmax.h, where the math and the
// (outer, n, inner) layout are written out. Every tensor is contiguous and on one CUDA device.
//
// The targets of cross-entropy are checked by the caller (autograd/ops_loss.cpp) on a host
// copy with cpu::scan_targets before these run, as the indexing ops do (cuda/index.h says why).
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace ssm::cuda {

// y = softmax(x) (log_softmax when `log`) along n; x and y (outer, n, inner).
void softmax_forward(const Tensor& x, int64_t outer, int64_t n, int64_t inner, bool log, Tensor& y);
// dx from the forward's output y and g = dL/dy, all (outer, n, inner).
void softmax_backward(const Tensor& y, const Tensor& g, int64_t outer, int64_t n, int64_t inner,
                      bool log, Tensor& dx);

// logits (outer, C, inner), targets (outer, inner) int64; writes loss and lse (outer, inner).
void cross_entropy_forward(const Tensor& logits, const Tensor& targets, int64_t outer,
                           int64_t classes, int64_t inner, int64_t ignore_index, Tensor& loss,
                           Tensor& lse);
// dlogits (outer, C, inner) from lse and the per-position weights w (outer, inner).
void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                            const Tensor& w, int64_t outer, int64_t classes, int64_t inner,
                            int64_t ignore_index, Tensor& dlogits);

} // namespace ssm::cuda
