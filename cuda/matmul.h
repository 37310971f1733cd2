// matmul.h: the CUDA matrix multiply through cuBLAS, the counterpart of cpu::gemm
// (tensor/cpu/gemm.h) behind matmul and bmm (tensor/ops_matmul.cpp).
//
//   C = op(A) op(B) (or C += op(A) op(B)), op(A): M x K, op(B): K x N, C: M x N,
// every matrix row-major with a leading dimension, exactly as in cpu::gemm:
//     trans_a == false: op(A)(i, k) = A[i * lda + k]   (A stored M x K)
//     trans_a == true:  op(A)(i, k) = A[k * lda + i]   (A stored K x M, read transposed)
// and likewise for B (stored K x N, or N x K when trans_b); C(i, j) = C[i * ldc + j].
// gemm_strided_batched does `batch` such products, entry i reading A + i * stride_a and
// B + i * stride_b and writing C + i * stride_c (a stride of 0 shares one matrix across the
// batch, as a broadcast weight).
//
// Row-major to column-major. cuBLAS reads matrices column-major: element (r, c) of an
// (R, C) matrix with leading dimension ld sits at r + c * ld. A row-major (R, C) matrix with
// row stride ld, read that way, is its transpose (C, R). So cuBLAS is asked for
//     C^T (N x M) = op(B)^T (N x K) op(A)^T (K x M)
// i.e. B is passed first and A second, with m = N, n = M, k = K, the leading dimensions
// unchanged, and each operand's transpose flag passed through as it is (op(B)^T is B's
// column-major reading when trans_b is false, its transpose when trans_b is true). The
// column-major C^T cuBLAS writes with leading dimension ldc is the row-major C we want.
//
// cuBLAS requires every leading dimension to cover a stored row (lda >= the stored row length,
// and at least 1). cpu::gemm never reads the leading dimension of a matrix that has one stored
// row, so there it is raised to the row length; a smaller one with more rows (overlapping rows,
// e.g. a stride-0 broadcast of one row) is refused: make such an operand contiguous first.
// Sizes, leading dimensions and the batch count go to cuBLAS as 32-bit ints (larger ones are
// refused); element offsets and batch strides are 64-bit.
//
// Types: float (cublasSgemm, cublasSgemmStridedBatched) and double (cublasDgemm,
// cublasDgemmStridedBatched). There is no int64 instantiation: cuBLAS has no integer GEMM,
// and matmul refuses int64 tensors on CUDA (the CPU GEMM does have an int64 path).
//
// TF32 is opt-in. By default float32 products run in full float32 (cuBLAS's default math
// mode, FMA on 24-bit mantissas). cuda::set_tf32(true) (cuda/runtime.h) switches every
// device's cuBLAS handle to CUBLAS_TF32_TENSOR_OP_MATH: inputs are rounded to TF32's 10
// mantissa bits and multiplied on the tensor cores, accumulating in float32. That is several
// times faster and about 1e-3 relative error per product (unit roundoff 2^-11), so it suits
// training, not reference checks. float64 products are unaffected.
//
// K == 0 is an empty sum: C = 0 (C += nothing when accumulating); an empty C does nothing.
// All work is queued on the device's stream (cuda::cublas(device) is bound to it) and the
// calls return without waiting.
#pragma once

#include <cstdint>

namespace ssm::cuda {

// C = op(A) op(B) when accumulate is false (C's old contents are ignored, even NaN), else
// C += op(A) op(B). Pointers are device memory of `device`. Instantiated for float and double.
template <typename T>
void gemm(int device, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, bool trans_a,
          const T* B, int64_t ldb, bool trans_b, T* C, int64_t ldc, bool accumulate);

// For i in [0, batch): C_i = op(A_i) op(B_i) (or +=), where X_i = X + i * stride_x. The C_i
// must not overlap each other. Instantiated for float and double.
template <typename T>
void gemm_strided_batched(int device, int64_t batch, int64_t M, int64_t N, int64_t K, const T* A,
                          int64_t lda, int64_t stride_a, bool trans_a, const T* B, int64_t ldb,
                          int64_t stride_b, bool trans_b, T* C, int64_t ldc, int64_t stride_c,
                          bool accumulate);

} // namespace ssm::cuda
