// nn_norm.h: CUDA kernels of layer_norm and rms_norm, with the names, signatures and
// semantics of tensor/cpu/nn_norm.h, where the math of forward and backward is written out.
// Every tensor is contiguous and on one CUDA device.
#pragma once

#include "tensor/cpu/nn_norm.h"
#include "tensor/tensor.h"

namespace ssm::cuda {

using NormKind = cpu::NormKind;

// x (rows, n), weight and bias (n) or undefined. Writes y (rows, n), rstd (rows) and, for
// LayerNorm, mean (rows).
void norm_forward(NormKind kind, const Tensor& x, const Tensor& weight, const Tensor& bias,
                  double eps, Tensor& y, Tensor& mean, Tensor& rstd);
// g (rows, n). Writes each of dx (rows, n), dweight (n), dbias (n) that is defined.
void norm_backward(NormKind kind, const Tensor& x, const Tensor& weight, const Tensor& mean,
                   const Tensor& rstd, const Tensor& g, Tensor& dx, Tensor& dweight, Tensor& dbias);

} // namespace ssm::cuda
