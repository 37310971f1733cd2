// runtime.h: the process's view of the GPUs: which device it uses, one stream and one cuBLAS
// handle per device, and the caching allocator that backs every CUDA tensor's storage.
//
// Device selection. A CUDA context is created on whichever device is current at the first
// runtime call, and the current device defaults to 0. A trainer started with --device cuda:3
// therefore calls select_device(3) before anything else touches CUDA; every later entry point
// here calls ensure_device() first, which makes the selected device current on the calling
// thread. Tensors carry their device index and kernels run on that device.
//
// Streams. All work of a device is issued on that device's one stream, in order, so a block
// freed by the allocator can be reused by the next kernel without waiting: stream order
// guarantees the previous user of the block has finished. Copies to the host synchronise the
// stream.
//
// Allocator. cudaMalloc/cudaFree synchronise the device and cost tens of microseconds, far too
// much for the many short-lived tensors of a training step. Freed blocks go to a per-device
// free list keyed by their (rounded) size and are handed out again for requests of that size;
// empty_cache() returns them to the driver.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cublas_v2.h>
#include <cuda_runtime.h>

namespace ssm::cuda {

// Number of usable GPUs; 0 (not an error) when there is no driver or no device.
int device_count();
// Chooses the device later calls use. Must come before any other CUDA work in the process to
// keep device 0 free of a context when another device is asked for; throws when the index is
// out of range.
void select_device(int index);
int selected_device();
// Makes `index` current on the calling thread.
void ensure_device(int index);

cudaStream_t stream(int device);
cublasHandle_t cublas(int device);
// Waits for all work queued on the device's stream.
void synchronize(int device);

// TF32 tensor-core mode for float32 matrix products (off by default: full float32 precision).
void set_tf32(bool enabled);
bool tf32_enabled();

// ---- caching allocator ---------------------------------------------------------------------
void* allocate(size_t bytes, int device);
void release(void* ptr, int device);
struct AllocatorStats {
  size_t bytes_in_use = 0;    // handed out and not yet released (rounded sizes)
  size_t peak_bytes = 0;      // the largest bytes_in_use so far (reset_peak() restarts it)
  size_t bytes_cached = 0;    // released blocks kept for reuse
  int64_t device_mallocs = 0; // cudaMalloc calls made (stays flat once the cache is warm)
};
AllocatorStats allocator_stats(int device);
void reset_peak(int device);
void empty_cache(int device);

// ---- copies --------------------------------------------------------------------------------
void copy_host_to_device(void* dst, const void* src, size_t bytes, int device);
void copy_device_to_host(void* dst, const void* src, size_t bytes, int device); // synchronises
void copy_device_to_device(void* dst, const void* src, size_t bytes, int device);
void memset_zero(void* dst, size_t bytes, int device);

} // namespace ssm::cuda
