// selective_scan.cu: the selective scan on CUDA tensors, forward and backward. The math, the
// layout and the buffers are in selective_scan.h; the backward's derivation is in
// selective_scan_cpu.cpp, whose loops these kernels are checked against
// (tests/test_cuda_selective_scan.cpp).
//
// ---- The idea: a linear recurrence can be cut into chunks ----------------------------------
// For one (batch b, channel d, state k) the scan is h_t = a_t h_{t-1} + x_t, with
// a_t = exp(dt_t A[d,k]) and x_t = dt_t u_t B_t[k]: linear in h. Cut the length into chunks of
// kChunk steps. Scanning chunk c on its own from h = 0 gives its end state S_c, and its decay
// over the chunk is P_c = prod_t a_t = exp(A[d,k] sum_t dt_t). The state entering chunk c is then
//     H_0 = 0,   H_{c+1} = P_c H_c + S_c,
// a sequential pass over only length / kChunk steps; with H_c known, every chunk can be
// rescanned independently of the others. (The official kernels, state-spaces/mamba, combine
// the same (a_t, x_t) pairs with a parallel scan inside a thread block, and Mamba-2's SSD cuts
// its sequence into chunks the same way.) The forward runs in three phases:
//   1. summary:  each chunk scanned from a zero state: S_c and sum_t dt_t.
//   2. carry:    per (b, k, d), sequential over the chunks: H_c for every chunk, written over
//                S_c; h_L = H_{n_chunks} is the last state.
//   3. output:   each chunk rescanned from H_c: y_t = sum_k C_t[k] h_t[k] + D u_t,
//                out_t = y_t silu(z_t).
// Only the chunk-start states are stored, (batch, n_chunks, n, d_inner): kChunk times fewer
// numbers than all the states, which are never written to memory.
//
// The backward needs gh_t = dL/dh_t, given by the adjoint recursion of selective_scan_cpu.cpp
// (0-based: gh_{L-1} = gH + gy_{L-1} C_{L-1}, gh_t = a_{t+1} gh_{t+1} + gy_t C_t), also linear and
// chunked the same way, right to left. Call G_c the adjoint entering chunk c from its right:
// a_{t1} gh_{t1}, t1 being the first step of chunk c + 1 (gH, or 0, for the last chunk).
// Scanning chunk c backward from 0, g <- (g + gy_t C_t) a_t, gives R_c; then
//     G_{n_chunks - 1} = gH,   G_{c-1} = P_c G_c + R_c.
// The forward saves nothing but its inputs, so the backward reruns phases 1 and 2 (cheap next
// to phase 3) and then:
//   1. summary:   S_c, sum dt, and R_c (the adjoint scan of the chunk from 0).
//   2. carry:     H_c ascending over the chunks and G_c descending.
//   3. gradients: per chunk and state k, the adjoint walk from G_c back through the chunk,
//                 keeping gh_t of its kChunk steps in registers, then the forward walk from
//                 H_c, which has h_{t-1} and h_t while gh_t is at hand:
//        gdt_t += gh_t (A a_t h_{t-1} + B_t u_t)     gu_t = gy_t D + dt_t sum_k gh_t B_t
//        gA    += gh_t dt_t a_t h_{t-1}              gB_t[k] += gh_t dt_t u_t (over channels)
//        gz_t   = go_t y_t silu'(z_t)                gC_t[k] += gy_t h_t      (over channels)
//                 and gdelta_t = gdt_t softplus'(x_t); gD and gdelta_bias partial sums.
//   4. sums:      gA, gD, gdelta_bias over (batch, chunk) and gB, gC over the channel tiles
//                 of a group, each by one column-sum kernel.
//
// ---- Work per thread --------------------------------------------------------------------
// Phases 1 and 3: a thread owns one (b, chunk, d) and walks its chunk once per state,
// k = 0 .. n-1, keeping the chunk's values of dt_t, dt_t u_t (and gy_t) and the per-step sums
// over k (y_t; in the backward the three sums that make gdt_t, gu_t and y_t) in registers:
// kChunk is a compile-time constant and the walks over it are unrolled. Looping over k in
// the thread, rather than spreading the n states over threads, works for any n without a
// kernel per n, makes every sum over k a register addition, and costs one scalar load of
// B_t[k] (and C_t[k]) per step and state, the same address on every lane of the warp (one
// broadcast transaction, from L1).
// A warp's 32 lanes own 32 consecutive channels of one group (tile `tile` of the group's
// channels), so that the loads of the (batch, length, d_inner) rows of u, delta, z and
// grad_out are coalesced and gB_t[k], gC_t[k] (sums over the group's channels) can be summed
// over the warp with shuffles first. That sum is a transposed reduction: the kChunk values of
// 32 lanes are halved five times, each lane sending the half it does not keep to its partner,
// so kChunk shuffles give every step's total (5 kChunk for five butterflies per step). Lanes
// past the group's last channel (channels per group not a multiple of 32) idle along with
// zero dt, u and gy: their steps are the identity and every contribution they make is 0.
// Chunk lengths (steps): the forward 32 in float32 and 8 in float64, the backward 16 and 4.
// The backward keeps 8 arrays of kChunk values per thread (128 registers in float32); float64
// values take two registers each, so its chunks are shorter: at these lengths no kernel spills
// (nvcc -Xptxas -v, sm_90: 124 to 224 registers a thread).
// Phase 2: a thread per (b, k, d), d fastest (coalesced), sequential over the chunks, loading
// kPrefetch chunks ahead to hide memory latency.
// Phase 4: out[j] = sum_i part[i, j] by a block of (32 columns, 8 row phases), combined in a
// fixed order. There are no atomics anywhere: results repeat bit for bit run to run.
//
// ---- Cost --------------------------------------------------------------------------------
// Per (b, t, d, k) the forward evaluates exp2 twice (phases 1 and 3) and the backward four
// times (phase 1's two scans, phase 3's two walks): most of the arithmetic. Memory, in values
// per (b, t, d): the forward reads u and delta twice and z once and writes out; its chunk
// states add 4 n / kChunk (written, read and rewritten, read: 2 at n = 16 in float32). The
// backward reads u, delta, z and grad_out twice and writes du, ddelta, dz; states and carries
// add 8 n / kChunk (8 at n = 16), and the partial sums of dA, dB and dC 2 n / kChunk + 4 n / 32.
//
// ---- Launch shapes ----------------------------------------------------------------------
// Scan kernels (phases 1, 3): blocks of 128 threads, four independent warps (no shared
// memory, no barrier), one warp per unit (b, chunk, group, tile); units = batch * n_chunks *
// groups * ceil(channels per group / 32). The 1-D grid has at most kMaxBlocks blocks and
// loops over the units (grid-stride), so no grid limit is ever reached; every offset is
// 64-bit. Carry kernel: 256 threads, grid-stride over batch * n * d_inner. Column sums:
// blocks of (32, 8), grid-stride over tiles of 32 columns.
//
// ---- Buffers (temporaries from the caching allocator) ------------------------------------
//   states    (batch, n_chunks, n, d_inner)   S_c, then H_c
//   carries   (batch, n_chunks, n, d_inner)   R_c, then G_c                    backward only
//   dt_sum    (batch, n_chunks, d_inner)
//   gA part   (batch, n_chunks, d_inner, n)   gD, gdelta_bias parts (batch, n_chunks, d_inner)
//   gB, gC parts (tiles, batch, length, groups, n)
//
// ---- Precision --------------------------------------------------------------------------
// Everything, sums included, in the element type, like the CPU loops. a_t = exp2(dt_t A log2 e)
// with A log2 e formed once per state (exp2 is one hardware instruction in float32, exp a few);
// P_c = exp(A sum dt) instead of the product of the a_t. Against the CPU loop, which adds in
// sequence, results differ by the reassociation of the chunks and of the sums, a few ulps of
// the largest terms.
#include <cstdint>
#include <stdexcept>

#include "cuda/check.h"
#include "cuda/runtime.h"
#include "mamba/selective_scan.h"

namespace ssm {

namespace {

// ---- kernels ---------------------------------------------------------------------------------

constexpr int kWarpSize = 32;
constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kScanThreads = 128; // four warps, each on its own unit
// Blocks per SM that the register allocation must allow (__launch_bounds__): the summary and
// output kernels get up to 170 registers a thread, the backward up to 255 (its arrays take 128).
constexpr int kScanMinBlocks = 3;
constexpr int kBackwardMinBlocks = 2;
constexpr int kCarryThreads = 256; // phase 2
constexpr int kPrefetch = 8;       // chunks loaded ahead by phase 2
constexpr int kSumRows = 8;        // row phases (threadIdx.y) of the column sums
// At most this many blocks per launch; the kernels loop over the rest. 2048 blocks of 128
// threads are more than an H200 holds at once (132 SMs x at most 16 such blocks).
constexpr int64_t kMaxBlocks = 2048;

// Steps per chunk (see the header). float32 / float64.
template <typename T>
constexpr int forward_chunk() {
  return sizeof(T) == 4 ? 32 : 8;
}
template <typename T>
constexpr int backward_chunk() {
  return sizeof(T) == 4 ? 16 : 4;
}

// ---- scalar math, in the element type ----

__device__ __forceinline__ float exp_of(float x) { return ::expf(x); }
__device__ __forceinline__ double exp_of(double x) { return ::exp(x); }
__device__ __forceinline__ float exp2_of(float x) { return ::exp2f(x); }
__device__ __forceinline__ double exp2_of(double x) { return ::exp2(x); }
__device__ __forceinline__ float log1p_of(float x) { return ::log1pf(x); }
__device__ __forceinline__ double log1p_of(double x) { return ::log1p(x); }

// log2(e): exp(x) = exp2(x log2 e).
template <typename T>
__device__ __forceinline__ T log2e() {
  return T(1.4426950408889634);
}

template <typename T>
__device__ __forceinline__ T sigmoid_of(T x) {
  return T(1) / (T(1) + exp_of(-x));
}
// PyTorch's softplus (threshold 20, where it is the identity) and its derivative.
template <typename T>
__device__ __forceinline__ T softplus_of(T x) {
  return x > T(20) ? x : log1p_of(exp_of(x));
}
template <typename T>
__device__ __forceinline__ T softplus_grad(T x) {
  return x > T(20) ? T(1) : sigmoid_of(x);
}
template <typename T>
__device__ __forceinline__ T silu_of(T x) {
  return x * sigmoid_of(x);
}

// ---- what every kernel is given ----

// Pointers to the inputs and the sizes of one scan, passed by value to every kernel.
template <typename T>
struct ScanArgs {
  const T* u;          // (batch, length, d_inner)
  const T* delta;      // (batch, length, d_inner)
  const T* A;          // (d_inner, n)
  const T* B;          // (batch, length, groups, n)
  const T* C;          // (batch, length, groups, n)
  const T* D;          // (d_inner), or null
  const T* z;          // (batch, length, d_inner), or null
  const T* delta_bias; // (d_inner), or null
  int64_t batch, length, d_inner, n, groups;
  int64_t per_group; // channels per group, d_inner / groups
  int64_t tiles;     // warp tiles per group, ceil(per_group / 32)
  bool softplus;
};

// One warp's share of a scan kernel: chunk `chunk` of batch element `b`, and the channels
// g * per_group + tile * 32 + lane of group g. Lanes past the group's end are idle: they load
// nothing per channel and carry zeros, so that every lane takes part in the warp's shuffles.
struct WarpUnit {
  int64_t b, chunk, g, tile;
  int64_t d;   // this lane's channel
  int64_t t0;  // the chunk's first time step
  int steps;   // time steps in the chunk: kChunk, fewer in the last chunk
  bool active; // d is one of the group's channels
};

// Units are numbered (b, chunk, g, tile) row-major: consecutive units differ in the tile
// first, so the warps of a block mostly share b, the chunk and the group, and read the same
// rows of B and C.
template <typename T>
__device__ WarpUnit warp_unit(const ScanArgs<T>& a, int64_t unit, int64_t n_chunks, int chunk_len,
                              int lane) {
  WarpUnit w;
  w.tile = unit % a.tiles;
  int64_t rest = unit / a.tiles;
  w.g = rest % a.groups;
  rest /= a.groups;
  w.chunk = rest % n_chunks;
  w.b = rest / n_chunks;
  const int64_t in_group = w.tile * kWarpSize + lane;
  w.active = in_group < a.per_group;
  w.d = w.g * a.per_group + in_group;
  w.t0 = w.chunk * chunk_len;
  const int64_t left = a.length - w.t0;
  w.steps = static_cast<int>(left < chunk_len ? left : chunk_len);
  return w;
}

// Warp units of a scan kernel.
template <typename T>
__host__ __device__ int64_t scan_units(const ScanArgs<T>& a, int64_t n_chunks) {
  return a.batch * n_chunks * a.groups * a.tiles;
}

// Offset of (b, t0 + t, d) in a (batch, length, d_inner) buffer.
template <typename T>
__device__ __forceinline__ int64_t row_offset(const ScanArgs<T>& a, const WarpUnit& w, int t) {
  return (w.b * a.length + w.t0 + t) * a.d_inner + w.d;
}

// Offset of (b, chunk, k, d) in a (batch, n_chunks, n, d_inner) buffer (states, carries).
template <typename T>
__device__ __forceinline__ int64_t state_offset(const ScanArgs<T>& a, const WarpUnit& w,
                                                int64_t n_chunks, int64_t k) {
  return ((w.b * n_chunks + w.chunk) * a.n + k) * a.d_inner + w.d;
}

// The chunk's rows of B or C for the warp's group: element (b, t0 + t, g, k) is at
// [t * a.groups * a.n + k].
template <typename T>
__device__ __forceinline__ const T* group_rows(const ScanArgs<T>& a, const WarpUnit& w,
                                               const T* p) {
  return p + ((w.b * a.length + w.t0) * a.groups + w.g) * a.n;
}

// dt_t = softplus(delta + delta_bias) (or without softplus) and dt_t u_t over the lane's
// chunk; 0 past the sequence's end and on idle lanes, which makes those steps the identity
// (h -> exp(0 A) h + 0).
template <typename T, int kChunk>
__device__ void load_dt(const ScanArgs<T>& a, const WarpUnit& w, T (&dt)[kChunk],
                        T (&dtu)[kChunk]) {
  const T bias = w.active && a.delta_bias ? a.delta_bias[w.d] : T(0);
#pragma unroll
  for (int t = 0; t < kChunk; ++t) {
    dt[t] = T(0);
    dtu[t] = T(0);
    if (w.active && t < w.steps) {
      const int64_t i = row_offset(a, w, t);
      const T x = a.delta[i] + bias;
      dt[t] = a.softplus ? softplus_of(x) : x;
      dtu[t] = dt[t] * a.u[i];
    }
  }
}

// gy_t = dL/dy_t = grad_out_t silu(z_t) (grad_out_t without z) over the lane's chunk; 0 past
// the end and on idle lanes.
template <typename T, int kChunk>
__device__ void load_gy(const ScanArgs<T>& a, const WarpUnit& w, const T* grad_out,
                        T (&gy)[kChunk]) {
#pragma unroll
  for (int t = 0; t < kChunk; ++t) {
    gy[t] = T(0);
    if (w.active && t < w.steps) {
      const int64_t i = row_offset(a, w, t);
      gy[t] = a.z ? grad_out[i] * silu_of(a.z[i]) : grad_out[i];
    }
  }
}

// ---- transposed warp reduction ----

// One halving step of warp_transpose_sum: v holds 2 kHalf values; lanes whose `offset` bit is
// clear keep the lower half, the others the upper half, and each adds its partner's copy of
// the half it keeps.
template <int kHalf, typename T, int N>
__device__ __forceinline__ void transpose_sum_step(T (&v)[N], int lane) {
  if constexpr (kHalf >= 1) {
    constexpr int offset = kWarpSize * kHalf / N;
    const bool upper = (lane & offset) != 0;
#pragma unroll
    for (int j = 0; j < kHalf; ++j) {
      const T send = upper ? v[j] : v[j + kHalf];
      const T keep = upper ? v[j + kHalf] : v[j];
      v[j] = keep + __shfl_xor_sync(kFullMask, send, offset);
    }
    transpose_sum_step<kHalf / 2>(v, lane);
  }
}

// Sums v[0 .. N-1] over the 32 lanes of the warp (N a power of two <= 32) with N shuffles in
// all, and returns on lane l the total of entry l / (32 / N). Step by step for N = 16: lanes
// exchange halves across offset 16 (lanes >= 16 keep entries 8..15, the others 0..7), then
// across 8, 4 and 2, halving what each lane holds until one entry is left, summed over the 16
// lanes that share it; a last butterfly across offset 1 adds the remaining pair. v is
// overwritten.
template <typename T, int N>
__device__ __forceinline__ T warp_transpose_sum(T (&v)[N], int lane) {
  static_assert(N >= 1 && N <= kWarpSize && kWarpSize % N == 0, "N must divide 32");
  transpose_sum_step<N / 2>(v, lane);
  for (int offset = kWarpSize / N / 2; offset >= 1; offset /= 2)
    v[0] += __shfl_xor_sync(kFullMask, v[0], offset);
  return v[0];
}

// part[w.tile, b, t0 + t, g, k] (part is (tiles, batch, length, groups, n)) = the sum of
// v[t] over the warp's lanes, for each step t of the chunk. Every lane must call it.
template <typename T, int kChunk>
__device__ void store_tile_sum(const ScanArgs<T>& a, const WarpUnit& w, int lane, int64_t k,
                               T (&v)[kChunk], T* part) {
  const T total = warp_transpose_sum(v, lane);
  constexpr int kLanesPerStep = kWarpSize / kChunk;
  const int t = lane / kLanesPerStep;
  if (lane % kLanesPerStep == 0 && t < w.steps) {
    const int64_t cols = a.batch * a.length * a.groups * a.n;
    part[w.tile * cols + ((w.b * a.length + w.t0 + t) * a.groups + w.g) * a.n + k] = total;
  }
}

// ---- phase 1: chunk summaries ----

// Per (b, chunk, d), each chunk on its own from zero:
//   states[b, c, k, d] = S_c[k]: the chunk's end state from h = 0 (forward scan)
//   dt_sum[b, c, d]    = sum_t dt_t over the chunk
// and with kAdjoint (the backward) also
//   carries[b, c, k, d] = R_c[k]: the adjoint scan g <- (g + gy_t C_t[k]) a_t[k] from g = 0,
//                         t from the chunk's last step down to its first.
template <typename T, int kChunk, bool kAdjoint>
__global__ void __launch_bounds__(kScanThreads, kScanMinBlocks)
    scan_summary_kernel(ScanArgs<T> a, const T* grad_out, T* states, T* carries, T* dt_sum,
                        int64_t n_chunks) {
  const int lane = threadIdx.x % kWarpSize;
  const int64_t units = scan_units(a, n_chunks);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * (blockDim.x / kWarpSize);
  for (int64_t unit = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarpSize;
       unit < units; unit += stride) {
    const WarpUnit w = warp_unit(a, unit, n_chunks, kChunk, lane);
    T dt[kChunk], dtu[kChunk], gy[kChunk];
    load_dt(a, w, dt, dtu);
    if constexpr (kAdjoint) load_gy(a, w, grad_out, gy);
    T sum = 0;
#pragma unroll
    for (int t = 0; t < kChunk; ++t) sum += dt[t];
    if (w.active) dt_sum[(w.b * n_chunks + w.chunk) * a.d_inner + w.d] = sum;

    const T* B_rows = group_rows(a, w, a.B);
    const T* C_rows = group_rows(a, w, a.C);
    const int64_t step_stride = a.groups * a.n;
    for (int64_t k = 0; k < a.n; ++k) {
      const T A2 = w.active ? a.A[w.d * a.n + k] * log2e<T>() : T(0); // A log2 e
      T h = 0;
      const T* B_t = B_rows + k; // advanced one step at a time
#pragma unroll
      for (int t = 0; t < kChunk; ++t, B_t += step_stride)
        h = exp2_of(dt[t] * A2) * h + dtu[t] * (t < w.steps ? *B_t : T(0));
      const int64_t slot = state_offset(a, w, n_chunks, k);
      if (w.active) states[slot] = h;
      if constexpr (kAdjoint) {
        T g = 0;
        const T* C_t = C_rows + (w.steps - 1) * step_stride + k; // the last step's
#pragma unroll
        for (int t = kChunk - 1; t >= 0; --t)
          if (t < w.steps) {
            g = (g + gy[t] * *C_t) * exp2_of(dt[t] * A2);
            C_t -= step_stride;
          }
        if (w.active) carries[slot] = g;
      }
    }
  }
}

// ---- phase 2: the carries between chunks ----

// Per (b, k, d), sequential over the chunks, P_c = exp(A[d,k] dt_sum[b,c,d]):
//   states:  H_0 = 0, H_{c+1} = P_c H_c + S_c; H_c replaces S_c; last_state[b, d, k] = H_n_chunks
//   carries (kAdjoint): G_{n_chunks-1} = grad_last[b, d, k] (or 0), G_{c-1} = P_c G_c + R_c;
//            G_c replaces R_c.
// last_state and grad_last may be null.
template <typename T, bool kAdjoint>
__global__ void __launch_bounds__(kCarryThreads)
    scan_carry_kernel(ScanArgs<T> a, T* states, T* carries, const T* dt_sum, const T* grad_last,
                      T* last_state, int64_t n_chunks) {
  const int64_t total = a.batch * a.n * a.d_inner;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t d = idx % a.d_inner, k = idx / a.d_inner % a.n, b = idx / a.d_inner / a.n;
    const T A2 = a.A[d * a.n + k] * log2e<T>();
    // (b, c, k, d) of states and carries; (b, c, d) of dt_sum.
    auto slot = [&](int64_t c) { return ((b * n_chunks + c) * a.n + k) * a.d_inner + d; };
    auto sum_slot = [&](int64_t c) { return (b * n_chunks + c) * a.d_inner + d; };

    T h = 0;
    for (int64_t c0 = 0; c0 < n_chunks; c0 += kPrefetch) {
      T end[kPrefetch], decay_sum[kPrefetch];
#pragma unroll
      for (int j = 0; j < kPrefetch; ++j)
        if (c0 + j < n_chunks) {
          end[j] = states[slot(c0 + j)];
          decay_sum[j] = dt_sum[sum_slot(c0 + j)];
        }
#pragma unroll
      for (int j = 0; j < kPrefetch; ++j)
        if (c0 + j < n_chunks) {
          states[slot(c0 + j)] = h;
          h = exp2_of(A2 * decay_sum[j]) * h + end[j];
        }
    }
    if (last_state) last_state[(b * a.d_inner + d) * a.n + k] = h;

    if constexpr (kAdjoint) {
      T g = grad_last ? grad_last[(b * a.d_inner + d) * a.n + k] : T(0);
      for (int64_t c0 = n_chunks - 1; c0 >= 0; c0 -= kPrefetch) {
        T local[kPrefetch], decay_sum[kPrefetch];
#pragma unroll
        for (int j = 0; j < kPrefetch; ++j)
          if (c0 - j >= 0) {
            local[j] = carries[slot(c0 - j)];
            decay_sum[j] = dt_sum[sum_slot(c0 - j)];
          }
#pragma unroll
        for (int j = 0; j < kPrefetch; ++j)
          if (c0 - j >= 0) {
            carries[slot(c0 - j)] = g;
            g = exp2_of(A2 * decay_sum[j]) * g + local[j];
          }
      }
    }
  }
}

// ---- phase 3, forward: the output ----

// Per (b, chunk, d): the chunk rescanned from its start state H_c (states after phase 2),
//   h_t = exp(dt_t A) h_{t-1} + dt_t u_t B_t,  y_t = sum_k C_t[k] h_t[k] + D u_t,
//   out_t = y_t silu(z_t)  (y_t without z).
template <typename T, int kChunk>
__global__ void __launch_bounds__(kScanThreads, kScanMinBlocks)
    scan_output_kernel(ScanArgs<T> a, const T* states, T* out, int64_t n_chunks) {
  const int lane = threadIdx.x % kWarpSize;
  const int64_t units = scan_units(a, n_chunks);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * (blockDim.x / kWarpSize);
  for (int64_t unit = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarpSize;
       unit < units; unit += stride) {
    const WarpUnit w = warp_unit(a, unit, n_chunks, kChunk, lane);
    T dt[kChunk], dtu[kChunk];
    load_dt(a, w, dt, dtu);
    T y[kChunk]; // sum_k C_t[k] h_t[k]
#pragma unroll
    for (int t = 0; t < kChunk; ++t) y[t] = T(0);

    const T* B_rows = group_rows(a, w, a.B);
    const T* C_rows = group_rows(a, w, a.C);
    const int64_t step_stride = a.groups * a.n;
    for (int64_t k = 0; k < a.n; ++k) {
      const T A2 = w.active ? a.A[w.d * a.n + k] * log2e<T>() : T(0);
      T h = w.active ? states[state_offset(a, w, n_chunks, k)] : T(0);
      const T* B_t = B_rows + k; // advanced one step at a time
      const T* C_t = C_rows + k;
#pragma unroll
      for (int t = 0; t < kChunk; ++t, B_t += step_stride, C_t += step_stride)
        if (t < w.steps) {
          h = exp2_of(dt[t] * A2) * h + dtu[t] * *B_t;
          y[t] += *C_t * h;
        }
    }

    if (!w.active) continue; // nothing below is shared across the warp
    const T D = a.D ? a.D[w.d] : T(0);
#pragma unroll
    for (int t = 0; t < kChunk; ++t)
      if (t < w.steps) {
        const int64_t i = row_offset(a, w, t);
        const T y_t = y[t] + D * a.u[i];
        out[i] = a.z ? y_t * silu_of(a.z[i]) : y_t;
      }
  }
}

// ---- phase 3, backward: the gradients ----

// Where the backward writes. grad_* are (batch, length, d_inner) and written in full; the
// *_part buffers hold partial sums that phase 4 adds up. Each may be null (not needed).
template <typename T>
struct GradOut {
  T* u;               // (batch, length, d_inner)
  T* delta;           // (batch, length, d_inner)
  T* z;               // (batch, length, d_inner)
  T* A_part;          // (batch, n_chunks, d_inner, n)
  T* D_part;          // (batch, n_chunks, d_inner)
  T* delta_bias_part; // (batch, n_chunks, d_inner)
  T* B_part;          // (tiles, batch, length, groups, n)
  T* C_part;          // (tiles, batch, length, groups, n)
};

// Per (b, chunk, d), given H_c (states) and G_c (carries) from phase 2. For each state k: the
// adjoint walk from G_c, backward over the chunk, keeps gh_t (t in the chunk); the forward
// walk from H_c then forms the terms of every gradient (see the header). The sums over k of
// the per-step terms stay in registers until the end of the unit; gB and gC are summed over
// the warp's channels per state; gA, gD and gdelta_bias are summed over the chunk.
// kGateGrad: z is present and its gradient is wanted (it needs y_t).
template <typename T, int kChunk, bool kGateGrad>
__global__ void __launch_bounds__(kScanThreads, kBackwardMinBlocks)
    scan_backward_kernel(ScanArgs<T> a, const T* grad_out, const T* states, const T* carries,
                         GradOut<T> grad, int64_t n_chunks) {
  const int lane = threadIdx.x % kWarpSize;
  const int64_t units = scan_units(a, n_chunks);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * (blockDim.x / kWarpSize);
  for (int64_t unit = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarpSize;
       unit < units; unit += stride) {
    const WarpUnit w = warp_unit(a, unit, n_chunks, kChunk, lane);
    T dt[kChunk], dtu[kChunk], gy[kChunk];
    load_dt(a, w, dt, dtu);
    load_gy(a, w, grad_out, gy);
    // Sums over the states k, per step t of the chunk.
    T sum_ghAah[kChunk]; // sum_k gh_t[k] A[k] a_t[k] h_{t-1}[k]
    T sum_ghB[kChunk];   // sum_k gh_t[k] B_t[k]
    T sum_Ch[kChunk];    // sum_k C_t[k] h_t[k] = y_t - D u_t (kGateGrad only)
#pragma unroll
    for (int t = 0; t < kChunk; ++t) sum_ghAah[t] = sum_ghB[t] = sum_Ch[t] = T(0);

    const T* B_rows = group_rows(a, w, a.B);
    const T* C_rows = group_rows(a, w, a.C);
    const int64_t step_stride = a.groups * a.n;
    for (int64_t k = 0; k < a.n; ++k) {
      const T A_k = w.active ? a.A[w.d * a.n + k] : T(0);
      const T A2 = A_k * log2e<T>();
      const int64_t slot = state_offset(a, w, n_chunks, k);

      // The adjoint, backward over the chunk from G_c: gh[t] = gh_t = a_{t+1} gh_{t+1} + gy_t C_t.
      T gh[kChunk];
      T g = w.active ? carries[slot] : T(0);
      const T* C_t = C_rows + (w.steps - 1) * step_stride + k; // the last step's
#pragma unroll
      for (int t = kChunk - 1; t >= 0; --t) {
        if (t < w.steps) {
          g += gy[t] * *C_t;
          C_t -= step_stride;
        }
        gh[t] = g;
        g *= exp2_of(dt[t] * A2);
      }

      // The states, forward over the chunk from H_c, with every term that needs them.
      T gC_terms[kChunk]; // gy_t h_t: this channel's terms of gC_t[k]
      T gA_sum = 0;       // sum_t gh_t dt_t a_t h_{t-1}
      T h = w.active ? states[slot] : T(0);
      const T* B_at = B_rows + k; // advanced one step at a time
      const T* C_at = C_rows + k;
#pragma unroll
      for (int t = 0; t < kChunk; ++t, B_at += step_stride, C_at += step_stride) {
        const bool in = t < w.steps;
        const T B_t = in ? *B_at : T(0);
        const T C_t = in ? *C_at : T(0);
        const T ah = exp2_of(dt[t] * A2) * h; // a_t h_{t-1}
        sum_ghAah[t] += gh[t] * A_k * ah;
        gA_sum += gh[t] * dt[t] * ah;
        h = ah + dtu[t] * B_t; // h_t
        sum_ghB[t] += gh[t] * B_t;
        if constexpr (kGateGrad) sum_Ch[t] += C_t * h;
        gC_terms[t] = gy[t] * h;
        gh[t] *= dtu[t]; // gh_t dt_t u_t: this channel's term of gB_t[k]
      }

      if (grad.A_part && w.active)
        grad.A_part[((w.b * n_chunks + w.chunk) * a.d_inner + w.d) * a.n + k] = gA_sum;
      if (grad.B_part) store_tile_sum(a, w, lane, k, gh, grad.B_part);
      if (grad.C_part) store_tile_sum(a, w, lane, k, gC_terms, grad.C_part);
    }

    if (!w.active) continue; // nothing below is shared across the warp
    const T D = a.D ? a.D[w.d] : T(0);
    const T bias = a.delta_bias ? a.delta_bias[w.d] : T(0);
    T gD_sum = 0, gbias_sum = 0;
#pragma unroll
    for (int t = 0; t < kChunk; ++t)
      if (t < w.steps) {
        const int64_t i = row_offset(a, w, t);
        const T u = a.u[i];
        const T x = a.delta[i] + bias;
        const T gdt = sum_ghAah[t] + u * sum_ghB[t];
        const T gx = a.softplus ? gdt * softplus_grad(x) : gdt;
        if (grad.u) grad.u[i] = gy[t] * D + dt[t] * sum_ghB[t];
        if (grad.delta) grad.delta[i] = gx;
        if constexpr (kGateGrad) {
          const T z = a.z[i], s = sigmoid_of(z);
          const T y = sum_Ch[t] + D * u;
          grad.z[i] = grad_out[i] * y * s * (T(1) + z * (T(1) - s));
        }
        gD_sum += gy[t] * u;
        gbias_sum += gx;
      }
    const int64_t chunk_slot = (w.b * n_chunks + w.chunk) * a.d_inner + w.d;
    if (grad.D_part) grad.D_part[chunk_slot] = gD_sum;
    if (grad.delta_bias_part) grad.delta_bias_part[chunk_slot] = gbias_sum;
  }
}

// ---- phase 4: sums ----

// out[j] = sum_i part[i, j] for part (rows, cols), j < cols. Block (32, kSumRows) per tile of
// 32 columns: threadIdx.x picks the column (coalesced), threadIdx.y the rows y, y + kSumRows,
// ...; the kSumRows partials are added in order through shared memory.
template <typename T>
__global__ void __launch_bounds__(kWarpSize* kSumRows)
    column_sum_kernel(const T* part, int64_t rows, int64_t cols, T* out) {
  __shared__ T partial[kSumRows][kWarpSize];
  const int64_t tiles = (cols + kWarpSize - 1) / kWarpSize;
  for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) { // the same for the block
    const int64_t j = tile * kWarpSize + threadIdx.x;
    T acc = 0;
    if (j < cols)
      for (int64_t i = threadIdx.y; i < rows; i += kSumRows) acc += part[i * cols + j];
    partial[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && j < cols) {
      T total = 0;
      for (int r = 0; r < kSumRows; ++r) total += partial[r][threadIdx.x];
      out[j] = total;
    }
    __syncthreads(); // partial is rewritten for the next tile
  }
}

// ---- launch ----------------------------------------------------------------------------------

// kernel<<<grid, block, 0, stream>>>(args...), checked.
template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t stream, Args... args) {
  kernel<<<grid, block, 0, stream>>>(args...);
  SSM_CUDA_CHECK(cudaGetLastError());
}

// ---- host side ---------------------------------------------------------------------------

// Blocks for `work` items of `per_block` each, at least 1 and at most kMaxBlocks.
int grid_size(int64_t work, int64_t per_block) {
  const int64_t blocks = (work + per_block - 1) / per_block;
  return static_cast<int>(blocks < 1 ? 1 : (blocks < kMaxBlocks ? blocks : kMaxBlocks));
}

template <typename T>
T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

template <typename T>
ScanArgs<T> scan_args(const ScanInputs& in, const ScanShape& s) {
  ScanArgs<T> a;
  a.u = in.u.data<T>();
  a.delta = in.delta.data<T>();
  a.A = in.A.data<T>();
  a.B = in.B.data<T>();
  a.C = in.C.data<T>();
  a.D = s.has_D ? in.D.data<T>() : nullptr;
  a.z = s.has_z ? in.z.data<T>() : nullptr;
  a.delta_bias = s.has_delta_bias ? in.delta_bias.data<T>() : nullptr;
  a.batch = s.batch;
  a.length = s.length;
  a.d_inner = s.d_inner;
  a.n = s.d_state;
  a.groups = s.groups;
  a.per_group = s.channels_per_group();
  a.tiles = (a.per_group + kWarpSize - 1) / kWarpSize;
  a.softplus = s.delta_softplus;
  return a;
}

// The scan kernels' launch: one warp per unit.
struct ScanLaunch {
  int64_t units;
  dim3 grid, block;
};
template <typename T>
ScanLaunch scan_launch(const ScanArgs<T>& a, int64_t n_chunks) {
  const int64_t units = scan_units(a, n_chunks);
  return {units, dim3(grid_size(units, kScanThreads / kWarpSize)), dim3(kScanThreads)};
}

// out (rows-summed part), see column_sum_kernel.
template <typename T>
void column_sum(const Tensor& part, int64_t rows, int64_t cols, Tensor& out, cudaStream_t stream) {
  if (cols == 0) return;
  launch(column_sum_kernel<T>, dim3(grid_size(cols, kWarpSize)), dim3(kWarpSize, kSumRows), stream,
         static_cast<const T*>(part.data<T>()), rows, cols, out.data<T>());
}

template <typename T>
void scan_forward(const ScanInputs& in, const ScanShape& s, Tensor& out, Tensor& last_state) {
  constexpr int kChunk = forward_chunk<T>();
  const ScanArgs<T> a = scan_args<T>(in, s);
  const cudaStream_t stream = cuda::stream(in.u.device().index);
  const int64_t n_chunks = (s.length + kChunk - 1) / kChunk;
  const Tensor states = Tensor::empty({s.batch, n_chunks, s.d_state, s.d_inner}, in.u.dtype(),
                                      in.u.device()); // S_c, then H_c
  const Tensor dt_sum = Tensor::empty({s.batch, n_chunks, s.d_inner}, in.u.dtype(),
                                      in.u.device()); // sum of dt per chunk
  const ScanLaunch scan = scan_launch(a, n_chunks);
  const T* no_input = nullptr;
  T* no_output = nullptr;
  if (scan.units > 0)
    launch(scan_summary_kernel<T, kChunk, false>, scan.grid, scan.block, stream, a, no_input,
           states.data<T>(), no_output, dt_sum.data<T>(), n_chunks);
  // Also with no chunks (length 0), where it writes the last state h_0 = 0.
  const int64_t carry_threads = s.batch * s.d_state * s.d_inner;
  if (carry_threads > 0)
    launch(scan_carry_kernel<T, false>, dim3(grid_size(carry_threads, kCarryThreads)),
           dim3(kCarryThreads), stream, a, states.data<T>(), no_output,
           static_cast<const T*>(dt_sum.data<T>()), no_input, data_or_null<T>(last_state),
           n_chunks);
  if (scan.units > 0)
    launch(scan_output_kernel<T, kChunk>, scan.grid, scan.block, stream, a,
           static_cast<const T*>(states.data<T>()), out.data<T>(), n_chunks);
}

template <typename T>
void scan_backward(const ScanInputs& in, const ScanShape& s, const Tensor& grad_out,
                   const Tensor& grad_last_state, ScanGrads& grads) {
  constexpr int kChunk = backward_chunk<T>();
  const ScanArgs<T> a = scan_args<T>(in, s);
  const cudaStream_t stream = cuda::stream(in.u.device().index);
  const DType dtype = in.u.dtype();
  const Device device = in.u.device();
  if ((grads.D.defined() && !s.has_D) || (grads.z.defined() && !s.has_z) ||
      (grads.delta_bias.defined() && !s.has_delta_bias))
    throw std::invalid_argument(
        "selective_scan_bwd_cuda: a gradient was asked for D, z or delta_bias, which is absent");
  const int64_t n_chunks = (s.length + kChunk - 1) / kChunk;
  const int64_t n = s.d_state;
  const Shape chunk_states{s.batch, n_chunks, n, s.d_inner};
  const Tensor states = Tensor::empty(chunk_states, dtype, device);  // S_c, then H_c
  const Tensor carries = Tensor::empty(chunk_states, dtype, device); // R_c, then G_c
  const Tensor dt_sum = Tensor::empty({s.batch, n_chunks, s.d_inner}, dtype, device);
  const ScanLaunch scan = scan_launch(a, n_chunks);
  const T* go = grad_out.data<T>();
  T* no_output = nullptr;

  // Phases 1 and 2: H_c and G_c.
  if (scan.units > 0)
    launch(scan_summary_kernel<T, kChunk, true>, scan.grid, scan.block, stream, a, go,
           states.data<T>(), carries.data<T>(), dt_sum.data<T>(), n_chunks);
  const int64_t carry_threads = s.batch * n * s.d_inner;
  if (carry_threads > 0)
    launch(scan_carry_kernel<T, true>, dim3(grid_size(carry_threads, kCarryThreads)),
           dim3(kCarryThreads), stream, a, states.data<T>(), carries.data<T>(),
           static_cast<const T*>(dt_sum.data<T>()),
           static_cast<const T*>(data_or_null<T>(grad_last_state)), no_output, n_chunks);

  // Phase 3: the per-step gradients and the partial sums.
  const int64_t tiles = a.tiles;
  const int64_t bc_cols = s.batch * s.length * s.groups * n; // elements of B
  auto part_if = [&](const Tensor& grad, const Shape& shape) {
    return grad.defined() ? Tensor::empty(shape, dtype, device) : Tensor();
  };
  const Tensor A_part = part_if(grads.A, {s.batch, n_chunks, s.d_inner, n});
  const Tensor D_part = part_if(grads.D, {s.batch, n_chunks, s.d_inner});
  const Tensor bias_part = part_if(grads.delta_bias, {s.batch, n_chunks, s.d_inner});
  const Tensor B_part = part_if(grads.B, {tiles, bc_cols});
  const Tensor C_part = part_if(grads.C, {tiles, bc_cols});
  GradOut<T> out;
  out.u = data_or_null<T>(grads.u);
  out.delta = data_or_null<T>(grads.delta);
  out.z = data_or_null<T>(grads.z);
  out.A_part = data_or_null<T>(A_part);
  out.D_part = data_or_null<T>(D_part);
  out.delta_bias_part = data_or_null<T>(bias_part);
  out.B_part = data_or_null<T>(B_part);
  out.C_part = data_or_null<T>(C_part);
  if (scan.units > 0) {
    const T* H = states.data<T>();
    const T* G = carries.data<T>();
    if (out.z)
      launch(scan_backward_kernel<T, kChunk, true>, scan.grid, scan.block, stream, a, go, H, G, out,
             n_chunks);
    else
      launch(scan_backward_kernel<T, kChunk, false>, scan.grid, scan.block, stream, a, go, H, G,
             out, n_chunks);
  }

  // Phase 4: the sums over (batch, chunk) and over the channel tiles of a group.
  const int64_t batch_chunks = s.batch * n_chunks;
  if (grads.A.defined()) column_sum<T>(A_part, batch_chunks, s.d_inner * n, grads.A, stream);
  if (grads.D.defined()) column_sum<T>(D_part, batch_chunks, s.d_inner, grads.D, stream);
  if (grads.delta_bias.defined())
    column_sum<T>(bias_part, batch_chunks, s.d_inner, grads.delta_bias, stream);
  if (grads.B.defined()) column_sum<T>(B_part, tiles, bc_cols, grads.B, stream);
  if (grads.C.defined()) column_sum<T>(C_part, tiles, bc_cols, grads.C, stream);
}

} // namespace

void selective_scan_fwd_cuda(const ScanInputs& in, const ScanShape& s, Tensor& out,
                             Tensor& last_state) {
  dispatch_floating(in.u.dtype(), "selective_scan_fwd_cuda",
                    [&](auto zero) { scan_forward<decltype(zero)>(in, s, out, last_state); });
}

void selective_scan_bwd_cuda(const ScanInputs& in, const ScanShape& s, const Tensor& grad_out,
                             const Tensor& grad_last_state, ScanGrads& grads) {
  dispatch_floating(in.u.dtype(), "selective_scan_bwd_cuda", [&](auto zero) {
    scan_backward<decltype(zero)>(in, s, grad_out, grad_last_state, grads);
  });
}

} // namespace ssm
