// matmul.cpp: cuda::gemm and cuda::gemm_strided_batched on cuBLAS. The mapping of the row-major
// product onto cuBLAS's column-major one, C^T = op(B)^T op(A)^T, is explained in cuda/matmul.h.
#include "cuda/matmul.h"

#include <climits>
#include <stdexcept>
#include <string>

#include "cuda/check.h"
#include "cuda/runtime.h"

namespace ssm::cuda {

// ---- cuBLAS's typed entry points under one name --------------------------------------------

static cublasStatus_t cublas_gemm(cublasHandle_t handle, cublasOperation_t op_first,
                                  cublasOperation_t op_second, int m, int n, int k,
                                  const float* alpha, const float* first, int ld_first,
                                  const float* second, int ld_second, const float* beta, float* out,
                                  int ld_out) {
  return cublasSgemm(handle, op_first, op_second, m, n, k, alpha, first, ld_first, second,
                     ld_second, beta, out, ld_out);
}

static cublasStatus_t cublas_gemm(cublasHandle_t handle, cublasOperation_t op_first,
                                  cublasOperation_t op_second, int m, int n, int k,
                                  const double* alpha, const double* first, int ld_first,
                                  const double* second, int ld_second, const double* beta,
                                  double* out, int ld_out) {
  return cublasDgemm(handle, op_first, op_second, m, n, k, alpha, first, ld_first, second,
                     ld_second, beta, out, ld_out);
}

static cublasStatus_t cublas_gemm_strided_batched(
    cublasHandle_t handle, cublasOperation_t op_first, cublasOperation_t op_second, int m, int n,
    int k, const float* alpha, const float* first, int ld_first, long long stride_first,
    const float* second, int ld_second, long long stride_second, const float* beta, float* out,
    int ld_out, long long stride_out, int batch) {
  return cublasSgemmStridedBatched(handle, op_first, op_second, m, n, k, alpha, first, ld_first,
                                   stride_first, second, ld_second, stride_second, beta, out,
                                   ld_out, stride_out, batch);
}

static cublasStatus_t cublas_gemm_strided_batched(
    cublasHandle_t handle, cublasOperation_t op_first, cublasOperation_t op_second, int m, int n,
    int k, const double* alpha, const double* first, int ld_first, long long stride_first,
    const double* second, int ld_second, long long stride_second, const double* beta, double* out,
    int ld_out, long long stride_out, int batch) {
  return cublasDgemmStridedBatched(handle, op_first, op_second, m, n, k, alpha, first, ld_first,
                                   stride_first, second, ld_second, stride_second, beta, out,
                                   ld_out, stride_out, batch);
}

// ---- argument checks -------------------------------------------------------------------------

static int to_cublas_int(int64_t value, const char* what) {
  if (value > INT_MAX)
    throw std::invalid_argument(std::string("cuda::gemm: ") + what + " = " + std::to_string(value) +
                                " exceeds cuBLAS's 32-bit int limit " + std::to_string(INT_MAX));
  return static_cast<int>(value);
}

// The leading dimension cuBLAS gets for a matrix stored as `rows` row-major rows of `row_length`
// elements each, `ld` apart: ld itself when it covers a row; the row length when there is one
// row (ld is never read then, and cuBLAS still wants ld >= row length >= 1).
static int cublas_ld(int64_t ld, int64_t rows, int64_t row_length, const char* name) {
  if (ld >= row_length && ld >= 1) return to_cublas_int(ld, name);
  if (rows <= 1) return to_cublas_int(row_length > 1 ? row_length : 1, name);
  throw std::invalid_argument(std::string("cuda::gemm: ") + name + " = " + std::to_string(ld) +
                              " is less than the row length " + std::to_string(row_length) +
                              " of a " + std::to_string(rows) +
                              "-row matrix; cuBLAS cannot read overlapping rows (pass a "
                              "contiguous copy)");
}

// C_i = 0 for the `batch` M x N matrices C_i = C + i * stride_c (the K == 0 product).
template <typename T>
static void zero_matrices(int device, int64_t batch, int64_t M, int64_t N, T* C, int64_t ldc,
                          int64_t stride_c) {
  const size_t pitch = static_cast<size_t>(ldc) * sizeof(T), width = N * sizeof(T);
  // When the matrices follow each other row after row (stride_c == M * ldc, as in a contiguous
  // output), all batch * M rows are one 2-D memset.
  if (stride_c == M * ldc || batch == 1) {
    SSM_CUDA_CHECK(
        cudaMemset2DAsync(C, pitch, 0, width, static_cast<size_t>(batch * M), stream(device)));
    return;
  }
  for (int64_t i = 0; i < batch; ++i)
    SSM_CUDA_CHECK(cudaMemset2DAsync(C + i * stride_c, pitch, 0, width, static_cast<size_t>(M),
                                     stream(device)));
}

// ---- the products ---------------------------------------------------------------------------

template <typename T>
void gemm_strided_batched(int device, int64_t batch, int64_t M, int64_t N, int64_t K, const T* A,
                          int64_t lda, int64_t stride_a, bool trans_a, const T* B, int64_t ldb,
                          int64_t stride_b, bool trans_b, T* C, int64_t ldc, int64_t stride_c,
                          bool accumulate) {
  if (batch < 0 || M < 0 || N < 0 || K < 0)
    throw std::invalid_argument("cuda::gemm: negative size: batch " + std::to_string(batch) +
                                ", M " + std::to_string(M) + ", N " + std::to_string(N) + ", K " +
                                std::to_string(K));
  if (batch == 0 || M == 0 || N == 0) return;
  const int ld_out = cublas_ld(ldc, M, N, "ldc");
  if (K == 0) {
    if (!accumulate) zero_matrices(device, batch, M, N, C, ld_out, stride_c);
    return;
  }
  // Stored shapes: A is (K, M) when transposed, else (M, K); B is (N, K) or (K, N).
  const int ld_a = cublas_ld(lda, trans_a ? K : M, trans_a ? M : K, "lda");
  const int ld_b = cublas_ld(ldb, trans_b ? N : K, trans_b ? K : N, "ldb");
  const int m = to_cublas_int(N, "N"), n = to_cublas_int(M, "M"), k = to_cublas_int(K, "K");
  const int count = to_cublas_int(batch, "batch");
  const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const T alpha = 1, beta = accumulate ? 1 : 0;
  cublasHandle_t handle = cublas(device);
  // C^T (N x M) = op(B)^T op(A)^T: B first, then A (cuda/matmul.h).
  if (count == 1)
    SSM_CUBLAS_CHECK(
        cublas_gemm(handle, op_b, op_a, m, n, k, &alpha, B, ld_b, A, ld_a, &beta, C, ld_out));
  else
    SSM_CUBLAS_CHECK(cublas_gemm_strided_batched(handle, op_b, op_a, m, n, k, &alpha, B, ld_b,
                                                 stride_b, A, ld_a, stride_a, &beta, C, ld_out,
                                                 stride_c, count));
}

template <typename T>
void gemm(int device, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, bool trans_a,
          const T* B, int64_t ldb, bool trans_b, T* C, int64_t ldc, bool accumulate) {
  gemm_strided_batched<T>(device, 1, M, N, K, A, lda, 0, trans_a, B, ldb, 0, trans_b, C, ldc, 0,
                          accumulate);
}

template void gemm<float>(int, int64_t, int64_t, int64_t, const float*, int64_t, bool, const float*,
                          int64_t, bool, float*, int64_t, bool);
template void gemm<double>(int, int64_t, int64_t, int64_t, const double*, int64_t, bool,
                           const double*, int64_t, bool, double*, int64_t, bool);
template void gemm_strided_batched<float>(int, int64_t, int64_t, int64_t, int64_t, const float*,
                                          int64_t, int64_t, bool, const float*, int64_t, int64_t,
                                          bool, float*, int64_t, int64_t, bool);
template void gemm_strided_batched<double>(int, int64_t, int64_t, int64_t, int64_t, const double*,
                                           int64_t, int64_t, bool, const double*, int64_t, int64_t,
                                           bool, double*, int64_t, int64_t, bool);

} // namespace ssm::cuda
