// selective_scan.h: the selective scan of Mamba (Gu & Dao 2023, Algorithm 2), its CPU
// reference loops, its CUDA kernels and the autograd op that picks one by device.
//
// ---- The math ----------------------------------------------------------------------------
// For every batch element b and channel d (one of d_inner independent channels), with a
// hidden state h of n numbers per channel, starting from h_0 = 0, for t = 1 .. L:
//
//   dt_t[d]    = softplus(delta[b,t,d] + delta_bias[d])   (or without softplus; see below)
//   h_t[d,k]   = exp(dt_t[d] * A[d,k]) * h_{t-1}[d,k] + dt_t[d] * B[b,t,g,k] * u[b,t,d]
//   y_t[d]     = sum_k C[b,t,g,k] * h_t[d,k] + D[d] * u[b,t,d]
//   out[b,t,d] = y_t[d] * silu(z[b,t,d])                  (y_t[d] when there is no z)
//
// where g = d / (d_inner / groups) is the group of channel d (B and C are shared by the
// d_inner / groups channels of a group; groups = 1 is Mamba-1, one B and C per token).
// exp(dt A) and dt B are the zero-order-hold discretisation of h' = A h + B u with step dt
// (the "dt B" form is Mamba's simplification of (dt A)^-1 (exp(dt A) - I) dt B). softplus is
// PyTorch's: log(1 + e^x), and x itself when x > 20. The last state h_L (batch, d_inner, n)
// can be returned too: it seeds recurrent generation after a prompt.
//
// ---- Layout (why batch, length, channel) -------------------------------------------------
// u, delta, z and out are (batch, length, d_inner), the order in which the Mamba block has
// them after its input projection, so no transpose is needed on the way in or out (the
// official kernels take (batch, d_inner, length) because their threads walk along the
// sequence). Here neighbouring channels are neighbouring addresses: CUDA threads that own
// neighbouring channels read one coalesced row of d_inner values per time step, and the CPU
// loop of one channel strides by d_inner, which the prefetcher follows.
//
// Buffers (contiguous, one floating dtype, one device):
//   u, delta   (batch, length, d_inner)
//   A          (d_inner, n)                 real; Mamba stores A = -exp(A_log)
//   B, C       (batch, length, groups, n)   a (batch, length, n) tensor is groups = 1
//   D          (d_inner)                    optional skip connection
//   z          (batch, length, d_inner)     optional gate
//   delta_bias (d_inner)                    optional
//   out        (batch, length, d_inner)
//   last_state (batch, d_inner, n)          optional output
//
// The backward (derived in selective_scan_cpu.cpp's header) gives the gradient of every
// input from d(loss)/d(out) and, optionally, d(loss)/d(last_state).
#pragma once

#include <cstdint>

#include "autograd/variable.h"
#include "tensor/tensor.h"

namespace ssm {

// The sizes and switches of one scan; filled and checked by make_scan_shape.
struct ScanShape {
  int64_t batch = 0, length = 0, d_inner = 0, d_state = 0, groups = 1;
  bool has_D = false, has_z = false, has_delta_bias = false;
  bool delta_softplus = false;
  int64_t channels_per_group() const { return d_inner / groups; }
};

// The inputs; D, z and delta_bias may be undefined (absent). All contiguous.
struct ScanInputs {
  Tensor u, delta, A, B, C, D, z, delta_bias;
};

// The gradients, shaped as the inputs. The backward writes each one that is defined and
// leaves an undefined one alone (its input needs no gradient or is absent).
struct ScanGrads {
  Tensor u, delta, A, B, C, D, z, delta_bias;
};

// Checks shapes, dtypes and devices of the inputs (B and C may be (batch, length, n) or
// (batch, length, groups, n)) and returns the scan's sizes. Throws std::invalid_argument
// naming `op` and what was expected vs found.
ScanShape make_scan_shape(const char* op, const ScanInputs& in, bool delta_softplus);

// ---- CPU reference loops (selective_scan_cpu.cpp) ----------------------------------------
// out (batch, length, d_inner) is written; last_state (batch, d_inner, n) is written when
// defined.
void selective_scan_fwd_cpu(const ScanInputs& in, const ScanShape& s, Tensor& out,
                            Tensor& last_state);
// grad_out (batch, length, d_inner); grad_last_state (batch, d_inner, n) or undefined (zero).
void selective_scan_bwd_cpu(const ScanInputs& in, const ScanShape& s, const Tensor& grad_out,
                            const Tensor& grad_last_state, ScanGrads& grads);

// ---- CUDA kernels (selective_scan.cu), the same contract on a CUDA device ----------------
#ifdef SSM_CUDA
void selective_scan_fwd_cuda(const ScanInputs& in, const ScanShape& s, Tensor& out,
                             Tensor& last_state);
void selective_scan_bwd_cuda(const ScanInputs& in, const ScanShape& s, const Tensor& grad_out,
                             const Tensor& grad_last_state, ScanGrads& grads);
#endif

// ---- The autograd op (selective_scan_op.cpp) ---------------------------------------------
// Differentiable in u, delta, A, B, C, D, z and delta_bias (each may require a gradient or
// not; D, z, delta_bias may be undefined Vars). Dispatches to the CPU loops or the CUDA
// kernels by the inputs' device. `last_state`, when non-null, receives h_L (batch, d_inner, n)
// as a Var that is cut from the graph (generation only reads it).
Var selective_scan(const Var& u, const Var& delta, const Var& A, const Var& B, const Var& C,
                   const Var& D = Var(), const Var& z = Var(), const Var& delta_bias = Var(),
                   bool delta_softplus = false, Tensor* last_state = nullptr);

// The same computation written with whole-tensor ops (materialising exp(delta A) as a
// (batch, length, d_inner, n) tensor, then a loop over time of elementwise ops): a second,
// independent formulation, used by the tests to check the loops. Raw tensors, no autograd.
Tensor selective_scan_naive(const ScanInputs& in, bool delta_softplus, Tensor* last_state);

} // namespace ssm
