// nn_softmax.cu: softmax, log_softmax and cross-entropy on CUDA tensors (the math and the
// (outer, n, inner) layout are in tensor/cpu/nn_softmax.h).
//
//   softmax:      y_j = exp(x_j - m) / s,   m = max_k x_k,  s = sum_k exp(x_k - m)
//   log_softmax:  y_j = (x_j - m) - log s
//   backward:     dx_j = y_j (g_j - sum_k g_k y_k)          (softmax)
//                 dx_j = g_j - exp(y_j) sum_k g_k           (log_softmax)
//   cross-entropy at a position with target t:  lse = m + log s,  loss = lse - x_t
//                 dlogits_c = w (exp(x_c - lse) - [c == t]),  0 where t is ignore_index
// Buffers: x, y, g, dx, logits, dlogits (outer, n, inner); targets, loss, lse, w
// (outer, inner); a row is the n elements sharing (o, i), `inner` apart.
//
// Parallelisation. A row is handled by a team of threads: member `rank` of `size` visits
// j = rank, rank + size, ...; the team combines its members' maxima and sums so that every
// member holds the row's m and s (or sum_k g_k y_k), then each member writes its own j.
//   inner == 1 (the last dim, contiguous rows): the team is one warp for rows of up to
//     kWarpRowMaxLength elements (8 rows per 256-thread block: a short row, like 33 classes,
//     would leave most of a block idle) and a whole 256-thread block for longer rows, so a
//     vocabulary-sized row gets 8 warps of loads in flight. Combining: cuda/group_reduce.cuh.
//   inner > 1 (an inner dim): a block (32, P) takes 32 consecutive rows (o, i), i.e. 32
//     consecutive columns of memory, so a warp's loads x[o, j, i..i+31] are coalesced;
//     threadIdx.y (P = min(n, 8) phases) splits j. Members combine through shared memory,
//     every thread reading the P partials of its column in phase order.
// Both kernels loop grid-stride over rows (or tiles of 32 columns), so any number of rows
// fits a grid of at most 65535 blocks. The cross-entropy backward is elementwise: one thread
// per logit.
//
// Precision, the CPU loop's, so that kernel and reference round alike: the exponentials in T,
// their sum in double (a 50000-entry vocabulary row could lose up to ~16 bits of a float32
// accumulator), 1/s and log s rounded to T, sum_k g_k y_k in double over T products. The sums
// are added in a tree rather than in order: float64 results differ from the CPU's by a few
// ulps; float32 results, rounded from double sums on both sides, by the ulp or two of CUDA's
// expf against the host's. Every addition order is fixed by the shape, so results are the
// same run to run.
//
// Not done: a row along an inner dim is split into at most 8 phases, so a long dim with few
// columns (softmax over dim 0 of (100000, 2)) runs on few threads.
#include <cmath>

#include "cuda/check.h"
#include "cuda/group_reduce.cuh"
#include "cuda/nn_softmax.h"
#include "cuda/runtime.h"

namespace ssm::cuda {

namespace {

constexpr int kThreads = 256;           // threads per block of the row kernel
constexpr int kWarpRowMaxLength = 1024; // rows up to this long get a warp, longer a block
constexpr int kMaxPhases = 8;           // members per column team
constexpr int64_t kMaxBlocks = 65535;

int grid_size(int64_t units) {
  return static_cast<int>(units < 1 ? 1 : (units < kMaxBlocks ? units : kMaxBlocks));
}

// ---- teams ---------------------------------------------------------------------------------

// A warp or a block on one contiguous row is a GroupTeam (cuda/group_reduce.cuh).
//
// Threads (threadIdx.x, 0 .. blockDim.y - 1) of a column block on one strided row. Values
// pass through shared memory as double, which holds float32 and float64 values exactly.
struct ColumnTeam {
  int rank, size;
  template <typename V, typename Combine>
  __device__ V allreduce(V v, Combine combine) const {
    __shared__ double partials[kMaxPhases][32];
    partials[threadIdx.y][threadIdx.x] = static_cast<double>(v);
    __syncthreads();
    V total = static_cast<V>(partials[0][threadIdx.x]);
    for (int phase = 1; phase < size; ++phase)
      total = combine(total, static_cast<V>(partials[phase][threadIdx.x]));
    __syncthreads(); // partials is rewritten by the next call
    return total;
  }
};

// ---- the row computations ------------------------------------------------------------------
// Each is called by every member of a team with the row's (o, i). A member of a column team
// whose column lies past the end is not `active`: it takes part in the team's combines as a
// member with no elements and touches no memory.

// m = max_j row[j] (NaN skipped) and s = sum_j exp(row[j] - m) in double, over the members.
template <typename T, typename Team>
__device__ void row_max_and_exp_sum(const T* row, int64_t count, int64_t stride, const Team& team,
                                    T& m, double& s) {
  m = -static_cast<T>(INFINITY);
  for (int64_t j = team.rank; j < count; j += team.size) m = MaxCombine{}(m, row[j * stride]);
  m = team.allreduce(m, MaxCombine{});
  s = 0;
  for (int64_t j = team.rank; j < count; j += team.size) s += std::exp(row[j * stride] - m);
  s = team.allreduce(s, SumCombine{});
}

template <typename T>
struct SoftmaxForwardRow {
  const T* x;
  T* y;
  int64_t n, inner;
  bool log;

  template <typename Team>
  __device__ void operator()(int64_t o, int64_t i, bool active, const Team& team) const {
    const int64_t count = active ? n : 0;
    const int64_t base = o * n * inner + i;
    const T* xr = x + base;
    T* yr = y + base;
    T m;
    double s;
    row_max_and_exp_sum(xr, count, inner, team, m, s);
    const T scale = static_cast<T>(log ? std::log(s) : 1.0 / s);
    for (int64_t j = team.rank; j < count; j += team.size) {
      const T v = xr[j * inner] - m;
      yr[j * inner] = log ? v - scale : std::exp(v) * scale;
    }
  }
};

template <typename T>
struct SoftmaxBackwardRow {
  const T* y;
  const T* g;
  T* dx;
  int64_t n, inner;
  bool log;

  template <typename Team>
  __device__ void operator()(int64_t o, int64_t i, bool active, const Team& team) const {
    const int64_t count = active ? n : 0;
    const int64_t base = o * n * inner + i;
    const T* yr = y + base;
    const T* gr = g + base;
    T* dxr = dx + base;
    // softmax: sum_k g_k y_k; log_softmax: sum_k g_k.
    double acc = 0;
    for (int64_t j = team.rank; j < count; j += team.size)
      acc += log ? gr[j * inner] : gr[j * inner] * yr[j * inner];
    const T row_sum = static_cast<T>(team.allreduce(acc, SumCombine{}));
    for (int64_t j = team.rank; j < count; j += team.size) {
      const int64_t at = j * inner;
      dxr[at] = log ? gr[at] - std::exp(yr[at]) * row_sum : yr[at] * (gr[at] - row_sum);
    }
  }
};

template <typename T>
struct CrossEntropyForwardRow {
  const T* x;
  const int64_t* targets;
  T* loss;
  T* lse;
  int64_t classes, inner, ignore_index;

  template <typename Team>
  __device__ void operator()(int64_t o, int64_t i, bool active, const Team& team) const {
    const T* xr = x + o * classes * inner + i;
    T m;
    double s;
    row_max_and_exp_sum(xr, active ? classes : 0, inner, team, m, s);
    if (team.rank != 0 || !active) return;
    const int64_t p = o * inner + i; // position in (outer, inner)
    const T row_lse = m + static_cast<T>(std::log(s));
    lse[p] = row_lse;
    const int64_t target = targets[p];
    loss[p] = target == ignore_index ? T(0) : row_lse - xr[target * inner];
  }
};

// ---- kernels -------------------------------------------------------------------------------

// inner == 1: team g of the block (a warp or the block) handles rows g, g + teams, ...
template <int kGroup, typename RowFn>
__global__ void rows_kernel(RowFn fn, int64_t rows) {
  constexpr int kTeamsPerBlock = kThreads / kGroup;
  const GroupTeam<kGroup> team{static_cast<int>(threadIdx.x % kGroup)};
  // Every thread of a team sees the same row, so the team's combines never diverge.
  for (int64_t row = blockIdx.x * static_cast<int64_t>(kTeamsPerBlock) + threadIdx.x / kGroup;
       row < rows; row += static_cast<int64_t>(gridDim.x) * kTeamsPerBlock)
    fn(row, 0, true, team);
}

// inner > 1: block (32, P) handles the 32 columns of a tile, column c = (o, i) = (c / inner,
// c % inner); tiles are visited grid-stride.
template <typename RowFn>
__global__ void columns_kernel(RowFn fn, int64_t columns, int64_t inner) {
  const ColumnTeam team{static_cast<int>(threadIdx.y), static_cast<int>(blockDim.y)};
  for (int64_t tile = blockIdx.x; tile * 32 < columns; tile += gridDim.x) {
    // One call site for active and inactive threads alike: the team's combines contain
    // __syncthreads(), which every thread of the block must reach at the same instruction (a
    // barrier inside divergent branches is undefined and can hang).
    const int64_t column = tile * 32 + threadIdx.x;
    const bool active = column < columns;
    const int64_t c = active ? column : 0;
    fn(c / inner, c % inner, active, team);
  }
}

template <typename RowFn>
void launch_rows(const RowFn& fn, int64_t outer, int64_t n, int64_t inner, int device) {
  const cudaStream_t s = stream(device);
  if (inner == 1 && n <= kWarpRowMaxLength) {
    constexpr int kWarpsPerBlock = kThreads / 32;
    rows_kernel<32>
        <<<grid_size((outer + kWarpsPerBlock - 1) / kWarpsPerBlock), kThreads, 0, s>>>(fn, outer);
  } else if (inner == 1) {
    rows_kernel<kThreads><<<grid_size(outer), kThreads, 0, s>>>(fn, outer);
  } else {
    const int64_t columns = outer * inner;
    const int64_t phases = n < 1 ? 1 : (n < kMaxPhases ? n : kMaxPhases);
    const dim3 block(32, static_cast<unsigned>(phases));
    columns_kernel<<<grid_size((columns + 31) / 32), block, 0, s>>>(fn, columns, inner);
  }
  SSM_CUDA_CHECK(cudaGetLastError());
}

// dlogits[o, c, i] = weight (exp(x - lse[o, i]) - [c == t]), weight = w[o, i] or 0 where
// t = targets[o, i] is ignored; one thread per logit, grid-stride.
template <typename T>
__global__ void cross_entropy_backward_kernel(const T* x, const int64_t* targets, const T* lse,
                                              const T* w, T* dx, int64_t total, int64_t classes,
                                              int64_t inner, int64_t ignore_index) {
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = e % inner, c = (e / inner) % classes, o = e / (inner * classes);
    const int64_t p = o * inner + i;
    const int64_t target = targets[p];
    const bool ignored = target == ignore_index;
    const T weight = ignored ? T(0) : w[p];
    T v = weight * std::exp(x[e] - lse[p]);
    if (!ignored && c == target) v -= weight;
    dx[e] = v;
  }
}

} // namespace

void softmax_forward(const Tensor& x, int64_t outer, int64_t n, int64_t inner, bool log,
                     Tensor& y) {
  if (y.numel() == 0) return;
  dispatch_floating(x.dtype(), log ? "log_softmax" : "softmax", [&](auto zero) {
    using T = decltype(zero);
    launch_rows(SoftmaxForwardRow<T>{x.data<T>(), y.data<T>(), n, inner, log}, outer, n, inner,
                x.device().index);
  });
}

void softmax_backward(const Tensor& y, const Tensor& g, int64_t outer, int64_t n, int64_t inner,
                      bool log, Tensor& dx) {
  if (dx.numel() == 0) return;
  dispatch_floating(y.dtype(), log ? "log_softmax" : "softmax", [&](auto zero) {
    using T = decltype(zero);
    launch_rows(SoftmaxBackwardRow<T>{y.data<T>(), g.data<T>(), dx.data<T>(), n, inner, log}, outer,
                n, inner, y.device().index);
  });
}

void cross_entropy_forward(const Tensor& logits, const Tensor& targets, int64_t outer,
                           int64_t classes, int64_t inner, int64_t ignore_index, Tensor& loss,
                           Tensor& lse) {
  if (loss.numel() == 0) return;
  dispatch_floating(logits.dtype(), "cross_entropy", [&](auto zero) {
    using T = decltype(zero);
    launch_rows(CrossEntropyForwardRow<T>{logits.data<T>(), targets.data<int64_t>(), loss.data<T>(),
                                          lse.data<T>(), classes, inner, ignore_index},
                outer, classes, inner, logits.device().index);
  });
}

void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                            const Tensor& w, int64_t outer, int64_t classes, int64_t inner,
                            int64_t ignore_index, Tensor& dlogits) {
  const int64_t total = outer * classes * inner;
  if (total == 0) return;
  dispatch_floating(logits.dtype(), "cross_entropy", [&](auto zero) {
    using T = decltype(zero);
    cross_entropy_backward_kernel<T><<<grid_size((total + kThreads - 1) / kThreads), kThreads, 0,
                                       stream(logits.device().index)>>>(
        logits.data<T>(), targets.data<int64_t>(), lse.data<T>(), w.data<T>(), dlogits.data<T>(),
        total, classes, inner, ignore_index);
    SSM_CUDA_CHECK(cudaGetLastError());
  });
}

} // namespace ssm::cuda
