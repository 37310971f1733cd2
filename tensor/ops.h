// ops.h: raw tensor operations (no autograd).
//
// Each function checks its inputs (shapes, dtypes, devices) and throws std::invalid_argument
// naming the op and what it expected vs found; then it dispatches on the device to a loop in
// tensor/cpu/ (a CUDA kernel will sit beside it). Results are new contiguous tensors unless a
// comment says the result is a view. Binary ops need both inputs on one device with one dtype
// (no silent promotion: mixing float32 and float64 is an error, so a float64 gradient check
// never quietly runs in float32).
//
// Files: ops_elementwise.cpp (unary, binary, where, masked_fill, clamp),
//        ops_reduce.cpp (sum, mean, max, min, argmax, cumsum, sum_to_shape),
//        ops_index.cpp (index_select, gather, scatter_add, index_add_, concat, split, stack),
//        ops_matmul.cpp (matmul, bmm; the CPU GEMM is tensor/cpu/gemm.cpp).
#pragma once

#include <vector>

#include "tensor/tensor.h"

namespace ssm {

// ---- elementwise ---------------------------------------------------------------------------

enum class UnaryOp {
  Neg,
  Exp,
  Log,
  Sqrt,
  Rsqrt,
  Abs,
  Sign,
  Square,
  Reciprocal,
  Sin,
  Cos,
  Tanh,
  Sigmoid,
  Relu,
  Silu,
  Softplus, // softplus as PyTorch: beta 1, x > 20 -> x
  GeluTanh, // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  GeluErf,  // 0.5 x (1 + erf(x / sqrt(2)))
  Erf,
  Log1p,
  Expm1
};
const char* unary_name(UnaryOp op);
Tensor unary(UnaryOp op, const Tensor& x); // floating dtypes (Neg, Abs, Sign, Square: any)

inline Tensor neg(const Tensor& x) { return unary(UnaryOp::Neg, x); }
inline Tensor exp(const Tensor& x) { return unary(UnaryOp::Exp, x); }
inline Tensor log(const Tensor& x) { return unary(UnaryOp::Log, x); }
inline Tensor sqrt(const Tensor& x) { return unary(UnaryOp::Sqrt, x); }
inline Tensor rsqrt(const Tensor& x) { return unary(UnaryOp::Rsqrt, x); }
inline Tensor abs(const Tensor& x) { return unary(UnaryOp::Abs, x); }
inline Tensor sign(const Tensor& x) { return unary(UnaryOp::Sign, x); }
inline Tensor square(const Tensor& x) { return unary(UnaryOp::Square, x); }
inline Tensor reciprocal(const Tensor& x) { return unary(UnaryOp::Reciprocal, x); }
inline Tensor sin(const Tensor& x) { return unary(UnaryOp::Sin, x); }
inline Tensor cos(const Tensor& x) { return unary(UnaryOp::Cos, x); }
inline Tensor tanh(const Tensor& x) { return unary(UnaryOp::Tanh, x); }
inline Tensor sigmoid(const Tensor& x) { return unary(UnaryOp::Sigmoid, x); }
inline Tensor relu(const Tensor& x) { return unary(UnaryOp::Relu, x); }
inline Tensor silu(const Tensor& x) { return unary(UnaryOp::Silu, x); }
inline Tensor softplus(const Tensor& x) { return unary(UnaryOp::Softplus, x); }
inline Tensor erf(const Tensor& x) { return unary(UnaryOp::Erf, x); }

enum class BinaryOp { Add, Sub, Mul, Div, Pow, Maximum, Minimum, Eq, Ne, Lt, Le, Gt, Ge };
const char* binary_name(BinaryOp op);
// NumPy broadcasting. Comparisons return 1 or 0 in the inputs' dtype (there is no bool dtype).
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
// Same with a scalar right operand (a op s), the scalar converted to a's dtype.
Tensor binary_scalar(BinaryOp op, const Tensor& a, double s);

inline Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Add, a, b); }
inline Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Sub, a, b); }
inline Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Mul, a, b); }
inline Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Div, a, b); }
inline Tensor pow(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Pow, a, b); }
inline Tensor maximum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Maximum, a, b); }
inline Tensor minimum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Minimum, a, b); }
inline Tensor eq(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Eq, a, b); }
inline Tensor gt(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Gt, a, b); }
inline Tensor lt(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Lt, a, b); }
inline Tensor add(const Tensor& a, double s) { return binary_scalar(BinaryOp::Add, a, s); }
inline Tensor sub(const Tensor& a, double s) { return binary_scalar(BinaryOp::Sub, a, s); }
inline Tensor mul(const Tensor& a, double s) { return binary_scalar(BinaryOp::Mul, a, s); }
inline Tensor div(const Tensor& a, double s) { return binary_scalar(BinaryOp::Div, a, s); }
inline Tensor pow(const Tensor& a, double s) { return binary_scalar(BinaryOp::Pow, a, s); }

Tensor clamp(const Tensor& x, double lo, double hi); // min(max(x, lo), hi)
// Elementwise cond ? a : b with broadcasting of all three; cond is any dtype, non-zero = true.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
// x with `value` wherever mask (broadcast to x) is non-zero.
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);
// dst += src in place, src broadcast to dst's shape; dst may be a strided view.
void add_(Tensor& dst, const Tensor& src);

// ---- reductions ----------------------------------------------------------------------------
// `dims` lists the dims to reduce (negatives allowed, any order, no repeats); an empty list
// reduces every dim. keepdim keeps reduced dims as size 1.

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor max(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor min(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Index (int64) of the first maximum along `dim`.
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
// Inclusive prefix sum along `dim`.
Tensor cumsum(const Tensor& x, int64_t dim);
// Sums a gradient of a broadcast result back to the shape of the operand that was broadcast:
// reduces leading extra dims and dims where `shape` has size 1. The one place autograd undoes
// broadcasting.
Tensor sum_to_shape(const Tensor& x, const Shape& shape);

// ---- matrix products -----------------------------------------------------------------------

// torch.matmul semantics: 1-D x 1-D is a dot product; 2-D x 2-D a matrix product; a 1-D
// operand is treated as a row (left) or column (right) vector and that dim removed after;
// more dims are batch dims, broadcast against each other.
Tensor matmul(const Tensor& a, const Tensor& b);
// (B, M, K) x (B, K, N) -> (B, M, N), no broadcasting.
Tensor bmm(const Tensor& a, const Tensor& b);

// ---- indexing, joining, splitting ----------------------------------------------------------

// Rows of x along `dim` picked by a 1-D int64 `index`: out.size(dim) = index.numel().
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// out[i][j][k] = x[index[i][j][k]][j][k] for dim 0 (and so on): index has x's number of
// dims, each size <= x's except along `dim`; out has index's shape.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
// A copy of x with src added at index along dim: out[index[i][j]][j] += src[i][j] (dim 0).
// The adjoint of gather.
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
// dst.select(dim, index[i]) += src.select(dim, i) for every i, in place. The adjoint of
// index_select (embedding backward).
void index_add_(Tensor& dst, int64_t dim, const Tensor& index, const Tensor& src);
Tensor concat(const std::vector<Tensor>& tensors, int64_t dim);
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim);
// Views of consecutive pieces along dim, with the given sizes (they must add up to the size).
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim);
// Views of pieces of `chunk` elements along dim (the last may be shorter).
std::vector<Tensor> split(const Tensor& x, int64_t chunk, int64_t dim);

// ---- checks shared by the op files ---------------------------------------------------------

// Throws unless a and b have one dtype and one device; the message names the op.
void check_same_dtype_device(const Tensor& a, const Tensor& b, const char* op);
void check_defined(const Tensor& t, const char* op);
// Throws unless t is float32 or float64: "<op>: expected a float32 or float64 tensor, got ...".
void check_floating(const Tensor& t, const char* op);

} // namespace ssm
