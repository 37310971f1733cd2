// reduce.h: CUDA kernels of the reductions, with the semantics of tensor/cpu/reduce.h.
//
// x is contiguous and viewed as (pre, inner, post); output [p, q] reduces x[p, :, q]:
//     out[p * post + q] = reduce_{r < inner} x[(p * inner + r) * post + q]
// Sums accumulate in double (int64 in int64); max and min propagate NaN; argmax returns the
// first r maximising x[p, r, q], a NaN counting as the maximum.
//
// The summation order differs from the CPU's sequential order (see cuda/reduce.cu): float64
// sums agree with the CPU to rounding of the double accumulator, and float32 sums, rounded
// from a double accumulator on both sides, agree to within one float32 ulp. Max, min and
// argmax are exact.
#pragma once

#include <cstdint>

#include "tensor/cpu/reduce.h"
#include "tensor/tensor.h"

namespace ssm::cuda {

using ReduceKind = cpu::ReduceKind;

void reduce(ReduceKind kind, const Tensor& x, int64_t pre, int64_t inner, int64_t post,
            Tensor& out);
// out[p * post + q] = the first r maximising x[p, r, q] (NaN counts as the maximum).
void argmax(const Tensor& x, int64_t pre, int64_t inner, int64_t post, Tensor& out);

} // namespace ssm::cuda
