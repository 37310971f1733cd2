// indexing.cuh: turning a thread's linear index into element offsets of strided tensors.
//
// The CUDA counterpart of tensor/cpu/strided.h. A kernel over an output of shape
// (d0, ..., dk) gives thread t the linear index i = t + blockIdx.x * blockDim.x (grid-stride
// loop); its multi-index is the row-major digits of i, and operand n's element sits at
//     offset_n = sum_j digit_j * strides_n[j]
// Broadcast operands come in already expanded (stride 0 where broadcast), so one formula
// serves every op. Layouts are passed to kernels by value (at most kMaxDims dims); dims that
// are contiguous in every operand are merged first, so most tensors need one or two divisions
// per element, and a fully contiguous operand needs none.
//
// Offsets and linear indices are int64: a tensor may exceed 2^31 elements.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace ssm::cuda {

constexpr int kMaxDims = 8;

template <int N>
struct StridedLayout {
  int ndim = 0;
  int64_t sizes[kMaxDims];
  int64_t strides[N][kMaxDims];

  // Offsets of the element with row-major linear index `linear` in each operand.
  __device__ __forceinline__ void offsets(int64_t linear, int64_t (&out)[N]) const {
#pragma unroll
    for (int n = 0; n < N; ++n) out[n] = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      const int64_t digit = linear % sizes[d];
      linear /= sizes[d];
#pragma unroll
      for (int n = 0; n < N; ++n) out[n] += digit * strides[n][d];
    }
  }
};

// Builds the layout of N operands of one shape (already expanded to it), merging adjacent
// dims d, d+1 whenever stride[d] == stride[d+1] * size[d+1] in every operand. Throws naming
// `op` when more than kMaxDims dims remain.
template <int N>
StridedLayout<N> make_layout(const Shape& shape, const std::vector<const Tensor*>& operands,
                             const char* op) {
  std::vector<int64_t> sizes;
  std::vector<std::vector<int64_t>> strides(N);
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue; // size-1 dims never move the offset
    bool merge = !sizes.empty();
    for (int n = 0; n < N && merge; ++n)
      merge = strides[n].back() == operands[n]->strides()[d] * shape[d];
    if (merge) {
      sizes.back() *= shape[d];
      for (int n = 0; n < N; ++n) strides[n].back() = operands[n]->strides()[d];
    } else {
      sizes.push_back(shape[d]);
      for (int n = 0; n < N; ++n) strides[n].push_back(operands[n]->strides()[d]);
    }
  }
  if (sizes.size() > static_cast<size_t>(kMaxDims))
    throw std::invalid_argument(std::string(op) + ": CUDA kernels support at most " +
                                std::to_string(kMaxDims) + " non-mergeable dims, got " +
                                std::to_string(sizes.size()) + " for shape " + shape_str(shape));
  StridedLayout<N> layout;
  layout.ndim = static_cast<int>(sizes.size());
  for (int d = 0; d < layout.ndim; ++d) {
    layout.sizes[d] = sizes[d];
    for (int n = 0; n < N; ++n) layout.strides[n][d] = strides[n][d];
  }
  return layout;
}

// Launch shape of a grid-stride elementwise kernel over n elements: 256 threads per block and
// enough blocks to fill the device several times over (capped; the loop covers the rest).
inline int elementwise_blocks(int64_t n) {
  const int64_t blocks = (n + 255) / 256;
  return static_cast<int>(blocks < 65535 ? (blocks > 0 ? blocks : 1) : 65535);
}
constexpr int kElementwiseThreads = 256;

} // namespace ssm::cuda
