// recurrence.cpp: the recurrent view of S4D and S4 layers (the math is in recurrence.h), and
// the dense linear algebra that recovers the DPLR output vector C from C~.
//
// Loops: each (batch element, channel) pair is an independent recurrence over time, so the
// work is parallel over batch * H; each output is written by one thread, sums over the states
// in ascending order: the same bits for every thread count.
#include <cmath>
#include <complex>
#include <string>
#include <vector>

#include "s4/recurrence.h"
#include "tensor/cpu/parallel.h"
#include "tensor/ops.h"

namespace ssm::s4 {

namespace {

template <typename T>
using cplx = std::complex<T>;

template <typename T>
cplx<T> load(const T* p, int64_t n) {
  return {p[2 * n], p[2 * n + 1]};
}
template <typename T>
void store(T* p, int64_t n, cplx<T> v) {
  p[2 * n] = v.real();
  p[2 * n + 1] = v.imag();
}

void check_on_cpu(const char* op, const std::vector<const Tensor*>& tensors) {
  for (const Tensor* t : tensors)
    if (t->defined()) check_cpu(*t, op);
}

// D (H) or undefined, of log_dt's dtype.
void check_skip(const char* op, const Tensor& D, const Tensor& log_dt, int64_t H) {
  if (!D.defined()) return;
  check_same_dtype_device(log_dt, D, op);
  if (D.shape() != Shape{H})
    throw std::invalid_argument(std::string(op) + ": D must be (H) = " + shape_str(Shape{H}) +
                                ", got " + shape_str(D.shape()));
}

// ---- dense complex matrices (row-major n x n), in double ------------------------------------

using Matrix = std::vector<cplx<double>>;

Matrix identity(int64_t n) {
  Matrix m(n * n, 0.0);
  for (int64_t i = 0; i < n; ++i) m[i * n + i] = 1.0;
  return m;
}

Matrix matmul(const Matrix& a, const Matrix& b, int64_t n) {
  Matrix c(n * n, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < n; ++k) {
      const cplx<double> aik = a[i * n + k];
      for (int64_t j = 0; j < n; ++j) c[i * n + j] += aik * b[k * n + j];
    }
  return c;
}

// Solves a X = b for X (n x m, row-major like b) by Gaussian elimination with partial
// pivoting. Returns false when a pivot is exactly zero (a singular).
bool solve(Matrix a, std::vector<cplx<double>>& b, int64_t n, int64_t m) {
  for (int64_t col = 0; col < n; ++col) {
    int64_t pivot = col;
    for (int64_t r = col + 1; r < n; ++r)
      if (std::abs(a[r * n + col]) > std::abs(a[pivot * n + col])) pivot = r;
    if (a[pivot * n + col] == 0.0) return false;
    if (pivot != col) {
      for (int64_t j = 0; j < n; ++j) std::swap(a[col * n + j], a[pivot * n + j]);
      for (int64_t j = 0; j < m; ++j) std::swap(b[col * m + j], b[pivot * m + j]);
    }
    const cplx<double> inv = 1.0 / a[col * n + col];
    for (int64_t r = col + 1; r < n; ++r) {
      const cplx<double> f = a[r * n + col] * inv;
      if (f == 0.0) continue;
      for (int64_t j = col; j < n; ++j) a[r * n + j] -= f * a[col * n + j];
      for (int64_t j = 0; j < m; ++j) b[r * m + j] -= f * b[col * m + j];
    }
  }
  for (int64_t col = n - 1; col >= 0; --col) {
    const cplx<double> inv = 1.0 / a[col * n + col];
    for (int64_t j = 0; j < m; ++j) {
      cplx<double> acc = b[col * m + j];
      for (int64_t k = col + 1; k < n; ++k) acc -= a[col * n + k] * b[k * m + j];
      b[col * m + j] = acc * inv;
    }
  }
  return true;
}

// ---- the steps ---------------------------------------------------------------------------

// One channel h of one batch element: `steps` inputs u[0 .. steps-1] (consecutive), outputs
// y[0 .. steps-1], state x (N2 complex, interleaved) updated in place.
template <typename T>
void run_channel(const S4Recurrence& sys, int64_t h, const T* u, int64_t steps, T* y, T* x,
                 std::vector<cplx<T>>& inv_D0) {
  const int64_t N2 = sys.half_states, off = h * N2;
  const T* C = sys.C.data<T>();
  const T D = sys.D.defined() ? sys.D.data<T>()[h] : T(0);
  if (!sys.dplr) {
    const T* dA = sys.dA.data<T>();
    const T* dB = sys.dB.data<T>();
    for (int64_t t = 0; t < steps; ++t) {
      T acc = 0;
      for (int64_t n = 0; n < N2; ++n) {
        const cplx<T> xn = load(dA, off + n) * load(x, n) + load(dB, off + n) * u[t];
        store(x, n, xn);
        acc += (load(C, off + n) * xn).real();
      }
      y[t] = 2 * acc + D * u[t];
    }
    return;
  }
  const T dt = sys.dt.data<T>()[h];
  const T half_dt = dt / 2;
  const T* Lambda = sys.Lambda.data<T>();
  const T* P = sys.P.data<T>();
  const T* B = sys.B.data<T>();
  // 1 / D0_n = 1 / (1 - dt/2 Lambda_n) and the Sherman-Morrison denominator.
  T pp = 0; // Re sum |P_n|^2 / D0_n
  for (int64_t n = 0; n < N2; ++n) {
    inv_D0[n] = T(1) / (T(1) - half_dt * load(Lambda, off + n));
    pp += std::norm(load(P, off + n)) * inv_D0[n].real();
  }
  const T denominator = 1 + dt * pp;
  for (int64_t t = 0; t < steps; ++t) {
    T rho_prev = 0; // 2 Re sum conj(P_n) x_n
    for (int64_t n = 0; n < N2; ++n)
      rho_prev += 2 * (std::conj(load(P, off + n)) * load(x, n)).real();
    T numerator = 0; // 2 Re sum conj(P_n) rhs_n / D0_n
    for (int64_t n = 0; n < N2; ++n) {
      const cplx<T> xn = load(x, n), p = load(P, off + n);
      const cplx<T> rhs =
          xn + half_dt * (load(Lambda, off + n) * xn - p * rho_prev) + dt * load(B, off + n) * u[t];
      store(x, n, rhs); // x holds rhs until the second pass
      numerator += 2 * (std::conj(p) * rhs * inv_D0[n]).real();
    }
    const T rho = numerator / denominator;
    T acc = 0;
    for (int64_t n = 0; n < N2; ++n) {
      const cplx<T> xn = (load(x, n) - half_dt * rho * load(P, off + n)) * inv_D0[n];
      store(x, n, xn);
      acc += (load(C, off + n) * xn).real();
    }
    y[t] = 2 * acc + D * u[t];
  }
}

// u (batch, H, steps) -> y (batch, H, steps), x (batch, H, N2, 2) in place.
template <typename T>
void run(const S4Recurrence& sys, const Tensor& u, int64_t steps, Tensor& y, Tensor& x) {
  const int64_t N2 = sys.half_states, H = sys.channels;
  const int64_t rows = u.numel() / std::max<int64_t>(1, steps); // batch * H
  const T* u_p = u.data<T>();
  T* y_p = y.data<T>();
  T* x_p = x.data<T>();
  const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, steps * N2));
  cpu::parallel_for(0, rows, grain, [&](int64_t lo, int64_t hi) {
    std::vector<cplx<T>> inv_D0(N2);
    for (int64_t row = lo; row < hi; ++row)
      run_channel<T>(sys, row % H, u_p + row * steps, steps, y_p + row * steps, x_p + row * N2 * 2,
                     inv_D0);
  });
}

void check_state(const char* op, const S4Recurrence& sys, const S4RecurrentState& state,
                 int64_t batch, DType dtype) {
  const Shape expected{batch, sys.channels, sys.half_states, 2};
  if (!state.x.defined() || state.x.shape() != expected || state.x.dtype() != dtype ||
      !state.x.device().is_cpu() || !state.x.is_contiguous())
    throw std::invalid_argument(std::string(op) + ": the state must be a contiguous CPU " +
                                dtype_name(dtype) + " tensor " + shape_str(expected) + ", got " +
                                (state.x.defined() ? state.x.describe() : "undefined"));
}

void check_input(const char* op, const S4Recurrence& sys, const Tensor& u, int64_t dims) {
  check_defined(u, op);
  check_cpu(u, op);
  if (u.dtype() != sys.C.dtype())
    throw std::invalid_argument(std::string(op) + ": u is " + dtype_name(u.dtype()) +
                                " but the system is " + dtype_name(sys.C.dtype()));
  if (u.dim() != dims || u.size(1) != sys.channels)
    throw std::invalid_argument(std::string(op) +
                                ": u must be (batch, H = " + std::to_string(sys.channels) +
                                (dims == 2 ? ")" : ", L)") + ", got " + shape_str(u.shape()));
}

} // namespace

// ---- setup -------------------------------------------------------------------------------

S4Recurrence s4d_recurrence(const Tensor& log_dt, const Tensor& A, const Tensor& B, const Tensor& C,
                            const Tensor& D, Discretization disc) {
  const char* op = "s4d_recurrence";
  S4DInputs in{log_dt.contiguous(), A.contiguous(), B.contiguous(), C.contiguous()};
  const KernelShape s = make_s4d_shape(op, in, 1);
  check_on_cpu(op, {&log_dt, &A, &B, &C, &D});
  check_skip(op, D, log_dt, s.channels);
  S4Recurrence sys;
  sys.channels = s.channels;
  sys.half_states = s.half_states;
  sys.dA = Tensor::empty(in.A.shape(), in.A.dtype());
  sys.dB = Tensor::empty(in.A.shape(), in.A.dtype());
  s4d_discretize_cpu(in, s, disc, sys.dA, sys.dB);
  sys.C = in.C;
  if (D.defined()) sys.D = D.contiguous();
  return sys;
}

Tensor dplr_c_from_c_tilde(const Tensor& log_dt, const Tensor& Lambda, const Tensor& P,
                           const Tensor& C_tilde, int64_t L) {
  const char* op = "dplr_c_from_c_tilde";
  // The kernel's shape check, with C~ standing in for B (which this conversion does not use).
  const KernelShape s = make_dplr_shape(op, {log_dt, Lambda, P, C_tilde, C_tilde}, L);
  check_on_cpu(op, {&log_dt, &Lambda, &P, &C_tilde});
  const int64_t N2 = s.half_states, N = 2 * N2;
  const std::vector<double> log_dt_v = log_dt.to_doubles();
  const std::vector<double> lambda_v = Lambda.to_doubles(), p_v = P.to_doubles();
  const std::vector<double> ct_v = C_tilde.to_doubles();
  std::vector<double> c_v(ct_v.size());
  std::vector<int64_t> singular(s.channels, 0);
  cpu::parallel_for(0, s.channels, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t h = lo; h < hi; ++h) {
      const double dt = std::exp(log_dt_v[h]);
      // The full conjugate-pair vectors: entry j < N2 is kept state j, entry N2 + j its
      // conjugate.
      auto full = [&](const std::vector<double>& v, int64_t j) {
        const cplx<double> x = load(v.data(), h * N2 + j % N2);
        return j < N2 ? x : std::conj(x);
      };
      // A = diag(Lambda_full) - P_full P_full^*, then M0 = I - dt/2 A and M1 = I + dt/2 A.
      Matrix M0(N * N), M1(N * N);
      for (int64_t i = 0; i < N; ++i)
        for (int64_t j = 0; j < N; ++j) {
          cplx<double> a = -full(p_v, i) * std::conj(full(p_v, j));
          if (i == j) a += full(lambda_v, i);
          M0[i * N + j] = (i == j ? 1.0 : 0.0) - dt / 2 * a;
          M1[i * N + j] = (i == j ? 1.0 : 0.0) + dt / 2 * a;
        }
      // dA = M0^-1 M1, then dA^L by repeated squaring.
      if (!solve(M0, M1, N, N)) {
        singular[h] = 1;
        continue;
      }
      Matrix power = identity(N), base = M1;
      for (int64_t e = L; e > 0; e /= 2) {
        if (e & 1) power = matmul(power, base, N);
        if (e > 1) base = matmul(base, base, N);
      }
      // C (I - dA^L) = C~  <=>  (I - dA^L)^T C^T = C~^T.
      Matrix MT(N * N);
      for (int64_t i = 0; i < N; ++i)
        for (int64_t j = 0; j < N; ++j) MT[i * N + j] = (i == j ? 1.0 : 0.0) - power[j * N + i];
      std::vector<cplx<double>> c(N);
      for (int64_t j = 0; j < N; ++j) c[j] = full(ct_v, j);
      if (!solve(MT, c, N, 1)) {
        singular[h] = 1;
        continue;
      }
      for (int64_t j = 0; j < N2; ++j) store(c_v.data(), h * N2 + j, c[j]);
    }
  });
  for (int64_t h = 0; h < s.channels; ++h)
    if (singular[h])
      throw std::invalid_argument(std::string(op) + ": channel " + std::to_string(h) +
                                  ": I - dt/2 A or I - dA^L is singular (is Re Lambda < 0?)");
  return Tensor::from_values(c_v, C_tilde.shape(), C_tilde.dtype());
}

S4Recurrence dplr_recurrence(const Tensor& log_dt, const Tensor& Lambda, const Tensor& P,
                             const Tensor& B, const Tensor& C_tilde, const Tensor& D, int64_t L) {
  const char* op = "dplr_recurrence";
  DplrInputs in{log_dt.contiguous(), Lambda.contiguous(), P.contiguous(), B.contiguous(),
                C_tilde.contiguous()};
  const KernelShape s = make_dplr_shape(op, in, L);
  check_on_cpu(op, {&log_dt, &Lambda, &P, &B, &C_tilde, &D});
  check_skip(op, D, log_dt, s.channels);
  S4Recurrence sys;
  sys.dplr = true;
  sys.channels = s.channels;
  sys.half_states = s.half_states;
  sys.dt = exp(in.log_dt);
  sys.Lambda = in.Lambda;
  sys.P = in.P;
  sys.B = in.B;
  sys.C = dplr_c_from_c_tilde(in.log_dt, in.Lambda, in.P, in.C, L);
  if (D.defined()) sys.D = D.contiguous();
  return sys;
}

// ---- stepping ----------------------------------------------------------------------------

S4RecurrentState s4_zero_state(const S4Recurrence& sys, int64_t batch) {
  return {Tensor::zeros({batch, sys.channels, sys.half_states, 2}, sys.C.dtype())};
}

Tensor s4_recurrent_step(const S4Recurrence& sys, const Tensor& u_t, S4RecurrentState& state) {
  const char* op = "s4_recurrent_step";
  check_input(op, sys, u_t, 2);
  check_state(op, sys, state, u_t.size(0), u_t.dtype());
  const Tensor u = u_t.contiguous();              // (batch, H), one step per row
  Tensor y = Tensor::empty(u.shape(), u.dtype()); // (batch, H)
  dispatch_floating(u.dtype(), op, [&](auto zero) { run<decltype(zero)>(sys, u, 1, y, state.x); });
  return y;
}

Tensor s4_recurrent_scan(const S4Recurrence& sys, const Tensor& u, S4RecurrentState* state) {
  const char* op = "s4_recurrent_scan";
  check_input(op, sys, u, 3);
  S4RecurrentState local;
  if (!state) local = s4_zero_state(sys, u.size(0));
  S4RecurrentState& st = state ? *state : local;
  check_state(op, sys, st, u.size(0), u.dtype());
  const Tensor uc = u.contiguous();                 // (batch, H, L)
  Tensor y = Tensor::empty(uc.shape(), uc.dtype()); // (batch, H, L)
  dispatch_floating(uc.dtype(), op,
                    [&](auto zero) { run<decltype(zero)>(sys, uc, uc.size(2), y, st.x); });
  return y;
}

} // namespace ssm::s4
