// shape.h: shapes, strides and broadcasting rules, shared by every op.
//
// Row-major (C order) layout as in PyTorch: for shape (d0, d1, ..., dk) the contiguous strides
// are (d1*...*dk, ..., dk, 1), counted in elements, not bytes. A stride of 0 repeats an element
// (that is how expand() broadcasts without copying).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ssm {

using Shape = std::vector<int64_t>;

int64_t numel_of(const Shape& shape);
Shape contiguous_strides(const Shape& shape);
std::string shape_str(const Shape& shape); // "[2, 3]"

// Turns a possibly negative dim (-1 = last) into 0..ndim-1, or throws naming `op`.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);

// NumPy broadcasting: align shapes at the right; each pair of sizes must be equal or one of
// them 1. Throws naming `op` and both shapes otherwise.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

} // namespace ssm
