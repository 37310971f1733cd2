// check.h: every CUDA runtime and cuBLAS call goes through one of these macros, so a failure
// becomes an exception naming the call, the file and line, and the library's own message:
//     "CUDA error: cudaMalloc(&ptr, bytes) at cuda/allocator.cpp:57: out of memory"
// Kernel launches are followed by SSM_CUDA_CHECK(cudaGetLastError()) to catch bad launch
// configurations at the launch site.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace ssm::cuda {

[[noreturn]] inline void throw_cuda_error(const char* call, const char* file, int line,
                                          const std::string& message) {
  throw std::runtime_error(std::string("CUDA error: ") + call + " at " + file + ":" +
                           std::to_string(line) + ": " + message);
}

const char* cublas_status_name(cublasStatus_t status);

} // namespace ssm::cuda

#define SSM_CUDA_CHECK(call)                                                                     \
  do {                                                                                           \
    cudaError_t ssm_status_ = (call);                                                            \
    if (ssm_status_ != cudaSuccess)                                                              \
      ::ssm::cuda::throw_cuda_error(#call, __FILE__, __LINE__, cudaGetErrorString(ssm_status_)); \
  } while (0)

#define SSM_CUBLAS_CHECK(call)                                                     \
  do {                                                                             \
    cublasStatus_t ssm_status_ = (call);                                           \
    if (ssm_status_ != CUBLAS_STATUS_SUCCESS)                                      \
      ::ssm::cuda::throw_cuda_error(#call, __FILE__, __LINE__,                     \
                                    ::ssm::cuda::cublas_status_name(ssm_status_)); \
  } while (0)
