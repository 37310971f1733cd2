// nn_norm.cu: layer_norm and rms_norm on CUDA tensors (the math is in tensor/cpu/nn_norm.h).
//
//   forward:   mu = mean_j x_j (0 for rms_norm),  var = mean_j (x_j - mu)^2,
//              r = 1 / sqrt(var + eps),  y_j = (x_j - mu) r w_j + b_j
//   backward:  gh_j = g_j w_j,  xhat_j = (x_j - mu) r
//              dx_j = r (gh_j - mean(gh) - xhat_j mean(gh xhat))   (rms_norm: no mean(gh))
//              dw_j = sum_rows g_j xhat_j,  db_j = sum_rows g_j
// Buffers: x, y, g, dx (rows, n); weight, bias, dweight, dbias (n); mean, rstd (rows).
//
// Parallelisation.
//   forward and dx: a team of threads per row, as the softmax rows of nn_softmax.cu: one warp
//     for rows of up to kWarpRowMaxLength elements (8 rows per 256-thread block), a whole
//     block above. Member `rank` visits j = rank, rank + 32 (or 256), ...; the row sums are
//     combined by cuda/group_reduce.cuh, so every member holds mu, r and the two means.
//   dweight, dbias: sums over rows of one column each, in two kernels and without atomics,
//     so that the result is the same run to run:
//     1. norm_param_partials: the rows are cut into `chunks` consecutive chunks (the number
//        depends on rows alone). Block (32, 8) at grid (column tile, chunk) sums the chunk's
//        rows for 32 consecutive columns: threadIdx.x picks the column (coalesced loads),
//        threadIdx.y the rows y, y + 8, ... of the chunk; the 8 partials are added in order
//        through shared memory, giving partial[chunk][j] (double).
//     2. norm_param_totals: one thread per column adds partial[0][j], partial[1][j], ... in
//        order and rounds to T.
//
// Precision, the CPU loop's, so that kernel and reference round alike: row statistics and the
// dweight/dbias sums in double (sums of n, or of rows, terms: a float32 accumulator could
// lose up to log2 of that many bits, and the two-pass variance needs an accurate mean); mu
// and r rounded to T; y, gh, xhat and dx in T. The sums are added in a tree instead of in
// order, so float64 results differ from the CPU's by a few ulps of the sums, float32 results
// by an ulp where a double sum rounds differently, and by nvcc's fused multiply-adds where
// the CPU rounds twice.
#include "cuda/check.h"
#include "cuda/group_reduce.cuh"
#include "cuda/nn_norm.h"
#include "cuda/runtime.h"

namespace ssm::cuda {

namespace {

constexpr int kThreads = 256;           // threads per block of the row kernels
constexpr int kWarpRowMaxLength = 1024; // rows up to this long get a warp, longer a block
constexpr int kParamRowPhases = 8;      // threadIdx.y of the dweight/dbias partial kernel
constexpr int64_t kMinRowsPerChunk = 64;
constexpr int64_t kMaxChunks = 1024;
constexpr int64_t kMaxBlocks = 65535;

int grid_size(int64_t units) {
  return static_cast<int>(units < 1 ? 1 : (units < kMaxBlocks ? units : kMaxBlocks));
}

// The pointer to a tensor's elements, or nullptr when it is undefined.
template <typename T>
T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

template <typename T>
struct NormForwardRow {
  NormKind kind;
  const T* x;
  const T* w; // (n) or null
  const T* b; // (n) or null
  double eps;
  T* y;
  T* mean; // (rows), null for RmsNorm
  T* rstd;
  int64_t n;

  template <typename Team>
  __device__ void operator()(int64_t row, const Team& team) const {
    const T* xr = x + row * n;
    T* yr = y + row * n;
    double mu = 0;
    if (kind == NormKind::LayerNorm) {
      double sum = 0;
      for (int64_t j = team.rank; j < n; j += team.size) sum += double(xr[j]);
      mu = team.allreduce(sum, SumCombine{}) / double(n);
    }
    // Squares of centred values (not mean(x^2) - mu^2, which cancels when |mu| is large).
    double squares = 0;
    for (int64_t j = team.rank; j < n; j += team.size) {
      const double centred = xr[j] - mu;
      squares += centred * centred;
    }
    const double var = team.allreduce(squares, SumCombine{}) / double(n);
    const T mu_t = static_cast<T>(mu), r_t = static_cast<T>(1.0 / sqrt(var + eps));
    for (int64_t j = team.rank; j < n; j += team.size) {
      T v = (xr[j] - mu_t) * r_t;
      if (w) v *= w[j];
      if (b) v += b[j];
      yr[j] = v;
    }
    if (team.rank == 0) {
      if (mean) mean[row] = mu_t;
      rstd[row] = r_t;
    }
  }
};

template <typename T>
struct NormBackwardInputRow {
  NormKind kind;
  const T* x;
  const T* w; // (n) or null
  const T* mean;
  const T* rstd;
  const T* g;
  T* dx;
  int64_t n;

  template <typename Team>
  __device__ void operator()(int64_t row, const Team& team) const {
    const T* xr = x + row * n;
    const T* gr = g + row * n;
    T* dxr = dx + row * n;
    const T mu = kind == NormKind::LayerNorm ? mean[row] : T(0), r = rstd[row];
    auto gh = [&](int64_t j) { return w ? gr[j] * w[j] : gr[j]; };
    auto xhat = [&](int64_t j) { return (xr[j] - mu) * r; };
    double sum_gh = 0, sum_gh_xhat = 0;
    for (int64_t j = team.rank; j < n; j += team.size) {
      sum_gh += double(gh(j));
      sum_gh_xhat += double(gh(j)) * xhat(j);
    }
    const T mean_gh = kind == NormKind::LayerNorm
                          ? static_cast<T>(team.allreduce(sum_gh, SumCombine{}) / double(n))
                          : T(0);
    const T mean_gh_xhat = static_cast<T>(team.allreduce(sum_gh_xhat, SumCombine{}) / double(n));
    for (int64_t j = team.rank; j < n; j += team.size)
      dxr[j] = r * (gh(j) - mean_gh - xhat(j) * mean_gh_xhat);
  }
};

// Team g of the block (a warp or the whole block) handles rows g, g + teams, ...
template <int kGroup, typename RowFn>
__global__ void norm_rows_kernel(RowFn fn, int64_t rows) {
  constexpr int kTeamsPerBlock = kThreads / kGroup;
  const GroupTeam<kGroup> team{static_cast<int>(threadIdx.x % kGroup)};
  for (int64_t row = blockIdx.x * static_cast<int64_t>(kTeamsPerBlock) + threadIdx.x / kGroup;
       row < rows; row += static_cast<int64_t>(gridDim.x) * kTeamsPerBlock)
    fn(row, team);
}

template <typename RowFn>
void launch_rows(const RowFn& fn, int64_t rows, int64_t n, int device) {
  const cudaStream_t s = stream(device);
  if (n <= kWarpRowMaxLength) {
    constexpr int kWarpsPerBlock = kThreads / 32;
    norm_rows_kernel<32>
        <<<grid_size((rows + kWarpsPerBlock - 1) / kWarpsPerBlock), kThreads, 0, s>>>(fn, rows);
  } else {
    norm_rows_kernel<kThreads><<<grid_size(rows), kThreads, 0, s>>>(fn, rows);
  }
  SSM_CUDA_CHECK(cudaGetLastError());
}

// Step 1 of dweight/dbias (see the top of the file): for the rows
// [chunk * rows_per_chunk, min(rows, (chunk + 1) * rows_per_chunk)) of column j,
//   w_partial[chunk * n + j] = sum g xhat,  b_partial[chunk * n + j] = sum g   (double).
// Either output may be null (that gradient is not needed).
template <typename T>
__global__ void norm_param_partials(NormKind kind, const T* x, const T* mean, const T* rstd,
                                    const T* g, double* w_partial, double* b_partial, int64_t rows,
                                    int64_t n, int64_t rows_per_chunk) {
  __shared__ double w_phase[kParamRowPhases][32], b_phase[kParamRowPhases][32];
  const int64_t chunk = blockIdx.y;
  const int64_t begin = chunk * rows_per_chunk;
  const int64_t end = begin + rows_per_chunk < rows ? begin + rows_per_chunk : rows;
  for (int64_t tile = blockIdx.x; tile * 32 < n; tile += gridDim.x) {
    const int64_t j = tile * 32 + threadIdx.x;
    double sum_g_xhat = 0, sum_g = 0;
    if (j < n) {
      for (int64_t row = begin + threadIdx.y; row < end; row += kParamRowPhases) {
        const T mu = kind == NormKind::LayerNorm ? mean[row] : T(0);
        const T gv = g[row * n + j];
        sum_g_xhat += gv * ((x[row * n + j] - mu) * rstd[row]);
        sum_g += gv;
      }
    }
    w_phase[threadIdx.y][threadIdx.x] = sum_g_xhat;
    b_phase[threadIdx.y][threadIdx.x] = sum_g;
    __syncthreads();
    if (threadIdx.y == 0 && j < n) {
      for (int phase = 1; phase < kParamRowPhases; ++phase) {
        sum_g_xhat += w_phase[phase][threadIdx.x];
        sum_g += b_phase[phase][threadIdx.x];
      }
      if (w_partial) w_partial[chunk * n + j] = sum_g_xhat;
      if (b_partial) b_partial[chunk * n + j] = sum_g;
    }
    __syncthreads(); // the phase buffers are rewritten for the next tile
  }
}

// Step 2: out[j] = sum over chunks of partial[chunk * n + j], in chunk order.
template <typename T>
__global__ void norm_param_totals(const double* partial, T* out, int64_t chunks, int64_t n) {
  for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < n;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double total = 0;
    for (int64_t chunk = 0; chunk < chunks; ++chunk) total += partial[chunk * n + j];
    out[j] = static_cast<T>(total);
  }
}

template <typename T>
void norm_param_grads(NormKind kind, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                      const Tensor& g, Tensor& dweight, Tensor& dbias, int64_t rows, int64_t n) {
  const int device = x.device().index;
  const cudaStream_t s = stream(device);
  if (rows == 0) {
    if (dweight.defined()) dweight.fill_(0);
    if (dbias.defined()) dbias.fill_(0);
    return;
  }
  const int64_t wanted = (rows + kMaxChunks - 1) / kMaxChunks;
  const int64_t rows_per_chunk = wanted > kMinRowsPerChunk ? wanted : kMinRowsPerChunk;
  const int64_t chunks = (rows + rows_per_chunk - 1) / rows_per_chunk;
  // (chunks, n) each, double.
  const Tensor w_partial =
      dweight.defined() ? Tensor::empty({chunks, n}, DType::Float64, x.device()) : Tensor();
  const Tensor b_partial =
      dbias.defined() ? Tensor::empty({chunks, n}, DType::Float64, x.device()) : Tensor();
  const dim3 grid(grid_size((n + 31) / 32), static_cast<unsigned>(chunks));
  const dim3 block(32, kParamRowPhases);
  norm_param_partials<T><<<grid, block, 0, s>>>(
      kind, x.data<T>(), kind == NormKind::LayerNorm ? mean.data<T>() : nullptr, rstd.data<T>(),
      g.data<T>(), data_or_null<double>(w_partial), data_or_null<double>(b_partial), rows, n,
      rows_per_chunk);
  SSM_CUDA_CHECK(cudaGetLastError());
  const int total_blocks = grid_size((n + kThreads - 1) / kThreads);
  if (dweight.defined()) {
    norm_param_totals<T>
        <<<total_blocks, kThreads, 0, s>>>(w_partial.data<double>(), dweight.data<T>(), chunks, n);
    SSM_CUDA_CHECK(cudaGetLastError());
  }
  if (dbias.defined()) {
    norm_param_totals<T>
        <<<total_blocks, kThreads, 0, s>>>(b_partial.data<double>(), dbias.data<T>(), chunks, n);
    SSM_CUDA_CHECK(cudaGetLastError());
  }
}

} // namespace

void norm_forward(NormKind kind, const Tensor& x, const Tensor& weight, const Tensor& bias,
                  double eps, Tensor& y, Tensor& mean, Tensor& rstd) {
  const char* op = kind == NormKind::LayerNorm ? "layer_norm" : "rms_norm";
  const int64_t n = x.dim() == 0 ? 1 : x.size(-1);
  const int64_t rows = n == 0 ? 0 : x.numel() / n;
  if (rows == 0) return;
  dispatch_floating(x.dtype(), op, [&](auto zero) {
    using T = decltype(zero);
    T* mean_data = kind == NormKind::LayerNorm ? mean.data<T>() : nullptr;
    launch_rows(NormForwardRow<T>{kind, x.data<T>(), data_or_null<T>(weight), data_or_null<T>(bias),
                                  eps, y.data<T>(), mean_data, rstd.data<T>(), n},
                rows, n, x.device().index);
  });
}

void norm_backward(NormKind kind, const Tensor& x, const Tensor& weight, const Tensor& mean,
                   const Tensor& rstd, const Tensor& g, Tensor& dx, Tensor& dweight,
                   Tensor& dbias) {
  const char* op = kind == NormKind::LayerNorm ? "layer_norm" : "rms_norm";
  const int64_t n = x.dim() == 0 ? 1 : x.size(-1);
  const int64_t rows = n == 0 ? 0 : x.numel() / n;
  if (n == 0) return;
  dispatch_floating(x.dtype(), op, [&](auto zero) {
    using T = decltype(zero);
    const T* mean_data = kind == NormKind::LayerNorm ? mean.data<T>() : nullptr;
    if (dx.defined() && rows > 0)
      launch_rows(NormBackwardInputRow<T>{kind, x.data<T>(), data_or_null<T>(weight), mean_data,
                                          rstd.data<T>(), g.data<T>(), dx.data<T>(), n},
                  rows, n, x.device().index);
    if (dweight.defined() || dbias.defined())
      norm_param_grads<T>(kind, x, mean, rstd, g, dweight, dbias, rows, n);
  });
}

} // namespace ssm::cuda
