// eigen.cpp: the cyclic Jacobi eigen-solver for complex Hermitian matrices. The math (the
// complex rotation, the stopping rule, the phase convention) is in eigen.h.
//
// Cost: a rotation updates two rows and two columns of M and two eigenvectors, O(n) each; a
// sweep is n(n-1)/2 rotations, so O(n^3) per sweep, and 8 to 10 sweeps are needed. Measured
// on one core: n = 64 in 3 ms, n = 128 in 30 ms, n = 256 in 0.8 s (M no longer fits in cache,
// and a column is n strided writes).
#include "s4/eigen.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>

namespace ssm::s4 {

namespace {

using cdouble = std::complex<double>;

constexpr int kMaxSweeps = 100;

// A number for an error message, in %g form (std::to_string would print 1e-20 as 0.000000).
std::string number(double x) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.3g", x);
  return buffer;
}

// sqrt(sum_{i != j} |M_ij|^2) of a row-major n x n matrix.
double off_diagonal_norm(const std::vector<cdouble>& M, int64_t n) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      if (i != j) sum += std::norm(M[i * n + j]);
  return std::sqrt(sum);
}

// a * b written out: std::complex's operator* goes through a library call (__muldc3) that
// handles infinities and NaNs and is several times slower; every value here is finite.
cdouble mul(cdouble a, cdouble b) {
  return {a.real() * b.real() - a.imag() * b.imag(), a.real() * b.imag() + a.imag() * b.real()};
}

// Zeroes M_pq (and M_qp) by M <- U^* M U, U = [c, s; -s e, c e] in the (p, q) plane with
// e = e^{-i phi} (eigen.h derives it), and accumulates V <- V U. Only rows are walked
// (contiguous memory): for k outside {p, q} the entries (p, k) and (q, k) of U^* M U are those
// of U^* M, since the right factor mixes only columns p and q; columns p and q then follow by
// Hermitian symmetry, and the 2 x 2 block is diag(a - t r, d + t r). The eigenvectors are kept
// as the rows of W = V^T, where V <- V U reads W <- U^T W, again two rows.
void rotate(std::vector<cdouble>& M, std::vector<cdouble>& W, int64_t n, int64_t p, int64_t q) {
  const cdouble b = M[p * n + q];
  const double r = std::abs(b);
  const double a = M[p * n + p].real(), d = M[q * n + q].real();
  const cdouble e = std::conj(b) / r; // e^{-i phi}
  const double tau = (d - a) / (2 * r);
  const double t = (tau >= 0 ? 1.0 : -1.0) / (std::fabs(tau) + std::sqrt(1 + tau * tau));
  const double c = 1 / std::sqrt(1 + t * t), s = t * c;

  // Rows p and q of M <- U^* M:  x <- c x - s e^* y,  y <- s x + c e^* y; then the columns.
  const cdouble e_conj = std::conj(e);
  for (int64_t k = 0; k < n; ++k) {
    if (k == p || k == q) continue;
    cdouble& x = M[p * n + k];
    cdouble& y = M[q * n + k];
    const cdouble ey = mul(e_conj, y), x_old = x;
    x = c * x_old - s * ey;
    y = s * x_old + c * ey;
    M[k * n + p] = std::conj(x);
    M[k * n + q] = std::conj(y);
  }
  M[p * n + q] = 0;
  M[q * n + p] = 0;
  M[p * n + p] = a - t * r;
  M[q * n + q] = d + t * r;

  // Rows p and q of W <- U^T W:  x <- c x - s e y,  y <- s x + c e y.
  for (int64_t k = 0; k < n; ++k) {
    cdouble& x = W[p * n + k];
    cdouble& y = W[q * n + k];
    const cdouble ey = mul(e, y), x_old = x;
    x = c * x_old - s * ey;
    y = s * x_old + c * ey;
  }
}

} // namespace

HermitianEigen hermitian_eigen(const std::vector<cdouble>& M_in, int64_t n) {
  if (n < 1 || static_cast<int64_t>(M_in.size()) != n * n)
    throw std::invalid_argument("hermitian_eigen: expected n >= 1 and n * n = " +
                                std::to_string(n * n) + " entries, got n = " + std::to_string(n) +
                                " and " + std::to_string(M_in.size()) + " entries");
  double max_abs = 0, max_asym = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      max_abs = std::max(max_abs, std::abs(M_in[i * n + j]));
      max_asym = std::max(max_asym, std::abs(M_in[i * n + j] - std::conj(M_in[j * n + i])));
    }
  if (!std::isfinite(max_abs) || !(max_asym <= 1e-12 * max_abs))
    throw std::invalid_argument(
        "hermitian_eigen: M is not a finite Hermitian matrix (max |M - M^*| = " + number(max_asym) +
        ", max |M| = " + number(max_abs) + ")");

  // Work on the Hermitian part with an exactly real diagonal.
  std::vector<cdouble> M(n * n), W(n * n, 0.0); // W = V^T: row j is eigenvector j
  double frobenius_sq = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      M[i * n + j] = 0.5 * (M_in[i * n + j] + std::conj(M_in[j * n + i]));
      frobenius_sq += std::norm(M[i * n + j]);
    }
    W[i * n + i] = 1;
  }
  const double tolerance = std::numeric_limits<double>::epsilon() * std::sqrt(frobenius_sq);
  // An element below tolerance / n is left alone: if all are, off(M) <= tolerance already, and
  // rotating them would only push values towards the denormal range, where float64
  // arithmetic is a hundred times slower.
  const double negligible = tolerance / static_cast<double>(n);

  HermitianEigen result;
  bool converged = false;
  while (!converged) {
    if (off_diagonal_norm(M, n) <= tolerance) break;
    if (result.sweeps == kMaxSweeps)
      throw std::runtime_error("hermitian_eigen: no convergence after " +
                               std::to_string(kMaxSweeps) +
                               " Jacobi sweeps (n = " + std::to_string(n) + ", off-diagonal norm " +
                               number(off_diagonal_norm(M, n)) + ")");
    ++result.sweeps;
    converged = true; // unless this sweep finds something to rotate
    for (int64_t p = 0; p < n - 1; ++p)
      for (int64_t q = p + 1; q < n; ++q)
        if (std::abs(M[p * n + q]) > negligible) {
          rotate(M, W, n, p, q);
          converged = false;
        }
  }

  // Sort ascending, then fix each column's phase (largest-modulus component real positive).
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t i, int64_t j) { return M[i * n + i].real() < M[j * n + j].real(); });
  result.eigenvalues.resize(n);
  result.eigenvectors.assign(n * n, 0.0);
  for (int64_t j = 0; j < n; ++j) {
    const cdouble* vector = &W[order[j] * n]; // (n) eigenvector of the j-th smallest eigenvalue
    result.eigenvalues[j] = M[order[j] * n + order[j]].real();
    int64_t largest = 0;
    for (int64_t i = 1; i < n; ++i)
      if (std::abs(vector[i]) > std::abs(vector[largest])) largest = i;
    const cdouble phase = std::conj(vector[largest]) / std::abs(vector[largest]);
    for (int64_t i = 0; i < n; ++i) result.eigenvectors[i * n + j] = vector[i] * phase;
    result.eigenvectors[largest * n + j] = std::abs(vector[largest]); // exactly real
  }
  return result;
}

EighResult eigh_hermitian(const Tensor& M) {
  check_cpu(M, "eigh_hermitian");
  if (M.dtype() != DType::Float64 || M.dim() != 3 || M.size(0) != M.size(1) || M.size(2) != 2)
    throw std::invalid_argument(
        "eigh_hermitian: expected a float64 complex matrix (n, n, 2), got " + M.describe());
  const int64_t n = M.size(0);
  const std::vector<double> values = M.to_doubles(); // (n, n, 2) row-major
  std::vector<cdouble> matrix(n * n);
  for (int64_t i = 0; i < n * n; ++i) matrix[i] = {values[2 * i], values[2 * i + 1]};

  const HermitianEigen eig = hermitian_eigen(matrix, n);
  std::vector<double> vectors(2 * n * n);
  for (int64_t i = 0; i < n * n; ++i) {
    vectors[2 * i] = eig.eigenvectors[i].real();
    vectors[2 * i + 1] = eig.eigenvectors[i].imag();
  }
  return {Tensor::from_vector(eig.eigenvalues, {n}), Tensor::from_vector(vectors, {n, n, 2}),
          eig.sweeps};
}

} // namespace ssm::s4
