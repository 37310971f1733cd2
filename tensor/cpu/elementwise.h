// elementwise.h: CPU loops of the elementwise ops (see tensor/ops.h for the math).
//
// Each loop writes a contiguous `out` of the broadcast shape. Its inputs arrive already
// expanded to that shape (stride-0 dims where they were broadcast), so the loops never think
// about broadcasting: they walk (out, a, b) with for_each_strided, or a flat loop when every
// operand is contiguous.
#pragma once

#include "tensor/ops.h"

namespace ssm::cpu {

void unary(UnaryOp op, const Tensor& x, Tensor& out);
void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out);
void where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out);
void clamp(const Tensor& x, double lo, double hi, Tensor& out);
void add_(Tensor& dst, const Tensor& src);

} // namespace ssm::cpu
