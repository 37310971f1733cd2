// fft.cu: the transforms and the causal convolution of fft.h on CUDA tensors: cuFFT for the
// transforms, small kernels for what surrounds them. The math of the convolution and of its
// backward is in fft_conv.cpp's header; the CPU loops these are checked against are there and
// in fft_cpu.cpp (tests/test_cuda_fft.cpp).
//
// ---- cuFFT plans -------------------------------------------------------------------------
// A cuFFT plan fixes the length n, the number of rows (batch), the type (R2C / C2R / C2C in
// float32; D2Z / Z2D / Z2Z in float64) and the device; making one costs far more than running
// it, so plans are cached per (n, batch, type, device), at most kMaxPlans (the least recently
// used is dropped). Rows are contiguous (cuFFT's basic layout): real rows of n values, complex
// rows of n/2 + 1 (R2C output, C2R input) or n values. Each plan is told not to allocate its
// own work area: every execution takes one from the project's caching allocator and returns it
// right after (stream order makes that safe), so the memory is shared with everything else
// rather than held per plan. The stream (cuda::stream(device)) and the work area are set on
// the plan just before each execution, under the plan's own mutex. Every cuFFT return code is
// checked; a failure throws naming the call, the plan and cuFFT's status.
//
// Two cuFFT rules shape the buffers: C2R overwrites its input (so it only ever gets a scratch
// spectrum), and R2C of length n reads n values per row (so inputs shorter than n are first
// copied into a zero-padded buffer; cuFFT cannot pad).
//
// ---- Kernels -------------------------------------------------------------------------------
//   pad_rows            x (rows, m) -> (rows, n), zero-padded or truncated
//   spectrum_product    out[r, k] = s X[r, k] K[r mod H, k]      (or X conj(K), for du)
//   batch_correlation   S[h, k]   = s sum_b G[b, h, k] conj(U[b, h, k])   (dK, b in order)
//   crop_skip           y[r, t]   = full[r, t] + D[r mod H] x[r, t],   t < L
//   hermitian_prep      irfft's input: a scaled copy, Im of bins 0 and n/2 set to 0 (as the
//                       CPU's irfft ignores them)
//   scale               the 1/n of an inverse C2C
//   skip_grad           dD[h] = sum_{b,t} g[b, h, t] u[b, h, t], in double, one block per h
// s = 1/n folds the normalisation of cuFFT's unnormalised inverse into the product. Row
// kernels give one block to a row (grid-stride over rows), its threads walking the row, so
// reads and writes are coalesced and no index is divided per element. No atomics: every sum
// has a fixed order, so results repeat bit for bit.
//
// ---- The convolution, buffer by buffer (N = n_fft, F = N/2 + 1, R = B H rows) ---------------
// forward:  K_pad (H, N) -> K_spectrum (H, F);  u_pad (R, N) -> U (R, F), kept as u_spectrum
//           when defined; product (R, F) (in place on U when U is not kept); C2R into u_pad,
//           then crop_skip -> y (R, L).
// backward: g_pad (R, N) -> G (R, F);  dK: S (H, F) -> C2R (H, N) -> crop -> dK (H, L);
//           du: G conj(K_spectrum) in place -> C2R into g_pad -> crop_skip -> du (R, L);
//           dD: skip_grad.
// At (B, H, L) = (8, 2048, 2048) in float32 every buffer of R rows is 134 to 268 MB and every
// step is memory-bound; see bench/bench_s4.cpp.
#include <cufft.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "cuda/check.h"
#include "cuda/group_reduce.cuh"
#include "cuda/runtime.h"
#include "s4/fft.h"

namespace ssm::s4 {

namespace {

// ---- cuFFT status checks ---------------------------------------------------------------------

const char* cufft_status_name(cufftResult status) {
  switch (status) {
    case CUFFT_SUCCESS: return "CUFFT_SUCCESS";
    case CUFFT_INVALID_PLAN: return "CUFFT_INVALID_PLAN";
    case CUFFT_ALLOC_FAILED: return "CUFFT_ALLOC_FAILED (out of GPU memory)";
    case CUFFT_INVALID_TYPE: return "CUFFT_INVALID_TYPE";
    case CUFFT_INVALID_VALUE: return "CUFFT_INVALID_VALUE";
    case CUFFT_INTERNAL_ERROR: return "CUFFT_INTERNAL_ERROR";
    case CUFFT_EXEC_FAILED: return "CUFFT_EXEC_FAILED";
    case CUFFT_SETUP_FAILED: return "CUFFT_SETUP_FAILED";
    case CUFFT_INVALID_SIZE: return "CUFFT_INVALID_SIZE";
    case CUFFT_UNALIGNED_DATA: return "CUFFT_UNALIGNED_DATA";
    case CUFFT_INVALID_DEVICE: return "CUFFT_INVALID_DEVICE";
    case CUFFT_NO_WORKSPACE: return "CUFFT_NO_WORKSPACE";
    case CUFFT_NOT_IMPLEMENTED: return "CUFFT_NOT_IMPLEMENTED";
    case CUFFT_NOT_SUPPORTED: return "CUFFT_NOT_SUPPORTED";
    default: return "unknown cuFFT status";
  }
}

// Throws "cuFFT error: <call> at <file>:<line>: <status> (<context>)".
void check_cufft(cufftResult status, const char* call, const char* file, int line,
                 const std::string& context) {
  if (status == CUFFT_SUCCESS) return;
  throw std::runtime_error(std::string("cuFFT error: ") + call + " at " + file + ":" +
                           std::to_string(line) + ": " + cufft_status_name(status) + " (" +
                           context + ")");
}

#define SSM_CUFFT_CHECK(call, context) check_cufft((call), #call, __FILE__, __LINE__, (context))

// ---- complex values and cuFFT types per T ----------------------------------------------------

template <typename T>
struct CufftTraits;
template <>
struct CufftTraits<float> {
  using Complex = cufftComplex; // float2: (x, y) = (real, imaginary)
  static constexpr cufftType r2c = CUFFT_R2C, c2r = CUFFT_C2R, c2c = CUFFT_C2C;
};
template <>
struct CufftTraits<double> {
  using Complex = cufftDoubleComplex; // double2
  static constexpr cufftType r2c = CUFFT_D2Z, c2r = CUFFT_Z2D, c2c = CUFFT_Z2Z;
};
template <typename T>
using complex_t = typename CufftTraits<T>::Complex;

cufftResult exec_r2c(cufftHandle plan, float* in, cufftComplex* out) {
  return cufftExecR2C(plan, in, out);
}
cufftResult exec_r2c(cufftHandle plan, double* in, cufftDoubleComplex* out) {
  return cufftExecD2Z(plan, in, out);
}
cufftResult exec_c2r(cufftHandle plan, cufftComplex* in, float* out) {
  return cufftExecC2R(plan, in, out);
}
cufftResult exec_c2r(cufftHandle plan, cufftDoubleComplex* in, double* out) {
  return cufftExecZ2D(plan, in, out);
}
cufftResult exec_c2c(cufftHandle plan, cufftComplex* in, cufftComplex* out, int direction) {
  return cufftExecC2C(plan, in, out, direction);
}
cufftResult exec_c2c(cufftHandle plan, cufftDoubleComplex* in, cufftDoubleComplex* out,
                     int direction) {
  return cufftExecZ2Z(plan, in, out, direction);
}

const char* type_name(cufftType type) {
  switch (type) {
    case CUFFT_R2C: return "R2C";
    case CUFFT_C2R: return "C2R";
    case CUFFT_C2C: return "C2C";
    case CUFFT_D2Z: return "D2Z";
    case CUFFT_Z2D: return "Z2D";
    case CUFFT_Z2Z: return "Z2Z";
    default: return "?";
  }
}

// (a + bi)(c + di) and (a + bi) conj(c + di).
template <typename C>
__device__ __forceinline__ C mul(C a, C b) {
  return {a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x};
}
template <typename C>
__device__ __forceinline__ C mul_conj(C a, C b) {
  return {a.x * b.x + a.y * b.y, a.y * b.x - a.x * b.y};
}

// ---- the plan cache --------------------------------------------------------------------------

constexpr size_t kMaxPlans = 64;

struct PlanKey {
  int64_t n, batch;
  cufftType type;
  int device;
  bool operator<(const PlanKey& o) const {
    return std::tie(n, batch, type, device) < std::tie(o.n, o.batch, o.type, o.device);
  }
  std::string str() const {
    return std::string(type_name(type)) + " n = " + std::to_string(n) +
           ", batch = " + std::to_string(batch) + ", device " + std::to_string(device);
  }
};

struct CufftPlan {
  PlanKey key{};
  cufftHandle handle = 0;
  bool created = false;
  size_t work_bytes = 0; // the work area an execution needs
  uint64_t last_use = 0; // the cache's clock at the last lookup
  std::mutex exec_mutex; // held from setting the stream and work area to the execution

  CufftPlan() = default;
  CufftPlan(const CufftPlan&) = delete;
  CufftPlan& operator=(const CufftPlan&) = delete;
  // Runs when the cache has dropped the plan and its last user is done. Work queued with it may
  // still be running, so the device's stream is drained first. A destructor cannot throw:
  // failures here are ignored (the plan's memory is then the driver's to reclaim at exit).
  ~CufftPlan() {
    if (!created) return;
    try {
      cuda::synchronize(key.device);
    } catch (...) {
    }
    cufftDestroy(handle);
  }
};

std::shared_ptr<CufftPlan> get_plan(const PlanKey& key) {
  static std::mutex mutex;
  // Never freed: the plans would otherwise be destroyed at exit, after the CUDA runtime they
  // belong to may have been torn down.
  static auto* plans = new std::map<PlanKey, std::shared_ptr<CufftPlan>>();
  static uint64_t clock = 0;
  std::lock_guard<std::mutex> lock(mutex);
  const auto found = plans->find(key);
  if (found != plans->end()) {
    found->second->last_use = ++clock;
    return found->second;
  }
  if (plans->size() >= kMaxPlans) {
    auto oldest = plans->begin();
    for (auto it = plans->begin(); it != plans->end(); ++it)
      if (it->second->last_use < oldest->second->last_use) oldest = it;
    plans->erase(oldest);
  }
  auto plan = std::make_shared<CufftPlan>();
  plan->key = key;
  const std::string context = "plan " + key.str();
  cuda::ensure_device(key.device);
  SSM_CUFFT_CHECK(cufftCreate(&plan->handle), context);
  plan->created = true;
  SSM_CUFFT_CHECK(cufftSetAutoAllocation(plan->handle, 0), context);
  long long length = key.n;
  size_t work_bytes = 0;
  // inembed = onembed = null: the basic contiguous layout (the strides and distances are then
  // ignored).
  SSM_CUFFT_CHECK(cufftMakePlanMany64(plan->handle, 1, &length, nullptr, 1, 0, nullptr, 1, 0,
                                      key.type, key.batch, &work_bytes),
                  context);
  plan->work_bytes = work_bytes;
  plan->last_use = ++clock;
  plans->emplace(key, plan);
  return plan;
}

// Runs exec(handle) with the plan for `key` on the device's stream, with a work area from the
// caching allocator. No rows: nothing to do.
template <typename Exec>
void run_plan(const PlanKey& key, Exec&& exec) {
  if (key.batch == 0) return;
  const std::shared_ptr<CufftPlan> plan = get_plan(key);
  const cudaStream_t stream = cuda::stream(key.device);
  const std::string context = "executing " + key.str();
  // At least one element, so that the plan always gets a valid work area, even one it does not
  // use.
  const int64_t work_elements = std::max<int64_t>(1, (plan->work_bytes + 7) / 8);
  const Tensor work = Tensor::empty({work_elements}, DType::Float64, Device::cuda(key.device));
  std::lock_guard<std::mutex> lock(plan->exec_mutex);
  SSM_CUFFT_CHECK(cufftSetStream(plan->handle, stream), context);
  SSM_CUFFT_CHECK(cufftSetWorkArea(plan->handle, work.raw_data()), context);
  SSM_CUFFT_CHECK(exec(plan->handle), context);
}

// ---- kernels ---------------------------------------------------------------------------------

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535;

// dst[r, j] = src[r, j] for j < min(m, n), 0 for the rest of the n.
template <typename T>
__global__ void pad_rows_kernel(const T* src, int64_t rows, int64_t m, int64_t n, T* dst) {
  const int64_t used = m < n ? m : n;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* src_row = src + r * m; // (m)
    T* dst_row = dst + r * n;       // (n)
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) dst_row[j] = j < used ? src_row[j] : T(0);
  }
}

// out[r, k] = scale X[r, k] K[r mod H, k] (kConjugate: X[r, k] conj(K[r mod H, k])); out may be X.
template <typename T, bool kConjugate>
__global__ void spectrum_product_kernel(const complex_t<T>* X, const complex_t<T>* K, int64_t rows,
                                        int64_t H, int64_t bins, T scale, complex_t<T>* out) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const complex_t<T>* X_row = X + r * bins;       // (bins)
    const complex_t<T>* K_row = K + (r % H) * bins; // (bins)
    complex_t<T>* out_row = out + r * bins;         // (bins)
    for (int64_t k = threadIdx.x; k < bins; k += blockDim.x) {
      const complex_t<T> p = kConjugate ? mul_conj(X_row[k], K_row[k]) : mul(X_row[k], K_row[k]);
      out_row[k] = {scale * p.x, scale * p.y};
    }
  }
}

// S[i] = scale sum_b G[b, i] conj(U[b, i]) over a plane of i < H bins values, b in order.
template <typename T>
__global__ void batch_correlation_kernel(const complex_t<T>* G, const complex_t<T>* U,
                                         int64_t batch, int64_t plane, T scale, complex_t<T>* S) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < plane;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    complex_t<T> sum = {T(0), T(0)};
    for (int64_t b = 0; b < batch; ++b) {
      const complex_t<T> p = mul_conj(G[b * plane + i], U[b * plane + i]);
      sum.x += p.x;
      sum.y += p.y;
    }
    S[i] = {scale * sum.x, scale * sum.y};
  }
}

// out[r, t] = full[r, t] + D[r mod H] x[r, t] for t < L (full has n columns); no skip term when
// D is null.
template <typename T>
__global__ void crop_skip_kernel(const T* full, int64_t n, const T* x, const T* D, int64_t rows,
                                 int64_t H, int64_t L, T* out) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* full_row = full + r * n; // (n)
    T* out_row = out + r * L;         // (L)
    if (D) {
      const T* x_row = x + r * L; // (L)
      const T d = D[r % H];
      for (int64_t t = threadIdx.x; t < L; t += blockDim.x) out_row[t] = full_row[t] + d * x_row[t];
    } else {
      for (int64_t t = threadIdx.x; t < L; t += blockDim.x) out_row[t] = full_row[t];
    }
  }
}

// out[r, k] = scale X[r, k], X read as (real, imaginary) pairs, with the imaginary part of
// bin 0 and, for even n, of bin n/2 set to 0.
template <typename T>
__global__ void hermitian_prep_kernel(const T* X, int64_t rows, int64_t bins, int64_t n, T scale,
                                      complex_t<T>* out) {
  const int64_t nyquist = n % 2 == 0 ? n / 2 : -1;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* X_row = X + 2 * r * bins;      // (bins, 2)
    complex_t<T>* out_row = out + r * bins; // (bins)
    for (int64_t k = threadIdx.x; k < bins; k += blockDim.x) {
      const bool real_bin = k == 0 || k == nyquist;
      out_row[k] = {scale * X_row[2 * k], real_bin ? T(0) : scale * X_row[2 * k + 1]};
    }
  }
}

template <typename T>
__global__ void scale_kernel(T* data, int64_t count, T scale) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    data[i] *= scale;
}

// dD[h] = sum_b sum_t g[b, h, t] u[b, h, t]: one block per h; each thread sums its t = rank,
// rank + kThreads, ... over b in order in double, then the block's sum (cuda/group_reduce.cuh).
template <typename T>
__global__ void skip_grad_kernel(const T* g, const T* u, int64_t batch, int64_t H, int64_t L,
                                 T* dD) {
  for (int64_t h = blockIdx.x; h < H; h += gridDim.x) {
    double sum = 0;
    for (int64_t b = 0; b < batch; ++b) {
      const T* g_row = g + (b * H + h) * L; // (L)
      const T* u_row = u + (b * H + h) * L; // (L)
      for (int64_t t = threadIdx.x; t < L; t += blockDim.x)
        sum += static_cast<double>(g_row[t]) * static_cast<double>(u_row[t]);
    }
    sum = cuda::group_allreduce<kThreads>(sum, cuda::SumCombine{});
    if (threadIdx.x == 0) dD[h] = static_cast<T>(sum);
  }
}

// ---- launching -------------------------------------------------------------------------------

// kernel<<<grid, kThreads, 0, stream>>>(args...), checked; nothing when there is no work.
template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), int64_t blocks, cudaStream_t stream, Args... args) {
  if (blocks <= 0) return;
  const int grid = static_cast<int>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
  kernel<<<grid, kThreads, 0, stream>>>(args...);
  SSM_CUDA_CHECK(cudaGetLastError());
}

int64_t blocks_for(int64_t count) { return (count + kThreads - 1) / kThreads; }

template <typename T>
complex_t<T>* complex_data(const Tensor& t) {
  return reinterpret_cast<complex_t<T>*>(t.data<T>());
}

// A tensor's CUDA device (its ordinal) and that device's stream, where all of its work goes.
struct DeviceStream {
  int device;
  cudaStream_t stream;
  Device where() const { return Device::cuda(device); }
};

// x (rows, m) -> a new (rows, n) buffer, zero-padded or truncated.
template <typename T>
Tensor padded_rows(const DeviceStream& st, const T* x, int64_t rows, int64_t m, int64_t n) {
  Tensor padded = Tensor::empty({rows, n}, dtype_of<T>::value, st.where()); // (rows, n)
  launch(pad_rows_kernel<T>, rows, st.stream, x, rows, m, n, padded.data<T>());
  return padded;
}

// real (rows, n) -> spectrum (rows, n/2 + 1). Neither buffer is the caller's input.
template <typename T>
void r2c(const DeviceStream& st, const Tensor& real, int64_t rows, int64_t n,
         complex_t<T>* spectrum) {
  run_plan(PlanKey{n, rows, CufftTraits<T>::r2c, st.device},
           [&](cufftHandle plan) { return exec_r2c(plan, real.data<T>(), spectrum); });
}

// spectrum (rows, n/2 + 1), overwritten by cuFFT -> real (rows, n), unnormalised.
template <typename T>
void c2r(const DeviceStream& st, complex_t<T>* spectrum, int64_t rows, int64_t n, T* real) {
  run_plan(PlanKey{n, rows, CufftTraits<T>::c2r, st.device},
           [&](cufftHandle plan) { return exec_c2r(plan, spectrum, real); });
}

DeviceStream stream_of(const Tensor& t) {
  const int device = t.device().index;
  return {device, cuda::stream(device)};
}

// ---- the raw transforms ----------------------------------------------------------------------

template <typename T>
void rfft_impl(const Tensor& x, int64_t n, Tensor& X) {
  const DeviceStream st = stream_of(x);
  const int64_t rows = x.size(0), m = x.size(1);
  const Tensor padded = padded_rows<T>(st, x.data<T>(), rows, m, n); // (rows, n)
  r2c<T>(st, padded, rows, n, complex_data<T>(X));
}

template <typename T>
void irfft_impl(const Tensor& X, int64_t n, Tensor& x) {
  const DeviceStream st = stream_of(X);
  const int64_t rows = X.size(0), bins = n / 2 + 1;
  const Tensor spectrum = Tensor::empty({rows, bins, 2}, X.dtype(), X.device()); // (rows, bins)
  launch(hermitian_prep_kernel<T>, rows, st.stream, X.data<T>(), rows, bins, n,
         T(1) / static_cast<T>(n), complex_data<T>(spectrum));
  c2r<T>(st, complex_data<T>(spectrum), rows, n, x.data<T>());
}

template <typename T>
void fft_impl(const Tensor& x, bool inverse, Tensor& out) {
  const DeviceStream st = stream_of(x);
  const int64_t rows = x.size(0), n = x.size(1);
  // In place on a copy: the caller's input is never handed to cuFFT.
  cuda::copy_device_to_device(out.raw_data(), x.raw_data(), x.numel() * sizeof(T), st.device);
  complex_t<T>* data = complex_data<T>(out);
  run_plan(PlanKey{n, rows, CufftTraits<T>::c2c, st.device}, [&](cufftHandle plan) {
    return exec_c2c(plan, data, data, inverse ? CUFFT_INVERSE : CUFFT_FORWARD);
  });
  if (inverse)
    launch(scale_kernel<T>, blocks_for(out.numel()), st.stream, out.data<T>(), out.numel(),
           T(1) / static_cast<T>(n));
}

// ---- the convolution -------------------------------------------------------------------------

template <typename T>
void conv_fwd(const Tensor& u, const Tensor& K, const Tensor& D, int64_t n, Tensor& y,
              Tensor& u_spectrum, Tensor& K_spectrum) {
  const DeviceStream st = stream_of(u);
  const int64_t B = u.size(0), H = u.size(1), L = u.size(2), bins = n / 2 + 1, rows = B * H;
  const T scale = T(1) / static_cast<T>(n);
  {
    const Tensor K_pad = padded_rows<T>(st, K.data<T>(), H, L, n); // (H, N)
    r2c<T>(st, K_pad, H, n, complex_data<T>(K_spectrum));          // (H, F)
  }
  if (rows == 0) return;
  const bool keep_U = u_spectrum.defined();
  const Tensor u_pad =
      padded_rows<T>(st, u.data<T>(), rows, L, n); // (R, N), later the product's C2R
  const Tensor U = keep_U ? u_spectrum : Tensor::empty({rows, bins, 2}, u.dtype(), u.device());
  r2c<T>(st, u_pad, rows, n, complex_data<T>(U)); // (R, F)
  const Tensor product =
      keep_U ? Tensor::empty({rows, bins, 2}, u.dtype(), u.device()) : U; // (R, F)
  launch(spectrum_product_kernel<T, false>, rows, st.stream,
         static_cast<const complex_t<T>*>(complex_data<T>(U)),
         static_cast<const complex_t<T>*>(complex_data<T>(K_spectrum)), rows, H, bins, scale,
         complex_data<T>(product));
  c2r<T>(st, complex_data<T>(product), rows, n, u_pad.data<T>()); // (R, N) circular convolution
  launch(crop_skip_kernel<T>, rows, st.stream, static_cast<const T*>(u_pad.data<T>()), n,
         u.data<T>(), D.defined() ? static_cast<const T*>(D.data<T>()) : nullptr, rows, H, L,
         y.data<T>());
}

template <typename T>
void conv_bwd(const Tensor& g, const Tensor& u, const Tensor& D, const Tensor& u_spectrum,
              const Tensor& K_spectrum, int64_t n, Tensor& du, Tensor& dK, Tensor& dD) {
  const DeviceStream st = stream_of(g);
  const int64_t B = g.size(0), H = g.size(1), L = g.size(2), bins = n / 2 + 1, rows = B * H;
  const T scale = T(1) / static_cast<T>(n);
  if (dD.defined())
    launch(skip_grad_kernel<T>, H, st.stream, g.data<T>(), u.data<T>(), B, H, L, dD.data<T>());
  if (!du.defined() && !dK.defined()) return;
  if (rows == 0) { // no batch: dK is an empty sum (du has no elements)
    if (dK.defined() && dK.numel() > 0)
      cuda::memset_zero(dK.raw_data(), dK.numel() * sizeof(T), st.device);
    return;
  }
  const Tensor g_pad = padded_rows<T>(st, g.data<T>(), rows, L, n);       // (R, N), later du's C2R
  const Tensor G = Tensor::empty({rows, bins, 2}, g.dtype(), g.device()); // (R, F)
  r2c<T>(st, g_pad, rows, n, complex_data<T>(G));
  if (dK.defined()) {
    const Tensor S = Tensor::empty({H, bins, 2}, g.dtype(), g.device()); // (H, F)
    launch(batch_correlation_kernel<T>, blocks_for(H * bins), st.stream,
           static_cast<const complex_t<T>*>(complex_data<T>(G)),
           static_cast<const complex_t<T>*>(complex_data<T>(u_spectrum)), B, H * bins, scale,
           complex_data<T>(S));
    const Tensor dK_full = Tensor::empty({H, n}, g.dtype(), g.device()); // (H, N)
    c2r<T>(st, complex_data<T>(S), H, n, dK_full.data<T>());
    const T* no_skip = nullptr;
    launch(crop_skip_kernel<T>, H, st.stream, static_cast<const T*>(dK_full.data<T>()), n, no_skip,
           no_skip, H, H, L, dK.data<T>());
  }
  if (du.defined()) {
    launch(spectrum_product_kernel<T, true>, rows, st.stream,
           static_cast<const complex_t<T>*>(complex_data<T>(G)),
           static_cast<const complex_t<T>*>(complex_data<T>(K_spectrum)), rows, H, bins, scale,
           complex_data<T>(G));
    c2r<T>(st, complex_data<T>(G), rows, n, g_pad.data<T>()); // (R, N) circular correlation
    launch(crop_skip_kernel<T>, rows, st.stream, static_cast<const T*>(g_pad.data<T>()), n,
           g.data<T>(), D.defined() ? static_cast<const T*>(D.data<T>()) : nullptr, rows, H, L,
           du.data<T>());
  }
}

} // namespace

void rfft_cuda(const Tensor& x, int64_t n, Tensor& X) {
  dispatch_floating(x.dtype(), "rfft_cuda", [&](auto zero) { rfft_impl<decltype(zero)>(x, n, X); });
}

void irfft_cuda(const Tensor& X, int64_t n, Tensor& x) {
  dispatch_floating(X.dtype(), "irfft_cuda",
                    [&](auto zero) { irfft_impl<decltype(zero)>(X, n, x); });
}

void fft_cuda(const Tensor& x, bool inverse, Tensor& out) {
  dispatch_floating(x.dtype(), "fft_cuda",
                    [&](auto zero) { fft_impl<decltype(zero)>(x, inverse, out); });
}

void causal_conv_fwd_cuda(const Tensor& u, const Tensor& K, const Tensor& D, int64_t n_fft,
                          Tensor& y, Tensor& u_spectrum, Tensor& K_spectrum) {
  dispatch_floating(u.dtype(), "causal_conv_fwd_cuda", [&](auto zero) {
    conv_fwd<decltype(zero)>(u, K, D, n_fft, y, u_spectrum, K_spectrum);
  });
}

void causal_conv_bwd_cuda(const Tensor& grad_y, const Tensor& u, const Tensor& D,
                          const Tensor& u_spectrum, const Tensor& K_spectrum, int64_t n_fft,
                          Tensor& du, Tensor& dK, Tensor& dD) {
  dispatch_floating(grad_y.dtype(), "causal_conv_bwd_cuda", [&](auto zero) {
    conv_bwd<decltype(zero)>(grad_y, u, D, u_spectrum, K_spectrum, n_fft, du, dK, dD);
  });
}

} // namespace ssm::s4
