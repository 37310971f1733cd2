// group_reduce.cuh: a sum or a maximum over the threads of a group that shares one row, every
// thread of the group receiving the result (the row kernels of nn_softmax.cu and nn_norm.cu).
//
// A group is one warp (kGroup = 32) or one whole block (kGroup = blockDim.x, a multiple of 32).
//   Within a warp: a butterfly, v = combine(v, shfl_xor(v, offset)) for offset = 16, 8, 4, 2,
//     1. Lanes i and i ^ offset combine the same two values, so after each step they hold
//     bitwise the same result, and after the last step all 32 lanes do.
//   A block: each warp's butterfly, lane 0 of warp w stores its result in partials[w], and
//     every thread then combines partials[0], partials[1], ... in that order: one value, the
//     same on every thread.
// The order of the additions depends only on the group size, never on timing, so sums are
// reproducible run to run. Every thread of the group must make the call (no divergence); the
// block version ends with a barrier so that the next call may reuse `partials`.
//
// GroupTeam packages this for the row kernels: member `rank` of `size` visits the row's
// elements j = rank, rank + size, ... and allreduce() combines one value per member.
#pragma once

#include <cmath>

namespace ssm::cuda {

struct SumCombine {
  template <typename V>
  __device__ __forceinline__ V operator()(V a, V b) const {
    return a + b;
  }
};

// The larger value; NaN never wins a comparison, so it is skipped (as the CPU loops' maxima).
struct MaxCombine {
  template <typename V>
  __device__ __forceinline__ V operator()(V a, V b) const {
    return b > a ? b : a;
  }
};

template <typename V, typename Combine>
__device__ __forceinline__ V warp_allreduce(V v, Combine combine) {
  for (int offset = 16; offset > 0; offset /= 2)
    v = combine(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

template <int kGroup, typename V, typename Combine>
__device__ __forceinline__ V group_allreduce(V v, Combine combine) {
  static_assert(kGroup % 32 == 0, "a group is made of whole warps");
  v = warp_allreduce(v, combine);
  if constexpr (kGroup > 32) {
    constexpr int kWarps = kGroup / 32;
    __shared__ V partials[kWarps];
    if (threadIdx.x % 32 == 0) partials[threadIdx.x / 32] = v;
    __syncthreads();
    v = partials[0];
    for (int w = 1; w < kWarps; ++w) v = combine(v, partials[w]);
    __syncthreads();
  }
  return v;
}

template <int kGroup>
struct GroupTeam {
  int rank;
  static constexpr int size = kGroup;
  template <typename V, typename Combine>
  __device__ __forceinline__ V allreduce(V v, Combine combine) const {
    return group_allreduce<kGroup>(v, combine);
  }
};

} // namespace ssm::cuda
