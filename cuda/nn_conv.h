// nn_conv.h: CUDA kernels of conv1d, with the names, signatures and semantics of
// tensor/cpu/nn_conv.h, where the math of forward and backward and the buffers are written
// out. Every tensor is contiguous and on one CUDA device.
#pragma once

#include "tensor/cpu/nn_conv.h"
#include "tensor/tensor.h"

namespace ssm::cuda {

using Conv1dShape = cpu::Conv1dShape;

void conv1d_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                    const Conv1dShape& shape, Tensor& y);
// Writes each of dx (B, C_in, L), dweight (C_out, C_in / G, K) and dbias (C_out) that is
// defined.
void conv1d_backward(const Tensor& x, const Tensor& weight, const Tensor& g,
                     const Conv1dShape& shape, Tensor& dx, Tensor& dweight, Tensor& dbias);

} // namespace ssm::cuda
