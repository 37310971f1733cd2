// blas.h: matrix products on CUDA through cuBLAS (the CUDA side of tensor/ops_matmul.cpp).
//
// Row-major to column-major. cuBLAS reads matrices column-major. A row-major (R, C) matrix
// with row stride ld is, read column-major with the same ld, its transpose (C, R). So the
// row-major product C = op(A) op(B), (M, N) = (M, K) x (K, N), is computed as the column-major
// product C^T = op(B)^T op(A)^T of shape (N, M): cuBLAS gets B first, then A, with m = N,
// n = M, k = K, and each operand's transpose flag passes through unchanged.
//
// float32 uses cublasSgemm (cublasSgemmStridedBatched for batches), float64 cublasDgemm. The
// float32 products run in full float32 unless TF32 is switched on with cuda::set_tf32(true)
// (cuda/runtime.h): TF32 keeps 10 mantissa bits of each input, about 1e-3 relative error,
// several times faster on tensor cores. int64 products are refused (cuBLAS has none).
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace ssm::cuda {

// One operand of a batch of row-major matrices: element (r, c) of batch entry i sits at
// offsets[i] + (trans ? c * ld + r : r * ld + c).
struct GemmBatchOperand {
  const void* data = nullptr;
  std::vector<int64_t> offsets; // per batch entry, in elements
  bool trans = false;
  int64_t ld = 0;
};

// out[i] (M, N, contiguous, batch entry i at i * M * N) = op(A[i]) (M, K) x op(B[i]) (K, N)
// for every batch entry; `dtype` float32 or float64; everything on `device`.
void batched_gemm(DType dtype, int device, int64_t M, int64_t N, int64_t K,
                  const GemmBatchOperand& a, const GemmBatchOperand& b, void* out);

} // namespace ssm::cuda
