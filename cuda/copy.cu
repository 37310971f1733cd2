// copy.cu: strided copy with dtype conversion, and fill.
//
//   copy:  dst[offset_dst(i)] = (Dst) src[offset_src(i)]   for i in [0, numel)
//   fill:  dst[offset_dst(i)] = value
// One thread per element in a grid-stride loop; offsets from cuda/indexing.cuh. Contiguous
// operands collapse to one dim, so a packed copy costs no index arithmetic beyond the loop.
#include "cuda/check.h"
#include "cuda/copy.h"
#include "cuda/indexing.cuh"
#include "cuda/runtime.h"

namespace ssm::cuda {

template <typename Dst, typename Src>
__global__ void copy_kernel(Dst* dst, const Src* src, int64_t n, StridedLayout<2> layout) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t off[2];
    layout.offsets(i, off);
    dst[off[0]] = static_cast<Dst>(src[off[1]]);
  }
}

template <typename T>
__global__ void fill_kernel(T* dst, T value, int64_t n, StridedLayout<1> layout) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t off[1];
    layout.offsets(i, off);
    dst[off[0]] = value;
  }
}

void copy(const Tensor& src, Tensor& dst) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  const int device = dst.device().index;
  const StridedLayout<2> layout = make_layout<2>(dst.shape(), {&dst, &src}, "copy_");
  dispatch_dtype(dst.dtype(), [&](auto dst_zero) {
    using D = decltype(dst_zero);
    dispatch_dtype(src.dtype(), [&](auto src_zero) {
      using S = decltype(src_zero);
      copy_kernel<D, S><<<elementwise_blocks(n), kElementwiseThreads, 0, stream(device)>>>(
          dst.data<D>(), src.data<S>(), n, layout);
      SSM_CUDA_CHECK(cudaGetLastError());
    });
  });
}

void fill(Tensor& dst, double value) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  const int device = dst.device().index;
  const StridedLayout<1> layout = make_layout<1>(dst.shape(), {&dst}, "fill_");
  dispatch_dtype(dst.dtype(), [&](auto zero) {
    using T = decltype(zero);
    fill_kernel<T><<<elementwise_blocks(n), kElementwiseThreads, 0, stream(device)>>>(
        dst.data<T>(), static_cast<T>(value), n, layout);
    SSM_CUDA_CHECK(cudaGetLastError());
  });
}

} // namespace ssm::cuda
