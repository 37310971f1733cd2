// test_hippo.cpp: the HiPPO matrices, the Jacobi eigen-solver, the NPLR/DPLR form of LegS, the
// S4D initialisations and the online LegS projection (s4/hippo.h, s4/eigen.h), each against an
// independent computation:
//   - LegS/LegT/FouT entries against the closed forms and hand-computed values, and each
//     matrix's ODE, integrated with RK4, against the exact projection of a known function
//     computed by Gauss-Legendre quadrature (the property that defines a HiPPO matrix);
//   - the eigen-solver by reconstruction ||V diag(w) V^* - M|| / ||M|| and unitarity of V;
//   - the NPLR form by rebuilding the LegS A from (Lambda, V, P), full and halved;
//   - the online projection against the exact projection and by its convergence in L and N.
#include <doctest/doctest.h>

#include <cmath>
#include <complex>
#include <functional>
#include <string>
#include <vector>

#include "s4/eigen.h"
#include "s4/hippo.h"
#include "tests/helpers.h"

namespace ssm {
namespace {

using cdouble = std::complex<double>;
using s4::gauss_legendre;
using s4::legendre_values;
using s4::Quadrature;

// ---- small dense helpers ----------------------------------------------------------------------

// A complex tensor (..., 2) as a flat vector of complex numbers.
std::vector<cdouble> complex_values(const Tensor& t) {
  REQUIRE(t.size(-1) == 2);
  const std::vector<double> v = t.to_doubles();
  std::vector<cdouble> out(v.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) out[i] = {v[2 * i], v[2 * i + 1]};
  return out;
}

// ||a - b||_F / ||b||_F over complex entries.
double relative_error(const std::vector<cdouble>& a, const std::vector<cdouble>& b) {
  REQUIRE(a.size() == b.size());
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += std::norm(a[i] - b[i]);
    norm += std::norm(b[i]);
  }
  return std::sqrt(diff / norm);
}

double relative_error(const std::vector<double>& a, const std::vector<double>& b) {
  return relative_error(std::vector<cdouble>(a.begin(), a.end()),
                        std::vector<cdouble>(b.begin(), b.end()));
}

// C = X diag(d) Y^* for n x m X, Y (row-major) and d (m): the shape of every reconstruction here.
std::vector<cdouble> x_diag_yh(const std::vector<cdouble>& X, const std::vector<cdouble>& d,
                               const std::vector<cdouble>& Y, int64_t n, int64_t m) {
  std::vector<cdouble> C(n * n, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t k = 0; k < m; ++k) C[i * n + j] += X[i * m + k] * d[k] * std::conj(Y[j * m + k]);
  return C;
}

// ---- RK4 for c' = F(t, c) ---------------------------------------------------------------------

using Rhs = std::function<std::vector<double>(double, const std::vector<double>&)>;

std::vector<double> rk4(const Rhs& F, std::vector<double> c, double t0, double t1, int64_t steps) {
  const double h = (t1 - t0) / steps;
  auto axpy = [](const std::vector<double>& x, double a, const std::vector<double>& y) {
    std::vector<double> r(x.size());
    for (size_t i = 0; i < x.size(); ++i) r[i] = x[i] + a * y[i];
    return r;
  };
  for (int64_t s = 0; s < steps; ++s) {
    const double t = t0 + s * h;
    const std::vector<double> k1 = F(t, c);
    const std::vector<double> k2 = F(t + h / 2, axpy(c, h / 2, k1));
    const std::vector<double> k3 = F(t + h / 2, axpy(c, h / 2, k2));
    const std::vector<double> k4 = F(t + h, axpy(c, h, k3));
    for (size_t i = 0; i < c.size(); ++i) c[i] += h / 6 * (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i]);
  }
  return c;
}

// A c + B f for a dense (N, N) A.
std::vector<double> affine(const std::vector<double>& A, const std::vector<double>& B,
                           const std::vector<double>& c, double f) {
  const size_t N = c.size();
  std::vector<double> r(N);
  for (size_t n = 0; n < N; ++n) {
    r[n] = B[n] * f;
    for (size_t k = 0; k < N; ++k) r[n] += A[n * N + k] * c[k];
  }
  return r;
}

// ---- exact projections, written independently of s4/hippo.cpp's --------------------------------

// LegT: c_n(t) = (2n+1)/theta int_0^theta f(t - s) P_n(2s/theta - 1) ds
//             = (2n+1)/2 int_{-1}^1 f(t - theta (y+1)/2) P_n(y) dy.
std::vector<double> legt_exact(const std::function<double(double)>& f, double t, double theta,
                               int64_t N) {
  const Quadrature q = gauss_legendre(48);
  std::vector<double> c(N, 0.0);
  for (size_t i = 0; i < q.nodes.size(); ++i) {
    const double y = q.nodes[i];
    const std::vector<double> P = legendre_values(N, y);
    for (int64_t n = 0; n < N; ++n)
      c[n] += (2.0 * n + 1) / 2 * q.weights[i] * f(t - theta * (y + 1) / 2) * P[n];
  }
  return c;
}

// FouT: c_j(t) = int_{-1}^0 f(t + theta u) e_j(u) du, e_0 = 1, e_{2m-1} = sqrt2 cos(2 pi m u),
// e_{2m} = sqrt2 sin(2 pi m u). Gauss-Legendre on [-1, 0] (u = (y - 1)/2).
std::vector<double> fout_exact(const std::function<double(double)>& f, double t, double theta,
                               int64_t N) {
  const Quadrature q = gauss_legendre(64);
  std::vector<double> c(N, 0.0);
  for (size_t i = 0; i < q.nodes.size(); ++i) {
    const double u = (q.nodes[i] - 1) / 2, w = q.weights[i] / 2, fx = f(t + theta * u);
    for (int64_t j = 0; j < N; ++j) {
      const int64_t m = (j + 1) / 2;
      const double e = j == 0       ? 1.0
                       : j % 2 == 1 ? std::sqrt(2.0) * std::cos(2 * M_PI * m * u)
                                    : std::sqrt(2.0) * std::sin(2 * M_PI * m * u);
      c[j] += w * fx * e;
    }
  }
  return c;
}

// ---- HiPPO matrices ----------------------------------------------------------------------------

TEST_CASE("hippo: LegS equals the closed form") {
  // Hand-computed N = 3.
  const s4::HippoMatrices small = s4::hippo_legs(3);
  const double r3 = std::sqrt(3.0), r5 = std::sqrt(5.0), r15 = std::sqrt(15.0);
  test::check_values(small.A, {-1, 0, 0, -r3, -2, 0, -r5, -r15, -3}, 1e-15);
  test::check_values(small.B, {1, r3, r5}, 1e-15);
  for (int64_t N : {1, 2, 7, 16, 64}) {
    INFO("N = " << N);
    const s4::HippoMatrices legs = s4::hippo_legs(N);
    REQUIRE(legs.A.shape() == Shape{N, N});
    REQUIRE(legs.B.shape() == Shape{N});
    REQUIRE(legs.A.dtype() == DType::Float64);
    for (int64_t n = 0; n < N; ++n) {
      CHECK(legs.B.at({n}) == doctest::Approx(std::sqrt(2.0 * n + 1)).epsilon(1e-15));
      for (int64_t k = 0; k < N; ++k) {
        const double expected = n > k    ? -std::sqrt((2.0 * n + 1) * (2.0 * k + 1))
                                : n == k ? -(n + 1.0)
                                         : 0.0;
        CHECK(legs.A.at({n, k}) == doctest::Approx(expected).epsilon(1e-14));
      }
    }
  }
}

TEST_CASE("hippo: the LegS ODE carries the exact projection of a function") {
  // c_n(t) = (1/t) int_0^t f(x) sqrt(2n+1) P_n(2x/t - 1) dx obeys c' = (1/t)(A c + B f(t)) for
  // every f (no approximation in LegS): integrate from the exact c(1) to t = 3 and compare.
  const auto f = [](double x) { return std::sin(3 * x) + 0.5 * x * x - 0.2; };
  for (int64_t N : {4, 8, 12}) {
    INFO("N = " << N);
    const s4::HippoMatrices legs = s4::hippo_legs(N);
    const std::vector<double> A = legs.A.to_doubles(), B = legs.B.to_doubles();
    const Rhs rhs = [&](double t, const std::vector<double>& c) {
      std::vector<double> r = affine(A, B, c, f(t));
      for (double& v : r) v /= t;
      return r;
    };
    const std::vector<double> c1 = s4::legs_project(f, 1.0, N).to_doubles();
    const std::vector<double> c3 = rk4(rhs, c1, 1.0, 3.0, 2000);
    const double error = relative_error(c3, s4::legs_project(f, 3.0, N).to_doubles());
    MESSAGE("LegS ODE vs exact projection at t = 3, N = " << N << ": relative error " << error);
    CHECK(error < 1e-10); // RK4, h = 1e-3, eigenvalues up to N/t: 4e-14 .. 2e-12 measured
  }
}

TEST_CASE("hippo: LegT entries (HiPPO Theorem 1 = the LMU) and its ODE on a polynomial") {
  // Hand-computed N = 3, theta = 1 (the Legendre Memory Unit's A, B).
  const s4::HippoMatrices small = s4::hippo_legt(3, 1.0);
  test::check_values(small.A, {-1, -1, -1, 3, -3, -3, -5, 5, -5}, 0);
  test::check_values(small.B, {1, -3, 5}, 0);
  test::check_values(s4::hippo_legt(3, 2.0).B, {0.5, -1.5, 2.5}, 0);

  // The window's Legendre coefficients of a polynomial of degree N-1 are carried exactly
  // (the far end f(t - theta) equals the series' value there).
  for (auto [N, theta] : {std::pair<int64_t, double>{4, 1.0}, {6, 1.5}, {9, 0.7}}) {
    INFO("N = " << N << ", theta = " << theta);
    const std::vector<double> coef = test::rand64({N}, 40 + N).to_doubles();
    const auto f = [&](double x) {
      double v = 0;
      for (int64_t i = N - 1; i >= 0; --i) v = v * x + coef[i];
      return v;
    };
    const s4::HippoMatrices legt = s4::hippo_legt(N, theta);
    const std::vector<double> A = legt.A.to_doubles(), B = legt.B.to_doubles();
    const Rhs rhs = [&](double t, const std::vector<double>& c) { return affine(A, B, c, f(t)); };
    const std::vector<double> c1 = rk4(rhs, legt_exact(f, 0.0, theta, N), 0.0, 1.0, 10000);
    const double error = relative_error(c1, legt_exact(f, 1.0, theta, N));
    MESSAGE("LegT ODE vs exact window projection, N = " << N << ": relative error " << error);
    CHECK(error < 1e-9); // RK4 with h = 1e-4: about 1e-14 measured
  }
}

TEST_CASE("hippo: FouT entries (How to Train Your HiPPO) and its ODE on known functions") {
  const double r2 = std::sqrt(2.0), pi2 = 2 * M_PI;
  const s4::HippoMatrices small = s4::hippo_fout(5, 1.0);
  // rows: constant, cos 1, sin 1, cos 2, sin 2
  test::check_values(small.A, {-2,      -2 * r2, 0,   -2 * r2,  0,       //
                               -2 * r2, -4,      pi2, -4,       0,       //
                               0,       -pi2,    0,   0,        0,       //
                               -2 * r2, -4,      0,   -4,       2 * pi2, //
                               0,       0,       0,   -2 * pi2, 0},
                     1e-15);
  test::check_values(small.B, {2, 2 * r2, 0, 2 * r2, 0}, 1e-15);

  struct Case {
    std::string what;
    int64_t N;
    double theta;
    std::function<double(double)> f;
  };
  const Case cases[] = {
      // Not periodic: exact for any odd N, because the series of a linear function at the
      // window's jump is exactly the average (f(t) + f(t - theta))/2 that FouT assumes (its
      // cosine coefficients are zero). Checks Omega's signs, the rank-1 term and B's factor 2.
      {"linear, N = 7", 7, 0.8, [](double x) { return 0.3 + 1.7 * x; }},
      {"linear, N = 9", 9, 1.0, [](double x) { return -1 + 0.5 * x; }},
      // theta-periodic and band-limited below the top frequency: exact for even N too.
      {"periodic, N = 8", 8, 1.25,
       [](double x) {
         const double w = 2 * M_PI / 1.25;
         return 0.4 + std::cos(w * x + 0.3) - 0.7 * std::sin(3 * w * x);
       }},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    const s4::HippoMatrices fout = s4::hippo_fout(c.N, c.theta);
    const std::vector<double> A = fout.A.to_doubles(), B = fout.B.to_doubles();
    const Rhs rhs = [&](double t, const std::vector<double>& x) { return affine(A, B, x, c.f(t)); };
    const std::vector<double> end = rk4(rhs, fout_exact(c.f, 0.5, c.theta, c.N), 0.5, 1.5, 10000);
    const double error = relative_error(end, fout_exact(c.f, 1.5, c.theta, c.N));
    MESSAGE("FouT ODE vs exact window projection, " << c.what << ": relative error " << error);
    CHECK(error < 1e-9); // RK4 with h = 1e-4: 6e-15 .. 2e-13 measured
  }
}

TEST_CASE("hippo: bad arguments are refused with the op's name") {
  test::check_error<std::invalid_argument>([] { s4::hippo_legs(0); }, {"hippo_legs", "N"});
  test::check_error<std::invalid_argument>([] { s4::hippo_legt(4, 0.0); }, {"hippo_legt", "theta"});
  test::check_error<std::invalid_argument>([] { s4::hippo_fout(4, -1.0); },
                                           {"hippo_fout", "theta"});
  test::check_error<std::invalid_argument>([] { s4::make_dplr_legs(5); },
                                           {"make_dplr_legs", "even"});
  test::check_error<std::invalid_argument>([] { s4::s4d_lin(7); }, {"s4d_lin", "even"});
  test::check_error<std::invalid_argument>([] { s4::s4d_init("hippo", 8); },
                                           {"s4d_init", "\"hippo\""});
  test::check_error<std::invalid_argument>(
      [] {
        s4::legs_online_projection(Tensor::zeros({3, 2}, DType::Float64), 4);
      },
      {"legs_online_projection", "1-D float64"});
}

// ---- the eigen-solver ---------------------------------------------------------------------------

// A random Hermitian (X + X^*)/2, X with entries uniform in [-1, 1) + i [-1, 1).
std::vector<cdouble> random_hermitian(int64_t n, uint64_t seed) {
  const std::vector<double> v = test::rand64({n, n, 2}, seed).to_doubles();
  std::vector<cdouble> M(n * n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      const cdouble x(v[2 * (i * n + j)], v[2 * (i * n + j) + 1]);
      const cdouble y(v[2 * (j * n + i)], v[2 * (j * n + i) + 1]);
      M[i * n + j] = 0.5 * (x + std::conj(y));
    }
  return M;
}

// Checks M = V diag(w) V^* and V^* V = I to `tol` (relative Frobenius), w ascending, and the
// phase convention; returns the reconstruction error.
double check_eigen(const std::vector<cdouble>& M, const s4::HermitianEigen& eig, int64_t n,
                   double tol) {
  const std::vector<cdouble> w(eig.eigenvalues.begin(), eig.eigenvalues.end());
  const double error = relative_error(x_diag_yh(eig.eigenvectors, w, eig.eigenvectors, n, n), M);
  CHECK(error < tol);
  // ||V^* V - I||_F / sqrt(n)
  double unitarity = 0;
  for (int64_t a = 0; a < n; ++a)
    for (int64_t b = 0; b < n; ++b) {
      cdouble dot = 0;
      for (int64_t i = 0; i < n; ++i)
        dot += std::conj(eig.eigenvectors[i * n + a]) * eig.eigenvectors[i * n + b];
      unitarity += std::norm(dot - (a == b ? 1.0 : 0.0));
    }
  CHECK(std::sqrt(unitarity / n) < tol);
  for (int64_t j = 0; j + 1 < n; ++j) CHECK(eig.eigenvalues[j] <= eig.eigenvalues[j + 1]);
  for (int64_t j = 0; j < n; ++j) {
    int64_t largest = 0;
    for (int64_t i = 1; i < n; ++i)
      if (std::abs(eig.eigenvectors[i * n + j]) > std::abs(eig.eigenvectors[largest * n + j]))
        largest = i;
    CHECK(std::abs(eig.eigenvectors[largest * n + j].imag()) == 0.0);
    CHECK(eig.eigenvectors[largest * n + j].real() > 0);
  }
  return error;
}

TEST_CASE("eigen: Jacobi on random Hermitian matrices reconstructs them") {
  for (int64_t n : {1, 2, 3, 7, 16, 40}) {
    INFO("n = " << n);
    const std::vector<cdouble> M = random_hermitian(n, 100 + n);
    const s4::HermitianEigen eig = s4::hermitian_eigen(M, n);
    const double error = check_eigen(M, eig, n, 1e-12);
    MESSAGE("eigen n = " << n << ": " << eig.sweeps
                         << " sweeps, ||V diag(w) V^* - M|| / ||M|| = " << error);
    // The trace is the sum of the eigenvalues.
    double trace = 0, sum = 0;
    for (int64_t i = 0; i < n; ++i) {
      trace += M[i * n + i].real();
      sum += eig.eigenvalues[i];
    }
    CHECK(sum == doctest::Approx(trace).epsilon(1e-12).scale(n));
  }
}

TEST_CASE("eigen: the LegS case, -i S with S the skew part of HiPPO-LegS") {
  // S_nk = -1/2 sqrt(2n+1) sqrt(2k+1) sign(n - k) (the closed form; s4/hippo.cpp builds S from
  // A + P P^T + I/2 instead). Eigenvalues come in +- pairs.
  for (int64_t n : {2, 5, 16, 64}) {
    INFO("n = " << n);
    std::vector<cdouble> M(n * n);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        const double sign = i > j ? 1.0 : (i < j ? -1.0 : 0.0);
        M[i * n + j] = cdouble(0, 0.5 * std::sqrt((2.0 * i + 1) * (2.0 * j + 1)) * sign); // -i S
      }
    const s4::HermitianEigen eig = s4::hermitian_eigen(M, n);
    const double error = check_eigen(M, eig, n, 1e-12);
    MESSAGE("eigen of -i S (LegS), n = " << n << ": " << eig.sweeps
                                         << " sweeps, ||V diag(w) V^* - M|| / ||M|| = " << error);
    for (int64_t j = 0; j < n; ++j)
      CHECK(eig.eigenvalues[j] ==
            doctest::Approx(-eig.eigenvalues[n - 1 - j]).epsilon(1e-12).scale(n));
  }
}

TEST_CASE("eigen: closed-form 2x2, repeated eigenvalues, diagonal input, tensor form") {
  // [a b; b* d]: (a+d)/2 +- sqrt(((a-d)/2)^2 + |b|^2).
  const cdouble b(0.3, -1.2);
  const std::vector<cdouble> two = {2.0, b, std::conj(b), -0.5};
  const s4::HermitianEigen e2 = s4::hermitian_eigen(two, 2);
  const double mid = 0.75, radius = std::sqrt(1.25 * 1.25 + std::norm(b));
  CHECK(e2.eigenvalues[0] == doctest::Approx(mid - radius).epsilon(1e-15));
  CHECK(e2.eigenvalues[1] == doctest::Approx(mid + radius).epsilon(1e-15));
  check_eigen(two, e2, 2, 1e-14);

  // Q diag(1, 1, 1, 3, 3, -2) Q^* with Q unitary (eigenvectors of a random Hermitian matrix).
  const int64_t n = 6;
  const s4::HermitianEigen basis = s4::hermitian_eigen(random_hermitian(n, 7), n);
  const std::vector<cdouble> d = {1.0, 1.0, 1.0, 3.0, 3.0, -2.0};
  const std::vector<cdouble> M = x_diag_yh(basis.eigenvectors, d, basis.eigenvectors, n, n);
  const s4::HermitianEigen repeated = s4::hermitian_eigen(M, n);
  check_eigen(M, repeated, n, 1e-12);
  test::check_values(Tensor::from_vector(repeated.eigenvalues, {n}), {-2, 1, 1, 1, 3, 3}, 1e-12);

  // Already diagonal: no rotation, eigenvalues sorted.
  const std::vector<cdouble> diagonal = {3.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 2.0};
  const s4::HermitianEigen sorted = s4::hermitian_eigen(diagonal, 3);
  CHECK(sorted.sweeps == 0);
  test::check_values(Tensor::from_vector(sorted.eigenvalues, {3}), {-1, 2, 3}, 0);

  // Tensor form agrees with the vector form.
  Tensor t = Tensor::empty({2, 2, 2}, DType::Float64);
  for (int64_t i = 0; i < 4; ++i) {
    t.set({i / 2, i % 2, 0}, two[i].real());
    t.set({i / 2, i % 2, 1}, two[i].imag());
  }
  const s4::EighResult r = s4::eigh_hermitian(t);
  test::check_values(r.eigenvalues, e2.eigenvalues, 0);
  const std::vector<cdouble> V = complex_values(r.eigenvectors);
  CHECK(relative_error(V, e2.eigenvectors) == 0.0);

  // Bad input.
  test::check_error<std::invalid_argument>(
      [] {
        s4::hermitian_eigen({1.0, 2.0, 0.0, 1.0}, 2);
      },
      {"hermitian_eigen", "Hermitian"});
  test::check_error<std::invalid_argument>(
      [] {
        s4::eigh_hermitian(Tensor::zeros({3, 3}, DType::Float64));
      },
      {"eigh_hermitian", "(n, n, 2)"});
  test::check_error<std::invalid_argument>(
      [] {
        s4::eigh_hermitian(Tensor::zeros({2, 2, 2}, DType::Float32));
      },
      {"eigh_hermitian", "float64"});
}

// ---- NPLR / DPLR -------------------------------------------------------------------------------

TEST_CASE("hippo: NPLR form of LegS rebuilds A (full set, float64)") {
  for (int64_t N : {1, 2, 5, 16, 64}) {
    INFO("N = " << N);
    const s4::DplrInit full = s4::make_dplr_legs_full(N);
    REQUIRE(full.Lambda.shape() == Shape{N, 2});
    REQUIRE(full.V.shape() == Shape{N, N, 2});
    const s4::HippoMatrices legs = s4::hippo_legs(N);
    const std::vector<double> A_values = legs.A.to_doubles();
    const std::vector<cdouble> A_ref(A_values.begin(), A_values.end());
    const std::vector<cdouble> Lambda = complex_values(full.Lambda), V = complex_values(full.V);
    const std::vector<cdouble> Pt = complex_values(full.P), Bt = complex_values(full.B);

    // Lambda = -1/2 + i w with w in +- pairs.
    for (int64_t j = 0; j < N; ++j) {
      CHECK(Lambda[j].real() == -0.5);
      CHECK(Lambda[j].imag() == doctest::Approx(-Lambda[N - 1 - j].imag()).epsilon(1e-12).scale(N));
    }
    // The original P_n = sqrt(n + 1/2) and B from the eigenbasis: P = V Pt, B = V Bt.
    std::vector<cdouble> P(N, 0.0), B(N, 0.0);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = 0; j < N; ++j) {
        P[n] += V[n * N + j] * Pt[j];
        B[n] += V[n * N + j] * Bt[j];
      }
    std::vector<cdouble> P_ref(N), B_ref(N);
    for (int64_t n = 0; n < N; ++n) {
      P_ref[n] = std::sqrt(n + 0.5);
      B_ref[n] = std::sqrt(2.0 * n + 1);
    }
    CHECK(relative_error(P, P_ref) < 1e-12);
    CHECK(relative_error(B, B_ref) < 1e-12);

    // A = V diag(Lambda) V^* - P P^T, and the same as V (diag(Lambda) - Pt Pt^*) V^*.
    std::vector<cdouble> A = x_diag_yh(V, Lambda, V, N, N);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < N; ++k) A[n * N + k] -= P_ref[n] * P_ref[k];
    const double error = relative_error(A, A_ref);
    std::vector<cdouble> inner(N * N); // diag(Lambda) - Pt Pt^*  (N, N)
    for (int64_t i = 0; i < N; ++i)
      for (int64_t j = 0; j < N; ++j)
        inner[i * N + j] = (i == j ? Lambda[i] : 0.0) - Pt[i] * std::conj(Pt[j]);
    std::vector<cdouble> VI(N * N, 0.0); // V inner
    for (int64_t i = 0; i < N; ++i)
      for (int64_t j = 0; j < N; ++j)
        for (int64_t k = 0; k < N; ++k) VI[i * N + j] += V[i * N + k] * inner[k * N + j];
    const double error_eigenbasis =
        relative_error(x_diag_yh(VI, std::vector<cdouble>(N, 1.0), V, N, N), A_ref);
    MESSAGE("NPLR LegS N = " << N << ": ||V Lambda V^* - P P^T - A|| / ||A|| = " << error
                             << ", ||V (Lambda - Pt Pt^*) V^* - A|| / ||A|| = "
                             << error_eigenbasis);
    CHECK(error < 1e-10);
    CHECK(error_eigenbasis < 1e-10);
  }
}

TEST_CASE("hippo: halved DPLR form of LegS rebuilds A from the N/2 kept eigenvalues") {
  for (int64_t N : {2, 4, 16, 64}) {
    INFO("N = " << N);
    const int64_t half = N / 2;
    const s4::DplrInit dplr = s4::make_dplr_legs(N);
    REQUIRE(dplr.Lambda.shape() == Shape{half, 2});
    REQUIRE(dplr.P.shape() == Shape{half, 2});
    REQUIRE(dplr.B.shape() == Shape{half, 2});
    REQUIRE(dplr.V.shape() == Shape{N, half, 2});
    const std::vector<cdouble> Lambda = complex_values(dplr.Lambda), V = complex_values(dplr.V);
    const std::vector<cdouble> Pt = complex_values(dplr.P), Bt = complex_values(dplr.B);
    for (int64_t j = 0; j < half; ++j) {
      CHECK(Lambda[j].imag() > 0);
      if (j > 0) CHECK(Lambda[j].imag() > Lambda[j - 1].imag());
    }
    // A = 2 Re(V diag(Lambda) V^*) - P P^T with P = 2 Re(V Pt); B = 2 Re(V Bt).
    const std::vector<cdouble> VLV = x_diag_yh(V, Lambda, V, N, half);
    std::vector<double> P(N, 0.0), B(N, 0.0), A(N * N);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = 0; j < half; ++j) {
        P[n] += 2 * (V[n * half + j] * Pt[j]).real();
        B[n] += 2 * (V[n * half + j] * Bt[j]).real();
      }
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < N; ++k) A[n * N + k] = 2 * VLV[n * N + k].real() - P[n] * P[k];
    const s4::HippoMatrices legs = s4::hippo_legs(N);
    const double error = relative_error(A, legs.A.to_doubles());
    MESSAGE("halved DPLR LegS N = " << N
                                    << ": ||2 Re(V Lambda V^*) - P P^T - A|| / ||A|| = " << error);
    CHECK(error < 1e-10);
    CHECK(relative_error(B, legs.B.to_doubles()) < 1e-12);
    for (int64_t n = 0; n < N; ++n)
      CHECK(P[n] == doctest::Approx(std::sqrt(n + 0.5)).epsilon(1e-12));
  }
}

// ---- S4D initialisations ------------------------------------------------------------------------

TEST_CASE("hippo: S4D initialisations (Lin, Inv, Real, LegS)") {
  const int64_t N = 8;
  const s4::DiagonalInit lin = s4::s4d_lin(N), inv = s4::s4d_inv(N), real = s4::s4d_real(N);
  REQUIRE(lin.A.shape() == Shape{4, 2});
  REQUIRE(real.A.shape() == Shape{8, 2});
  test::check_values(lin.A, {-0.5, 0, -0.5, M_PI, -0.5, 2 * M_PI, -0.5, 3 * M_PI}, 1e-15);
  // -1/2 + i (8/pi)(8/(2n+1) - 1): 56/pi, (8/pi)(5/3), (8/pi)(3/5), (8/pi)(1/7)
  test::check_values(
      inv.A, {-0.5, 56 / M_PI, -0.5, 40 / (3 * M_PI), -0.5, 24 / (5 * M_PI), -0.5, 8 / (7 * M_PI)},
      1e-15);
  test::check_values(real.A, {-1, 0, -2, 0, -3, 0, -4, 0, -5, 0, -6, 0, -7, 0, -8, 0}, 0);
  for (const s4::DiagonalInit* init : {&lin, &inv, &real})
    for (int64_t i = 0; i < init->B.size(0); ++i) {
      CHECK(init->B.at({i, 0}) == 1.0);
      CHECK(init->B.at({i, 1}) == 0.0);
    }
  // S4D-LegS is the DPLR eigenvalues with the transformed B; its imaginary parts grow with n
  // and its real parts are all -1/2.
  const s4::DiagonalInit legs = s4::s4d_legs(N);
  const s4::DplrInit dplr = s4::make_dplr_legs(N);
  CHECK(legs.A.to_doubles() == dplr.Lambda.to_doubles());
  CHECK(legs.B.to_doubles() == dplr.B.to_doubles());
  for (int64_t i = 0; i < N / 2; ++i) CHECK(legs.A.at({i, 0}) == -0.5);
  // By name.
  CHECK(s4::s4d_init("inv", N).A.to_doubles() == inv.A.to_doubles());
  CHECK(s4::s4d_init("real", N).A.to_doubles() == real.A.to_doubles());
}

// ---- the online LegS projection -----------------------------------------------------------------

// f sampled at the cell midpoints (k - 1/2)/L of [0, 1].
Tensor sample(const std::function<double(double)>& f, int64_t L) {
  std::vector<double> v(L);
  for (int64_t k = 1; k <= L; ++k) v[k - 1] = f((k - 0.5) / L);
  return Tensor::from_vector(v, {L});
}

double rms(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
  return std::sqrt(s / a.size());
}

TEST_CASE("hippo: online LegS projection of a polynomial reaches the exact coefficients") {
  // Degree 5 < N = 8: the projection is the polynomial itself, so the reconstruction error is
  // only the discretisation's (second order in 1/L).
  const auto f = [](double x) { return 1 - 2 * x + 3 * x * x * x - 1.5 * std::pow(x, 5); };
  const int64_t N = 8, L = 1000;
  const Tensor samples = sample(f, L);
  const Tensor history = s4::legs_online_projection(samples, N); // (L, N)
  REQUIRE(history.shape() == Shape{L, N});
  const Tensor c = history.select(0, L - 1).contiguous(); // (N)
  const double coefficient_error =
      relative_error(c.to_doubles(), s4::legs_project(f, 1.0, N).to_doubles());
  const double reconstruction_rms =
      rms(s4::legs_reconstruct(c, L).to_doubles(), samples.to_doubles());
  MESSAGE("online LegS, degree-5 polynomial, N = 8, L = 1000: coefficient error "
          << coefficient_error << ", reconstruction RMS " << reconstruction_rms);
  CHECK(coefficient_error < 2e-4);  // 7e-5 measured
  CHECK(reconstruction_rms < 1e-4); // 4e-5 measured
  // Row k-1 describes the history [0, k]: at k = L/2 it reconstructs the first half (with
  // half the samples, so about four times the error).
  const Tensor c_half = history.select(0, L / 2 - 1).contiguous();
  const std::vector<double> first_half =
      sample([&](double x) { return f(x / 2); }, L / 2).to_doubles();
  CHECK(rms(s4::legs_reconstruct(c_half, L / 2).to_doubles(), first_half) < 3e-4);
}

TEST_CASE("hippo: online LegS projection converges (second order in L, better with N)") {
  const auto f = [](double x) { return std::sin(7 * x) + 0.5 * std::cos(3 * x) + x * x; };
  // In L: the online coefficients approach the exact projection about 4x per doubling of L.
  const int64_t N = 8;
  const std::vector<double> exact = s4::legs_project(f, 1.0, N).to_doubles();
  double previous = 0;
  for (int64_t L : {250, 500, 1000, 2000}) {
    const Tensor c = s4::legs_online_projection(sample(f, L), N).select(0, L - 1).contiguous();
    const double error = relative_error(c.to_doubles(), exact);
    MESSAGE("online LegS N = 8, L = " << L << ": coefficient error " << error);
    if (previous > 0) CHECK(previous / error > 3.5);
    previous = error;
  }
  // In N: a non-polynomial signal with a step is reconstructed better with more coefficients,
  // and the online recurrence stays close to the offline projection.
  const auto g = [](double x) { return std::sin(2 * M_PI * 3 * x) + (x > 0.6 ? 1.0 : 0.0); };
  const int64_t L = 2000;
  const Tensor samples = sample(g, L);
  previous = 1e9;
  for (int64_t n : {4, 8, 16, 32, 64}) {
    const Tensor c = s4::legs_online_projection(samples, n).select(0, L - 1).contiguous();
    const double online = rms(s4::legs_reconstruct(c, L).to_doubles(), samples.to_doubles());
    const Tensor c_offline = s4::legs_offline_projection(samples, n);
    const double offline =
        rms(s4::legs_reconstruct(c_offline, L).to_doubles(), samples.to_doubles());
    MESSAGE("sine + step, L = 2000, N = " << n << ": reconstruction RMS online " << online
                                          << ", offline " << offline);
    CHECK(online < previous);
    CHECK(online < 1.05 * offline + 1e-3);
    previous = online;
  }
}

TEST_CASE("hippo: LegS is scale-invariant (the same signal at two rates gives the same state)") {
  const auto f = [](double x) { return std::exp(-2 * x) * std::sin(9 * x); };
  const int64_t N = 16;
  const Tensor slow = s4::legs_online_projection(sample(f, 4000), N).select(0, 3999).contiguous();
  const Tensor fast = s4::legs_online_projection(sample(f, 1000), N).select(0, 999).contiguous();
  const double difference = relative_error(fast.to_doubles(), slow.to_doubles());
  MESSAGE("LegS state after 1000 vs 4000 samples of the same signal: relative difference "
          << difference);
  CHECK(difference < 1e-4); // 7e-6 measured: both are O(1/L^2) from the exact coefficients
}

} // namespace
} // namespace ssm
