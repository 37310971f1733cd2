// eigen.h: eigenvalues and eigenvectors of a complex Hermitian matrix, by the cyclic Jacobi
// method, in float64. S4 needs one eigendecomposition at initialisation time (the normal part
// of HiPPO-LegS, s4/hippo.h), so a small, readable solver is enough; no LAPACK.
//
// ---- The math ----------------------------------------------------------------------------
// For a Hermitian M (M = M^*), find a unitary V and real w with  M = V diag(w) V^*.
// Jacobi's method (Jacobi 1846; Golub & Van Loan, "Matrix Computations", 4th ed., section
// 8.5, for the real symmetric case) repeatedly picks an off-diagonal pair (p, q) and applies a
// unitary rotation U in the (p, q) plane that makes M_pq zero:  M <- U^* M U,  V <- V U.
// A cyclic sweep visits every pair p < q once. Each rotation lowers the off-diagonal mass
//   off(M)^2 = sum_{i != j} |M_ij|^2
// by exactly 2 |M_pq|^2 (the Frobenius norm is unitarily invariant and the diagonal takes what
// the off-diagonal loses), and convergence is quadratic once the eigenvalues are separated
// from the rounding level: a 64 x 64 matrix needs about 8 to 10 sweeps.
//
// The complex rotation. With a = M_pp, d = M_qq (real) and b = M_pq = r e^{i phi}:
//   E = diag(1, e^{-i phi}) makes the 2 x 2 block real:  E^* [a b; b* d] E = [a r; r d],
//   then the real Jacobi rotation R = [c s; -s c] with
//     tau = (d - a) / (2 r),  t = sign(tau) / (|tau| + sqrt(1 + tau^2))  (t = 1 if tau = 0),
//     c = 1 / sqrt(1 + t^2),  s = t c
//   diagonalises it: R^T [a r; r d] R = diag(a - t r, d + t r).
//   So U = E R = [c, s; -s e^{-i phi}, c e^{-i phi}]. (|t| <= 1: the smaller of the two
//   rotation angles, which keeps the method stable.)
//
// ---- Output conventions -------------------------------------------------------------------
//   eigenvalues  ascending
//   vectors      column j is the unit eigenvector of eigenvalue j, with a fixed phase: its
//                component of largest modulus (the first one, on ties) is real and positive,
//                so the result does not depend on the arbitrary phases the rotations leave.
#pragma once

#include <complex>
#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace ssm::s4 {

// The decomposition of an n x n Hermitian matrix, as plain arrays.
struct HermitianEigen {
  std::vector<double> eigenvalues;                // (n) ascending
  std::vector<std::complex<double>> eigenvectors; // (n, n) row-major; column j is vector j
  int64_t sweeps = 0;                             // Jacobi sweeps it took
};

// M (n, n) row-major, Hermitian (checked: throws std::invalid_argument when
// max |M - M^*| > 1e-12 * max |M|). Stops when off(M) <= eps ||M||_F (eps = 2.2e-16, the float64
// machine epsilon) or a sweep finds no element above eps ||M||_F / n to rotate; throws
// std::runtime_error if neither has happened after 100 sweeps.
HermitianEigen hermitian_eigen(const std::vector<std::complex<double>>& M, int64_t n);

// The same on tensors: M (n, n, 2) float64 on the CPU (real, imaginary in the last dim) ->
// eigenvalues (n) float64, eigenvectors (n, n, 2) float64 (column j is vector j).
struct EighResult {
  Tensor eigenvalues;
  Tensor eigenvectors;
  int64_t sweeps = 0;
};
EighResult eigh_hermitian(const Tensor& M);

} // namespace ssm::s4
