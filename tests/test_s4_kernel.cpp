// test_s4_kernel.cpp: the S4D and DPLR kernels (s4/s4_kernel.h) and the recurrent view
// (s4/recurrence.h) on the CPU, each against an independent computation:
//   - both kernels against direct powers of the materialised, discretised matrices: the full
//     N-state system in the conjugate-pair basis (A dense, N x N complex), discretised with
//     dense solves (bilinear) or the matrix exponential of a diagonal (ZOH), then
//     K_l = C dA^l dB by l matrix-vector products, at N in {4, 16, 64} and L in {1, 31, 256};
//   - the DPLR kernel of HiPPO-LegS (s4/hippo.h's make_dplr_legs) against the dense real LegS
//     matrix discretised directly;
//   - float64 gradient checks of s4d_kernel (ZOH and bilinear) and dplr_kernel in every input;
//   - the convolution view (kernel, then causal convolution) against the recurrence, for S4D
//     (ZOH and bilinear) and DPLR;
//   - float32 loops against float64, and bad input.
// Each comparison prints one line with its measured error.
#include <doctest/doctest.h>

#include <cmath>
#include <complex>
#include <cstdio>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "s4/fft.h"
#include "s4/hippo.h"
#include "s4/recurrence.h"
#include "s4/s4_kernel.h"
#include "tensor/ops.h"
#include "tests/helpers.h"

namespace ssm::s4 {
namespace {

using cd = std::complex<double>;
using test::rand64;

// ---- random parameters --------------------------------------------------------------------

// A complex (H, N2, 2) float64 tensor from per-element real and imaginary parts.
Tensor complex_tensor(const std::vector<cd>& values, int64_t H, int64_t N2) {
  std::vector<double> flat(2 * values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    flat[2 * i] = values[i].real();
    flat[2 * i + 1] = values[i].imag();
  }
  return Tensor::from_values(flat, {H, N2, 2}, DType::Float64);
}

// Element i of a complex (.., 2) tensor.
std::vector<cd> complex_values(const Tensor& t) {
  const std::vector<double> flat = t.to_doubles();
  std::vector<cd> out(flat.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) out[i] = {flat[2 * i], flat[2 * i + 1]};
  return out;
}

// States like S4D-Lin's, A_n = -1/2 + i pi n, spread out: Re A in [-1, -0.1] and
// Im A = pi n + U(-0.5, 0.5) (stable, distinct, rotating at many speeds).
Tensor random_diagonal(int64_t H, int64_t N2, uint64_t seed) {
  const std::vector<double> re = rand64({H * N2}, seed, -1.0, -0.1).to_doubles();
  const std::vector<double> jitter = rand64({H * N2}, seed + 1, -0.5, 0.5).to_doubles();
  std::vector<cd> a(H * N2);
  for (int64_t i = 0; i < H * N2; ++i)
    a[i] = {re[i], M_PI * static_cast<double>(i % N2) + jitter[i]};
  return complex_tensor(a, H, N2);
}

// dt log-uniform in [dt_min, dt_max], as S4 initialises it.
Tensor random_log_dt(int64_t H, uint64_t seed, double dt_min, double dt_max) {
  return rand64({H}, seed, std::log(dt_min), std::log(dt_max));
}

struct S4DParams {
  Tensor log_dt, A, B, C;
};
S4DParams random_s4d(int64_t H, int64_t N2, uint64_t seed, double dt_min = 0.01,
                     double dt_max = 0.1) {
  return {random_log_dt(H, seed, dt_min, dt_max), random_diagonal(H, N2, seed + 10),
          rand64({H, N2, 2}, seed + 20), rand64({H, N2, 2}, seed + 30)};
}

struct DplrParams {
  Tensor log_dt, Lambda, P, B, C; // C is C~
};
// Lambda like random_diagonal; P, B, C~ uniform in [-1, 1]. Any P gives a stable A: the
// Hermitian part of Lambda - P P^* is diag(Re Lambda) - P P^*, negative definite.
DplrParams random_dplr(int64_t H, int64_t N2, uint64_t seed, double dt_min = 0.01,
                       double dt_max = 0.1) {
  return {random_log_dt(H, seed, dt_min, dt_max), random_diagonal(H, N2, seed + 10),
          rand64({H, N2, 2}, seed + 20), rand64({H, N2, 2}, seed + 30),
          rand64({H, N2, 2}, seed + 40)};
}

// ---- dense complex linear algebra (row-major n x n), independent of the library's ----------

using Dense = std::vector<cd>;

// Solves a X = b (b: n x m) by Gaussian elimination with partial pivoting.
Dense dense_solve(Dense a, Dense b, int64_t n, int64_t m) {
  for (int64_t col = 0; col < n; ++col) {
    int64_t piv = col;
    for (int64_t r = col + 1; r < n; ++r)
      if (std::abs(a[r * n + col]) > std::abs(a[piv * n + col])) piv = r;
    REQUIRE(std::abs(a[piv * n + col]) > 0);
    for (int64_t j = 0; j < n; ++j) std::swap(a[col * n + j], a[piv * n + j]);
    for (int64_t j = 0; j < m; ++j) std::swap(b[col * m + j], b[piv * m + j]);
    for (int64_t r = 0; r < n; ++r) {
      if (r == col) continue;
      const cd f = a[r * n + col] / a[col * n + col];
      for (int64_t j = 0; j < n; ++j) a[r * n + j] -= f * a[col * n + j];
      for (int64_t j = 0; j < m; ++j) b[r * m + j] -= f * b[col * m + j];
    }
  }
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < m; ++j) b[r * m + j] /= a[r * n + r];
  return b;
}

// A discretised N-state system of one channel: x_l = dA x_{l-1} + dB u_l, y = C x.
struct DenseSystem {
  int64_t N = 0;
  Dense dA;              // (N, N)
  std::vector<cd> dB, C; // (N)
};

// Bilinear: dA = (I - dt/2 A)^-1 (I + dt/2 A), dB = (I - dt/2 A)^-1 dt B.
void bilinear(const Dense& A, const std::vector<cd>& B, double dt, DenseSystem& sys) {
  const int64_t N = sys.N;
  Dense M0(N * N), M1(N * N), rhs(N * (N + 1));
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < N; ++j) {
      const double eye = i == j ? 1.0 : 0.0;
      M0[i * N + j] = eye - dt / 2 * A[i * N + j];
      M1[i * N + j] = eye + dt / 2 * A[i * N + j];
    }
  for (int64_t i = 0; i < N; ++i) {
    for (int64_t j = 0; j < N; ++j) rhs[i * (N + 1) + j] = M1[i * N + j];
    rhs[i * (N + 1) + N] = dt * B[i];
  }
  const Dense x = dense_solve(M0, rhs, N, N + 1);
  sys.dA.assign(N * N, 0.0);
  sys.dB.assign(N, 0.0);
  for (int64_t i = 0; i < N; ++i) {
    for (int64_t j = 0; j < N; ++j) sys.dA[i * N + j] = x[i * (N + 1) + j];
    sys.dB[i] = x[i * (N + 1) + N];
  }
}

// K_l = C dA^l dB for l < L, by repeated matrix-vector products.
std::vector<cd> dense_kernel(const DenseSystem& sys, int64_t L) {
  const int64_t N = sys.N;
  std::vector<cd> x = sys.dB, next(N), K(L);
  for (int64_t l = 0; l < L; ++l) {
    cd y = 0;
    for (int64_t i = 0; i < N; ++i) y += sys.C[i] * x[i];
    K[l] = y;
    for (int64_t i = 0; i < N; ++i) {
      cd acc = 0;
      for (int64_t j = 0; j < N; ++j) acc += sys.dA[i * N + j] * x[j];
      next[i] = acc;
    }
    x.swap(next);
  }
  return K;
}

// C dA^L, a row vector, by L vector-matrix products.
std::vector<cd> row_times_power(const std::vector<cd>& row, const Dense& dA, int64_t N, int64_t L) {
  std::vector<cd> r = row, next(N);
  for (int64_t l = 0; l < L; ++l) {
    for (int64_t j = 0; j < N; ++j) {
      cd acc = 0;
      for (int64_t i = 0; i < N; ++i) acc += r[i] * dA[i * N + j];
      next[j] = acc;
    }
    r.swap(next);
  }
  return r;
}

// The conjugate-pair expansion of kept entries v[h * N2 + n]: [v; conj(v)] of channel h.
std::vector<cd> full_vector(const std::vector<cd>& v, int64_t h, int64_t N2) {
  std::vector<cd> out(2 * N2);
  for (int64_t n = 0; n < N2; ++n) {
    out[n] = v[h * N2 + n];
    out[N2 + n] = std::conj(v[h * N2 + n]);
  }
  return out;
}

// ---- error figures -------------------------------------------------------------------------

// max |got - ref| / max |ref| over every element (ref real).
double relative_error(const std::vector<double>& got, const std::vector<double>& ref) {
  REQUIRE(got.size() == ref.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = std::fabs(got[i] - ref[i]);
    if (!(d <= diff)) diff = d; // NaN sticks
    scale = std::max(scale, std::fabs(ref[i]));
  }
  return scale > 0 ? diff / scale : diff;
}

void report(const std::string& what, double error, double bound) {
  std::printf("%s  %-58s rel err %.2e (bound %.0e)\n", error <= bound ? "PASS" : "FAIL",
              what.c_str(), error, bound);
  std::fflush(stdout);
  INFO(what << ": relative error " << error);
  CHECK(error <= bound);
}

std::string size_label(const char* name, int64_t N, int64_t L) {
  return std::string(name) + " N=" + std::to_string(N) + " L=" + std::to_string(L);
}

// The kernels against dense matrix powers agree to a few hundred ulps of the largest value:
// the op takes dA^l as exp(l log dA) (DPLR: Cauchy sums and an FFT), the reference multiplies
// l times and solves dense systems; both are backward stable, so the difference is the
// rounding of L products of O(1) numbers (measured: 3e-16 to 4e-14, see each line; the LegS
// comparison adds the eigendecomposition's error). The bound, 1e-10, is the issue's.
constexpr double kDenseBound = 1e-10;

// ---- 1. S4D against direct powers -----------------------------------------------------------

TEST_CASE("s4d_kernel equals C dA^l dB of the materialised, discretised system (float64)") {
  for (Discretization disc : {Discretization::ZOH, Discretization::Bilinear})
    for (int64_t N : {4, 16, 64})
      for (int64_t L : {1, 31, 256}) {
        const int64_t H = 2, N2 = N / 2;
        const S4DParams p = random_s4d(H, N2, 1000 + N + L);
        const Tensor K = s4d_kernel(Var(p.log_dt), Var(p.A), Var(p.B), Var(p.C), L, disc).value();
        const std::vector<cd> a = complex_values(p.A), b = complex_values(p.B),
                              c = complex_values(p.C);
        std::vector<double> ref(H * L);
        double imag = 0, scale = 0;
        for (int64_t h = 0; h < H; ++h) {
          const double dt = std::exp(p.log_dt.to_doubles()[h]);
          DenseSystem sys;
          sys.N = N;
          const std::vector<cd> a_full = full_vector(a, h, N2), b_full = full_vector(b, h, N2);
          sys.C = full_vector(c, h, N2);
          // A = diag(a_full) as a dense matrix.
          Dense A(N * N, 0.0);
          for (int64_t i = 0; i < N; ++i) A[i * N + i] = a_full[i];
          if (disc == Discretization::Bilinear) {
            bilinear(A, b_full, dt, sys);
          } else {
            // The exponential of a diagonal matrix is the diagonal of exponentials; dB =
            // A^-1 (exp(dt A) - I) B.
            sys.dA.assign(N * N, 0.0);
            sys.dB.resize(N);
            for (int64_t i = 0; i < N; ++i) {
              sys.dA[i * N + i] = std::exp(dt * a_full[i]);
              sys.dB[i] = (std::exp(dt * a_full[i]) - 1.0) / a_full[i] * b_full[i];
            }
          }
          const std::vector<cd> K_ref = dense_kernel(sys, L);
          for (int64_t l = 0; l < L; ++l) {
            ref[h * L + l] = K_ref[l].real();
            imag = std::max(imag, std::fabs(K_ref[l].imag()));
            scale = std::max(scale, std::abs(K_ref[l]));
          }
        }
        // The conjugate-pair system's kernel is real: "2 Re" over the kept half is exact.
        CHECK(imag <= 1e-13 * scale);
        report(size_label((std::string("s4d_kernel ") + discretization_name(disc)).c_str(), N, L),
               relative_error(K.to_doubles(), ref), kDenseBound);
      }
}

// ---- 2. DPLR against direct powers ----------------------------------------------------------

// The dense reference of one DPLR channel: A = diag(Lambda_full) - P_full P_full^*,
// bilinear, with a given output vector C_full.
DenseSystem dplr_dense(const std::vector<cd>& lambda, const std::vector<cd>& P,
                       const std::vector<cd>& B, int64_t h, int64_t N2, double dt) {
  const int64_t N = 2 * N2;
  const std::vector<cd> l_full = full_vector(lambda, h, N2), p_full = full_vector(P, h, N2);
  Dense A(N * N);
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < N; ++j)
      A[i * N + j] = (i == j ? l_full[i] : 0.0) - p_full[i] * std::conj(p_full[j]);
  DenseSystem sys;
  sys.N = N;
  bilinear(A, full_vector(B, h, N2), dt, sys);
  return sys;
}

TEST_CASE("dplr_kernel equals C dA^l dB of the materialised, discretised system (float64)") {
  for (int64_t N : {4, 16, 64})
    for (int64_t L : {1, 31, 256}) {
      const int64_t H = 2, N2 = N / 2;
      // The op's C is C~; draw the true C and form C~ = C (I - dA^L) densely.
      DplrParams p = random_dplr(H, N2, 2000 + N + L);
      const std::vector<cd> lambda = complex_values(p.Lambda), P = complex_values(p.P),
                            B = complex_values(p.B), C = complex_values(p.C);
      std::vector<cd> c_tilde(H * N2);
      std::vector<double> ref(H * L);
      double imag = 0, scale = 0, pair_error = 0;
      for (int64_t h = 0; h < H; ++h) {
        const double dt = std::exp(p.log_dt.to_doubles()[h]);
        DenseSystem sys = dplr_dense(lambda, P, B, h, N2, dt);
        sys.C = full_vector(C, h, N2);
        const std::vector<cd> K_ref = dense_kernel(sys, L);
        for (int64_t l = 0; l < L; ++l) {
          ref[h * L + l] = K_ref[l].real();
          imag = std::max(imag, std::fabs(K_ref[l].imag()));
          scale = std::max(scale, std::abs(K_ref[l]));
        }
        const std::vector<cd> CdAL = row_times_power(sys.C, sys.dA, 2 * N2, L);
        for (int64_t n = 0; n < N2; ++n) {
          c_tilde[h * N2 + n] = sys.C[n] - CdAL[n];
          // C~ keeps the conjugate-pair structure: its second half is the conjugate.
          pair_error = std::max(
              pair_error, std::abs(sys.C[N2 + n] - CdAL[N2 + n] - std::conj(c_tilde[h * N2 + n])));
        }
      }
      CHECK(imag <= 1e-13 * scale);
      CHECK(pair_error <= 1e-13);
      const Tensor C_tilde = complex_tensor(c_tilde, H, N2);
      const Tensor K =
          dplr_kernel(Var(p.log_dt), Var(p.Lambda), Var(p.P), Var(p.B), Var(C_tilde), L).value();
      report(size_label("dplr_kernel", N, L), relative_error(K.to_doubles(), ref), kDenseBound);
      // The recurrent view's setup recovers C from C~.
      const Tensor C_back = dplr_c_from_c_tilde(p.log_dt, p.Lambda, p.P, C_tilde, L);
      report(size_label("dplr_c_from_c_tilde", N, L),
             relative_error(C_back.to_doubles(), p.C.to_doubles()), kDenseBound);
    }
}

// ---- 3. LegS: DPLR form against the dense HiPPO matrix --------------------------------------

TEST_CASE("dplr_kernel of HiPPO-LegS (make_dplr_legs) equals the dense LegS kernel") {
  for (int64_t N : {4, 16, 64})
    for (int64_t L : {1, 31, 256}) {
      const int64_t M = N / 2;
      const HippoMatrices legs = hippo_legs(N);
      const DplrInit dplr = make_dplr_legs(N);
      const std::vector<double> A_real = legs.A.to_doubles(), B_real = legs.B.to_doubles();
      const std::vector<cd> V = complex_values(dplr.V); // (N, M)
      const std::vector<double> C_real = rand64({N}, 3000 + N + L).to_doubles();
      const std::vector<double> dts = {0.01, 0.1}; // one channel each
      const int64_t H = static_cast<int64_t>(dts.size());
      std::vector<cd> c_tilde(H * M);
      std::vector<double> ref(H * L);
      for (int64_t h = 0; h < H; ++h) {
        // The real N-state system, discretised directly.
        DenseSystem sys;
        sys.N = N;
        bilinear(Dense(A_real.begin(), A_real.end()), std::vector<cd>(B_real.begin(), B_real.end()),
                 dts[h], sys);
        sys.C.assign(C_real.begin(), C_real.end());
        const std::vector<cd> K_ref = dense_kernel(sys, L);
        for (int64_t l = 0; l < L; ++l) ref[h * L + l] = K_ref[l].real();
        // C~ = C (I - dA^L) in the real basis, then into the eigenbasis: the state is
        // x = V_full x~, so y = C x = (V_full^T C) x~ and the kept half is V^T C~.
        const std::vector<cd> CdAL = row_times_power(sys.C, sys.dA, N, L);
        for (int64_t j = 0; j < M; ++j) {
          cd acc = 0;
          for (int64_t i = 0; i < N; ++i) acc += V[i * M + j] * (sys.C[i] - CdAL[i]);
          c_tilde[h * M + j] = acc;
        }
      }
      // The same Lambda, P, B for every channel, (H, M, 2).
      auto per_channel = [&](const Tensor& t) {
        return t.unsqueeze(0).expand({H, M, 2}).contiguous();
      };
      const Tensor log_dt =
          Tensor::from_values({std::log(dts[0]), std::log(dts[1])}, {H}, DType::Float64);
      const Tensor K =
          dplr_kernel(Var(log_dt), Var(per_channel(dplr.Lambda)), Var(per_channel(dplr.P)),
                      Var(per_channel(dplr.B)), Var(complex_tensor(c_tilde, H, M)), L)
              .value();
      report(size_label("dplr_kernel LegS vs dense LegS", N, L),
             relative_error(K.to_doubles(), ref), kDenseBound);
    }
}

// ---- 4. gradient checks -----------------------------------------------------------------------

TEST_CASE("gradcheck s4d_kernel (float64, every input, ZOH and bilinear)") {
  for (Discretization disc : {Discretization::ZOH, Discretization::Bilinear})
    for (int64_t L : {1, 7, 8}) {
      INFO(discretization_name(disc) << " L=" << L);
      // dt up to 0.5 so that dt's influence is well above the finite-difference noise.
      const S4DParams p = random_s4d(2, 3, 4000 + L, 0.05, 0.5);
      test::expect_gradcheck(
          [&](const std::vector<Var>& v) { return s4d_kernel(v[0], v[1], v[2], v[3], L, disc); },
          {p.log_dt, p.A, p.B, p.C});
    }
}

TEST_CASE("gradcheck dplr_kernel (float64, every input)") {
  // L = 1 (one node), 2 and 8 (with the Nyquist node z = -1), 7 (without).
  for (int64_t L : {1, 2, 7, 8}) {
    INFO("L=" << L);
    const DplrParams p = random_dplr(2, 3, 5000 + L, 0.05, 0.5);
    test::expect_gradcheck(
        [&](const std::vector<Var>& v) { return dplr_kernel(v[0], v[1], v[2], v[3], v[4], L); },
        {p.log_dt, p.Lambda, p.P, p.B, p.C});
  }
}

TEST_CASE("s4d_kernel and dplr_kernel: gradient only for some inputs") {
  const S4DParams s = random_s4d(2, 3, 6000);
  Var log_dt(s.log_dt, true), A(s.A), B(s.B, true), C(s.C);
  sum(s4d_kernel(log_dt, A, B, C, 5, Discretization::ZOH)).backward();
  CHECK(log_dt.grad().defined());
  CHECK(B.grad().defined());
  CHECK_FALSE(A.grad().defined());
  CHECK_FALSE(C.grad().defined());

  const DplrParams d = random_dplr(2, 3, 6100);
  Var dlog_dt(d.log_dt), Lambda(d.Lambda, true), P(d.P), dB(d.B), dC(d.C, true);
  sum(dplr_kernel(dlog_dt, Lambda, P, dB, dC, 6)).backward();
  CHECK(Lambda.grad().defined());
  CHECK(dC.grad().defined());
  CHECK_FALSE(dlog_dt.grad().defined());
  CHECK_FALSE(P.grad().defined());
}

// ---- 5. convolution view = recurrent view ----------------------------------------------------

// y = K * u + D u (direct O(L^2) sum and FFT) against the recurrence, float64.
void check_conv_equals_recurrence(const std::string& label, const Tensor& K, const Tensor& u,
                                  const Tensor& D, const S4Recurrence& sys) {
  const Tensor y_rec = s4_recurrent_scan(sys, u);
  const Tensor y_direct = causal_conv_direct(u, K, D);
  const Tensor y_fft = causal_conv(Var(u), Var(K), Var(D)).value();
  report(label + ": direct conv vs recurrence",
         relative_error(y_direct.to_doubles(), y_rec.to_doubles()), 1e-10);
  report(label + ": FFT conv vs recurrence", relative_error(y_fft.to_doubles(), y_rec.to_doubles()),
         1e-10);
}

TEST_CASE("convolution mode equals recurrence mode: S4D (ZOH, bilinear) and DPLR (float64)") {
  const int64_t batch = 2, H = 3, N2 = 8, L = 200;
  const Tensor u = rand64({batch, H, L}, 7000);
  const Tensor D = rand64({H}, 7001);
  for (Discretization disc : {Discretization::ZOH, Discretization::Bilinear}) {
    const S4DParams p = random_s4d(H, N2, 7100);
    const Tensor K = s4d_kernel(Var(p.log_dt), Var(p.A), Var(p.B), Var(p.C), L, disc).value();
    check_conv_equals_recurrence(std::string("s4d ") + discretization_name(disc), K, u, D,
                                 s4d_recurrence(p.log_dt, p.A, p.B, p.C, D, disc));
  }
  const DplrParams p = random_dplr(H, N2, 7200);
  const Tensor K =
      dplr_kernel(Var(p.log_dt), Var(p.Lambda), Var(p.P), Var(p.B), Var(p.C), L).value();
  check_conv_equals_recurrence("dplr", K, u, D,
                               dplr_recurrence(p.log_dt, p.Lambda, p.P, p.B, p.C, D, L));
}

TEST_CASE("recurrence: single steps and a split scan equal one scan") {
  const int64_t batch = 2, H = 3, N2 = 4, L = 30, split = 11;
  const Tensor u = rand64({batch, H, L}, 8000);
  const Tensor D = rand64({H}, 8001);
  const S4DParams s = random_s4d(H, N2, 8100);
  const DplrParams d = random_dplr(H, N2, 8200);
  const S4Recurrence systems[] = {s4d_recurrence(s.log_dt, s.A, s.B, s.C, D, Discretization::ZOH),
                                  dplr_recurrence(d.log_dt, d.Lambda, d.P, d.B, d.C, Tensor(), L)};
  for (const S4Recurrence& sys : systems) {
    INFO((sys.dplr ? "dplr" : "s4d"));
    S4RecurrentState whole = s4_zero_state(sys, batch);
    const Tensor y = s4_recurrent_scan(sys, u, &whole);
    // One input at a time.
    S4RecurrentState stepped = s4_zero_state(sys, batch);
    std::vector<Tensor> ys;
    for (int64_t t = 0; t < L; ++t)
      ys.push_back(s4_recurrent_step(sys, u.select(2, t), stepped).unsqueeze(2));
    const Tensor y_steps = concat(ys, 2);
    // Two scans, the second from the state the first left.
    S4RecurrentState halves = s4_zero_state(sys, batch);
    const Tensor y1 = s4_recurrent_scan(sys, u.narrow(2, 0, split), &halves);
    const Tensor y2 = s4_recurrent_scan(sys, u.narrow(2, split, L - split), &halves);
    // The same operations in the same order: bit for bit.
    CHECK(y_steps.to_doubles() == y.to_doubles());
    CHECK(concat({y1, y2}, 2).to_doubles() == y.to_doubles());
    CHECK(stepped.x.to_doubles() == whole.x.to_doubles());
    CHECK(halves.x.to_doubles() == whole.x.to_doubles());
  }
}

// ---- 6. float32 and bad input -----------------------------------------------------------------

TEST_CASE("s4d_kernel and dplr_kernel: float32 loops agree with float64") {
  const int64_t H = 3, N2 = 16, L = 300;
  const S4DParams s = random_s4d(H, N2, 9000);
  const DplrParams d = random_dplr(H, N2, 9100);
  auto f32 = [](const Tensor& t) { return Var(t.to(DType::Float32)); };
  // The float32 run starts from inputs rounded to float32 (6e-8 relative), and both kernels
  // turn a relative change of dt or Im A into a phase change l Im(dt A) times as large in the
  // term of lag l: up to L max|Im(dt A)| 6e-8 = 300 * 4.7 * 6e-8 = 8e-5 here (less where the
  // term has decayed). So the kernels agree to 1e-4 of their largest value.
  const double bound = 1e-4;
  for (Discretization disc : {Discretization::ZOH, Discretization::Bilinear}) {
    const Tensor K64 = s4d_kernel(Var(s.log_dt), Var(s.A), Var(s.B), Var(s.C), L, disc).value();
    const Tensor K32 = s4d_kernel(f32(s.log_dt), f32(s.A), f32(s.B), f32(s.C), L, disc).value();
    report(std::string("s4d_kernel float32 vs float64 ") + discretization_name(disc),
           relative_error(K32.to_doubles(), K64.to_doubles()), bound);
  }
  const Tensor K64 =
      dplr_kernel(Var(d.log_dt), Var(d.Lambda), Var(d.P), Var(d.B), Var(d.C), L).value();
  const Tensor K32 =
      dplr_kernel(f32(d.log_dt), f32(d.Lambda), f32(d.P), f32(d.B), f32(d.C), L).value();
  report("dplr_kernel float32 vs float64", relative_error(K32.to_doubles(), K64.to_doubles()),
         bound);
}

TEST_CASE("s4d_kernel, dplr_kernel, recurrence: bad input names what was expected") {
  const S4DParams s = random_s4d(2, 3, 9500);
  auto s4d = [&](const Tensor& log_dt, const Tensor& A, const Tensor& B, const Tensor& C,
                 int64_t L) {
    s4d_kernel(Var(log_dt), Var(A), Var(B), Var(C), L, Discretization::ZOH);
  };
  test::check_error<std::invalid_argument>([&] { s4d(s.log_dt, s.A, s.B, s.C, 0); },
                                           {"s4d_kernel", "L must be >= 1, got 0"});
  test::check_error<std::invalid_argument>(
      [&] {
        s4d(rand64({2, 1}, 1), s.A, s.B, s.C, 4);
      },
      {"s4d_kernel", "log_dt must be (H)"});
  test::check_error<std::invalid_argument>(
      [&] {
        s4d(s.log_dt, rand64({2, 3}, 1), s.B, s.C, 4);
      },
      {"A must be (H = 2, N2, 2)", "[2, 3]"});
  test::check_error<std::invalid_argument>(
      [&] {
        s4d(s.log_dt, s.A, rand64({2, 4, 2}, 1), s.C, 4);
      },
      {"B must be (H, N2, 2) = [2, 3, 2]", "[2, 4, 2]"});
  test::check_error<std::invalid_argument>(
      [&] { s4d(s.log_dt, s.A, s.B, s.C.to(DType::Float32), 4); }, {"s4d_kernel"});
  const DplrParams d = random_dplr(2, 3, 9600);
  test::check_error<std::invalid_argument>(
      [&] {
        dplr_kernel(Var(d.log_dt), Var(d.Lambda), Var(rand64({3, 3, 2}, 1)), Var(d.B), Var(d.C), 4);
      },
      {"dplr_kernel", "P must be (H, N2, 2) = [2, 3, 2]"});
  test::check_error<std::invalid_argument>(
      [&] { dplr_kernel(Var(d.log_dt), Var(d.Lambda), Var(), Var(d.B), Var(d.C), 4); },
      {"dplr_kernel", "every input is required"});
  const S4Recurrence sys = s4d_recurrence(s.log_dt, s.A, s.B, s.C, Tensor(), Discretization::ZOH);
  test::check_error<std::invalid_argument>(
      [&] {
        s4_recurrent_scan(sys, rand64({1, 3, 5}, 1));
      },
      {"s4_recurrent_scan", "u must be (batch, H = 2, L)"});
  S4RecurrentState wrong = s4_zero_state(sys, 2);
  test::check_error<std::invalid_argument>(
      [&] {
        s4_recurrent_step(sys, rand64({1, 2}, 1), wrong);
      },
      {"s4_recurrent_step", "the state must be", "[1, 2, 3, 2]"});
  test::check_error<std::invalid_argument>(
      [&] { s4d_recurrence(s.log_dt, s.A, s.B, s.C, rand64({3}, 1), Discretization::ZOH); },
      {"s4d_recurrence", "D must be (H) = [2]"});
}

} // namespace
} // namespace ssm::s4
