// nn_conv.h: CPU loops of conv1d, forward and backward (the differentiable op, with the
// argument checks, is in autograd/ops_nn.cpp).
//
// Buffers (all contiguous):
//   x (B, C_in, L), weight (C_out, C_in / G, K), bias (C_out) or undefined,
//   y (B, C_out, L_out),  L_out = floor((L + 2 P - D (K - 1) - 1) / S) + 1
// with stride S, zero padding P on both sides, dilation D and G groups: output channel co
// belongs to group grp = co / (C_out / G) and sees the input channels
// grp * (C_in / G) ... (grp + 1) * (C_in / G) - 1. As torch.nn.functional.conv1d (a
// cross-correlation: the kernel is not flipped):
//
//   y[b, co, t] = bias[co] + sum_{c < C_in/G} sum_{k < K} w[co, c, k] x[b, grp C_in/G + c, t S + k
//   D - P]
//
// where x outside [0, L) is the zero padding. Backward, with g = dL/dy:
//   dx[b, ci, t S + k D - P] += w[co, c, k] g[b, co, t]     (every co, t, k that reads ci)
//   dw[co, c, k] = sum_b sum_t g[b, co, t] x[b, ci, t S + k D - P]
//   db[co]       = sum_b sum_t g[b, co, t]
//
// A direct loop, no im2col: for each tap k the outputs t whose input position falls inside
// [0, L) form one range, computed once, so the innermost loop is a branch-free
// y[t] += w * x[t S + shift] (unit stride when S = 1). Work is
// B * C_out * (C_in / G) * K * L_out multiply-adds with nothing wasted on padding; Mamba's
// causal depthwise case (G = C_in = C_out, P = K - 1, K about 4) is K passes over each
// channel's row, which stays in L1 (B = 8, C = 1536, L = 1024, K = 4 in float32: about 20 ms
// per direction on one core of the development machine, 2.5 GMAC/s).
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace ssm::cpu {

struct Conv1dShape {
  int64_t batch, in_channels, length; // x: (B, C_in, L)
  int64_t out_channels, kernel;       // weight: (C_out, C_in / G, K)
  int64_t out_length;                 // L_out
  int64_t stride, padding, dilation, groups;
};

void conv1d_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                    const Conv1dShape& shape, Tensor& y);
// Writes each of dx (B, C_in, L), dweight (C_out, C_in / G, K) and dbias (C_out) that is
// defined; an undefined one is not needed.
void conv1d_backward(const Tensor& x, const Tensor& weight, const Tensor& g,
                     const Conv1dShape& shape, Tensor& dx, Tensor& dweight, Tensor& dbias);

} // namespace ssm::cpu
