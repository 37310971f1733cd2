// recurrence.h: the recurrent view of an S4 layer, for inference: the discretised system
// stepped one input at a time, O(N) per step and channel, with no kernel and no FFT.
//
// ---- The math -----------------------------------------------------------------------------
// Per channel h, state x in C^N2 (the kept member of each conjugate pair; the full state is
// [x; conj(x)] and stays so because u is real; s4_kernel.h, "Conjugate pairs"):
//     x_t = dA x_{t-1} + dB u_t,     y_t = 2 Re(C x_t) + D u_t,     x_{-1} = 0
// (S4, eq. 3; S4D, Section 2). The convolution y = K * u + D u of s4_kernel.h computes the
// same outputs all at once: K_l = 2 Re(C dA^l dB) is what this recurrence does to an impulse.
// The tests check that the two views agree (the check of Rush's "The Annotated S4").
//
// Diagonal A (S4D): dA and dB are the per-state numbers of s4_kernel.h (ZOH or bilinear),
//     x_t[n] = dA[n] x_{t-1}[n] + dB[n] u_t.
//
// Diagonal plus low rank (S4, bilinear), A = Lambda - P P^*: dA is dense, but one step needs
// only A's action on a vector. The bilinear step (S4, eq. 3 and Appendix C.2) is
//     (I - dt/2 A) x_t = (I + dt/2 A) x_{t-1} + dt B u_t.
// In the halved state, A_full [x; conj x] has first half  Lambda x - P rho(x)  with the real
// number rho(x) = P_full^* [x; conj x] = 2 Re(sum_n conj(P_n) x_n). So, with
// rhs = x_{t-1} + dt/2 (Lambda x_{t-1} - P rho(x_{t-1})) + dt B u_t and D0_n = 1 - dt/2 Lambda_n,
// the implicit half is  D0 x_t + dt/2 P rho(x_t) = rhs;  taking 2 Re(sum conj(P_n) . / D0_n)
// of  x_t = (rhs - dt/2 rho(x_t) P) / D0  gives rho(x_t) first (Sherman-Morrison):
//     rho(x_t) = 2 Re(sum_n conj(P_n) rhs_n / D0_n) / (1 + dt Re(sum_n |P_n|^2 / D0_n))
//     x_t      = (rhs - dt/2 rho(x_t) P) / D0
// O(N2) per step, no matrix is formed.
// The DPLR kernel's parameter is C~ = C (I - dA^L) (s4_kernel.h); the output vector C that the
// recurrence needs is recovered once, at setup, by dplr_c_from_c_tilde: it builds the dense
// N x N discretised matrix of each channel, takes dA^L by repeated squaring and solves
// C (I - dA^L) = C~ by Gaussian elimination with partial pivoting, in double:
// O(H N^3 log L), a one-time cost (N = 64, L = 4096: about 35 ms a channel on one core of
// the 2-core development machine; channels run in parallel).
//
// ---- Layout -----------------------------------------------------------------------------
// u (batch, H, L) and y (batch, H, L), as s4/fft.h's causal_conv; one step takes u_t (batch, H)
// and returns y_t (batch, H). The state x is (batch, H, N2, 2). CPU tensors only (float32 or
// float64); inference steps one token at a time, where the CPU loop is what is needed.
#pragma once

#include <cstdint>

#include "s4/s4_kernel.h"
#include "tensor/tensor.h"

namespace ssm::s4 {

// The discretised system of one S4 layer, ready to step.
struct S4Recurrence {
  bool dplr = false;
  int64_t channels = 0, half_states = 0; // H, N2
  // Diagonal (dplr == false): x_t = dA x_{t-1} + dB u_t, per state.
  Tensor dA, dB; // (H, N2, 2)
  // DPLR (dplr == true): the bilinear step above.
  Tensor dt;        // (H)
  Tensor Lambda, P; // (H, N2, 2)
  Tensor B;         // (H, N2, 2), continuous (dt B enters the step)
  // Both: y_t = 2 Re(C x_t) + D u_t.
  Tensor C; // (H, N2, 2)
  Tensor D; // (H), or undefined (no skip)
};

// S4D: log_dt (H), A, B, C (H, N2, 2), D (H) or undefined; discretised as s4d_kernel does.
S4Recurrence s4d_recurrence(const Tensor& log_dt, const Tensor& A, const Tensor& B, const Tensor& C,
                            const Tensor& D, Discretization disc);
// S4: the inputs of dplr_kernel (C_tilde is its C~, for kernels of length L) and D.
S4Recurrence dplr_recurrence(const Tensor& log_dt, const Tensor& Lambda, const Tensor& P,
                             const Tensor& B, const Tensor& C_tilde, const Tensor& D, int64_t L);
// C from C~ = C (I - dA^L) (see above): (H, N2, 2), the dtype of the inputs.
Tensor dplr_c_from_c_tilde(const Tensor& log_dt, const Tensor& Lambda, const Tensor& P,
                           const Tensor& C_tilde, int64_t L);

// The recurrent state of one layer (the S4 counterpart of MambaLayerState's ssm_state).
struct S4RecurrentState {
  Tensor x; // (batch, H, N2, 2): x_t
};
S4RecurrentState s4_zero_state(const S4Recurrence& sys, int64_t batch);

// One input: u_t (batch, H) -> y_t (batch, H); state.x becomes x_t.
Tensor s4_recurrent_step(const S4Recurrence& sys, const Tensor& u_t, S4RecurrentState& state);
// A whole sequence, u (batch, H, L) -> y (batch, H, L), from `state` (zero when null), which
// is left at x_{L-1}.
Tensor s4_recurrent_scan(const S4Recurrence& sys, const Tensor& u,
                         S4RecurrentState* state = nullptr);

} // namespace ssm::s4
