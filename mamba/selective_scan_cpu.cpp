// selective_scan_cpu.cpp: the CPU reference loops of the selective scan, forward and
// backward, and the shape checks shared with the CUDA kernels. The math, the layout and the
// buffers are in selective_scan.h; here is the backward, derived by hand.
//
// ---- Forward, for one (batch b, channel d), group g = d / (d_inner / groups) -------------
//   x_t     = delta[t] + delta_bias                       (scalar)
//   dt_t    = softplus(x_t)  or  x_t                        (scalar)
//   a_t[k]  = exp(dt_t A[k])                                (k < n)
//   h_t[k]  = a_t[k] h_{t-1}[k] + dt_t B_t[k] u_t,   h_0 = 0
//   y_t     = sum_k C_t[k] h_t[k] + D u_t
//   out_t   = y_t silu(z_t)   or  y_t
//
// ---- Backward --------------------------------------------------------------------------
// Given go_t = dL/dout_t and gH = dL/dh_L (zero when last_state is not used):
//   gate:   gy_t = go_t silu(z_t),
//           gz_t = go_t y_t silu'(z_t),  silu'(z) = s (1 + z (1 - s)),  s = sigmoid(z)
//   skip:   gD  += gy_t u_t,   gu_t += gy_t D
//   output: gC_t[k] = gy_t h_t[k]
// The state h_t feeds y_t and h_{t+1}, so its total gradient gh_t obeys a recursion that
// runs backward in time (the adjoint scan, itself a linear recurrence like the forward):
//           gh_L[k]     = gH[k] + gy_L C_L[k]
//           gh_t[k]     = a_{t+1}[k] gh_{t+1}[k] + gy_t C_t[k]        (t < L)
// and through h_t = a_t h_{t-1} + dt_t B_t u_t, with d a_t / d dt_t = A a_t and
// d a_t / d A = dt_t a_t:
//           gdt_t      = sum_k gh_t[k] (A[k] a_t[k] h_{t-1}[k] + B_t[k] u_t)
//           gA[k]     += gh_t[k] dt_t a_t[k] h_{t-1}[k]
//           gB_t[k]   += gh_t[k] dt_t u_t
//           gu_t      += sum_k gh_t[k] dt_t B_t[k]
//   input:  gx_t = gdt_t softplus'(x_t) = gdt_t sigmoid(x_t)   (gdt_t when x_t > 20, where
//           PyTorch's softplus is the identity; gdt_t without softplus)
//           gdelta_t = gx_t,   gdelta_bias += gx_t
// Sums: gA, gD and gdelta_bias add over batch and time; gB and gC add over the channels of
// a group.
//
// ---- The loops ---------------------------------------------------------------------------
// Forward: one independent recurrence per (b, d), parallel over b * d_inner, the n states in
// a small array. Backward: h_{t-1} is needed going backward in time, so each channel first
// reruns its forward and keeps every state (length * n numbers, the CPU can afford it; the
// CUDA kernels keep only chunk boundaries), then walks t = L-1 .. 0. Work is parallel over
// (b, group) so that each gB/gC element is written by one piece in a fixed order, and gA, gD,
// gdelta_bias are accumulated per batch element and summed over the batch at the end: the
// result has the same bits for every thread count.
#include <cmath>
#include <string>
#include <vector>

#include "mamba/selective_scan.h"
#include "tensor/cpu/parallel.h"
#include "tensor/ops.h"

namespace ssm {

// ---- shape checks --------------------------------------------------------------------------

ScanShape make_scan_shape(const char* op, const ScanInputs& in, bool delta_softplus) {
  auto fail = [&](const std::string& what) {
    throw std::invalid_argument(std::string(op) + ": " + what);
  };
  if (!in.u.defined()) fail("u is undefined");
  if (!in.delta.defined()) fail("delta is undefined");
  if (!in.A.defined()) fail("A is undefined");
  if (!in.B.defined()) fail("B is undefined");
  if (!in.C.defined()) fail("C is undefined");
  check_floating(in.u, op);
  for (const Tensor* t : {&in.delta, &in.A, &in.B, &in.C, &in.D, &in.z, &in.delta_bias})
    if (t->defined()) check_same_dtype_device(in.u, *t, op);

  ScanShape s;
  if (in.u.dim() != 3) fail("u must be (batch, length, d_inner), got " + shape_str(in.u.shape()));
  s.batch = in.u.size(0);
  s.length = in.u.size(1);
  s.d_inner = in.u.size(2);
  if (in.delta.shape() != in.u.shape())
    fail("delta must have u's shape " + shape_str(in.u.shape()) + ", got " +
         shape_str(in.delta.shape()));
  if (in.A.dim() != 2 || in.A.size(0) != s.d_inner)
    fail("A must be (d_inner = " + std::to_string(s.d_inner) + ", n), got " +
         shape_str(in.A.shape()));
  s.d_state = in.A.size(1);
  if (s.d_state < 1) fail("A has n = 0 states");

  const Shape bc3{s.batch, s.length, s.d_state};
  auto check_bc = [&](const Tensor& t, const char* name) -> int64_t {
    if (t.shape() == bc3) return 1;
    if (t.dim() == 4 && t.size(0) == s.batch && t.size(1) == s.length && t.size(3) == s.d_state)
      return t.size(2);
    fail(std::string(name) + " must be (batch, length, n) = " + shape_str(bc3) +
         " or (batch, length, groups, n), got " + shape_str(t.shape()));
    return 0;
  };
  s.groups = check_bc(in.B, "B");
  const int64_t c_groups = check_bc(in.C, "C");
  if (c_groups != s.groups)
    fail("B has " + std::to_string(s.groups) + " groups but C has " + std::to_string(c_groups));
  if (s.groups < 1 || s.d_inner % s.groups != 0)
    fail("d_inner " + std::to_string(s.d_inner) + " is not divisible by groups " +
         std::to_string(s.groups));

  const Shape per_channel{s.d_inner};
  if (in.D.defined() && in.D.shape() != per_channel)
    fail("D must be (d_inner) = " + shape_str(per_channel) + ", got " + shape_str(in.D.shape()));
  if (in.delta_bias.defined() && in.delta_bias.shape() != per_channel)
    fail("delta_bias must be (d_inner) = " + shape_str(per_channel) + ", got " +
         shape_str(in.delta_bias.shape()));
  if (in.z.defined() && in.z.shape() != in.u.shape())
    fail("z must have u's shape " + shape_str(in.u.shape()) + ", got " + shape_str(in.z.shape()));
  s.has_D = in.D.defined();
  s.has_z = in.z.defined();
  s.has_delta_bias = in.delta_bias.defined();
  s.delta_softplus = delta_softplus;
  return s;
}

namespace {

// ---- scalar pieces shared by forward and backward ------------------------------------------

// PyTorch's softplus (beta 1, threshold 20) and its derivative.
template <typename T>
T softplus_of(T x) {
  return x > T(20) ? x : std::log1p(std::exp(x));
}
template <typename T>
T softplus_grad(T x) {
  return x > T(20) ? T(1) : T(1) / (T(1) + std::exp(-x));
}
template <typename T>
T sigmoid_of(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

// Raw pointers into the inputs and the index arithmetic of the (batch, length, ...) buffers.
template <typename T>
struct ScanView {
  const T *u, *delta, *A, *B, *C, *D, *z, *delta_bias;
  const ScanShape& s;

  explicit ScanView(const ScanInputs& in, const ScanShape& shape)
      : u(in.u.data<T>()),
        delta(in.delta.data<T>()),
        A(in.A.data<T>()),
        B(in.B.data<T>()),
        C(in.C.data<T>()),
        D(shape.has_D ? in.D.data<T>() : nullptr),
        z(shape.has_z ? in.z.data<T>() : nullptr),
        delta_bias(shape.has_delta_bias ? in.delta_bias.data<T>() : nullptr),
        s(shape) {}

  // Offset of (b, t, d) in a (batch, length, d_inner) buffer.
  int64_t btd(int64_t b, int64_t t, int64_t d) const { return (b * s.length + t) * s.d_inner + d; }
  // Offset of (b, t, g, 0) in a (batch, length, groups, n) buffer.
  int64_t btg(int64_t b, int64_t t, int64_t g) const {
    return ((b * s.length + t) * s.groups + g) * s.d_state;
  }
  // x_t = delta + delta_bias, the softplus argument.
  T x_of(int64_t i, int64_t d) const { return delta[i] + (delta_bias ? delta_bias[d] : T(0)); }
  T dt_of(T x) const { return s.delta_softplus ? softplus_of(x) : x; }
};

// ---- forward ---------------------------------------------------------------------------

template <typename T>
void scan_fwd(const ScanInputs& in, const ScanShape& s, Tensor& out, Tensor& last_state) {
  const ScanView<T> v(in, s);
  T* out_p = out.data<T>();                                          // (b, l, d_inner)
  T* last_p = last_state.defined() ? last_state.data<T>() : nullptr; // (b, d_inner, n)
  const int64_t n = s.d_state;
  const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, s.length * n));
  cpu::parallel_for(0, s.batch * s.d_inner, grain, [&](int64_t lo, int64_t hi) {
    std::vector<T> h(n); // h_t[k] of this channel
    for (int64_t bd = lo; bd < hi; ++bd) {
      const int64_t b = bd / s.d_inner, d = bd % s.d_inner;
      const int64_t g = d / s.channels_per_group();
      const T* A_d = v.A + d * n; // (n)
      std::fill(h.begin(), h.end(), T(0));
      for (int64_t t = 0; t < s.length; ++t) {
        const int64_t i = v.btd(b, t, d);
        const T dt = v.dt_of(v.x_of(i, d));
        const T* B_t = v.B + v.btg(b, t, g); // (n)
        const T* C_t = v.C + v.btg(b, t, g); // (n)
        const T dt_u = dt * v.u[i];
        T y = v.D ? v.D[d] * v.u[i] : T(0);
        for (int64_t k = 0; k < n; ++k) {
          h[k] = std::exp(dt * A_d[k]) * h[k] + dt_u * B_t[k];
          y += C_t[k] * h[k];
        }
        out_p[i] = v.z ? y * v.z[i] * sigmoid_of(v.z[i]) : y;
      }
      if (last_p) std::copy(h.begin(), h.end(), last_p + bd * n);
    }
  });
}

// ---- backward --------------------------------------------------------------------------

template <typename T>
void scan_bwd(const ScanInputs& in, const ScanShape& s, const Tensor& grad_out,
              const Tensor& grad_last_state, ScanGrads& grads) {
  const ScanView<T> v(in, s);
  const int64_t n = s.d_state, L = s.length, per_group = s.channels_per_group();
  const T* go = grad_out.data<T>();                                              // (b, l, d)
  const T* gH = grad_last_state.defined() ? grad_last_state.data<T>() : nullptr; // (b, d, n)
  auto ptr_if = [](Tensor& t) { return t.defined() ? t.data<T>() : nullptr; };
  T* gu = ptr_if(grads.u);         // (b, l, d_inner)
  T* gdelta = ptr_if(grads.delta); // (b, l, d_inner)
  T* gz = ptr_if(grads.z);         // (b, l, d_inner)
  T* gB = ptr_if(grads.B);         // (b, l, groups, n)
  T* gC = ptr_if(grads.C);         // (b, l, groups, n)
  if (gB) grads.B.fill_(0);
  if (gC) grads.C.fill_(0);
  // Per-batch partial sums of the parameters' gradients, added over b at the end in order.
  std::vector<T> gA_b(grads.A.defined() ? s.batch * s.d_inner * n : 0, T(0));         // (b, d, n)
  std::vector<T> gD_b(grads.D.defined() ? s.batch * s.d_inner : 0, T(0));             // (b, d)
  std::vector<T> gbias_b(grads.delta_bias.defined() ? s.batch * s.d_inner : 0, T(0)); // (b, d)

  cpu::parallel_for(0, s.batch * s.groups, 1, [&](int64_t lo, int64_t hi) {
    std::vector<T> hs(L * n); // h_1 .. h_L of one channel, (l, n)
    std::vector<T> gh(n);     // gh_t[k]
    for (int64_t bg = lo; bg < hi; ++bg) {
      const int64_t b = bg / s.groups, g = bg % s.groups;
      for (int64_t d = g * per_group; d < (g + 1) * per_group; ++d) {
        const T* A_d = v.A + d * n;
        // Rerun the forward of channel (b, d), keeping every state.
        for (int64_t t = 0; t < L; ++t) {
          const int64_t i = v.btd(b, t, d);
          const T dt = v.dt_of(v.x_of(i, d));
          const T* B_t = v.B + v.btg(b, t, g);
          const T* h_prev = t > 0 ? &hs[(t - 1) * n] : nullptr;
          for (int64_t k = 0; k < n; ++k)
            hs[t * n + k] =
                (h_prev ? std::exp(dt * A_d[k]) * h_prev[k] : T(0)) + dt * B_t[k] * v.u[i];
        }
        // Walk back in time.
        for (int64_t k = 0; k < n; ++k) gh[k] = gH ? gH[(b * s.d_inner + d) * n + k] : T(0);
        T gD_acc = 0, gbias_acc = 0;
        T* gA_d = gA_b.empty() ? nullptr : &gA_b[(b * s.d_inner + d) * n];
        for (int64_t t = L - 1; t >= 0; --t) {
          const int64_t i = v.btd(b, t, d);
          const T x = v.x_of(i, d);
          const T dt = v.dt_of(x);
          const T u = v.u[i];
          const T* B_t = v.B + v.btg(b, t, g);
          const T* C_t = v.C + v.btg(b, t, g);
          const T* h_t = &hs[t * n];
          const T* h_prev = t > 0 ? &hs[(t - 1) * n] : nullptr;
          // gate
          T gy = go[i];
          if (v.z) {
            T y = v.D ? v.D[d] * u : T(0);
            for (int64_t k = 0; k < n; ++k) y += C_t[k] * h_t[k];
            const T zz = v.z[i], sg = sigmoid_of(zz);
            gy = go[i] * zz * sg;
            if (gz) gz[i] = go[i] * y * sg * (T(1) + zz * (T(1) - sg));
          }
          // skip
          T gu_t = v.D ? gy * v.D[d] : T(0);
          gD_acc += gy * u;
          // state
          T gdt = 0;
          T* gC_t = gC ? gC + v.btg(b, t, g) : nullptr;
          T* gB_t = gB ? gB + v.btg(b, t, g) : nullptr;
          for (int64_t k = 0; k < n; ++k) {
            if (gC_t) gC_t[k] += gy * h_t[k];
            gh[k] += gy * C_t[k]; // gh_t = a_{t+1} gh_{t+1} + gy_t C_t
            const T a = std::exp(dt * A_d[k]);
            const T hp = h_prev ? h_prev[k] : T(0);
            gdt += gh[k] * (A_d[k] * a * hp + B_t[k] * u);
            if (gA_d) gA_d[k] += gh[k] * dt * a * hp;
            if (gB_t) gB_t[k] += gh[k] * dt * u;
            gu_t += gh[k] * dt * B_t[k];
            gh[k] *= a; // becomes a_t gh_t, the carried part of gh_{t-1}
          }
          const T gx = s.delta_softplus ? gdt * softplus_grad(x) : gdt;
          if (gu) gu[i] = gu_t;
          if (gdelta) gdelta[i] = gx;
          gbias_acc += gx;
        }
        if (!gD_b.empty()) gD_b[b * s.d_inner + d] = gD_acc;
        if (!gbias_b.empty()) gbias_b[b * s.d_inner + d] = gbias_acc;
      }
    }
  });

  // Sum the per-batch partials over b.
  auto reduce_batch = [&](const std::vector<T>& partial, Tensor& dst, int64_t per_batch) {
    if (!dst.defined()) return;
    T* p = dst.data<T>();
    for (int64_t j = 0; j < per_batch; ++j) {
      T acc = 0;
      for (int64_t b = 0; b < s.batch; ++b) acc += partial[b * per_batch + j];
      p[j] = acc;
    }
  };
  reduce_batch(gA_b, grads.A, s.d_inner * n);
  reduce_batch(gD_b, grads.D, s.d_inner);
  reduce_batch(gbias_b, grads.delta_bias, s.d_inner);
}

} // namespace

void selective_scan_fwd_cpu(const ScanInputs& in, const ScanShape& s, Tensor& out,
                            Tensor& last_state) {
  if (in.u.dtype() == DType::Float64)
    scan_fwd<double>(in, s, out, last_state);
  else
    scan_fwd<float>(in, s, out, last_state);
}

void selective_scan_bwd_cpu(const ScanInputs& in, const ScanShape& s, const Tensor& grad_out,
                            const Tensor& grad_last_state, ScanGrads& grads) {
  if (in.u.dtype() == DType::Float64)
    scan_bwd<double>(in, s, grad_out, grad_last_state, grads);
  else
    scan_bwd<float>(in, s, grad_out, grad_last_state, grads);
}

} // namespace ssm
