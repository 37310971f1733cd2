// elementwise.h: CUDA loops of the elementwise ops, with the names, signatures and semantics
// of their CPU counterparts in tensor/cpu/elementwise.h (see tensor/ops.h for the math).
//
// Every tensor lives on one CUDA device. As on the CPU, the inputs arrive already expanded to
// the output's shape (stride 0 where broadcast); `out` of unary/binary/where/clamp is a fresh
// contiguous tensor, `dst` of add_ may be a strided view.
#pragma once

#include "tensor/ops.h"

namespace ssm::cuda {

void unary(UnaryOp op, const Tensor& x, Tensor& out);
// Integer division by zero throws std::domain_error("div: integer division by zero"), as the
// CPU loop does; the check waits for the kernel (one small device-to-host copy).
void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out);
void where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out);
void clamp(const Tensor& x, double lo, double hi, Tensor& out);
void add_(Tensor& dst, const Tensor& src);

} // namespace ssm::cuda
