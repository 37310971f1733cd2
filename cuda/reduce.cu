// reduce.cu: sum, max, min and argmax over the middle of a (pre, inner, post) view.
//
//   x   (pre, inner, post) contiguous        out (pre, post) contiguous
//   out[p * post + q] = reduce_{r < inner} x[(p * inner + r) * post + q]
// Sum accumulates in double for float32/float64 and in int64 for int64; max/min propagate NaN
// (the first NaN wins and stays); argmax keeps the first r of the maximum, NaN counting as the
// maximum. Each reduction is an Op with an accumulator Acc:
//     acc = start(&x[p, 0, q]);  acc = add(acc, x[p, r, q], r) over a thread's share of r;
//     partial accumulators merged with combine(a, b);  out = finish(acc)
// combine is associative and commutative (argmax breaks ties by the smaller r), so the merge
// order does not change max, min or argmax; it changes only the rounding of float sums.
//
// Two kernels, chosen by post:
//   post == 1 (trailing dims reduced): each output is one contiguous row of `inner` elements.
//     A group of threads shares a row: lane l adds r = l, l + G, l + 2G, ... (consecutive
//     lanes read consecutive elements), then the group merges its G partials by a tree:
//     warp shuffles (__shfl_down_sync, offsets 16, 8, 4, 2, 1) and, when the group is a whole
//     block, one partial per warp through shared memory and a last shuffle tree in warp 0.
//     G = 32 (a warp per row, 8 rows per 256-thread block) for rows up to kWarpRowMaxInner
//     elements, G = 256 (a block per row) above, so short rows do not idle 224 threads and long
//     rows get 8 warps of loads in flight.
//   post > 1: outputs are tiled in groups of 32 consecutive (p, q); threadIdx.x picks the
//     output, so a warp's loads x[p, r, q..q+31] are coalesced. threadIdx.y (kColumnRows
//     phases) splits r: phase y adds r = y, y + kColumnRows, ...; thread y = 0 then merges the
//     phases' partials from shared memory in phase order.
// Both kernels loop over their outputs grid-stride, so any number of rows or tiles fits a grid
// of at most 65535 blocks.
//
// Summation order. The CPU adds r = 0, 1, 2, ... in order; here the partials of a row are
// summed in a tree. Both accumulate in double, so float64 results differ by the rounding of
// a double sum (a few ulps of the largest partial sum), and float32 results, rounded from
// double accumulators on both sides, differ by at most one float32 ulp.
//
// Not done: a single output's row is never split across blocks, so a reduction with few
// outputs and a very long inner range (sum of every element of a large tensor) runs on as
// many blocks as it has outputs.
#include <type_traits>

#include "cuda/check.h"
#include "cuda/reduce.h"
#include "cuda/runtime.h"

namespace ssm::cuda {

namespace {

constexpr int kThreads = 256; // threads per block of the row kernel
constexpr int kWarpsPerBlock = kThreads / 32;
constexpr int kWarpRowMaxInner = 1024; // rows up to this length get a warp, longer a block
constexpr int kColumnRows = 8;         // phases of r per output in the column kernel
constexpr unsigned kFullMask = 0xffffffffu;
constexpr int64_t kMaxBlocks = 65535;

int grid_size(int64_t units) {
  return static_cast<int>(units < 1 ? 1 : (units < kMaxBlocks ? units : kMaxBlocks));
}

template <typename T>
__device__ __forceinline__ bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>)
    return isnan(v);
  else
    return false;
}

// Whether v replaces best in a max (kMax) or min reduction: a NaN wins and then stays.
template <bool kMax, typename T>
__device__ __forceinline__ bool better(T v, T best) {
  if (is_nan(best)) return false;
  return is_nan(v) || (kMax ? v > best : v < best);
}

// ---- the reductions ------------------------------------------------------------------------

template <typename T>
struct SumOp {
  using In = T;
  using Out = T;
  using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
  static __device__ Acc start(const T*) { return 0; }
  static __device__ Acc add(Acc acc, T v, int64_t) { return acc + static_cast<Acc>(v); }
  static __device__ Acc combine(Acc a, Acc b) { return a + b; }
  static __device__ Out finish(Acc acc) { return static_cast<T>(acc); }
};

// Max (kMax) or min. Starting every thread at the row's first element is harmless (it is one
// of the candidates) and needs no identity value for NaN-aware comparisons.
template <typename T, bool kMax>
struct ExtremumOp {
  using In = T;
  using Out = T;
  using Acc = T;
  static __device__ Acc start(const T* first) { return *first; }
  static __device__ Acc add(Acc acc, T v, int64_t) { return better<kMax>(v, acc) ? v : acc; }
  static __device__ Acc combine(Acc a, Acc b) { return better<kMax>(b, a) ? b : a; }
  static __device__ Out finish(Acc acc) { return acc; }
};

template <typename T>
struct ArgmaxCandidate {
  T value;
  int64_t index; // r of value
};

template <typename T>
struct ArgmaxOp {
  using In = T;
  using Out = int64_t;
  using Acc = ArgmaxCandidate<T>;
  static __device__ Acc start(const T* first) { return {*first, 0}; }
  // A thread visits its r in increasing order, so only a strictly better value replaces.
  static __device__ Acc add(Acc acc, T v, int64_t r) {
    return better<true>(v, acc.value) ? Acc{v, r} : acc;
  }
  // Equal values (or two NaNs): the smaller r, which makes the merge order irrelevant.
  static __device__ Acc combine(Acc a, Acc b) {
    if (better<true>(b.value, a.value)) return b;
    if (better<true>(a.value, b.value)) return a;
    return b.index < a.index ? b : a;
  }
  static __device__ Out finish(Acc acc) { return acc.index; }
};

// ---- tree merges ---------------------------------------------------------------------------

template <typename V>
__device__ __forceinline__ V shuffle_down(V v, int delta) {
  return __shfl_down_sync(kFullMask, v, delta);
}

template <typename T>
__device__ __forceinline__ ArgmaxCandidate<T> shuffle_down(ArgmaxCandidate<T> c, int delta) {
  return {shuffle_down(c.value, delta), shuffle_down(c.index, delta)};
}

// Lane 0 receives the combination of the 32 lanes' accumulators.
template <typename Op>
__device__ typename Op::Acc warp_reduce(typename Op::Acc acc) {
  for (int offset = 16; offset > 0; offset /= 2) acc = Op::combine(acc, shuffle_down(acc, offset));
  return acc;
}

// ---- kernels -------------------------------------------------------------------------------

// post == 1: groups of kGroup threads (a warp or the whole block) reduce one row each.
template <typename Op, int kGroup>
__global__ void reduce_rows_kernel(const typename Op::In* x, typename Op::Out* out, int64_t rows,
                                   int64_t inner) {
  using Acc = typename Op::Acc;
  constexpr int kGroupsPerBlock = kThreads / kGroup;
  const int lane = threadIdx.x % kGroup;
  // Every thread of a group sees the same row, so a whole warp (or block) runs each iteration.
  for (int64_t row = blockIdx.x * static_cast<int64_t>(kGroupsPerBlock) + threadIdx.x / kGroup;
       row < rows; row += static_cast<int64_t>(gridDim.x) * kGroupsPerBlock) {
    const typename Op::In* line = x + row * inner;
    Acc acc = Op::start(line);
    for (int64_t r = lane; r < inner; r += kGroup) acc = Op::add(acc, line[r], r);
    acc = warp_reduce<Op>(acc);
    if constexpr (kGroup > 32) {
      constexpr int kWarps = kGroup / 32;
      __shared__ Acc warp_partials[kWarps];
      const int warp = threadIdx.x / 32;
      if (threadIdx.x % 32 == 0) warp_partials[warp] = acc;
      __syncthreads();
      if (warp == 0) acc = warp_reduce<Op>(lane < kWarps ? warp_partials[lane] : Op::start(line));
      __syncthreads(); // warp_partials is rewritten for the next row
    }
    if (lane == 0) out[row] = Op::finish(acc);
  }
}

// post > 1: block (32, phases) reduces 32 consecutive outputs; see the top of the file.
template <typename Op>
__global__ void reduce_columns_kernel(const typename Op::In* x, typename Op::Out* out, int64_t pre,
                                      int64_t inner, int64_t post) {
  using Acc = typename Op::Acc;
  __shared__ Acc partials[kColumnRows][32];
  const int64_t outputs = pre * post;
  for (int64_t tile = blockIdx.x; tile * 32 < outputs; tile += gridDim.x) {
    const int64_t o = tile * 32 + threadIdx.x; // output (p, q) = (o / post, o % post)
    Acc acc{};
    if (o < outputs) {
      // x[p, r, q] sits at column[r * post].
      const typename Op::In* column = x + (o / post) * inner * post + o % post;
      acc = Op::start(column);
      for (int64_t r = threadIdx.y; r < inner; r += blockDim.y)
        acc = Op::add(acc, column[r * post], r);
    }
    partials[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && o < outputs) {
      for (unsigned phase = 1; phase < blockDim.y; ++phase)
        acc = Op::combine(acc, partials[phase][threadIdx.x]);
      out[o] = Op::finish(acc);
    }
    __syncthreads(); // partials is rewritten for the next tile
  }
}

template <typename Op>
void launch(const typename Op::In* x, typename Op::Out* out, int64_t pre, int64_t inner,
            int64_t post, cudaStream_t s) {
  if (post == 1 && inner <= kWarpRowMaxInner) {
    const int blocks = grid_size((pre + kWarpsPerBlock - 1) / kWarpsPerBlock);
    reduce_rows_kernel<Op, 32><<<blocks, kThreads, 0, s>>>(x, out, pre, inner);
  } else if (post == 1) {
    reduce_rows_kernel<Op, kThreads><<<grid_size(pre), kThreads, 0, s>>>(x, out, pre, inner);
  } else {
    const int64_t tiles = (pre * post + 31) / 32;
    const int64_t phases = inner < 1 ? 1 : (inner < kColumnRows ? inner : kColumnRows);
    const dim3 block(32, static_cast<unsigned>(phases));
    reduce_columns_kernel<Op><<<grid_size(tiles), block, 0, s>>>(x, out, pre, inner, post);
  }
  SSM_CUDA_CHECK(cudaGetLastError());
}

} // namespace

void reduce(ReduceKind kind, const Tensor& x, int64_t pre, int64_t inner, int64_t post,
            Tensor& out) {
  if (out.numel() == 0) return;
  const cudaStream_t s = stream(x.device().index);
  dispatch_dtype(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    switch (kind) {
      case ReduceKind::Sum: launch<SumOp<T>>(px, po, pre, inner, post, s); break;
      case ReduceKind::Max: launch<ExtremumOp<T, true>>(px, po, pre, inner, post, s); break;
      case ReduceKind::Min: launch<ExtremumOp<T, false>>(px, po, pre, inner, post, s); break;
    }
  });
}

void argmax(const Tensor& x, int64_t pre, int64_t inner, int64_t post, Tensor& out) {
  if (out.numel() == 0) return;
  const cudaStream_t s = stream(x.device().index);
  dispatch_dtype(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    launch<ArgmaxOp<T>>(x.data<T>(), out.data<int64_t>(), pre, inner, post, s);
  });
}

} // namespace ssm::cuda
