// ops_elementwise.cpp: checks and device dispatch of the elementwise ops; the loops are in
// tensor/cpu/elementwise.cpp and their CUDA kernels in cuda/elementwise.cu.
#include <string>

#include "tensor/cpu/elementwise.h"
#include "tensor/ops.h"

#ifdef SSM_CUDA
#include "cuda/elementwise.h"
#endif

namespace ssm {

const char* unary_name(UnaryOp op) {
  static const char* names[] = {
      "neg",    "exp",        "log",       "sqrt",     "rsqrt", "abs",     "sign",
      "square", "reciprocal", "sin",       "cos",      "tanh",  "sigmoid", "relu",
      "silu",   "softplus",   "gelu_tanh", "gelu_erf", "erf",   "log1p",   "expm1"};
  return names[static_cast<int>(op)];
}

const char* binary_name(BinaryOp op) {
  static const char* names[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum",
                                "eq",  "ne",  "lt",  "le",  "gt",  "ge"};
  return names[static_cast<int>(op)];
}

void check_defined(const Tensor& t, const char* op) {
  if (!t.defined()) throw std::invalid_argument(std::string(op) + ": got an undefined tensor");
}

void check_floating(const Tensor& t, const char* op) {
  check_defined(t, op);
  if (!is_floating(t.dtype()))
    throw std::invalid_argument(std::string(op) + ": expected a float32 or float64 tensor, got " +
                                t.describe());
}

void check_same_dtype_device(const Tensor& a, const Tensor& b, const char* op) {
  check_defined(a, op);
  check_defined(b, op);
  if (a.dtype() != b.dtype())
    throw std::invalid_argument(std::string(op) + ": dtypes differ (" + a.describe() + " vs " +
                                b.describe() + "); convert one with .to(dtype)");
  if (a.device() != b.device())
    throw std::invalid_argument(std::string(op) + ": devices differ (" + a.describe() + " vs " +
                                b.describe() + ")");
}

// Ops that only make sense on real numbers refuse int64 input.
static bool unary_allows_int(UnaryOp op) {
  return op == UnaryOp::Neg || op == UnaryOp::Abs || op == UnaryOp::Sign || op == UnaryOp::Square;
}

Tensor unary(UnaryOp op, const Tensor& x) {
  check_defined(x, unary_name(op));
  if (!is_floating(x.dtype()) && !unary_allows_int(op))
    throw std::invalid_argument(std::string(unary_name(op)) +
                                ": expected a float32 or float64 tensor, got " + x.describe());
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.device().is_cuda()) {
#ifdef SSM_CUDA
    cuda::unary(op, x, out);
#else
    throw_no_cuda(unary_name(op));
#endif
  } else {
    cpu::unary(op, x, out);
  }
  return out;
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = binary_name(op);
  check_same_dtype_device(a, b, name);
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  if (a.device().is_cuda()) {
#ifdef SSM_CUDA
    cuda::binary(op, a.expand(shape), b.expand(shape), out);
#else
    throw_no_cuda(name);
#endif
  } else {
    cpu::binary(op, a.expand(shape), b.expand(shape), out);
  }
  return out;
}

Tensor binary_scalar(BinaryOp op, const Tensor& a, double s) {
  check_defined(a, binary_name(op));
  return binary(op, a, Tensor::scalar(s, a.dtype(), a.device()));
}

Tensor clamp(const Tensor& x, double lo, double hi) {
  check_defined(x, "clamp");
  if (lo > hi)
    throw std::invalid_argument("clamp: lo " + std::to_string(lo) + " > hi " + std::to_string(hi));
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.device().is_cuda()) {
#ifdef SSM_CUDA
    cuda::clamp(x, lo, hi, out);
#else
    throw_no_cuda("clamp");
#endif
  } else {
    cpu::clamp(x, lo, hi, out);
  }
  return out;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_same_dtype_device(a, b, "where");
  check_defined(cond, "where");
  if (cond.device() != a.device())
    throw std::invalid_argument("where: condition on " + cond.device().str() + ", values on " +
                                a.device().str());
  const Shape shape =
      broadcast_shapes(cond.shape(), broadcast_shapes(a.shape(), b.shape(), "where"), "where");
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  if (a.device().is_cuda()) {
#ifdef SSM_CUDA
    cuda::where(cond.expand(shape), a.expand(shape), b.expand(shape), out);
#else
    throw_no_cuda("where");
#endif
  } else {
    cpu::where(cond.expand(shape), a.expand(shape), b.expand(shape), out);
  }
  return out;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  check_defined(x, "masked_fill");
  check_defined(mask, "masked_fill");
  if (broadcast_shapes(x.shape(), mask.shape(), "masked_fill") != x.shape())
    throw std::invalid_argument("masked_fill: mask of shape " + shape_str(mask.shape()) +
                                " does not broadcast to the input's shape " + shape_str(x.shape()));
  return where(mask, Tensor::scalar(value, x.dtype(), x.device()), x);
}

void add_(Tensor& dst, const Tensor& src) {
  check_same_dtype_device(dst, src, "add_");
  if (broadcast_shapes(dst.shape(), src.shape(), "add_") != dst.shape())
    throw std::invalid_argument("add_: cannot accumulate shape " + shape_str(src.shape()) +
                                " into shape " + shape_str(dst.shape()));
  for (int64_t d = 0; d < dst.dim(); ++d)
    if (dst.strides()[d] == 0 && dst.size(d) > 1)
      throw std::invalid_argument("add_: the destination " + dst.describe() +
                                  " is an expanded view (several elements share one memory "
                                  "location); accumulate into a contiguous tensor");
  if (dst.device().is_cuda()) {
#ifdef SSM_CUDA
    cuda::add_(dst, src.expand(dst.shape()));
#else
    throw_no_cuda("add_");
#endif
  } else {
    cpu::add_(dst, src.expand(dst.shape()));
  }
}

} // namespace ssm
