// hippo.cpp: the HiPPO matrices, the DPLR form of LegS, the S4D initialisations and the
// online LegS projection. The formulas and their sources are in hippo.h; this file follows
// them line by line, in float64, with plain loops over std::vector (these are N x N matrices
// built once, N of order 64).
#include "s4/hippo.h"

#include <cmath>
#include <complex>
#include <stdexcept>

#include "s4/eigen.h"

namespace ssm::s4 {

namespace {

using cdouble = std::complex<double>;

void check_states(const char* op, int64_t N) {
  if (N < 1)
    throw std::invalid_argument(std::string(op) + ": N must be >= 1, got " + std::to_string(N));
}

void check_even_states(const char* op, int64_t N) {
  if (N < 2 || N % 2 != 0)
    throw std::invalid_argument(std::string(op) +
                                ": N must be even and >= 2 (conjugate pairs are halved), got " +
                                std::to_string(N));
}

void check_window(const char* op, double theta) {
  if (!(theta > 0) || !std::isfinite(theta))
    throw std::invalid_argument(std::string(op) +
                                ": theta (the window length) must be positive, got " +
                                std::to_string(theta));
}

// Complex values of `shape` -> a float64 tensor (shape..., 2), (real, imaginary) last.
Tensor complex_tensor(const std::vector<cdouble>& values, const Shape& shape) {
  std::vector<double> flat(2 * values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    flat[2 * i] = values[i].real();
    flat[2 * i + 1] = values[i].imag();
  }
  Shape full = shape;
  full.push_back(2);
  return Tensor::from_vector(flat, full);
}

// A 1-D float64 CPU tensor's values, checked.
std::vector<double> vector_of(const Tensor& t, const char* op, const char* name) {
  check_cpu(t, op);
  if (t.dtype() != DType::Float64 || t.dim() != 1)
    throw std::invalid_argument(std::string(op) + ": " + name +
                                " must be a 1-D float64 tensor, got " + t.describe());
  return t.to_doubles();
}

} // namespace

// ---- HiPPO matrices -------------------------------------------------------------------------

HippoMatrices hippo_legs(int64_t N) {
  check_states("hippo_legs", N);
  std::vector<double> A(N * N, 0.0), B(N);
  for (int64_t n = 0; n < N; ++n) {
    B[n] = std::sqrt(2.0 * n + 1);
    for (int64_t k = 0; k < n; ++k) A[n * N + k] = -std::sqrt(2.0 * n + 1) * std::sqrt(2.0 * k + 1);
    A[n * N + n] = -(n + 1.0);
  }
  return {Tensor::from_vector(A, {N, N}), Tensor::from_vector(B, {N})};
}

HippoMatrices hippo_legt(int64_t N, double theta) {
  check_states("hippo_legt", N);
  check_window("hippo_legt", theta);
  std::vector<double> A(N * N), B(N);
  for (int64_t n = 0; n < N; ++n) {
    const double row_scale = (2.0 * n + 1) / theta;
    const double sign_n = n % 2 == 0 ? 1.0 : -1.0; // (-1)^n
    B[n] = row_scale * sign_n;
    for (int64_t k = 0; k < N; ++k) {
      const double sign_nk = (n - k) % 2 == 0 ? 1.0 : -1.0; // (-1)^{n-k}
      A[n * N + k] = -row_scale * (n >= k ? sign_nk : 1.0);
    }
  }
  return {Tensor::from_vector(A, {N, N}), Tensor::from_vector(B, {N})};
}

HippoMatrices hippo_fout(int64_t N, double theta) {
  check_states("hippo_fout", N);
  check_window("hippo_fout", theta);
  // e(0): the basis at the window's ends: 1, then sqrt2 for each cosine, 0 for each sine.
  std::vector<double> e_end(N);
  for (int64_t j = 0; j < N; ++j) e_end[j] = j == 0 ? 1.0 : (j % 2 == 1 ? std::sqrt(2.0) : 0.0);
  std::vector<double> A(N * N), B(N);
  for (int64_t j = 0; j < N; ++j) {
    B[j] = 2 / theta * e_end[j];
    for (int64_t k = 0; k < N; ++k) A[j * N + k] = -2 / theta * e_end[j] * e_end[k];
  }
  // Omega: cosine 2m-1 and sine 2m of frequency m rotate into each other.
  for (int64_t m = 1; 2 * m < N; ++m) {
    const double omega = 2 * M_PI * m / theta;
    A[(2 * m - 1) * N + 2 * m] += omega;
    A[2 * m * N + (2 * m - 1)] -= omega;
  }
  return {Tensor::from_vector(A, {N, N}), Tensor::from_vector(B, {N})};
}

// ---- NPLR / DPLR form of LegS ---------------------------------------------------------------

DplrInit make_dplr_legs_full(int64_t N) {
  check_states("make_dplr_legs_full", N);
  const HippoMatrices legs = hippo_legs(N);
  const std::vector<double> A = legs.A.to_doubles(); // (N, N)
  const std::vector<double> B = legs.B.to_doubles(); // (N)
  std::vector<double> P(N);                          // (N) the rank-1 correction
  for (int64_t n = 0; n < N; ++n) P[n] = std::sqrt(n + 0.5);

  // S = A + P P^T + I/2, skew-symmetric in exact arithmetic; its rounding (sqrt(1/2)^2 is not
  // exactly 1/2) is removed by keeping the skew part (S - S^T)/2, so that -i S is exactly
  // Hermitian. tests/test_hippo.cpp rebuilds A from the result (error about 1e-14 at N = 64).
  std::vector<double> S(N * N); // (N, N)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < N; ++k)
      S[n * N + k] = A[n * N + k] + P[n] * P[k] + (n == k ? 0.5 : 0.0);
  std::vector<cdouble> minus_i_S(N * N); // (N, N)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < N; ++k)
      minus_i_S[n * N + k] = cdouble(0, -0.5 * (S[n * N + k] - S[k * N + n]));
  const HermitianEigen eig = hermitian_eigen(minus_i_S, N);

  // Lambda_j = -1/2 + i w_j;  Pt = V^* P;  Bt = V^* B.
  std::vector<cdouble> Lambda(N), Pt(N, 0.0), Bt(N, 0.0);
  for (int64_t j = 0; j < N; ++j) {
    Lambda[j] = cdouble(-0.5, eig.eigenvalues[j]);
    for (int64_t n = 0; n < N; ++n) {
      const cdouble v_conj = std::conj(eig.eigenvectors[n * N + j]);
      Pt[j] += v_conj * P[n];
      Bt[j] += v_conj * B[n];
    }
  }
  return {complex_tensor(Lambda, {N}), complex_tensor(Pt, {N}), complex_tensor(Bt, {N}),
          complex_tensor(eig.eigenvectors, {N, N})};
}

DplrInit make_dplr_legs(int64_t N) {
  check_even_states("make_dplr_legs", N);
  const DplrInit full = make_dplr_legs_full(N);
  const int64_t half = N / 2;
  // The eigenvalues are sorted by w ascending: the upper half are the w > 0 ones, provided
  // none is 0 (w_{half-1} = -w_half < 0 < w_half).
  const double w_smallest_kept = full.Lambda.at({half, 1});
  const double w_largest_dropped = full.Lambda.at({half - 1, 1});
  const double w_max = full.Lambda.at({N - 1, 1});
  if (!(w_smallest_kept > 1e-9 * w_max) || !(w_largest_dropped < -1e-9 * w_max))
    throw std::runtime_error(
        "make_dplr_legs: expected N/2 eigenvalues with positive and N/2 with negative imaginary "
        "part, found w = " +
        std::to_string(w_largest_dropped) + " and " + std::to_string(w_smallest_kept) +
        " around the middle (N = " + std::to_string(N) + ")");
  return {full.Lambda.narrow(0, half, half).contiguous(), full.P.narrow(0, half, half).contiguous(),
          full.B.narrow(0, half, half).contiguous(), full.V.narrow(1, half, half).contiguous()};
}

// ---- S4D diagonal initialisations -----------------------------------------------------------

DiagonalInit s4d_legs(int64_t N) {
  check_even_states("s4d_legs", N);
  const DplrInit dplr = make_dplr_legs(N);
  return {dplr.Lambda, dplr.B};
}

DiagonalInit s4d_lin(int64_t N) {
  check_even_states("s4d_lin", N);
  std::vector<cdouble> A(N / 2), B(N / 2, 1.0);
  for (int64_t n = 0; n < N / 2; ++n) A[n] = cdouble(-0.5, M_PI * n);
  return {complex_tensor(A, {N / 2}), complex_tensor(B, {N / 2})};
}

DiagonalInit s4d_inv(int64_t N) {
  check_even_states("s4d_inv", N);
  std::vector<cdouble> A(N / 2), B(N / 2, 1.0);
  const double Nd = static_cast<double>(N);
  for (int64_t n = 0; n < N / 2; ++n) A[n] = cdouble(-0.5, Nd / M_PI * (Nd / (2.0 * n + 1) - 1));
  return {complex_tensor(A, {N / 2}), complex_tensor(B, {N / 2})};
}

DiagonalInit s4d_real(int64_t N) {
  check_states("s4d_real", N);
  std::vector<cdouble> A(N), B(N, 1.0);
  for (int64_t n = 0; n < N; ++n) A[n] = -(n + 1.0);
  return {complex_tensor(A, {N}), complex_tensor(B, {N})};
}

DiagonalInit s4d_init(const std::string& name, int64_t N) {
  if (name == "legs") return s4d_legs(N);
  if (name == "lin") return s4d_lin(N);
  if (name == "inv") return s4d_inv(N);
  if (name == "real") return s4d_real(N);
  throw std::invalid_argument("s4d_init: expected \"legs\", \"lin\", \"inv\" or \"real\", got \"" +
                              name + "\"");
}

// ---- Legendre tools -------------------------------------------------------------------------

std::vector<double> legendre_values(int64_t N, double s) {
  std::vector<double> P(N);
  if (N > 0) P[0] = 1;
  if (N > 1) P[1] = s;
  for (int64_t n = 1; n + 1 < N; ++n)
    P[n + 1] = ((2.0 * n + 1) * s * P[n] - n * P[n - 1]) / (n + 1);
  return P;
}

Quadrature gauss_legendre(int64_t m) {
  if (m < 1)
    throw std::invalid_argument("gauss_legendre: m must be >= 1, got " + std::to_string(m));
  Quadrature q;
  q.nodes.resize(m);
  q.weights.resize(m);
  for (int64_t i = 0; i < m; ++i) {
    double x = std::cos(M_PI * (i + 0.75) / (m + 0.5));
    double derivative = 1;
    for (int iteration = 0; iteration < 100; ++iteration) {
      const std::vector<double> P = legendre_values(m + 1, x); // P_0 .. P_m
      // P_m'(x) = m (x P_m - P_{m-1}) / (x^2 - 1)
      derivative = m * (x * P[m] - P[m - 1]) / (x * x - 1);
      const double step = P[m] / derivative;
      x -= step;
      if (std::fabs(step) < 1e-16) break;
    }
    const std::vector<double> P = legendre_values(m + 1, x);
    derivative = m * (x * P[m] - P[m - 1]) / (x * x - 1);
    q.nodes[i] = x;
    q.weights[i] = 2 / ((1 - x * x) * derivative * derivative);
  }
  return q;
}

Tensor legs_project(const std::function<double(double)>& f, double t, int64_t N, int64_t points) {
  check_states("legs_project", N);
  if (!(t > 0))
    throw std::invalid_argument("legs_project: t must be positive, got " + std::to_string(t));
  const Quadrature q = gauss_legendre(points);
  // c_n = (1/t) int_0^t f(x) sqrt(2n+1) P_n(2x/t - 1) dx = (1/2) int_{-1}^1 f(t(s+1)/2) ... ds
  std::vector<double> c(N, 0.0);
  for (int64_t i = 0; i < points; ++i) {
    const double s = q.nodes[i];
    const double fx = f(t * (s + 1) / 2);
    const std::vector<double> P = legendre_values(N, s);
    for (int64_t n = 0; n < N; ++n) c[n] += 0.5 * q.weights[i] * fx * std::sqrt(2.0 * n + 1) * P[n];
  }
  return Tensor::from_vector(c, {N});
}

// ---- The online LegS projection -------------------------------------------------------------

Tensor legs_online_projection(const Tensor& f_tensor, int64_t N) {
  check_states("legs_online_projection", N);
  const std::vector<double> f = vector_of(f_tensor, "legs_online_projection", "f"); // (L)
  const int64_t L = static_cast<int64_t>(f.size());
  const HippoMatrices legs = hippo_legs(N);
  const std::vector<double> A = legs.A.to_doubles(); // (N, N) lower triangular
  const std::vector<double> B = legs.B.to_doubles(); // (N)

  std::vector<double> history(L * N); // (L, N)
  std::vector<double> c(N, 0.0), rhs(N);
  for (int64_t k = 1; k <= L; ++k) {
    const double half_step = 1.0 / (2.0 * k - 1); // dt / (2 t) with dt = 1, t = k - 1/2
    // rhs = (I + A/(2k-1)) c_{k-1} + 2/(2k-1) B f_k
    for (int64_t n = 0; n < N; ++n) {
      double Ac = 0;
      for (int64_t j = 0; j <= n; ++j) Ac += A[n * N + j] * c[j];
      rhs[n] = c[n] + half_step * Ac + 2 * half_step * B[n] * f[k - 1];
    }
    // Forward substitution: (I - A/(2k-1)) c_k = rhs.
    for (int64_t n = 0; n < N; ++n) {
      double sum = rhs[n];
      for (int64_t j = 0; j < n; ++j) sum += half_step * A[n * N + j] * c[j];
      c[n] = sum / (1 - half_step * A[n * N + n]);
    }
    for (int64_t n = 0; n < N; ++n) history[(k - 1) * N + n] = c[n];
  }
  return Tensor::from_vector(history, {L, N});
}

Tensor legs_offline_projection(const Tensor& f_tensor, int64_t N) {
  check_states("legs_offline_projection", N);
  const std::vector<double> f = vector_of(f_tensor, "legs_offline_projection", "f"); // (L)
  const int64_t L = static_cast<int64_t>(f.size());
  if (L < 1) throw std::invalid_argument("legs_offline_projection: f is empty");
  std::vector<double> c(N, 0.0);
  for (int64_t k = 1; k <= L; ++k) {
    const std::vector<double> P = legendre_values(N, (2.0 * k - 1) / L - 1);
    for (int64_t n = 0; n < N; ++n) c[n] += f[k - 1] * std::sqrt(2.0 * n + 1) * P[n] / L;
  }
  return Tensor::from_vector(c, {N});
}

Tensor legs_reconstruct(const Tensor& c_tensor, int64_t L) {
  const std::vector<double> c = vector_of(c_tensor, "legs_reconstruct", "c"); // (N)
  const int64_t N = static_cast<int64_t>(c.size());
  check_states("legs_reconstruct", N);
  if (L < 1)
    throw std::invalid_argument("legs_reconstruct: L must be >= 1, got " + std::to_string(L));
  std::vector<double> f_hat(L, 0.0);
  for (int64_t k = 1; k <= L; ++k) {
    const std::vector<double> P = legendre_values(N, (2.0 * k - 1) / L - 1);
    for (int64_t n = 0; n < N; ++n) f_hat[k - 1] += c[n] * std::sqrt(2.0 * n + 1) * P[n];
  }
  return Tensor::from_vector(f_hat, {L});
}

} // namespace ssm::s4
