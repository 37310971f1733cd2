// reduce.h: CPU loops of the reductions (see tensor/ops.h for the semantics).
//
// The dispatch layer hands each loop a contiguous tensor viewed as (pre, inner, post): the
// reduced dims form the middle block of `inner` elements, and the kept dims the `pre` block
// before it and the `post` block after it. Output [p, q] reduces x[p, :, q]:
//     out[p * post + q] = reduce_{r < inner} x[(p * inner + r) * post + q]
// Reducing trailing dims is post = 1 (one pass over consecutive elements per output); reducing
// leading dims is pre = 1 (rows added into a row of accumulators, reading memory in order, so
// the bias gradient of a Linear costs one pass and no transposed copy).
// Sums accumulate in double (int64 modulo 2^64) in order of r, so float32 sums do not drift with
// length and the result never depends on threads.
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace ssm::cpu {

enum class ReduceKind { Sum, Max, Min };

void reduce(ReduceKind kind, const Tensor& x, int64_t pre, int64_t inner, int64_t post,
            Tensor& out);
// out[p * post + q] = the first r maximising x[p, r, q] (NaN counts as the maximum).
void argmax(const Tensor& x, int64_t pre, int64_t inner, int64_t post, Tensor& out);

} // namespace ssm::cpu
