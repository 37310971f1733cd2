// hippo.h: HiPPO matrices (LegS, LegT, FouT), the NPLR/DPLR form of LegS that S4 starts from,
// the diagonal initialisations of S4D, and the online LegS projection that shows what a HiPPO
// state remembers. Everything here runs once at initialisation, on the CPU, in float64.
//
// ---- What a HiPPO matrix is ---------------------------------------------------------------
// HiPPO (Gu, Dao, Ermon, Rudra, Ré 2020, "HiPPO: Recurrent Memory with Optimal Polynomial
// Projections") asks: given an input f seen up to time t, which N coefficients c(t) describe
// its history best, in the L2 sense of a measure mu_t over the past, and how do they evolve?
// For the measures below the answer is a linear ODE  c'(t) = A c(t) + B f(t)  (LegS: with a
// 1/t factor), so an SSM whose state matrix is a HiPPO A keeps a compressed, continuously
// updated summary of everything it has seen. S4 initialises its state matrix with LegS.
//
// Sign convention: the HiPPO paper writes c' = -A c + B f with a positive A; this file (as S4
// does) returns the matrix of c' = A c + B f, i.e. the negative of the paper's A, so that the
// eigenvalues have negative real parts.
//
// ---- The three measures -------------------------------------------------------------------
// LegS, scaled Legendre (HiPPO paper, Theorem 2 and its derivation in the appendix). mu_t
// uniform on [0, t]:
//   c_n(t) = (1/t) int_0^t f(x) g_n(x) dx,   g_n(x) = sqrt(2n+1) P_n(2x/t - 1)   (orthonormal)
//   c'(t)  = (1/t) (A c(t) + B f(t)),
//   A_nk = -sqrt(2n+1) sqrt(2k+1)  (n > k),   -(n+1)  (n = k),   0  (n < k)
//   B_n  =  sqrt(2n+1)
//   and the history is  f(x) ~ sum_n c_n(t) sqrt(2n+1) P_n(2x/t - 1)  on [0, t].
//   S4 uses this A with a learned step size as a time-invariant SSM (x' = A x + B u), whose
//   meaning Gu et al. 2022 ("How to Train Your HiPPO") explain as exponentially warped Legendre
//   polynomials. P_n are the Legendre polynomials.
//
// LegT, translated Legendre (HiPPO paper, Theorem 1; the same system as the Legendre Memory
// Unit of Voelker, Kajić, Eliasmith 2019, up to the scaling by theta). mu_t uniform on the window
// [t - theta, t]:
//   c'(t) = A c(t) + B f(t),
//   A_nk = -(2n+1)/theta * ( (-1)^{n-k}  (n >= k);   1  (n < k) )
//   B_n  =  (2n+1)/theta * (-1)^n
//   and the window is  f(t - s) ~ sum_n c_n(t) P_n(2s/theta - 1)  for the lag s in [0, theta],
//   with c_n = (2n+1)/theta int_0^theta f(t - s) P_n(2s/theta - 1) ds, the Legendre series
//   of the window. The ODE is exact when f(t - theta) equals the series' value at the window's
//   far end (f a polynomial of degree < N), and an approximation otherwise.
//
// FouT, truncated Fourier (Gu, Johnson, Timalsina, Rudra, Ré 2022, "How to Train Your HiPPO:
// State Space Models with Generalized Orthogonal Basis Projections", the FouT system; derived
// again here). mu_t uniform on [t - theta, t]; with u = (x - t)/theta in [-1, 0] the orthonormal
// basis is
//   e_0 = 1,  e_{2m-1} = sqrt(2) cos(2 pi m u),  e_{2m} = sqrt(2) sin(2 pi m u)   (m = 1, 2, ...)
//   c_j(t) = int_{-1}^0 f(t + theta u) e_j(u) du,   f(x) ~ sum_j c_j(t) e_j((x - t)/theta).
//   Differentiating under the integral gives  c' = Omega c + (1/theta) e(0) (f(t) - f(t - theta))
//   with Omega[2m-1, 2m] = 2 pi m / theta, Omega[2m, 2m-1] = -2 pi m / theta (the window's
//   rotation), e(0) = (1, sqrt2, 0, sqrt2, 0, ...) the basis at the window's ends. The series
//   evaluated at the jump converges to the average (f(t) + f(t - theta))/2, so the paper
//   substitutes f(t - theta) = 2 e(0)^T c - f(t):
//   A = Omega - (2/theta) e(0) e(0)^T,   B = (2/theta) e(0).
//   For theta = 1: A_00 = -2, A_0j = A_j0 = -2 sqrt2 and A_jk = -4 for cosine indices j, k,
//   +-2 pi m on the cosine/sine pairs, B_0 = 2, B_cos = 2 sqrt2, B_sin = 0: the paper's FouT.
//   With even N the last index is a cosine without its sine partner: the ODE is then the
//   projection onto that truncated set (an approximation even for band-limited inputs that
//   use the top frequency).
//
// ---- NPLR / DPLR form of LegS (S4: Gu, Goel, Ré 2022, "Efficiently Modeling Long Sequences
// with Structured State Spaces", Theorem 1 and its proof) --------------------------------
//   P_n = sqrt(n + 1/2):   A + P P^T = -1/2 I + S,   S_nk = -1/2 sqrt(2n+1) sqrt(2k+1) sign(n-k),
//   S skew-symmetric, so the normal part -1/2 I + S = V diag(Lambda) V^* with V unitary and
//   Lambda_j = -1/2 + i w_j, where (w_j, V[:, j]) are the eigenpairs of the Hermitian matrix
//   -i S (s4/eigen.h). Then
//       A = V diag(Lambda) V^* - P P^T = V (diag(Lambda) - Pt Pt^*) V^*,   Pt = V^* P,
//   a diagonal plus rank-1 matrix in the eigenbasis, where B becomes Bt = V^* B.
//   Conjugate-pair halving: S is real, so the eigenvalues of -i S come in pairs +-w with
//   eigenvectors v and conj(v), and everything S4 computes from the pair is twice the real
//   part of what it computes from the member with w > 0. The halved form keeps the N/2
//   eigenvalues with w > 0, in ascending order of w. N must be even: a real skew-symmetric
//   matrix of odd size has an eigenvalue w = 0 with no partner, which the "2 Re" rule would
//   count twice, so odd N is refused (and an even N whose S had w = 0 would be reported as an
//   error; for LegS none is, as make_dplr_legs checks).
//
// ---- S4D (Gu, Gupta, Goel, Ré 2022, "On the Parameterization and Initialization of Diagonal
// State Space Models", the section on initialisation) ----------------------------------
//   S4D-LegS  A_n = Lambda_n (the DPLR eigenvalues, low-rank term dropped),  B_n = (V^* B)_n
//   S4D-Lin   A_n = -1/2 + i pi n,                                           B_n = 1
//   S4D-Inv   A_n = -1/2 + i (N/pi) (N/(2n+1) - 1),                          B_n = 1
//             (n = 0 .. N/2 - 1, N the full state size before halving)
//   S4D-Real  A_n = -(n+1),  n = 0 .. N - 1 (real, no conjugate pairs),      B_n = 1
//   The first three are halved (N/2 complex numbers whose conjugates are implied); S4D-Real is
//   not (N real numbers stored as complex with zero imaginary part), so a kernel that takes
//   twice the real part counts each real mode twice: a factor 2 that the learned C absorbs.
//
// Shapes: complex tensors are float64 with a trailing dimension of size 2 (real, imaginary).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace ssm::s4 {

// ---- HiPPO matrices -------------------------------------------------------------------------
struct HippoMatrices {
  Tensor A; // (N, N) float64
  Tensor B; // (N) float64
};
HippoMatrices hippo_legs(int64_t N);
HippoMatrices hippo_legt(int64_t N, double theta = 1.0);
HippoMatrices hippo_fout(int64_t N, double theta = 1.0);

// ---- NPLR / DPLR form of LegS ---------------------------------------------------------------
// M = N/2 for the halved form (make_dplr_legs), M = N for every eigenvalue (make_dplr_legs_full).
struct DplrInit {
  Tensor Lambda; // (M, 2)     eigenvalues of the normal part, -1/2 + i w, ascending w
  Tensor P;      // (M, 2)     V^* P, the rank-1 term in the eigenbasis
  Tensor B;      // (M, 2)     V^* B
  Tensor V;      // (N, M, 2)  eigenvectors, column j for Lambda_j
};
// N even, >= 2: the S4 initialisation. Each kept eigenpair stands for itself and its conjugate,
// so A = 2 Re(V diag(Lambda) V^*) - P P^T with the real P = 2 Re(V Pt), B = 2 Re(V Bt).
DplrInit make_dplr_legs(int64_t N);
// Any N >= 1, no halving: A = V diag(Lambda) V^* - P P^T with P = V Pt, B = V Bt.
DplrInit make_dplr_legs_full(int64_t N);

// ---- S4D diagonal initialisations -----------------------------------------------------------
struct DiagonalInit {
  Tensor A; // (M, 2) complex diagonal state matrix
  Tensor B; // (M, 2) complex input vector
};
DiagonalInit s4d_legs(int64_t N); // M = N/2, N even
DiagonalInit s4d_lin(int64_t N);  // M = N/2, N even
DiagonalInit s4d_inv(int64_t N);  // M = N/2, N even
DiagonalInit s4d_real(int64_t N); // M = N
// By name: "legs", "lin", "inv" or "real" (for a --init flag).
DiagonalInit s4d_init(const std::string& name, int64_t N);

// ---- The online LegS projection (the HiPPO demonstration) -----------------------------------
// Samples f_1 .. f_L of a signal; sample k stands for the cell [k-1, k] of the time axis
// (position k - 1/2), so the history [0, k] maps to s in [-1, 1] by s = 2x/k - 1.
//
// Online: the LegS ODE c' = (1/t)(A c + B f) discretised with the bilinear transform (the
// generalised bilinear transform the HiPPO paper discretises with, at alpha = 1/2), in units
// of samples, one step per sample, c_0 = 0. Step k runs from t = k-1 to t = k; its input f_k
// and the time-varying factor 1/t are taken at the step's midpoint t = k - 1/2:
//   (I - A/(2k-1)) c_k = (I + A/(2k-1)) c_{k-1} + 2/(2k-1) B f_k,        k = 1 .. L
// which is the implicit midpoint rule, second order: the coefficients of a smooth signal are
// within about 2e-5 (relative) of the exact projection at L = 1000, N = 8, like the offline
// midpoint sum below. Taking 1/t at the end of the step (t = k) instead, as the HiPPO/S4
// reference code does (A/t, B/t with t = k), makes the scheme first order (measured error
// about 3/L). I - A/(2k-1) is lower triangular: one forward substitution per step, O(N^2).
// There is no step size: LegS is scale-invariant, so stretching the signal in time leaves c_k
// unchanged.
// f (L) float64 -> c (L, N) float64, row k-1 = c_k, the coefficients of the history [0, k].
Tensor legs_online_projection(const Tensor& f, int64_t N);

// Offline: the projection of the whole sampled history onto the LegS basis by the midpoint
// rule, c_n = (1/L) sum_k f_k sqrt(2n+1) P_n(s_k),  s_k = (2k - 1)/L - 1: the answer the online
// recurrence reaches one sample at a time (both are within O(1/L^2) of the exact projection of
// a smooth signal). f (L) -> c (N).
Tensor legs_offline_projection(const Tensor& f, int64_t N);

// The history rebuilt from coefficients of [0, L]: f_hat_k = sum_n c_n sqrt(2n+1) P_n(s_k) at
// the sample positions s_k = (2k - 1)/L - 1, k = 1 .. L. c (N) float64 -> (L) float64.
Tensor legs_reconstruct(const Tensor& c, int64_t L);

// ---- Legendre tools (used above, by the tests and by the demo) ------------------------------
// P_0(s) .. P_{N-1}(s) by the three-term recurrence (n+1) P_{n+1} = (2n+1) s P_n - n P_{n-1}.
std::vector<double> legendre_values(int64_t N, double s);

// Gauss-Legendre quadrature on [-1, 1] with m points (exact for polynomials of degree < 2m):
// nodes by Newton's method on P_m from the Chebyshev guesses cos(pi (i + 3/4) / (m + 1/2)),
// weights 2 / ((1 - x^2) P_m'(x)^2).
struct Quadrature {
  std::vector<double> nodes, weights;
};
Quadrature gauss_legendre(int64_t m);

// The exact LegS coefficients of a function over [0, t] (the continuous c_n(t) above), by
// Gauss-Legendre quadrature with `points` nodes: exact for polynomial f of degree
// < 2 points - N + 1. -> (N) float64.
Tensor legs_project(const std::function<double(double)>& f, double t, int64_t N,
                    int64_t points = 64);

} // namespace ssm::s4
