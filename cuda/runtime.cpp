#include "cuda/runtime.h"

#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "cuda/check.h"

namespace ssm::cuda {

const char* cublas_status_name(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "unknown cuBLAS status";
  }
}

namespace {

// Per-device state, created on first use of the device.
struct DeviceState {
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  std::multimap<size_t, void*> free_blocks; // rounded size -> block
  std::unordered_map<void*, size_t> live;   // block -> rounded size
  AllocatorStats stats;
};

std::mutex state_mutex;
std::vector<DeviceState*> states; // indexed by device; never freed (lives to process exit)
int chosen_device = 0;
bool tf32 = false;

DeviceState& state(int device) {
  // Callers hold state_mutex.
  if (device < 0 || device >= device_count())
    throw std::invalid_argument("cuda: device " + std::to_string(device) + " does not exist (" +
                                std::to_string(device_count()) + " visible)");
  if (states.size() <= static_cast<size_t>(device)) states.resize(device + 1, nullptr);
  if (!states[device]) {
    ensure_device(device);
    auto* s = new DeviceState();
    SSM_CUDA_CHECK(cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking));
    SSM_CUBLAS_CHECK(cublasCreate(&s->cublas));
    SSM_CUBLAS_CHECK(cublasSetStream(s->cublas, s->stream));
    SSM_CUBLAS_CHECK(
        cublasSetMathMode(s->cublas, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    states[device] = s;
  }
  return *states[device];
}

// Requests are rounded up so that blocks of nearby sizes can be reused: to 512 bytes below
// 1 MiB, to 1 MiB above.
size_t round_size(size_t bytes) {
  const size_t small = 512, large = size_t(1) << 20;
  if (bytes < large) return (bytes + small - 1) / small * small;
  return (bytes + large - 1) / large * large;
}

} // namespace

int device_count() {
  static const int count = [] {
    int n = 0;
    return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
  }();
  return count;
}

void select_device(int index) {
  if (index < 0 || index >= device_count())
    throw std::invalid_argument("cuda: cannot select device " + std::to_string(index) + " (" +
                                std::to_string(device_count()) + " visible)");
  std::lock_guard<std::mutex> lock(state_mutex);
  chosen_device = index;
  ensure_device(index);
}

int selected_device() { return chosen_device; }

void ensure_device(int index) {
  thread_local int current = -1;
  if (current != index) {
    SSM_CUDA_CHECK(cudaSetDevice(index));
    current = index;
  }
}

cudaStream_t stream(int device) {
  std::lock_guard<std::mutex> lock(state_mutex);
  DeviceState& s = state(device);
  ensure_device(device);
  return s.stream;
}

cublasHandle_t cublas(int device) {
  std::lock_guard<std::mutex> lock(state_mutex);
  DeviceState& s = state(device);
  ensure_device(device);
  return s.cublas;
}

void synchronize(int device) { SSM_CUDA_CHECK(cudaStreamSynchronize(stream(device))); }

void set_tf32(bool enabled) {
  std::lock_guard<std::mutex> lock(state_mutex);
  tf32 = enabled;
  for (DeviceState* s : states)
    if (s)
      SSM_CUBLAS_CHECK(
          cublasSetMathMode(s->cublas, enabled ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
}

bool tf32_enabled() { return tf32; }

// ---- caching allocator ---------------------------------------------------------------------

void* allocate(size_t bytes, int device) {
  std::lock_guard<std::mutex> lock(state_mutex);
  DeviceState& s = state(device);
  ensure_device(device);
  const size_t size = round_size(bytes == 0 ? 1 : bytes);
  void* ptr = nullptr;
  auto cached = s.free_blocks.find(size);
  if (cached != s.free_blocks.end()) {
    ptr = cached->second;
    s.free_blocks.erase(cached);
    s.stats.bytes_cached -= size;
  } else {
    cudaError_t status = cudaMalloc(&ptr, size);
    if (status == cudaErrorMemoryAllocation) {
      // Give the cached blocks back to the driver and try once more.
      (void)cudaGetLastError();
      for (auto& [block_size, block] : s.free_blocks) SSM_CUDA_CHECK(cudaFree(block));
      s.free_blocks.clear();
      s.stats.bytes_cached = 0;
      status = cudaMalloc(&ptr, size);
    }
    if (status != cudaSuccess)
      throw_cuda_error("cudaMalloc", __FILE__, __LINE__,
                       std::string(cudaGetErrorString(status)) + " (asked for " +
                           std::to_string(size) + " bytes on cuda:" + std::to_string(device) +
                           ", " + std::to_string(s.stats.bytes_in_use) + " in use)");
    ++s.stats.device_mallocs;
  }
  s.live[ptr] = size;
  s.stats.bytes_in_use += size;
  if (s.stats.bytes_in_use > s.stats.peak_bytes) s.stats.peak_bytes = s.stats.bytes_in_use;
  return ptr;
}

void release(void* ptr, int device) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(state_mutex);
  DeviceState& s = state(device);
  auto it = s.live.find(ptr);
  if (it == s.live.end()) return; // not ours: never happens unless memory was corrupted
  const size_t size = it->second;
  s.live.erase(it);
  s.stats.bytes_in_use -= size;
  s.stats.bytes_cached += size;
  s.free_blocks.emplace(size, ptr);
}

AllocatorStats allocator_stats(int device) {
  std::lock_guard<std::mutex> lock(state_mutex);
  return state(device).stats;
}

void reset_peak(int device) {
  std::lock_guard<std::mutex> lock(state_mutex);
  DeviceState& s = state(device);
  s.stats.peak_bytes = s.stats.bytes_in_use;
}

void empty_cache(int device) {
  std::lock_guard<std::mutex> lock(state_mutex);
  DeviceState& s = state(device);
  ensure_device(device);
  SSM_CUDA_CHECK(cudaStreamSynchronize(s.stream));
  for (auto& [size, block] : s.free_blocks) SSM_CUDA_CHECK(cudaFree(block));
  s.free_blocks.clear();
  s.stats.bytes_cached = 0;
}

// ---- copies --------------------------------------------------------------------------------

void copy_host_to_device(void* dst, const void* src, size_t bytes, int device) {
  if (bytes == 0) return;
  cudaStream_t s = stream(device);
  // Synchronous with respect to the host buffer: src may be freed when this returns.
  SSM_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s));
  SSM_CUDA_CHECK(cudaStreamSynchronize(s));
}

void copy_device_to_host(void* dst, const void* src, size_t bytes, int device) {
  if (bytes == 0) return;
  cudaStream_t s = stream(device);
  SSM_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s));
  SSM_CUDA_CHECK(cudaStreamSynchronize(s));
}

void copy_device_to_device(void* dst, const void* src, size_t bytes, int device) {
  if (bytes == 0) return;
  SSM_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream(device)));
}

void memset_zero(void* dst, size_t bytes, int device) {
  if (bytes == 0) return;
  SSM_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, stream(device)));
}

} // namespace ssm::cuda
