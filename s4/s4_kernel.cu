// s4_kernel.cu: the S4D and DPLR kernel generators on CUDA tensors, forward and backward. The
// math and the buffers are in s4_kernel.h, the backwards' derivations in s4_kernel_cpu.cpp,
// whose loops these kernels are checked against (tests/test_cuda_s4_kernel.cpp). The DPLR op's
// FFTs (irfft forward, rfft of the gradient backward) are s4/fft.h's cuFFT calls, made by the
// autograd op (s4_kernel_op.cpp); the kernels here compute the Cauchy step on either side.
//
// ---- S4D ---------------------------------------------------------------------------------
// forward, two kernels:
//   s4d_prepare_kernel   one thread per (h, n): dt = exp(log_dt[h]), the discretisation,
//                        W = C dB and log dA into two (H, N2, 2) scratch buffers.
//   s4d_forward_kernel   one thread per (h, l):  K[h, l] = 2 sum_n Re(W_n exp(l log dA_n)),
//                        n ascending as the CPU loop. Consecutive threads share h, so the
//                        warp reads the same W_n, log dA_n (one broadcast transaction).
// backward, one kernel and a sum:
//   s4d_backward_kernel  one block per (h, n): its threads split l = tid, tid + blockDim, ...
//                        and accumulate S = sum_l gK_l dA^l and U = sum_l gK_l l dA^l, reduced
//                        over the block (warp butterflies, then the warps' partials in order);
//                        thread 0 forms the gradients of A, B, C at (h, n) and the state's
//                        term of dL/d log_dt, written to an (H, N2) scratch buffer
//   sum over n           of that buffer (tensor/ops.h sum): dL/d log_dt (H).
// ---- DPLR --------------------------------------------------------------------------------
//   dplr_cauchy_forward_kernel   one thread per (h, k): the four Cauchy sums r_ab over the
//                                states (n ascending), then K^_k.
//   dplr_node_adjoint_kernel     backward step 2, one thread per (h, k): the sums again and the
//                                adjoints gr_ab (H, nodes, 4, 2) scratch.
//   dplr_state_backward_kernel   backward steps 3 and 4, one block per (h, n): its threads
//                                split the nodes and accumulate alpha_ab, gLambda and the dt
//                                sum (12 numbers), reduced over the block as above; thread 0
//                                writes the gradients of Lambda, P, B, C at (h, n) and the dt
//                                term to an (H, N2) scratch buffer, summed over n after.
// The nodes z_k come from one table made on the host by dplr_node (as the CPU loop's).
//
// Launch shapes: one-thread-per-item kernels use blocks of 256 threads, a 1-D grid of at most
// kMaxBlocks blocks, grid-stride over the items; the per-(h, n) reductions use blocks of
// kReduceThreads threads, grid-stride over the (h, n) pairs. Every offset is 64-bit. No atomics:
// every sum has a fixed order, results repeat bit for bit.
//
// ---- Precision ---------------------------------------------------------------------------
// As the CPU loops (s4_kernel.h, "Precision"): S4D computes the powers' exp, sin and cos in the
// element type and everything else in double; DPLR computes everything in double. Against the
// CPU, results differ by the order of the backward's sums over l or the nodes (strided, then a
// tree), by nvcc's fused multiply-adds, by the complex reciprocal (here conj(b) / |b|^2,
// std::complex's division is scaled) and by an ulp or so of exp, sin and cos: ~1e-14 relative
// in float64; in float32, a few ulps of each S4D power (log dA is the same float32 number on
// both sides, so nothing is amplified by l) and the final rounding.
#include <cstdint>
#include <vector>

#include "cuda/check.h"
#include "cuda/runtime.h"
#include "s4/s4_kernel.h"
#include "tensor/ops.h"

namespace ssm::s4 {

namespace {

constexpr int kThreads = 256;       // one-thread-per-item kernels
constexpr int kReduceThreads = 128; // the per-(h, n) reductions
constexpr int kWarpSize = 32;
constexpr unsigned kFullMask = 0xffffffffu;
constexpr int64_t kMaxBlocks = 65535;

// ---- scalar math, in the element type ----

__device__ __forceinline__ float exp_of(float x) { return ::expf(x); }
__device__ __forceinline__ double exp_of(double x) { return ::exp(x); }
__device__ __forceinline__ void sincos_of(float x, float* s, float* c) { ::sincosf(x, s, c); }
__device__ __forceinline__ void sincos_of(double x, double* s, double* c) { ::sincos(x, s, c); }

// ---- complex numbers, with std::complex's meaning ----

template <typename T>
struct Cplx {
  T re, im;
};

template <typename T>
__device__ __forceinline__ Cplx<T> operator+(Cplx<T> a, Cplx<T> b) {
  return {a.re + b.re, a.im + b.im};
}
template <typename T>
__device__ __forceinline__ Cplx<T> operator-(Cplx<T> a, Cplx<T> b) {
  return {a.re - b.re, a.im - b.im};
}
template <typename T>
__device__ __forceinline__ Cplx<T> operator-(Cplx<T> a) {
  return {-a.re, -a.im};
}
template <typename T>
__device__ __forceinline__ Cplx<T> operator*(Cplx<T> a, Cplx<T> b) {
  return {a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re};
}
template <typename T>
__device__ __forceinline__ Cplx<T> operator*(T s, Cplx<T> a) {
  return {s * a.re, s * a.im};
}
template <typename T>
__device__ __forceinline__ Cplx<T> operator+(T s, Cplx<T> a) {
  return {s + a.re, a.im};
}
template <typename T>
__device__ __forceinline__ Cplx<T> operator-(T s, Cplx<T> a) {
  return {s - a.re, -a.im};
}
template <typename T>
__device__ __forceinline__ Cplx<T>& operator+=(Cplx<T>& a, Cplx<T> b) {
  a.re += b.re;
  a.im += b.im;
  return a;
}
template <typename T>
__device__ __forceinline__ Cplx<T> conj(Cplx<T> a) {
  return {a.re, -a.im};
}
template <typename T>
__device__ __forceinline__ T norm(Cplx<T> a) {
  return a.re * a.re + a.im * a.im;
}
// 1 / b = conj(b) / |b|^2.
template <typename T>
__device__ __forceinline__ Cplx<T> reciprocal(Cplx<T> b) {
  const T inv = T(1) / norm(b);
  return {b.re * inv, -b.im * inv};
}
template <typename T>
__device__ __forceinline__ Cplx<T> operator/(Cplx<T> a, Cplx<T> b) {
  return a * reciprocal(b);
}
template <typename T>
__device__ __forceinline__ Cplx<T> exp_c(Cplx<T> x) {
  T s, c;
  sincos_of(x.im, &s, &c);
  const T m = exp_of(x.re);
  return {m * c, m * s};
}
// exp(x) - 1 and log(1 + x) in double, written to keep their precision near 0 (as the CPU
// loop's; they are used by the per-state discretisation only).
__device__ __forceinline__ Cplx<double> expm1_c(Cplx<double> x) {
  double s, c, s_half, c_half;
  ::sincos(x.im, &s, &c);
  ::sincos(x.im / 2, &s_half, &c_half);
  return {::expm1(x.re) * c - 2 * s_half * s_half, ::exp(x.re) * s};
}
__device__ __forceinline__ Cplx<double> log1p_c(Cplx<double> x) {
  return {::log1p(x.re * (2 + x.re) + x.im * x.im) / 2, ::atan2(x.im, 1 + x.re)};
}

template <typename T>
__device__ __forceinline__ Cplx<T> load(const T* p, int64_t i) {
  return {p[2 * i], p[2 * i + 1]};
}
template <typename T, typename S>
__device__ __forceinline__ void store(T* p, int64_t i, Cplx<S> v) {
  p[2 * i] = static_cast<T>(v.re);
  p[2 * i + 1] = static_cast<T>(v.im);
}
// Between the element type and double.
template <typename T>
__device__ __forceinline__ Cplx<double> widen(Cplx<T> x) {
  return {static_cast<double>(x.re), static_cast<double>(x.im)};
}
template <typename T>
__device__ __forceinline__ Cplx<T> narrow(Cplx<double> x) {
  return {static_cast<T>(x.re), static_cast<T>(x.im)};
}

using Cd = Cplx<double>;

// ---- the discretisation of one diagonal state, in double (the CPU loop's `discretize`) ----

struct DiagonalStep {
  Cd log_dA, F;
  Cd dlog_da, dlog_ddt, dF_da, dF_ddt;
};

__device__ DiagonalStep discretize(Cd a, double dt, bool zoh) {
  DiagonalStep st;
  if (zoh) {
    const Cd x = dt * a;
    const Cd em1 = expm1_c(x); // dA - 1
    const Cd dA = 1.0 + em1;
    st.log_dA = x;
    st.F = em1 / a;
    st.dlog_da = {dt, 0.0};
    st.dlog_ddt = a;
    st.dF_da = (dt * dA - st.F) / a;
    st.dF_ddt = dA;
  } else {
    const Cd h = (dt / 2) * a;
    const Cd q = reciprocal(1.0 - h); // 1 / (1 - dt a/2)
    const Cd inv_1mh2 = reciprocal(1.0 - h * h);
    st.log_dA = log1p_c(h) - log1p_c(-h);
    st.F = dt * q;
    st.dlog_da = dt * inv_1mh2;
    st.dlog_ddt = a * inv_1mh2;
    st.dF_da = (dt * dt / 2) * (q * q);
    st.dF_ddt = q * q;
  }
  return st;
}

// ---- block reduction of a few values ----

// Sums v[0 .. kValues-1] over the block (kBlock threads): a butterfly in each warp, then the
// warps' partials added in warp order by thread 0, which alone holds the result. Every thread
// of the block must call it; it ends with a barrier so the next call may reuse the partials.
template <int kValues, int kBlock>
__device__ void block_sum(double (&v)[kValues]) {
  static_assert(kBlock % kWarpSize == 0, "a block is made of whole warps");
  constexpr int kWarps = kBlock / kWarpSize;
  __shared__ double partials[kWarps][kValues];
#pragma unroll
  for (int j = 0; j < kValues; ++j)
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
      v[j] += __shfl_xor_sync(kFullMask, v[j], offset);
  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  if (lane == 0)
#pragma unroll
    for (int j = 0; j < kValues; ++j) partials[warp][j] = v[j];
  __syncthreads();
  if (threadIdx.x == 0)
#pragma unroll
    for (int j = 0; j < kValues; ++j) {
      double acc = partials[0][j];
      for (int w = 1; w < kWarps; ++w) acc += partials[w][j];
      v[j] = acc;
    }
  __syncthreads();
}

// ---- S4D kernels ----

template <typename T>
struct S4DArgs {
  const T* log_dt; // (H)
  const T* A;      // (H, N2, 2)
  const T* B;      // (H, N2, 2)
  const T* C;      // (H, N2, 2)
  int64_t H, N2, L;
  bool zoh;
};

// W = C dB (double) and log dA (rounded to T) per (h, n).
template <typename T>
__global__ void s4d_prepare_kernel(S4DArgs<T> a, double* W, T* log_dA) {
  const int64_t items = a.H * a.N2;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < items;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const double dt = ::exp(static_cast<double>(a.log_dt[i / a.N2]));
    const DiagonalStep st = discretize(widen(load(a.A, i)), dt, a.zoh);
    store(W, i, widen(load(a.C, i)) * st.F * widen(load(a.B, i)));
    store(log_dA, i, st.log_dA);
  }
}

// K[h, l] = 2 sum_n Re(W_n exp(l log dA_n)): the power in T, the product and the sum in double.
template <typename T>
__global__ void s4d_forward_kernel(const double* W, const T* log_dA, int64_t H, int64_t N2,
                                   int64_t L, T* K) {
  const int64_t items = H * L;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < items;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t h = i / L;
    const T l = static_cast<T>(i % L);
    const double* W_h = W + 2 * h * N2;
    const T* lz_h = log_dA + 2 * h * N2;
    double acc = 0;
    for (int64_t n = 0; n < N2; ++n) acc += (load(W_h, n) * widen(exp_c(l * load(lz_h, n)))).re;
    K[i] = static_cast<T>(2 * acc);
  }
}

// One block per (h, n): the gradients of A, B, C at (h, n) and the state's term of
// dL/d log_dt (s4_kernel_cpu.cpp, "S4D backward").
template <typename T>
__global__ void __launch_bounds__(kReduceThreads)
    s4d_backward_kernel(S4DArgs<T> a, const T* gK, T* gA, T* gB, T* gC, double* log_dt_part) {
  const int64_t units = a.H * a.N2;
  for (int64_t i = blockIdx.x; i < units; i += gridDim.x) { // the same for the whole block
    const int64_t h = i / a.N2;
    const double dt = ::exp(static_cast<double>(a.log_dt[h]));
    const DiagonalStep st = discretize(widen(load(a.A, i)), dt, a.zoh);
    const Cplx<T> log_dA = narrow<T>(st.log_dA);
    const T* gK_h = gK + h * a.L;
    double sums[4] = {0, 0, 0, 0}; // S (re, im), U (re, im)
    for (int64_t l = threadIdx.x; l < a.L; l += kReduceThreads) {
      const Cd term = static_cast<double>(gK_h[l]) * widen(exp_c(static_cast<T>(l) * log_dA));
      sums[0] += term.re;
      sums[1] += term.im;
      sums[2] += static_cast<double>(l) * term.re;
      sums[3] += static_cast<double>(l) * term.im;
    }
    block_sum<4, kReduceThreads>(sums);
    if (threadIdx.x == 0) {
      const Cd S{sums[0], sums[1]}, U{sums[2], sums[3]};
      const Cd b = widen(load(a.B, i)), c = widen(load(a.C, i));
      const Cd W = c * st.F * b;
      const Cd gW = 2.0 * S, glz = 2.0 * (W * U);
      const Cd gF = gW * c * b;
      if (gC) store(gC, i, conj(gW * st.F * b));
      if (gB) store(gB, i, conj(gW * c * st.F));
      if (gA) store(gA, i, conj(gF * st.dF_da + glz * st.dlog_da));
      log_dt_part[i] = dt * (gF * st.dF_ddt + glz * st.dlog_ddt).re;
    }
  }
}

// ---- DPLR kernels ----

template <typename T>
struct DplrArgs {
  const T* log_dt;     // (H)
  const T* Lambda;     // (H, N2, 2)
  const T* P;          // (H, N2, 2)
  const T* B;          // (H, N2, 2)
  const T* C;          // (H, N2, 2), C~
  const double* nodes; // (nodes, 2): z_k
  int64_t H, N2, L, n_nodes;
};

// One node of one channel: z, w = 1 + z and c = (2/dt)(1 - z).
struct Node {
  Cd z, w, c;
};
template <typename T>
__device__ __forceinline__ Node node_of(const DplrArgs<T>& a, int64_t k, double dt) {
  Node nd;
  nd.z = load(a.nodes, k);
  nd.w = 1.0 + nd.z;
  nd.c = (2 / dt) * (1.0 - nd.z);
  return nd;
}

// v_ab of state i: C B, C P, conj(P) B, conj(P) P.
template <typename T>
__device__ __forceinline__ void state_terms(const DplrArgs<T>& a, int64_t i, Cd (&v)[4]) {
  const Cd p = widen(load(a.P, i)), b = widen(load(a.B, i)), c = widen(load(a.C, i));
  v[0] = c * b;
  v[1] = c * p;
  v[2] = conj(p) * b;
  v[3] = conj(p) * p;
}

// 1 / d and 1 / d' of one (node, state).
__device__ __forceinline__ void reciprocals(const Node& nd, Cd lambda, Cd& inv_d, Cd& inv_dc) {
  inv_d = reciprocal(nd.c - nd.w * lambda);
  inv_dc = reciprocal(nd.c - nd.w * conj(lambda));
}

// r_ab at node nd of channel h, states in ascending order.
template <typename T>
__device__ void cauchy_sums(const DplrArgs<T>& a, int64_t h, const Node& nd, Cd (&r)[4]) {
  for (int ab = 0; ab < 4; ++ab) r[ab] = {0.0, 0.0};
  for (int64_t n = 0; n < a.N2; ++n) {
    const int64_t i = h * a.N2 + n;
    Cd v[4], inv_d, inv_dc;
    state_terms(a, i, v);
    reciprocals(nd, widen(load(a.Lambda, i)), inv_d, inv_dc);
#pragma unroll
    for (int ab = 0; ab < 4; ++ab) r[ab] += v[ab] * inv_d + conj(v[ab]) * inv_dc;
  }
}

// K^_k = 2 [r00 - w r01 r10 / (1 + w r11)] per (h, k).
template <typename T>
__global__ void dplr_cauchy_forward_kernel(DplrArgs<T> a, T* K_hat) {
  const int64_t items = a.H * a.n_nodes;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < items;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t h = i / a.n_nodes, k = i % a.n_nodes;
    const Node nd = node_of(a, k, ::exp(static_cast<double>(a.log_dt[h])));
    Cd r[4];
    cauchy_sums(a, h, nd, r);
    store(K_hat, i, 2.0 * (r[0] - nd.w * r[1] * r[2] / (1.0 + nd.w * r[3])));
  }
}

// Backward step 2 per (h, k): gr (H, nodes, 4, 2) in double, from the gradient tensor of K^.
template <typename T>
__global__ void dplr_node_adjoint_kernel(DplrArgs<T> a, const T* gK_hat, double* gr) {
  const int64_t items = a.H * a.n_nodes;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < items;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t h = i / a.n_nodes, k = i % a.n_nodes;
    const Node nd = node_of(a, k, ::exp(static_cast<double>(a.log_dt[h])));
    Cd r[4];
    cauchy_sums(a, h, nd, r);
    const Cd g = conj(widen(load(gK_hat, i)));
    const Cd w = nd.w, inv_s = reciprocal(1.0 + w * r[3]);
    store(gr, 4 * i + 0, 2.0 * g);
    store(gr, 4 * i + 1, -2.0 * (g * w * r[2] * inv_s));
    store(gr, 4 * i + 2, -2.0 * (g * w * r[1] * inv_s));
    store(gr, 4 * i + 3, 2.0 * (g * w * w * r[1] * r[2] * inv_s * inv_s));
  }
}

// Backward steps 3 and 4, one block per (h, n).
template <typename T>
__global__ void __launch_bounds__(kReduceThreads)
    dplr_state_backward_kernel(DplrArgs<T> a, const double* gr, T* gLambda, T* gP, T* gB, T* gC,
                               double* log_dt_part) {
  const int64_t units = a.H * a.N2;
  for (int64_t i = blockIdx.x; i < units; i += gridDim.x) { // the same for the whole block
    const int64_t h = i / a.N2;
    const double dt = ::exp(static_cast<double>(a.log_dt[h]));
    const Cd lambda = widen(load(a.Lambda, i));
    Cd v[4];
    state_terms(a, i, v);
    // alpha_ab (8 numbers), gLambda (2), the dt sum (2).
    double sums[12];
#pragma unroll
    for (int j = 0; j < 12; ++j) sums[j] = 0;
    const double* gr_h = gr + 2 * 4 * h * a.n_nodes;
    for (int64_t k = threadIdx.x; k < a.n_nodes; k += kReduceThreads) {
      const Node nd = node_of(a, k, dt);
      Cd inv_d, inv_dc;
      reciprocals(nd, lambda, inv_d, inv_dc);
      Cd E{0.0, 0.0}, Ec{0.0, 0.0};
#pragma unroll
      for (int ab = 0; ab < 4; ++ab) {
        const Cd g = load(gr_h, 4 * k + ab);
        const Cd alpha = g * inv_d + conj(g * inv_dc);
        sums[2 * ab] += alpha.re;
        sums[2 * ab + 1] += alpha.im;
        E += g * v[ab];
        Ec += conj(g) * v[ab];
      }
      const Cd inv_d2 = inv_d * inv_d, inv_dc2 = inv_dc * inv_dc;
      const Cd one_minus_z = 1.0 - nd.z;
      const Cd g_lambda = E * nd.w * inv_d2 + Ec * conj(nd.w * inv_dc2);
      const Cd g_dt = E * one_minus_z * inv_d2 + Ec * conj(one_minus_z * inv_dc2);
      sums[8] += g_lambda.re;
      sums[9] += g_lambda.im;
      sums[10] += g_dt.re;
      sums[11] += g_dt.im;
    }
    block_sum<12, kReduceThreads>(sums);
    if (threadIdx.x == 0) {
      const Cd alpha[4] = {
          {sums[0], sums[1]}, {sums[2], sums[3]}, {sums[4], sums[5]}, {sums[6], sums[7]}};
      const Cd p = widen(load(a.P, i)), b = widen(load(a.B, i)), c = widen(load(a.C, i));
      if (gC) store(gC, i, conj(alpha[0] * b + alpha[1] * p));
      if (gB) store(gB, i, conj(alpha[0] * c + alpha[2] * conj(p)));
      if (gP)
        store(gP, i,
              conj(alpha[1] * c + conj(alpha[2] * b) + conj(alpha[3] * p) + alpha[3] * conj(p)));
      if (gLambda) store(gLambda, i, Cd{sums[8], -sums[9]});
      log_dt_part[i] = 2 / dt * sums[10]; // dt dL/d dt = dt (2 / dt^2) Re(sum)
    }
  }
}

// ---- host side ---------------------------------------------------------------------------

// kernel<<<grid, block, 0, stream>>>(args...), checked.
template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), int64_t grid, int block, cudaStream_t stream, Args... args) {
  kernel<<<static_cast<int>(grid), block, 0, stream>>>(args...);
  SSM_CUDA_CHECK(cudaGetLastError());
}

// Blocks for `items` items at `per_block` each: at least 1, at most kMaxBlocks.
int64_t grid_for(int64_t items, int64_t per_block) {
  const int64_t blocks = (items + per_block - 1) / per_block;
  return blocks < 1 ? 1 : (blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

template <typename T>
T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// dst (H) = sum over n of part (H, N2) (float64), rounded to dst's dtype, when dst is defined.
void sum_states_into(const Tensor& part, Tensor& dst) {
  if (dst.defined()) dst.copy_(sum(part, {1}));
}

template <typename T>
S4DArgs<T> s4d_args(const S4DInputs& in, const KernelShape& s, Discretization disc) {
  return {in.log_dt.data<T>(), in.A.data<T>(), in.B.data<T>(), in.C.data<T>(),
          s.channels,          s.half_states,  s.length,       disc == Discretization::ZOH};
}

template <typename T>
void s4d_forward(const S4DInputs& in, const KernelShape& s, Discretization disc, Tensor& K) {
  const S4DArgs<T> a = s4d_args<T>(in, s, disc);
  const Device device = in.log_dt.device();
  const cudaStream_t stream = cuda::stream(device.index);
  const Tensor W = Tensor::empty(in.A.shape(), DType::Float64, device);    // (H, N2, 2)
  const Tensor log_dA = Tensor::empty(in.A.shape(), in.A.dtype(), device); // (H, N2, 2)
  const int64_t states = s.channels * s.half_states;
  if (states > 0)
    launch(s4d_prepare_kernel<T>, grid_for(states, kThreads), kThreads, stream, a, W.data<double>(),
           log_dA.data<T>());
  const int64_t outputs = s.channels * s.length;
  if (outputs > 0)
    launch(s4d_forward_kernel<T>, grid_for(outputs, kThreads), kThreads, stream,
           static_cast<const double*>(W.data<double>()), static_cast<const T*>(log_dA.data<T>()),
           s.channels, s.half_states, s.length, K.data<T>());
}

template <typename T>
void s4d_backward(const S4DInputs& in, const KernelShape& s, Discretization disc,
                  const Tensor& grad_K, S4DGrads& grads) {
  const S4DArgs<T> a = s4d_args<T>(in, s, disc);
  const Device device = in.log_dt.device();
  const cudaStream_t stream = cuda::stream(device.index);
  const Tensor log_dt_part =
      Tensor::empty({s.channels, s.half_states}, DType::Float64, device); // (H, N2)
  const int64_t units = s.channels * s.half_states;
  if (units > 0)
    launch(s4d_backward_kernel<T>, grid_for(units, 1), kReduceThreads, stream, a,
           static_cast<const T*>(grad_K.data<T>()), data_or_null<T>(grads.A),
           data_or_null<T>(grads.B), data_or_null<T>(grads.C), log_dt_part.data<double>());
  sum_states_into(log_dt_part, grads.log_dt);
}

template <typename T>
DplrArgs<T> dplr_args(const DplrInputs& in, const KernelShape& s, const Tensor& nodes) {
  return {in.log_dt.data<T>(),  in.Lambda.data<T>(), in.P.data<T>(), in.B.data<T>(), in.C.data<T>(),
          nodes.data<double>(), s.channels,          s.half_states,  s.length,       s.nodes()};
}

// The nodes z_k (nodes, 2) in float64 on the inputs' device, from dplr_node (as the CPU loop).
Tensor node_table(const KernelShape& s, Device device) {
  std::vector<double> z(2 * s.nodes());
  for (int64_t k = 0; k < s.nodes(); ++k) {
    const std::complex<double> node = dplr_node(k, s.length);
    z[2 * k] = node.real();
    z[2 * k + 1] = node.imag();
  }
  return Tensor::from_values(z, {s.nodes(), 2}, DType::Float64, device);
}

template <typename T>
void dplr_forward(const DplrInputs& in, const KernelShape& s, Tensor& K_hat) {
  const Tensor nodes = node_table(s, in.log_dt.device());
  const DplrArgs<T> a = dplr_args<T>(in, s, nodes);
  const cudaStream_t stream = cuda::stream(in.log_dt.device().index);
  const int64_t items = s.channels * s.nodes();
  if (items > 0)
    launch(dplr_cauchy_forward_kernel<T>, grid_for(items, kThreads), kThreads, stream, a,
           K_hat.data<T>());
}

template <typename T>
void dplr_backward(const DplrInputs& in, const KernelShape& s, const Tensor& grad_K_hat,
                   DplrGrads& grads) {
  const Device device = in.log_dt.device();
  const Tensor nodes = node_table(s, device);
  const DplrArgs<T> a = dplr_args<T>(in, s, nodes);
  const cudaStream_t stream = cuda::stream(device.index);
  const Tensor gr = Tensor::empty({s.channels, s.nodes(), 4, 2}, DType::Float64, device);
  const Tensor log_dt_part = Tensor::empty({s.channels, s.half_states}, DType::Float64, device);
  const int64_t items = s.channels * s.nodes();
  if (items > 0)
    launch(dplr_node_adjoint_kernel<T>, grid_for(items, kThreads), kThreads, stream, a,
           static_cast<const T*>(grad_K_hat.data<T>()), gr.data<double>());
  const int64_t units = s.channels * s.half_states;
  if (units > 0)
    launch(dplr_state_backward_kernel<T>, grid_for(units, 1), kReduceThreads, stream, a,
           static_cast<const double*>(gr.data<double>()), data_or_null<T>(grads.Lambda),
           data_or_null<T>(grads.P), data_or_null<T>(grads.B), data_or_null<T>(grads.C),
           log_dt_part.data<double>());
  sum_states_into(log_dt_part, grads.log_dt);
}

} // namespace

void s4d_kernel_fwd_cuda(const S4DInputs& in, const KernelShape& s, Discretization disc,
                         Tensor& K) {
  dispatch_floating(in.log_dt.dtype(), "s4d_kernel_fwd_cuda",
                    [&](auto zero) { s4d_forward<decltype(zero)>(in, s, disc, K); });
}

void s4d_kernel_bwd_cuda(const S4DInputs& in, const KernelShape& s, Discretization disc,
                         const Tensor& grad_K, S4DGrads& grads) {
  dispatch_floating(in.log_dt.dtype(), "s4d_kernel_bwd_cuda",
                    [&](auto zero) { s4d_backward<decltype(zero)>(in, s, disc, grad_K, grads); });
}

void dplr_cauchy_fwd_cuda(const DplrInputs& in, const KernelShape& s, Tensor& K_hat) {
  dispatch_floating(in.log_dt.dtype(), "dplr_cauchy_fwd_cuda",
                    [&](auto zero) { dplr_forward<decltype(zero)>(in, s, K_hat); });
}

void dplr_cauchy_bwd_cuda(const DplrInputs& in, const KernelShape& s, const Tensor& grad_K_hat,
                          DplrGrads& grads) {
  dispatch_floating(in.log_dt.dtype(), "dplr_cauchy_bwd_cuda",
                    [&](auto zero) { dplr_backward<decltype(zero)>(in, s, grad_K_hat, grads); });
}

} // namespace ssm::s4
