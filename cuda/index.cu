// index.cu: index_select, gather, scatter_add_, index_add_, concat and cumsum on CUDA.
//
// Shapes and math as in tensor/ops_index.cpp (d = dim):
//   index_select  out (.., n, ..)     out[.., i, ..] = x[.., index[i], ..]         index (n)
//   gather        out = index shape   out[p] = x[p with coordinate d := index[p]]
//   scatter_add_  out (x's shape)     out[p with coordinate d := index[p]] += src[p]
//   index_add_    dst (.., m, ..)     dst[.., index[i], ..] += src[.., i, ..]       index (n)
//   concat        out (.., sum n_k, ..) = inputs[k] placed one after another along d
//   cumsum        out (x's shape)     out[.., k, ..] = sum_{j <= k} x[.., j, ..]
//
// The four indexed ops are one thread per element of the walked shape (out's for index_select,
// index's for gather and scatter_add_, src's for index_add_), grid-stride, with the CPU loops'
// trick (tensor/cpu/index.cpp): the indexed operand is walked as a view with size 1 at d
// expanded to the walked shape (stride 0 at d), which lands on the start of the line through d;
// the thread adds index * stride(d) of that operand to reach the picked element. A 1-D index
// is walked as a view that varies only along d. The reads are then one kernel,
//     target[o_target] = source[o_line + index[o_index] * source_stride_d],
// and the adds another,
//     atomicAdd(&target[o_line + index[o_index] * target_stride_d], source[o_source]),
// atomic because repeated indices send several threads to one element (double atomicAdd needs
// sm_60; int64 adds as unsigned long long, the same bits in two's complement).
//
// concat copies each input into its slab of out (a narrowed view) with the strided copy kernel
// of cuda/copy.cu, one launch per input.
//
// cumsum scans each line through d; x and out may be strided. Float32 and float64 accumulate in
// double (as the CPU does), int64 in int64. Two kernels:
//   a warp per line: 32 consecutive elements at a time, an inclusive warp scan of them
//     (Hillis-Steele: at step s = 1, 2, 4, 8, 16 lane l adds lane l - s's value through
//     __shfl_up_sync), plus the running total of the line's earlier chunks, which lane 31's
//     value then extends. Used when the line is contiguous (the lanes' loads coalesce) or when
//     there are too few lines to give each its own thread and still fill the GPU.
//   a thread per line otherwise (many strided lines): each thread adds its line in order, the
//     CPU's own order; neighbouring threads have neighbouring lines, so the loads coalesce.
// The warp scan adds in a different order than the CPU: float64 results agree to rounding and
// float32 results (rounded from double) to one float32 ulp.
#include <type_traits>

#include "cuda/check.h"
#include "cuda/copy.h"
#include "cuda/index.h"
#include "cuda/indexing.cuh"
#include "cuda/runtime.h"

namespace ssm::cuda {

namespace {

constexpr unsigned kFullMask = 0xffffffffu;
// Fewer lines than this are scanned a warp per line even when strided: a thread per line
// would leave most of the GPU's ~270k resident threads (132 SMs x 2048) idle.
constexpr int64_t kLinesForThreadPerLine = 16384;

// ---- views that implement the trick at the top of the file ---------------------------------

// t with size 1 at `dim`, cut to `shape` elsewhere and expanded to it: strides of t with 0 at
// dim. Needs t.size(dim) >= 1 and shape[k] <= t.size(k).
Tensor line_starts(const Tensor& t, int64_t dim, const Shape& shape) {
  Tensor view = t.narrow(dim, 0, 1);
  for (int64_t k = 0; k < t.dim(); ++k)
    if (k != dim) view = view.narrow(k, 0, shape[k]);
  return view.expand(shape);
}

// The 1-D `index` as a tensor of `shape` that varies only along `dim` (shape[dim] == its size).
Tensor index_along(const Tensor& index, int64_t dim, const Shape& shape) {
  Tensor view = index;
  for (int64_t k = 0; k < dim; ++k) view = view.unsqueeze(0);
  while (view.dim() < static_cast<int64_t>(shape.size())) view = view.unsqueeze(view.dim());
  return view.expand(shape);
}

// The leading part of t that `shape` covers (shape[k] <= t.size(k)).
Tensor leading_part(const Tensor& t, const Shape& shape) {
  Tensor view = t;
  for (int64_t k = 0; k < t.dim(); ++k) view = view.narrow(k, 0, shape[k]);
  return view;
}

// ---- kernels -------------------------------------------------------------------------------

__device__ __forceinline__ void atomic_add(float* address, float value) {
  atomicAdd(address, value);
}
__device__ __forceinline__ void atomic_add(double* address, double value) {
  atomicAdd(address, value);
}
__device__ __forceinline__ void atomic_add(int64_t* address, int64_t value) {
  atomicAdd(reinterpret_cast<unsigned long long*>(address), static_cast<unsigned long long>(value));
}

// layout operands: 0 target, 1 source line starts, 2 index.
template <typename T>
__global__ void read_indexed_kernel(T* target, const T* source, const int64_t* index,
                                    int64_t source_dim_stride, int64_t n, StridedLayout<3> layout) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t off[3];
    layout.offsets(i, off);
    target[off[0]] = source[off[1] + index[off[2]] * source_dim_stride];
  }
}

// layout operands: 0 target line starts, 1 source, 2 index.
template <typename T>
__global__ void add_indexed_kernel(T* target, const T* source, const int64_t* index,
                                   int64_t target_dim_stride, int64_t n, StridedLayout<3> layout) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t off[3];
    layout.offsets(i, off);
    atomic_add(&target[off[0] + index[off[2]] * target_dim_stride], source[off[1]]);
  }
}

// target[o0] = source[o1 + index[o2] * source_dim_stride] over `shape`; operands already
// expanded to it.
void read_indexed(const Tensor& target, const Tensor& source_lines, const Tensor& index_view,
                  int64_t source_dim_stride, const char* op) {
  const int64_t n = target.numel();
  const StridedLayout<3> layout =
      make_layout<3>(target.shape(), {&target, &source_lines, &index_view}, op);
  dispatch_dtype(target.dtype(), [&](auto zero) {
    using T = decltype(zero);
    read_indexed_kernel<T>
        <<<elementwise_blocks(n), kElementwiseThreads, 0, stream(target.device().index)>>>(
            target.data<T>(), source_lines.data<T>(), index_view.data<int64_t>(), source_dim_stride,
            n, layout);
    SSM_CUDA_CHECK(cudaGetLastError());
  });
}

// target[o0 + index[o2] * target_dim_stride] += source[o1] over source's shape.
void add_indexed(const Tensor& target_lines, const Tensor& source, const Tensor& index_view,
                 int64_t target_dim_stride, const char* op) {
  const int64_t n = source.numel();
  const StridedLayout<3> layout =
      make_layout<3>(source.shape(), {&target_lines, &source, &index_view}, op);
  dispatch_dtype(source.dtype(), [&](auto zero) {
    using T = decltype(zero);
    add_indexed_kernel<T>
        <<<elementwise_blocks(n), kElementwiseThreads, 0, stream(source.device().index)>>>(
            target_lines.data<T>(), source.data<T>(), index_view.data<int64_t>(), target_dim_stride,
            n, layout);
    SSM_CUDA_CHECK(cudaGetLastError());
  });
}

// cumsum, a warp per line; `lines` walks the first element of every line (operands out, x).
template <typename T>
__global__ void cumsum_warp_kernel(T* out, const T* x, int64_t lines, int64_t length,
                                   int64_t out_step, int64_t x_step, StridedLayout<2> layout) {
  using Acc = std::conditional_t<std::is_same_v<T, float>, double, T>;
  const int lane = threadIdx.x % 32;
  const int64_t warps_per_block = blockDim.x / 32;
  for (int64_t line = blockIdx.x * warps_per_block + threadIdx.x / 32; line < lines;
       line += static_cast<int64_t>(gridDim.x) * warps_per_block) {
    int64_t start[2];
    layout.offsets(line, start);
    Acc before_chunk = 0; // sum of the line's elements before the current chunk
    for (int64_t chunk = 0; chunk < length; chunk += 32) {
      const int64_t k = chunk + lane;
      Acc prefix = k < length ? static_cast<Acc>(x[start[1] + k * x_step]) : Acc(0);
      for (int step = 1; step < 32; step *= 2) {
        const Acc from_left = __shfl_up_sync(kFullMask, prefix, step);
        if (lane >= step) prefix += from_left;
      }
      if (k < length) out[start[0] + k * out_step] = static_cast<T>(before_chunk + prefix);
      before_chunk += __shfl_sync(kFullMask, prefix, 31);
    }
  }
}

// cumsum, a thread per line, adding in the CPU's order.
template <typename T>
__global__ void cumsum_thread_kernel(T* out, const T* x, int64_t lines, int64_t length,
                                     int64_t out_step, int64_t x_step, StridedLayout<2> layout) {
  using Acc = std::conditional_t<std::is_same_v<T, float>, double, T>;
  for (int64_t line = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; line < lines;
       line += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t start[2];
    layout.offsets(line, start);
    Acc running = 0;
    for (int64_t k = 0; k < length; ++k) {
      running += x[start[1] + k * x_step];
      out[start[0] + k * out_step] = static_cast<T>(running);
    }
  }
}

} // namespace

void index_select(const Tensor& x, int64_t dim, const Tensor& index, Tensor& out) {
  if (out.numel() == 0) return;
  read_indexed(out, line_starts(x, dim, out.shape()), index_along(index, dim, out.shape()),
               x.strides()[dim], "index_select");
}

void gather(const Tensor& x, int64_t dim, const Tensor& index, Tensor& out) {
  if (out.numel() == 0) return;
  read_indexed(out, line_starts(x, dim, index.shape()), index, x.strides()[dim], "gather");
}

void scatter_add_(Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  if (index.numel() == 0) return;
  add_indexed(line_starts(out, dim, index.shape()), leading_part(src, index.shape()), index,
              out.strides()[dim], "scatter_add");
}

void index_add_(Tensor& dst, int64_t dim, const Tensor& index, const Tensor& src) {
  if (src.numel() == 0) return;
  add_indexed(line_starts(dst, dim, src.shape()), src, index_along(index, dim, src.shape()),
              dst.strides()[dim], "index_add_");
}

void concat(const std::vector<Tensor>& inputs, int64_t dim, Tensor& out) {
  int64_t start = 0;
  for (const Tensor& in : inputs) {
    const int64_t length = in.size(dim);
    Tensor slab = out.narrow(dim, start, length);
    copy(in, slab);
    start += length;
  }
}

void cumsum(const Tensor& x, int64_t dim, Tensor& out) {
  if (x.numel() == 0) return;
  // Walking `lines` (x's shape with size 1 at dim) visits the first element of every line.
  Shape lines_shape = x.shape();
  const int64_t length = lines_shape[dim];
  lines_shape[dim] = 1;
  const int64_t lines = numel_of(lines_shape);
  const StridedLayout<2> layout = make_layout<2>(lines_shape, {&out, &x}, "cumsum");
  const int64_t out_step = out.strides()[dim], x_step = x.strides()[dim];
  const cudaStream_t s = stream(x.device().index);
  const bool warp_per_line = x_step == 1 || lines < kLinesForThreadPerLine;
  dispatch_dtype(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    if (warp_per_line) {
      // 32 threads per line; kElementwiseThreads (256) is a whole number of warps.
      cumsum_warp_kernel<T><<<elementwise_blocks(lines * 32), kElementwiseThreads, 0, s>>>(
          out.data<T>(), x.data<T>(), lines, length, out_step, x_step, layout);
    } else {
      cumsum_thread_kernel<T><<<elementwise_blocks(lines), kElementwiseThreads, 0, s>>>(
          out.data<T>(), x.data<T>(), lines, length, out_step, x_step, layout);
    }
    SSM_CUDA_CHECK(cudaGetLastError());
  });
}

} // namespace ssm::cuda
