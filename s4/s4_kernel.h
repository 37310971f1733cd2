// s4_kernel.h: the convolution kernels of S4D (diagonal A, Vandermonde sum) and of S4 (diagonal
// plus low-rank A, Cauchy sums at the roots of unity and an inverse FFT), their CPU reference
// loops, their CUDA kernels and the autograd ops that pick one by device.
//
// Sources: Gu, Goel, Ré 2022, "Efficiently Modeling Long Sequences with Structured State
// Spaces" (S4; Section 3.3, Algorithm 1, Appendix C.3), and Gu, Gupta, Goel, Ré 2022, "On the
// Parameterization and Initialization of Diagonal State Space Models" (S4D; Section 3).
//
// ---- The continuous system and its convolution kernel ------------------------------------
// Each of H channels is a linear state space model, state x(t) in C^N, input u(t) real:
//     x'(t) = A x(t) + B u(t),    y(t) = C x(t)  (+ D u(t), the skip, applied elsewhere)
// Sampled with a step dt = exp(log_dt[h]) it becomes the recurrence
//     x_k = dA x_{k-1} + dB u_k,  y_k = C x_k,
// which, started from x_{-1} = 0, is the causal convolution y = K * u with the kernel
//     K_l = C dA^l dB,  l = 0 .. L-1.                                      (S4, eq. 4-5)
//
// ---- Conjugate pairs: why N2 = N / 2 numbers describe N states -----------------------------
// A, B, C come from a real system (HiPPO's A is real), so the eigenvalues of A come in complex
// conjugate pairs and, in the eigenbasis, the N-state system is made of N2 = N / 2 states
// (Lambda_n, B_n, C_n) and their conjugates. Only the first half is stored: the tensors here
// have N2 entries, and every sum over the N states is a sum over the N2 kept ones plus their
// conjugates. Since the input is real, the state stays [x; conj(x)] and
//     y_k = C x_k + conj(C) conj(x_k) = 2 Re(C x_k)                (S4D paper; S4, Appendix C.3)
// Complex tensors are float tensors with a trailing dimension of size 2 (real, imaginary), as
// torch.view_as_real lays them out.
//
// ---- 1. Discretisation of a diagonal A (S4D paper, its discretisations) ---------------------
// For one state, a = A_n (complex), step dt:
//   zero-order hold (ZOH):  dA = exp(dt a),                   dB = (exp(dt a) - 1) / a * B
//   bilinear (Tustin):      dA = (1 + dt a/2) / (1 - dt a/2),  dB = dt / (1 - dt a/2) * B
// ZOH needs a != 0 and bilinear dt a != 2 (both hold for any a with Re a < 0, the stable
// case; no check is made, the result is inf or NaN otherwise).
// Powers: dA^l = exp(l log dA), with log dA = dt a (ZOH) or 2 atanh(dt a/2) =
// log1p(dt a/2) - log1p(-dt a/2) (bilinear). Each power is computed from l directly rather
// than by repeated multiplication, so no rounding accumulates along l; the bilinear log is
// written with log1p so that its real part, about dt Re(a) and often 1e-4 or smaller, keeps
// its relative precision (log of a number near 1 would not). exp(dt a) - 1 is a complex expm1
// for the same reason.
//
// ---- 2. The S4D kernel (Vandermonde) -----------------------------------------------------
//     K[h, l] = 2 Re sum_{n < N2} C[h,n] dB[h,n] dA[h,n]^l,    l = 0 .. L-1
// Inputs  log_dt (H), A (H, N2, 2), B (H, N2, 2), C (H, N2, 2); output K (H, L).
// The backward (gradients w.r.t. log_dt, Re A, Im A, B, C) is derived in s4_kernel_cpu.cpp.
//
// ---- 3. The S4 (DPLR) kernel ------------------------------------------------------------
// A = Lambda - P P^* (diagonal plus rank 1; S4 writes P Q^* and uses Q = P for LegS, as here),
// bilinear discretisation. The N-state system, in the conjugate-pair basis:
//     Lambda_full = [Lambda; conj(Lambda)],  P_full = [P; conj(P)],  B_full, C_full likewise,
//     A_full = diag(Lambda_full) - P_full P_full^*                 (N x N, dense)
// (it couples the two halves: P_full P_full^* has the blocks P P^* and P P^T; it is the
// eigenbasis form of a real matrix, so K is real.)
//   Generating function. K^(z) = sum_{l<L} K_l z^l = C~ (I - dA z)^-1 dB when z^L = 1, with
//     C~ = C (I - dA^L)                                              (S4, Appendix C.3)
//   This op takes C~ directly as its parameter, as S4 does (its `C` is C~): the kernel of the
//   system whose output vector is C = C~ (I - dA^L)^-1. recurrence.h recovers that C for the
//   recurrent view.
//   At the bilinear dA, dB (dt cancels):
//     (I - dA z)^-1 dB = 2 / (1 + z) (g(z) - A)^-1 B,   g(z) = (2 / dt) (1 - z) / (1 + z)
//   and the Woodbury identity for (g - Lambda + P P^*)^-1 gives    (S4, Algorithm 1)
//     K^(z) = 2 / (1 + z) [k00 - k01 k10 / (1 + k11)],
//     k_ab  = sum_{n < N} (C~ or P^*)_n (B or P)_n / (g(z) - Lambda_n)   (a: C~ / P^*, b: B / P)
//   Written that way the formula divides by zero at z = -1, the Nyquist node of an even L.
//   Multiplying through by (1 + z), with
//     d_n(z) = (2 / dt) (1 - z) - (1 + z) Lambda_n     (= (1 + z) (g(z) - Lambda_n)),
//     r_ab   = sum_{n < N} (C~ or P^*)_n (B or P)_n / d_n(z),
//   it becomes the same value with no singular node:
//     K^(z) = 2 [r00 - (1 + z) r01 r10 / (1 + (1 + z) r11)]
//   (at z = -1, d_n = 4 / dt and K^ = 2 r00 = C~ dt B / 2, which is C~ (I + dA)^-1 dB.)
//   The sums over the N states, in the stored halves, with v_n = (C~ or conj P)_n (B or P)_n:
//     r_ab = sum_{n < N2} [ v_n / d_n(z)  +  conj(v_n) / (c(z) - (1 + z) conj(Lambda_n)) ],
//     c(z) = (2 / dt) (1 - z)
//   The nodes: z_k = exp(-2 pi i k / L), at which K^(z_k) = sum_l K_l exp(-2 pi i k l / L) is
//   the DFT of K. K is real, so K^(z_{L-k}) = conj(K^(z_k)): only k = 0 .. L/2 (integer
//   division) are evaluated, and K = irfft(K^, L) (s4/fft.h).
// Inputs  log_dt (H), Lambda, P, B, C~ (H, N2, 2); output K (H, L).
// The backward (through the irfft, the Woodbury combination and the Cauchy sums) is derived
// in s4_kernel_cpu.cpp.
//
// ---- Gradients of complex parameters ----------------------------------------------------
// A complex parameter p is two real numbers, and its gradient tensor holds
// (dL/dRe p, dL/dIm p), as PyTorch's view_as_real. In the derivations, for a holomorphic
// intermediate q the "adjoint" gq is the complex number with dL = Re(gq dq); then the gradient
// tensor of q is conj(gq) and, for q = f(p) holomorphic, gp = gq f'(p).
//
// ---- Precision (what float32 computes in float32) -----------------------------------------
// The CPU loops and the CUDA kernels split the work the same way:
//   S4D: exp and sin/cos of each power exp(l log dA), the costly part (H N2 L of them), run in
//     the element type; dt = exp(log_dt), the discretisation of each state (log dA, dB and
//     their derivatives), the products with the powers and every sum (over n or l) in double;
//     results are rounded to the element type at the end.
//   DPLR: everything in double (the element type only at loads and stores): its Cauchy sums
//     and Woodbury combination cancel (run in float32 they lost up to 1e-4 of the largest
//     gradient at N2 = 64), and in double they cost little next to the FFTs around them.
// Why S4D's per-state work is in double: the phase of a power, l Im(log dA), reaches hundreds
// or thousands of radians in a long kernel, so one float32 ulp of dt or of log dA would move
// it by l |Im log dA| 6e-8 (1e-4 of the term and more), and float32 exp and atan2 round
// differently on the CPU and the GPU; computed in double and rounded once, log dA is the same
// float32 number on both sides. Float32 sums of thousands of terms (the backward's sums over l)
// would lose digits to rounding and cancellation. In float64 everything is float64.
#pragma once

#include <cmath>
#include <complex>
#include <cstdint>

#include "autograd/variable.h"
#include "tensor/tensor.h"

namespace ssm::s4 {

enum class Discretization { ZOH, Bilinear };
const char* discretization_name(Discretization disc); // "zoh", "bilinear"

// The sizes of one kernel computation; filled and checked by the make_*_shape functions.
struct KernelShape {
  int64_t channels = 0;    // H
  int64_t half_states = 0; // N2 = N / 2, the kept member of each conjugate pair
  int64_t length = 0;      // L, the kernel's length
  // Frequencies evaluated by the DPLR kernel: k = 0 .. L/2, the non-redundant half.
  int64_t nodes() const { return length / 2 + 1; }
};

// ---- S4D -----------------------------------------------------------------------------------

// The inputs (contiguous, one floating dtype, one device).
struct S4DInputs {
  Tensor log_dt; // (H)
  Tensor A;      // (H, N2, 2)
  Tensor B;      // (H, N2, 2)
  Tensor C;      // (H, N2, 2)
};
// The gradients, shaped as the inputs; the backward writes each one that is defined.
struct S4DGrads {
  Tensor log_dt, A, B, C;
};

// Checks shapes, dtypes and devices; throws std::invalid_argument naming `op` and what was
// expected vs found. L must be >= 1.
KernelShape make_s4d_shape(const char* op, const S4DInputs& in, int64_t L);

// CPU loops (s4_kernel_cpu.cpp). K (H, L) is written. grad_K (H, L).
void s4d_kernel_fwd_cpu(const S4DInputs& in, const KernelShape& s, Discretization disc, Tensor& K);
void s4d_kernel_bwd_cpu(const S4DInputs& in, const KernelShape& s, Discretization disc,
                        const Tensor& grad_K, S4DGrads& grads);

// The discretised diagonal system, dA and dB (H, N2, 2), on the CPU (the recurrent view
// steps with them). Same formulas as the kernel's.
void s4d_discretize_cpu(const S4DInputs& in, const KernelShape& s, Discretization disc, Tensor& dA,
                        Tensor& dB);

// ---- S4 (DPLR) -------------------------------------------------------------------------------

struct DplrInputs {
  Tensor log_dt; // (H)
  Tensor Lambda; // (H, N2, 2)  the diagonal part
  Tensor P;      // (H, N2, 2)  the rank-1 part, A = Lambda - P P^*
  Tensor B;      // (H, N2, 2)
  Tensor C;      // (H, N2, 2)  C~ = C (I - dA^L), the parameter S4 learns
};
struct DplrGrads {
  Tensor log_dt, Lambda, P, B, C;
};

KernelShape make_dplr_shape(const char* op, const DplrInputs& in, int64_t L);

// Node k of the generating function, z_k = exp(-2 pi i k / L) (the CPU loops and the CUDA
// kernels use the same table). The Nyquist node (2k = L) is exactly -1.
inline std::complex<double> dplr_node(int64_t k, int64_t L) {
  if (2 * k == L) return {-1.0, 0.0};
  const double angle = 2 * M_PI * static_cast<double>(k) / static_cast<double>(L);
  return {std::cos(angle), -std::sin(angle)};
}

// The Cauchy step: K_hat (H, L/2 + 1, 2) = K^(z_k), k = 0 .. L/2 (the irfft that follows is
// s4/fft.h's, on either device). The backward takes the gradient tensor of K_hat (the
// (Re, Im) convention above), grad_K_hat (H, L/2 + 1, 2).
void dplr_cauchy_fwd_cpu(const DplrInputs& in, const KernelShape& s, Tensor& K_hat);
void dplr_cauchy_bwd_cpu(const DplrInputs& in, const KernelShape& s, const Tensor& grad_K_hat,
                         DplrGrads& grads);

// ---- CUDA kernels (s4_kernel.cu): the same contracts on a CUDA device -----------------------
#ifdef SSM_CUDA
void s4d_kernel_fwd_cuda(const S4DInputs& in, const KernelShape& s, Discretization disc, Tensor& K);
void s4d_kernel_bwd_cuda(const S4DInputs& in, const KernelShape& s, Discretization disc,
                         const Tensor& grad_K, S4DGrads& grads);
void dplr_cauchy_fwd_cuda(const DplrInputs& in, const KernelShape& s, Tensor& K_hat);
void dplr_cauchy_bwd_cuda(const DplrInputs& in, const KernelShape& s, const Tensor& grad_K_hat,
                          DplrGrads& grads);
#endif

// ---- The autograd ops (s4_kernel_op.cpp) ----------------------------------------------------
// K (H, L), differentiable in every input; each runs the CPU loops or the CUDA kernels by the
// inputs' device. dplr_kernel's C is C~ (see above).
Var s4d_kernel(const Var& log_dt, const Var& A, const Var& B, const Var& C, int64_t L,
               Discretization disc);
Var dplr_kernel(const Var& log_dt, const Var& Lambda, const Var& P, const Var& B, const Var& C,
                int64_t L);

} // namespace ssm::s4
