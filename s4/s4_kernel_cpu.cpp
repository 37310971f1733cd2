// s4_kernel_cpu.cpp: the CPU reference loops of the S4D and DPLR kernels, forward and backward,
// and the shape checks shared with the CUDA kernels. The math and the buffers are in
// s4_kernel.h; here are the backwards, derived by hand. Notation: for a complex intermediate q,
// gq is its adjoint, dL = Re(gq dq); the gradient tensor of a complex parameter p holds
// conj(gp) = (dL/dRe p, dL/dIm p) (s4_kernel.h, "Gradients of complex parameters").
//
// ---- S4D backward, for one channel (dt = exp(log_dt)) and one state n ----------------------
// Forward, per state:  F = dB / B (ZOH: expm1(dt a) / a; bilinear: dt / (1 - dt a/2)),
//                      W = C F B,  lz = log dA,  K_l += 2 Re(W exp(l lz)).
// Given gK_l = dL/dK_l, the sums over the kernel's positions
//     S = sum_l gK_l dA^l,        U = sum_l gK_l l dA^l
// give, since d(dA^l) = l dA^l d(lz):
//     gW  = 2 S                    glz = 2 W U
//     gC  = gW F B                 gB  = gW C F                 gF = gW C B
//     ga  = gF dF/da + glz dlz/da
//     dL/d dt = Re(gF dF/d dt + glz dlz/d dt)   (dt is real),  dL/d log_dt = dt sum_n dL/d dt
// with, per discretisation (h = dt a / 2 in the bilinear lines):
//     ZOH       dlz/da = dt              dlz/d dt = a
//               dF/da  = (dt dA - F) / a  dF/d dt  = dA
//     bilinear  dlz/da = dt / (1 - h^2)  dlz/d dt = a / (1 - h^2)    (lz = 2 atanh(h))
//               dF/da  = dt^2 / (2 (1 - h)^2)                 dF/d dt = 1 / (1 - h)^2
//
// ---- DPLR backward, for one channel ----------------------------------------------------
// Forward (s4_kernel.h): at node z_k, w = 1 + z, c = (2/dt)(1 - z), per kept state n
//     d = c - w Lambda,  d' = c - w conj(Lambda),
//     v00 = C B,  v01 = C P,  v10 = conj(P) B,  v11 = conj(P) P,
//     r_ab = sum_n [v_ab / d + conj(v_ab) / d'],
//     K^_k = 2 [r00 - w r01 r10 / s],  s = 1 + w r11,
//     K = irfft(K^, L).
// 1. Through the irfft. K_l = (1/L) sum_k m_k Re(K^_k exp(2 pi i k l / L)), m_k = 1 for k = 0
//    and (L even) k = L/2, else 2 (irfft ignores the imaginary parts of those two bins, which
//    are 0 here anyway). So gK^_k = (m_k / L) sum_l gK_l exp(2 pi i k l / L) and the
//    gradient tensor conj(gK^_k) = (m_k / L) rfft(gK)_k: an FFT of the output gradient (the
//    autograd op does this step, s4_kernel_op.cpp; the loops below start from it).
// 2. Through the Woodbury combination (K^ is holomorphic in the r_ab):
//     gr00 = 2 g,   gr01 = -2 g w r10 / s,   gr10 = -2 g w r01 / s,   gr11 = 2 g w^2 r01 r10 / s^2
//    with g = gK^_k. These need the forward's r_ab, which the backward recomputes per node.
// 3. Through the Cauchy sums. r_ab depends on v_ab and on conj(v_ab), so with
//    Re(g conj(x)) = Re(conj(g) x):
//     gv_ab  = sum_k [gr_ab / d + conj(gr_ab / d')]                           (call it alpha_ab)
//    and through the denominators (dd = -w dLambda, dd' = -w conj(dLambda),
//    dd/d dt = dd'/d dt = -(2/dt^2)(1 - z)), with E = sum_ab gr_ab v_ab and
//    E' = sum_ab conj(gr_ab) v_ab:
//     gLambda  = sum_k [E w / d^2 + E' conj(w / d'^2)]
//     dL/d dt  = (2/dt^2) Re sum_n sum_k [E (1 - z) / d^2 + E' conj((1 - z) / d'^2)]
// 4. Through the products v_ab (v10 and v11 hold conj(P), which is not holomorphic in P):
//     gC = alpha00 B + alpha01 P
//     gB = alpha00 C + alpha10 conj(P)
//     gP = alpha01 C + conj(alpha10 B) + conj(alpha11 P) + alpha11 conj(P)
//    and dL/d log_dt = dt dL/d dt.
//
// ---- The loops ----------------------------------------------------------------------------
// Every channel is independent: each loop is parallel over h, and each output element is
// written by one thread with its sums in a fixed order, so the result has the same bits for
// every thread count. S4D forward: for each l, the sum over n in ascending order. S4D backward:
// for each n, the sums over l in ascending order. DPLR: per node, the sums over n ascending;
// backward per state, the sums over the nodes ascending. What runs in double and what in the
// element type: s4_kernel.h, "Precision".
#include <cmath>
#include <complex>
#include <string>
#include <vector>

#include "s4/s4_kernel.h"
#include "tensor/cpu/parallel.h"
#include "tensor/ops.h"

namespace ssm::s4 {

const char* discretization_name(Discretization disc) {
  return disc == Discretization::ZOH ? "zoh" : "bilinear";
}

// ---- shape checks --------------------------------------------------------------------------

namespace {

// Checks log_dt (H) and every complex (H, N2, 2) tensor of `complex_params` (named by `names`),
// one dtype and device; returns H and N2.
KernelShape check_kernel_inputs(const char* op, const Tensor& log_dt,
                                const std::vector<const Tensor*>& complex_params,
                                const std::vector<const char*>& names, int64_t L) {
  auto fail = [&](const std::string& what) {
    throw std::invalid_argument(std::string(op) + ": " + what);
  };
  if (!log_dt.defined()) fail("log_dt is undefined");
  for (size_t i = 0; i < complex_params.size(); ++i)
    if (!complex_params[i]->defined()) fail(std::string(names[i]) + " is undefined");
  check_floating(log_dt, op);
  for (const Tensor* t : complex_params) check_same_dtype_device(log_dt, *t, op);
  if (log_dt.dim() != 1) fail("log_dt must be (H), got " + shape_str(log_dt.shape()));
  KernelShape s;
  s.channels = log_dt.size(0);
  const Tensor& first = *complex_params[0];
  if (first.dim() != 3 || first.size(0) != s.channels || first.size(2) != 2)
    fail(std::string(names[0]) + " must be (H = " + std::to_string(s.channels) +
         ", N2, 2) complex, got " + shape_str(first.shape()));
  s.half_states = first.size(1);
  const Shape expected{s.channels, s.half_states, 2};
  for (size_t i = 1; i < complex_params.size(); ++i)
    if (complex_params[i]->shape() != expected)
      fail(std::string(names[i]) + " must be (H, N2, 2) = " + shape_str(expected) + ", got " +
           shape_str(complex_params[i]->shape()));
  if (L < 1) fail("the kernel length L must be >= 1, got " + std::to_string(L));
  s.length = L;
  return s;
}

} // namespace

KernelShape make_s4d_shape(const char* op, const S4DInputs& in, int64_t L) {
  return check_kernel_inputs(op, in.log_dt, {&in.A, &in.B, &in.C}, {"A", "B", "C"}, L);
}

KernelShape make_dplr_shape(const char* op, const DplrInputs& in, int64_t L) {
  return check_kernel_inputs(op, in.log_dt, {&in.Lambda, &in.P, &in.B, &in.C},
                             {"Lambda", "P", "B", "C"}, L);
}

namespace {

template <typename T>
using cplx = std::complex<T>;
using cd = std::complex<double>;

// Element n of a contiguous (.., 2) complex buffer.
template <typename T>
cplx<T> load(const T* p, int64_t n) {
  return {p[2 * n], p[2 * n + 1]};
}
template <typename T>
void store(T* p, int64_t n, cd v) {
  p[2 * n] = static_cast<T>(v.real());
  p[2 * n + 1] = static_cast<T>(v.imag());
}
// Between the element type and double (s4_kernel.h, "Precision").
template <typename T>
cd widen(cplx<T> x) {
  return {static_cast<double>(x.real()), static_cast<double>(x.imag())};
}
template <typename T>
cplx<T> narrow(cd x) {
  return {static_cast<T>(x.real()), static_cast<T>(x.imag())};
}

// ---- complex functions that keep their precision near 0 -----------------------------------

// exp(x) - 1 for complex x = p + iq: e^p (cos q + i sin q) - 1, whose real part is written as
// expm1(p) cos q - 2 sin^2(q/2) (cos q - 1 = -2 sin^2(q/2)): no cancellation when |x| is small.
cd expm1_complex(cd x) {
  const double s = std::sin(x.imag() / 2);
  return {std::expm1(x.real()) * std::cos(x.imag()) - 2 * s * s,
          std::exp(x.real()) * std::sin(x.imag())};
}

// log(1 + x) for complex x = p + iq: log|1 + x| = log1p(2p + p^2 + q^2) / 2 and
// arg(1 + x) = atan2(q, 1 + p).
cd log1p_complex(cd x) {
  const double p = x.real(), q = x.imag();
  return {std::log1p(p * (2 + p) + q * q) / 2, std::atan2(q, 1 + p)};
}

// ---- the discretisation of one diagonal state, in double -----------------------------------

// For state a and step dt: log dA, F = dB / B, and (for the backward) their derivatives.
struct DiagonalStep {
  cd log_dA, F;
  cd dlog_da, dlog_ddt, dF_da, dF_ddt;
};

DiagonalStep discretize(cd a, double dt, Discretization disc) {
  DiagonalStep st;
  if (disc == Discretization::ZOH) {
    const cd x = dt * a;
    const cd em1 = expm1_complex(x); // dA - 1
    st.log_dA = x;
    st.F = em1 / a;
    st.dlog_da = dt;
    st.dlog_ddt = a;
    st.dF_da = (dt * (em1 + 1.0) - st.F) / a;
    st.dF_ddt = em1 + 1.0;
  } else {
    const cd h = dt * a / 2.0;
    const cd q = 1.0 / (1.0 - h); // 1 / (1 - dt a/2)
    const cd inv_1mh2 = 1.0 / (1.0 - h * h);
    st.log_dA = log1p_complex(h) - log1p_complex(-h);
    st.F = dt * q;
    st.dlog_da = dt * inv_1mh2;
    st.dlog_ddt = a * inv_1mh2;
    st.dF_da = dt * dt / 2 * q * q;
    st.dF_ddt = q * q;
  }
  return st;
}

// Channels per parallel piece: about 2^16 complex exponentials' worth of work.
int64_t channel_grain(int64_t per_channel) {
  return std::max<int64_t>(1, 65536 / std::max<int64_t>(1, per_channel));
}

// ---- S4D forward and backward --------------------------------------------------------------

template <typename T>
void s4d_fwd(const S4DInputs& in, const KernelShape& s, Discretization disc, Tensor& K) {
  const int64_t N2 = s.half_states, L = s.length;
  const T* log_dt = in.log_dt.data<T>(); // (H)
  const T* A = in.A.data<T>();           // (H, N2, 2)
  const T* B = in.B.data<T>();           // (H, N2, 2)
  const T* C = in.C.data<T>();           // (H, N2, 2)
  T* K_p = K.data<T>();                  // (H, L)
  cpu::parallel_for(0, s.channels, channel_grain(N2 * L), [&](int64_t lo, int64_t hi) {
    std::vector<cd> W(N2);           // per state: C dB
    std::vector<cplx<T>> log_dA(N2); // per state: log dA, rounded to T
    for (int64_t h = lo; h < hi; ++h) {
      const double dt = std::exp(static_cast<double>(log_dt[h]));
      const int64_t off = h * N2;
      for (int64_t n = 0; n < N2; ++n) {
        const DiagonalStep st = discretize(widen(load(A, off + n)), dt, disc);
        W[n] = widen(load(C, off + n)) * st.F * widen(load(B, off + n));
        log_dA[n] = narrow<T>(st.log_dA);
      }
      for (int64_t l = 0; l < L; ++l) {
        double acc = 0;
        for (int64_t n = 0; n < N2; ++n)
          acc += (W[n] * widen(std::exp(static_cast<T>(l) * log_dA[n]))).real();
        K_p[h * L + l] = static_cast<T>(2 * acc);
      }
    }
  });
}

template <typename T>
void s4d_bwd(const S4DInputs& in, const KernelShape& s, Discretization disc, const Tensor& grad_K,
             S4DGrads& grads) {
  const int64_t N2 = s.half_states, L = s.length;
  const T* log_dt = in.log_dt.data<T>();
  const T* A = in.A.data<T>();
  const T* B = in.B.data<T>();
  const T* C = in.C.data<T>();
  const T* gK = grad_K.data<T>(); // (H, L)
  auto ptr_if = [](Tensor& t) { return t.defined() ? t.data<T>() : nullptr; };
  T* g_log_dt = ptr_if(grads.log_dt); // (H)
  T* gA = ptr_if(grads.A);            // (H, N2, 2)
  T* gB = ptr_if(grads.B);            // (H, N2, 2)
  T* gC = ptr_if(grads.C);            // (H, N2, 2)
  cpu::parallel_for(0, s.channels, channel_grain(N2 * L), [&](int64_t lo, int64_t hi) {
    for (int64_t h = lo; h < hi; ++h) {
      const double dt = std::exp(static_cast<double>(log_dt[h]));
      const T* gK_h = gK + h * L;
      double ddt = 0; // dL/d dt, summed over the states
      for (int64_t n = 0; n < N2; ++n) {
        const int64_t i = h * N2 + n;
        const cd a = widen(load(A, i)), b = widen(load(B, i)), c = widen(load(C, i));
        const DiagonalStep st = discretize(a, dt, disc);
        const cplx<T> log_dA = narrow<T>(st.log_dA);
        cd S = 0, U = 0; // sum_l gK_l dA^l, sum_l gK_l l dA^l
        for (int64_t l = 0; l < L; ++l) {
          const cd term =
              static_cast<double>(gK_h[l]) * widen(std::exp(static_cast<T>(l) * log_dA));
          S += term;
          U += static_cast<double>(l) * term;
        }
        const cd W = c * st.F * b;
        const cd gW = 2.0 * S, glz = 2.0 * W * U;
        const cd gF = gW * c * b;
        if (gC) store(gC, i, std::conj(gW * st.F * b));
        if (gB) store(gB, i, std::conj(gW * c * st.F));
        if (gA) store(gA, i, std::conj(gF * st.dF_da + glz * st.dlog_da));
        ddt += (gF * st.dF_ddt + glz * st.dlog_ddt).real();
      }
      if (g_log_dt) g_log_dt[h] = static_cast<T>(dt * ddt);
    }
  });
}

template <typename T>
void s4d_discretize(const S4DInputs& in, const KernelShape& s, Discretization disc, Tensor& dA,
                    Tensor& dB) {
  const T* log_dt = in.log_dt.data<T>();
  const T* A = in.A.data<T>();
  const T* B = in.B.data<T>();
  T* dA_p = dA.data<T>(); // (H, N2, 2)
  T* dB_p = dB.data<T>(); // (H, N2, 2)
  for (int64_t h = 0; h < s.channels; ++h) {
    const double dt = std::exp(static_cast<double>(log_dt[h]));
    for (int64_t n = 0; n < s.half_states; ++n) {
      const int64_t i = h * s.half_states + n;
      const DiagonalStep st = discretize(widen(load(A, i)), dt, disc);
      store(dA_p, i, std::exp(st.log_dA));
      store(dB_p, i, st.F * widen(load(B, i)));
    }
  }
}

// ---- DPLR forward and backward -------------------------------------------------------------

// What the Cauchy terms need of one node: z, w = 1 + z and c = (2/dt)(1 - z).
struct Node {
  cd z, w, c;
};

void make_nodes(int64_t L, double dt, std::vector<Node>& nodes) {
  for (size_t k = 0; k < nodes.size(); ++k) {
    Node& nd = nodes[k];
    nd.z = dplr_node(static_cast<int64_t>(k), L);
    nd.w = 1.0 + nd.z;
    nd.c = 2 / dt * (1.0 - nd.z);
  }
}

// One kept state: Lambda and the four products v_ab (the numerators of the Cauchy sums),
// a = C~ / conj(P), b = B / P: v[0] = C B, v[1] = C P, v[2] = conj(P) B, v[3] = conj(P) P.
struct StateTerms {
  cd lambda, v[4];
};

template <typename T>
void load_states(const DplrInputs& in, const KernelShape& s, int64_t h,
                 std::vector<StateTerms>& states) {
  const T* Lambda = in.Lambda.data<T>();
  const T* P = in.P.data<T>();
  const T* B = in.B.data<T>();
  const T* C = in.C.data<T>();
  for (int64_t n = 0; n < s.half_states; ++n) {
    const int64_t i = h * s.half_states + n;
    const cd p = widen(load(P, i)), b = widen(load(B, i)), c = widen(load(C, i));
    StateTerms& st = states[n];
    st.lambda = widen(load(Lambda, i));
    st.v[0] = c * b;
    st.v[1] = c * p;
    st.v[2] = std::conj(p) * b;
    st.v[3] = std::conj(p) * p;
  }
}

// 1 / d and 1 / d' of one (node, state).
void reciprocals(const Node& nd, cd lambda, cd& inv_d, cd& inv_dc) {
  inv_d = 1.0 / (nd.c - nd.w * lambda);
  inv_dc = 1.0 / (nd.c - nd.w * std::conj(lambda));
}

// r_ab at one node: sum_n [v_ab / d + conj(v_ab) / d'] over the states in ascending order.
void cauchy_sums(const Node& nd, const std::vector<StateTerms>& states, cd (&r)[4]) {
  for (cd& x : r) x = 0;
  for (const StateTerms& st : states) {
    cd inv_d, inv_dc;
    reciprocals(nd, st.lambda, inv_d, inv_dc);
    for (int ab = 0; ab < 4; ++ab) r[ab] += st.v[ab] * inv_d + std::conj(st.v[ab]) * inv_dc;
  }
}

template <typename T>
void dplr_fwd(const DplrInputs& in, const KernelShape& s, Tensor& K_hat) {
  const int64_t nodes = s.nodes();
  const T* log_dt = in.log_dt.data<T>();
  T* K_hat_p = K_hat.data<T>(); // (H, nodes, 2)
  cpu::parallel_for(
      0, s.channels, channel_grain(s.half_states * nodes), [&](int64_t lo, int64_t hi) {
        std::vector<Node> node(nodes);
        std::vector<StateTerms> states(s.half_states);
        for (int64_t h = lo; h < hi; ++h) {
          make_nodes(s.length, std::exp(static_cast<double>(log_dt[h])), node);
          load_states<T>(in, s, h, states);
          for (int64_t k = 0; k < nodes; ++k) {
            cd r[4];
            cauchy_sums(node[k], states, r);
            const cd w = node[k].w;
            store(K_hat_p, h * nodes + k, 2.0 * (r[0] - w * r[1] * r[2] / (1.0 + w * r[3])));
          }
        }
      });
}

template <typename T>
void dplr_bwd(const DplrInputs& in, const KernelShape& s, const Tensor& grad_K_hat,
              DplrGrads& grads) {
  const int64_t nodes = s.nodes(), N2 = s.half_states;
  const T* log_dt = in.log_dt.data<T>();
  const T* P = in.P.data<T>();
  const T* B = in.B.data<T>();
  const T* C = in.C.data<T>();
  const T* gK_hat = grad_K_hat.data<T>(); // (H, nodes, 2)
  auto ptr_if = [](Tensor& t) { return t.defined() ? t.data<T>() : nullptr; };
  T* g_log_dt = ptr_if(grads.log_dt); // (H)
  T* gLambda = ptr_if(grads.Lambda);  // (H, N2, 2)
  T* gP = ptr_if(grads.P);            // (H, N2, 2)
  T* gB = ptr_if(grads.B);            // (H, N2, 2)
  T* gC = ptr_if(grads.C);            // (H, N2, 2)
  cpu::parallel_for(0, s.channels, channel_grain(N2 * nodes), [&](int64_t lo, int64_t hi) {
    std::vector<Node> node(nodes);
    std::vector<StateTerms> states(N2);
    std::vector<cd> gr(nodes * 4); // (nodes, 4): gr_ab at each node
    for (int64_t h = lo; h < hi; ++h) {
      const double dt = std::exp(static_cast<double>(log_dt[h]));
      make_nodes(s.length, dt, node);
      load_states<T>(in, s, h, states);
      // Step 2: the adjoints of the r_ab, node by node.
      for (int64_t k = 0; k < nodes; ++k) {
        cd r[4];
        cauchy_sums(node[k], states, r);
        const cd g = std::conj(widen(load(gK_hat, h * nodes + k)));
        const cd w = node[k].w, inv_s = 1.0 / (1.0 + w * r[3]);
        gr[4 * k + 0] = 2.0 * g;
        gr[4 * k + 1] = -2.0 * g * w * r[2] * inv_s;
        gr[4 * k + 2] = -2.0 * g * w * r[1] * inv_s;
        gr[4 * k + 3] = 2.0 * g * w * w * r[1] * r[2] * inv_s * inv_s;
      }
      // Steps 3 and 4: per state, sums over the nodes.
      double dt_sum = 0; // sum_n Re(...) of dL/d dt, before the factor 2/dt^2
      for (int64_t n = 0; n < N2; ++n) {
        const StateTerms& st = states[n];
        cd alpha[4] = {0, 0, 0, 0}, g_lambda = 0, g_dt = 0;
        for (int64_t k = 0; k < nodes; ++k) {
          const Node& nd = node[k];
          cd inv_d, inv_dc;
          reciprocals(nd, st.lambda, inv_d, inv_dc);
          cd E = 0, Ec = 0; // sum_ab gr_ab v_ab, sum_ab conj(gr_ab) v_ab
          for (int ab = 0; ab < 4; ++ab) {
            const cd g = gr[4 * k + ab];
            alpha[ab] += g * inv_d + std::conj(g * inv_dc);
            E += g * st.v[ab];
            Ec += std::conj(g) * st.v[ab];
          }
          const cd inv_d2 = inv_d * inv_d, inv_dc2 = inv_dc * inv_dc;
          const cd one_minus_z = 1.0 - nd.z;
          g_lambda += E * nd.w * inv_d2 + Ec * std::conj(nd.w * inv_dc2);
          g_dt += E * one_minus_z * inv_d2 + Ec * std::conj(one_minus_z * inv_dc2);
        }
        const int64_t i = h * N2 + n;
        const cd p = widen(load(P, i)), b = widen(load(B, i)), c = widen(load(C, i));
        if (gC) store(gC, i, std::conj(alpha[0] * b + alpha[1] * p));
        if (gB) store(gB, i, std::conj(alpha[0] * c + alpha[2] * std::conj(p)));
        if (gP)
          store(gP, i,
                std::conj(alpha[1] * c + std::conj(alpha[2] * b) + std::conj(alpha[3] * p) +
                          alpha[3] * std::conj(p)));
        if (gLambda) store(gLambda, i, std::conj(g_lambda));
        dt_sum += g_dt.real();
      }
      // dL/d log_dt = dt dL/d dt = dt (2 / dt^2) sum = (2 / dt) sum.
      if (g_log_dt) g_log_dt[h] = static_cast<T>(2 / dt * dt_sum);
    }
  });
}

} // namespace

// ---- entry points ---------------------------------------------------------------------------

void s4d_kernel_fwd_cpu(const S4DInputs& in, const KernelShape& s, Discretization disc, Tensor& K) {
  dispatch_floating(in.log_dt.dtype(), "s4d_kernel_fwd_cpu",
                    [&](auto zero) { s4d_fwd<decltype(zero)>(in, s, disc, K); });
}

void s4d_kernel_bwd_cpu(const S4DInputs& in, const KernelShape& s, Discretization disc,
                        const Tensor& grad_K, S4DGrads& grads) {
  dispatch_floating(in.log_dt.dtype(), "s4d_kernel_bwd_cpu",
                    [&](auto zero) { s4d_bwd<decltype(zero)>(in, s, disc, grad_K, grads); });
}

void s4d_discretize_cpu(const S4DInputs& in, const KernelShape& s, Discretization disc, Tensor& dA,
                        Tensor& dB) {
  dispatch_floating(in.log_dt.dtype(), "s4d_discretize_cpu",
                    [&](auto zero) { s4d_discretize<decltype(zero)>(in, s, disc, dA, dB); });
}

void dplr_cauchy_fwd_cpu(const DplrInputs& in, const KernelShape& s, Tensor& K_hat) {
  dispatch_floating(in.log_dt.dtype(), "dplr_cauchy_fwd_cpu",
                    [&](auto zero) { dplr_fwd<decltype(zero)>(in, s, K_hat); });
}

void dplr_cauchy_bwd_cpu(const DplrInputs& in, const KernelShape& s, const Tensor& grad_K_hat,
                         DplrGrads& grads) {
  dispatch_floating(in.log_dt.dtype(), "dplr_cauchy_bwd_cpu",
                    [&](auto zero) { dplr_bwd<decltype(zero)>(in, s, grad_K_hat, grads); });
}

} // namespace ssm::s4
