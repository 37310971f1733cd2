// nn_conv.cu: conv1d forward and backward on CUDA tensors, direct (no im2col). The math and
// the buffers are in tensor/cpu/nn_conv.h:
//
//   y[b, co, t]  = bias[co] + sum_{c < C_in/G} sum_{k < K} w[co, c, k] x[b, ci, t S + k D - P]
//   dx[b, ci, l] = sum_{co of ci's group} sum_{k: l = t S + k D - P, 0 <= t < L_out}
//                      w[co, c, k] g[b, co, t]
//   dw[co, c, k] = sum_b sum_t g[b, co, t] x[b, ci, t S + k D - P]
//   db[co]       = sum_b sum_t g[b, co, t]
// with ci = grp C_in/G + c, grp = co / (C_out/G), and x = 0 outside [0, L) (zero padding).
// Buffers: x, dx (B, C_in, L); weight, dw (C_out, C_in/G, K); bias, db (C_out);
// y, g (B, C_out, L_out).
//
// Parallelisation.
//   y and dx: one thread per output element. A block of (T_t, R) threads covers R rows
//     (a row is (b, co) for y, (b, ci) for dx) and T_t = min(256, L rounded up to 32) positions
//     of each, looping along the row, so consecutive threads read consecutive positions of x
//     (or g) and the row's indices are divided out once per row, not per element. Each thread
//     sums its taps in T in the CPU loop's order (c, then k for y; co, then k for dx).
//     Mamba's causal depthwise case (G = C_in = C_out, P = K - 1, K = 4; B = 8, C = 1536,
//     L = 1024) is K multiply-adds per output over rows that stay in cache: the kernels read
//     x (or g) once and write y (or dx) once, about 100 MB of traffic per direction in float32.
//     With stride 1, dx's tap k reads g at t = l + P - k D with no division.
//   dw: one block per (co, c) and group of up to kTapsPerBlock taps: the block's threads split
//     the B * L_out (b, t) pairs, each thread keeping one double sum per tap (g is read once
//     for all the taps), then the sums are combined over the block: warp butterflies, one
//     partial per warp in shared memory, added in warp order.
//   db: one block per co, the same sum over (b, t) of g alone.
// No atomics: every sum has an order fixed by the shape, so results are the same run to run.
//
// Precision, the CPU loop's, so that kernel and reference round alike: y and dx accumulate in
// T (sums of C_in/G * K and C_out/G * K terms, 4 in Mamba's case, lose nothing worth a
// double), dw and db in double (a sum over B * L_out terms, 8192 in Mamba's case, could lose
// up to 13 bits of a float32 accumulator). float64 results differ from the CPU's by nvcc's fused
// multiply-adds and, for dw and db, the order of the double sums; float32 results by an ulp or so
// of each fused multiply-add.
#include "cuda/check.h"
#include "cuda/group_reduce.cuh"
#include "cuda/nn_conv.h"
#include "cuda/runtime.h"

namespace ssm::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kTapsPerBlock = 8; // taps summed together by one dw block
constexpr int64_t kMaxBlocks = 65535;

int grid_size(int64_t units) {
  return static_cast<int>(units < 1 ? 1 : (units < kMaxBlocks ? units : kMaxBlocks));
}

// Launch shape of the row kernels: threadIdx.x runs along a row of `length` positions,
// threadIdx.y picks one of the block's rows.
struct RowLaunch {
  dim3 grid, block;
};
RowLaunch row_launch(int64_t rows, int64_t length) {
  const int64_t rounded = (length + 31) / 32 * 32;
  const int along = static_cast<int>(rounded < kThreads ? rounded : kThreads);
  const int rows_per_block = kThreads / along;
  return {dim3(grid_size((rows + rows_per_block - 1) / rows_per_block)),
          dim3(along, rows_per_block)};
}

// y[row, t], row = b * C_out + co.
template <typename T>
__global__ void conv1d_forward_kernel(const T* x, const T* w, const T* bias, T* y, Conv1dShape s) {
  const int64_t cin_g = s.in_channels / s.groups, cout_g = s.out_channels / s.groups;
  const int64_t rows = s.batch * s.out_channels;
  for (int64_t row = blockIdx.x * static_cast<int64_t>(blockDim.y) + threadIdx.y; row < rows;
       row += static_cast<int64_t>(gridDim.x) * blockDim.y) {
    const int64_t b = row / s.out_channels, co = row % s.out_channels;
    const T* x_group = x + (b * s.in_channels + co / cout_g * cin_g) * s.length; // (C_in/G, L)
    const T* w_row = w + co * cin_g * s.kernel;                                  // (C_in/G, K)
    T* yr = y + row * s.out_length;                                              // (L_out)
    for (int64_t t = threadIdx.x; t < s.out_length; t += blockDim.x) {
      T acc = bias ? bias[co] : T(0);
      for (int64_t c = 0; c < cin_g; ++c) {
        const T* xr = x_group + c * s.length;
        for (int64_t k = 0; k < s.kernel; ++k) {
          const int64_t pos = t * s.stride + k * s.dilation - s.padding;
          if (pos >= 0 && pos < s.length) acc += w_row[c * s.kernel + k] * xr[pos];
        }
      }
      yr[t] = acc;
    }
  }
}

// dx[row, l], row = b * C_in + ci.
template <typename T, bool kUnitStride>
__global__ void conv1d_backward_input_kernel(const T* w, const T* g, T* dx, Conv1dShape s) {
  const int64_t cin_g = s.in_channels / s.groups, cout_g = s.out_channels / s.groups;
  const int64_t rows = s.batch * s.in_channels;
  for (int64_t row = blockIdx.x * static_cast<int64_t>(blockDim.y) + threadIdx.y; row < rows;
       row += static_cast<int64_t>(gridDim.x) * blockDim.y) {
    const int64_t b = row / s.in_channels, ci = row % s.in_channels;
    const int64_t grp = ci / cin_g, c = ci % cin_g;
    T* dxr = dx + row * s.length; // (L)
    for (int64_t l = threadIdx.x; l < s.length; l += blockDim.x) {
      T acc = 0;
      for (int64_t co = grp * cout_g; co < (grp + 1) * cout_g; ++co) {
        const T* gr = g + (b * s.out_channels + co) * s.out_length; // (L_out)
        const T* wr = w + (co * cin_g + c) * s.kernel;              // (K)
        for (int64_t k = 0; k < s.kernel; ++k) {
          const int64_t reach = l + s.padding - k * s.dilation; // = t S
          if (reach < 0) break;                                 // and for every larger k
          if (!kUnitStride && reach % s.stride != 0) continue;
          const int64_t t = kUnitStride ? reach : reach / s.stride;
          if (t < s.out_length) acc += wr[k] * gr[t];
        }
      }
      dxr[l] = acc;
    }
  }
}

// dw[co, c, k0 .. k0 + taps - 1], one block per (co, c, tap group), grid-stride.
template <typename T>
__global__ void conv1d_weight_grad_kernel(const T* x, const T* g, T* dw, Conv1dShape s) {
  __shared__ double warp_sums[kThreads / 32][kTapsPerBlock];
  const int64_t cin_g = s.in_channels / s.groups, cout_g = s.out_channels / s.groups;
  const int64_t tap_groups = (s.kernel + kTapsPerBlock - 1) / kTapsPerBlock;
  const int64_t units = s.out_channels * cin_g * tap_groups;
  const int64_t pairs = s.batch * s.out_length; // the (b, t) summed over
  for (int64_t unit = blockIdx.x; unit < units; unit += gridDim.x) {
    const int64_t k0 = unit % tap_groups * kTapsPerBlock;
    const int64_t c = unit / tap_groups % cin_g, co = unit / tap_groups / cin_g;
    const int64_t ci = co / cout_g * cin_g + c;
    double acc[kTapsPerBlock] = {};
    for (int64_t pair = threadIdx.x; pair < pairs; pair += blockDim.x) {
      const int64_t b = pair / s.out_length, t = pair % s.out_length;
      const double gv = g[(b * s.out_channels + co) * s.out_length + t];
      const T* xr = x + (b * s.in_channels + ci) * s.length; // (L)
#pragma unroll
      for (int kk = 0; kk < kTapsPerBlock; ++kk) {
        const int64_t pos = t * s.stride + (k0 + kk) * s.dilation - s.padding;
        if (k0 + kk < s.kernel && pos >= 0 && pos < s.length) acc[kk] += gv * double(xr[pos]);
      }
    }
    const int warp = threadIdx.x / 32;
#pragma unroll
    for (int kk = 0; kk < kTapsPerBlock; ++kk) {
      const double total = warp_allreduce(acc[kk], SumCombine{});
      if (threadIdx.x % 32 == 0) warp_sums[warp][kk] = total;
    }
    __syncthreads();
    if (threadIdx.x < kTapsPerBlock && k0 + threadIdx.x < s.kernel) {
      double total = 0;
      for (int w = 0; w < kThreads / 32; ++w) total += warp_sums[w][threadIdx.x];
      dw[(co * cin_g + c) * s.kernel + k0 + threadIdx.x] = static_cast<T>(total);
    }
    __syncthreads(); // warp_sums is rewritten for the next unit
  }
}

// db[co], one block per co, grid-stride.
template <typename T>
__global__ void conv1d_bias_grad_kernel(const T* g, T* db, Conv1dShape s) {
  const int64_t pairs = s.batch * s.out_length;
  for (int64_t co = blockIdx.x; co < s.out_channels; co += gridDim.x) {
    double acc = 0;
    for (int64_t pair = threadIdx.x; pair < pairs; pair += blockDim.x) {
      const int64_t b = pair / s.out_length, t = pair % s.out_length;
      acc += g[(b * s.out_channels + co) * s.out_length + t];
    }
    const double total = group_allreduce<kThreads>(acc, SumCombine{});
    if (threadIdx.x == 0) db[co] = static_cast<T>(total);
  }
}

} // namespace

void conv1d_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                    const Conv1dShape& shape, Tensor& y) {
  if (y.numel() == 0) return;
  const RowLaunch launch = row_launch(shape.batch * shape.out_channels, shape.out_length);
  dispatch_floating(x.dtype(), "conv1d", [&](auto zero) {
    using T = decltype(zero);
    conv1d_forward_kernel<T><<<launch.grid, launch.block, 0, stream(x.device().index)>>>(
        x.data<T>(), weight.data<T>(), bias.defined() ? bias.data<T>() : nullptr, y.data<T>(),
        shape);
    SSM_CUDA_CHECK(cudaGetLastError());
  });
}

void conv1d_backward(const Tensor& x, const Tensor& weight, const Tensor& g,
                     const Conv1dShape& shape, Tensor& dx, Tensor& dweight, Tensor& dbias) {
  const cudaStream_t s = stream(x.device().index);
  dispatch_floating(x.dtype(), "conv1d", [&](auto zero) {
    using T = decltype(zero);
    if (dx.defined() && dx.numel() > 0) {
      const RowLaunch launch = row_launch(shape.batch * shape.in_channels, shape.length);
      if (shape.stride == 1)
        conv1d_backward_input_kernel<T, true><<<launch.grid, launch.block, 0, s>>>(
            weight.data<T>(), g.data<T>(), dx.data<T>(), shape);
      else
        conv1d_backward_input_kernel<T, false><<<launch.grid, launch.block, 0, s>>>(
            weight.data<T>(), g.data<T>(), dx.data<T>(), shape);
      SSM_CUDA_CHECK(cudaGetLastError());
    }
    if (dweight.defined() && dweight.numel() > 0) {
      const int64_t tap_groups = (shape.kernel + kTapsPerBlock - 1) / kTapsPerBlock;
      const int64_t units = dweight.numel() / shape.kernel * tap_groups;
      conv1d_weight_grad_kernel<T><<<grid_size(units), kThreads, 0, s>>>(x.data<T>(), g.data<T>(),
                                                                         dweight.data<T>(), shape);
      SSM_CUDA_CHECK(cudaGetLastError());
    }
    if (dbias.defined() && dbias.numel() > 0) {
      conv1d_bias_grad_kernel<T>
          <<<grid_size(shape.out_channels), kThreads, 0, s>>>(g.data<T>(), dbias.data<T>(), shape);
      SSM_CUDA_CHECK(cudaGetLastError());
    }
  });
}

} // namespace ssm::cuda
