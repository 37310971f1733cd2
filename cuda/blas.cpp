#include "cuda/blas.h"

#include <stdexcept>
#include <string>

#include "cuda/check.h"
#include "cuda/runtime.h"

namespace ssm::cuda {

// The constant step between consecutive batch offsets, or -1 when they are not equally
// spaced (then each entry is its own cuBLAS call).
static int64_t uniform_step(const std::vector<int64_t>& offsets) {
  if (offsets.size() < 2) return 0;
  const int64_t step = offsets[1] - offsets[0];
  for (size_t i = 2; i < offsets.size(); ++i)
    if (offsets[i] - offsets[i - 1] != step) return -1;
  return step;
}

template <typename T>
static void gemm_typed(cublasHandle_t handle, int64_t M, int64_t N, int64_t K,
                       const GemmBatchOperand& a, const GemmBatchOperand& b, T* out) {
  const T* pa = static_cast<const T*>(a.data);
  const T* pb = static_cast<const T*>(b.data);
  const T one = 1, zero = 0;
  const cublasOperation_t op_b = b.trans ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_a = a.trans ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int64_t batch = static_cast<int64_t>(a.offsets.size());
  const int64_t step_a = uniform_step(a.offsets), step_b = uniform_step(b.offsets);
  // cuBLAS takes int sizes; 64-bit offsets stay in the pointers.
  const int m = static_cast<int>(N), n = static_cast<int>(M), k = static_cast<int>(K);
  const int lda = static_cast<int>(a.ld), ldb = static_cast<int>(b.ld), ldc = m;
  if (step_a >= 0 && step_b >= 0 && batch > 1) {
    // C^T[i] = op(B[i])^T op(A[i])^T for all i in one call; strides in elements.
    if constexpr (std::is_same_v<T, float>)
      SSM_CUBLAS_CHECK(cublasSgemmStridedBatched(handle, op_b, op_a, m, n, k, &one,
                                                 pb + b.offsets[0], ldb, step_b,
                                                 pa + a.offsets[0], lda, step_a, &zero, out, ldc,
                                                 M * N, static_cast<int>(batch)));
    else
      SSM_CUBLAS_CHECK(cublasDgemmStridedBatched(handle, op_b, op_a, m, n, k, &one,
                                                 pb + b.offsets[0], ldb, step_b,
                                                 pa + a.offsets[0], lda, step_a, &zero, out, ldc,
                                                 M * N, static_cast<int>(batch)));
    return;
  }
  for (int64_t i = 0; i < batch; ++i) {
    if constexpr (std::is_same_v<T, float>)
      SSM_CUBLAS_CHECK(cublasSgemm(handle, op_b, op_a, m, n, k, &one, pb + b.offsets[i], ldb,
                                   pa + a.offsets[i], lda, &zero, out + i * M * N, ldc));
    else
      SSM_CUBLAS_CHECK(cublasDgemm(handle, op_b, op_a, m, n, k, &one, pb + b.offsets[i], ldb,
                                   pa + a.offsets[i], lda, &zero, out + i * M * N, ldc));
  }
}

void batched_gemm(DType dtype, int device, int64_t M, int64_t N, int64_t K,
                  const GemmBatchOperand& a, const GemmBatchOperand& b, void* out) {
  const int64_t batch = static_cast<int64_t>(a.offsets.size());
  if (M == 0 || N == 0 || batch == 0) return;
  if (K == 0) { // an empty sum: zeros (cuBLAS is not asked to handle k = 0)
    memset_zero(out, static_cast<size_t>(batch * M * N) * dtype_size(dtype), device);
    return;
  }
  const int64_t int_max = 2147483647;
  if (M > int_max || N > int_max || K > int_max || a.ld > int_max || b.ld > int_max ||
      batch > int_max)
    throw std::invalid_argument("matmul: a dim exceeds cuBLAS's 32-bit sizes");
  cublasHandle_t handle = cublas(device);
  switch (dtype) {
  case DType::Float32: return gemm_typed<float>(handle, M, N, K, a, b, static_cast<float*>(out));
  case DType::Float64:
    return gemm_typed<double>(handle, M, N, K, a, b, static_cast<double*>(out));
  case DType::Int64: break;
  }
  throw std::invalid_argument("matmul: int64 matrix products are not supported on CUDA");
}

} // namespace ssm::cuda
