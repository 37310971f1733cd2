// reduce.h: CPU loops of the reductions (see tensor/ops.h for the semantics).
//
// The dispatch layer hands each loop a contiguous tensor laid out as (outer, inner): the kept
// dims first, the reduced dims last, so reducing is one pass over `inner` consecutive elements
// for each of the `outer` outputs. Sums accumulate in double (int64 in int64) in index order,
// so float32 sums do not drift with length and the result never depends on threads.
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace ssm::cpu {

enum class ReduceKind { Sum, Max, Min };

// out[o] = reduce_{i < inner} x[o * inner + i]; x contiguous with outer*inner elements.
void reduce(ReduceKind kind, const Tensor& x, int64_t outer, int64_t inner, Tensor& out);
// out[o] = index i of the first maximum of x[o * inner + i] (NaN counts as the maximum).
void argmax(const Tensor& x, int64_t outer, int64_t inner, Tensor& out);

} // namespace ssm::cpu
