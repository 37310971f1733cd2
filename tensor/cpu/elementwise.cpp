// elementwise.cpp: the CPU loops of the elementwise ops; the math of each op is in
// tensor/ops.h and the buffer conventions in tensor/cpu/elementwise.h. map1/map2 walk the
// operands flat when all are packed, else with for_each_strided (tensor/cpu/strided.h).
#include "tensor/cpu/elementwise.h"

#include <cmath>
#include <stdexcept>
#include <type_traits>

#include "tensor/cpu/int_pow.h"
#include "tensor/cpu/strided.h"

namespace ssm::cpu {

// out[i] = f(x[i]) for every element; x may be strided, out is contiguous.
template <typename T, typename F>
static void map1(const Tensor& x, Tensor& out, F f) {
  const T* px = x.data<T>();
  T* po = out.data<T>();
  if (x.is_contiguous()) {
    const int64_t n = out.numel();
    for (int64_t i = 0; i < n; ++i) po[i] = f(px[i]);
    return;
  }
  for_each_strided<2>(out.shape(), {&out.strides(), &x.strides()},
                      [&](const std::array<int64_t, 2>& o) { po[o[0]] = f(px[o[1]]); });
}

// out[i] = f(a[i], b[i]); a and b are expanded to out's shape.
template <typename T, typename F>
static void map2(const Tensor& a, const Tensor& b, Tensor& out, F f) {
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* po = out.data<T>();
  if (a.is_contiguous() && b.is_contiguous()) {
    const int64_t n = out.numel();
    for (int64_t i = 0; i < n; ++i) po[i] = f(pa[i], pb[i]);
    return;
  }
  for_each_strided<3>(out.shape(), {&out.strides(), &a.strides(), &b.strides()},
                      [&](const std::array<int64_t, 3>& o) { po[o[0]] = f(pa[o[1]], pb[o[2]]); });
}

// int64 +, -, * wrap modulo 2^64 (two's complement, as the GPU and the GEMM do) instead of
// overflowing, which C++ leaves undefined for signed integers; floats are unchanged.
template <typename T>
static T wrap_add(T x, T y) {
  if constexpr (std::is_integral_v<T>)
    return static_cast<T>(static_cast<uint64_t>(x) + static_cast<uint64_t>(y));
  else
    return x + y;
}
template <typename T>
static T wrap_sub(T x, T y) {
  if constexpr (std::is_integral_v<T>)
    return static_cast<T>(static_cast<uint64_t>(x) - static_cast<uint64_t>(y));
  else
    return x - y;
}
template <typename T>
static T wrap_mul(T x, T y) {
  if constexpr (std::is_integral_v<T>)
    return static_cast<T>(static_cast<uint64_t>(x) * static_cast<uint64_t>(y));
  else
    return x * y;
}

template <typename T>
static T sigmoid_of(T v) {
  // Two branches keep exp() from overflowing for large |v|.
  if (v >= 0) return T(1) / (T(1) + std::exp(-v));
  const T e = std::exp(v);
  return e / (T(1) + e);
}

template <typename T>
static void unary_typed(UnaryOp op, const Tensor& x, Tensor& out) {
  switch (op) {
    case UnaryOp::Neg: return map1<T>(x, out, [](T v) { return wrap_sub(T(0), v); });
    case UnaryOp::Abs: return map1<T>(x, out, [](T v) { return v < 0 ? wrap_sub(T(0), v) : v; });
    case UnaryOp::Sign: return map1<T>(x, out, [](T v) { return T((v > 0) - (v < 0)); });
    case UnaryOp::Square: return map1<T>(x, out, [](T v) { return wrap_mul(v, v); });
    default: break;
  }
  if constexpr (std::is_floating_point_v<T>) {
    switch (op) {
      case UnaryOp::Exp: return map1<T>(x, out, [](T v) { return std::exp(v); });
      case UnaryOp::Log: return map1<T>(x, out, [](T v) { return std::log(v); });
      case UnaryOp::Sqrt: return map1<T>(x, out, [](T v) { return std::sqrt(v); });
      case UnaryOp::Rsqrt: return map1<T>(x, out, [](T v) { return T(1) / std::sqrt(v); });
      case UnaryOp::Reciprocal: return map1<T>(x, out, [](T v) { return T(1) / v; });
      case UnaryOp::Sin: return map1<T>(x, out, [](T v) { return std::sin(v); });
      case UnaryOp::Cos: return map1<T>(x, out, [](T v) { return std::cos(v); });
      case UnaryOp::Tanh: return map1<T>(x, out, [](T v) { return std::tanh(v); });
      case UnaryOp::Sigmoid: return map1<T>(x, out, [](T v) { return sigmoid_of(v); });
      case UnaryOp::Relu: return map1<T>(x, out, [](T v) { return v > 0 ? v : T(0); });
      case UnaryOp::Silu: return map1<T>(x, out, [](T v) { return v * sigmoid_of(v); });
      case UnaryOp::Softplus:
        // PyTorch's softplus with beta 1, threshold 20: linear above 20 where log1p(exp(x))
        // equals x to float precision anyway.
        return map1<T>(x, out, [](T v) { return v > T(20) ? v : std::log1p(std::exp(v)); });
      case UnaryOp::GeluTanh:
        return map1<T>(x, out, [](T v) {
          const T k = T(0.7978845608028654); // sqrt(2 / pi)
          return T(0.5) * v * (T(1) + std::tanh(k * (v + T(0.044715) * v * v * v)));
        });
      case UnaryOp::GeluErf:
        return map1<T>(x, out, [](T v) {
          return T(0.5) * v * (T(1) + std::erf(v * T(0.7071067811865476))); // 1 / sqrt(2)
        });
      case UnaryOp::Erf: return map1<T>(x, out, [](T v) { return std::erf(v); });
      case UnaryOp::Log1p: return map1<T>(x, out, [](T v) { return std::log1p(v); });
      case UnaryOp::Expm1: return map1<T>(x, out, [](T v) { return std::expm1(v); });
      default: break;
    }
  }
  throw std::logic_error(std::string("unary: unhandled op ") + unary_name(op));
}

void unary(UnaryOp op, const Tensor& x, Tensor& out) {
  dispatch_dtype(x.dtype(), [&](auto zero) { unary_typed<decltype(zero)>(op, x, out); });
}

template <typename T>
static void binary_typed(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  switch (op) {
    case BinaryOp::Add: return map2<T>(a, b, out, [](T x, T y) { return wrap_add(x, y); });
    case BinaryOp::Sub: return map2<T>(a, b, out, [](T x, T y) { return wrap_sub(x, y); });
    case BinaryOp::Mul: return map2<T>(a, b, out, [](T x, T y) { return wrap_mul(x, y); });
    case BinaryOp::Div:
      if constexpr (std::is_integral_v<T>)
        return map2<T>(a, b, out, [](T x, T y) {
          if (y == 0) throw std::domain_error("div: integer division by zero");
          // INT64_MIN / -1 overflows (the hardware traps): it wraps to INT64_MIN, as -x does.
          if (y == -1) return static_cast<T>(0 - static_cast<uint64_t>(x));
          return x / y; // truncates toward zero
        });
      else
        return map2<T>(a, b, out, [](T x, T y) { return x / y; });
    case BinaryOp::Pow:
      if constexpr (std::is_integral_v<T>)
        return map2<T>(a, b, out, [](T x, T y) { return int_pow(x, y); });
      else
        return map2<T>(a, b, out, [](T x, T y) {
          return static_cast<T>(std::pow(static_cast<double>(x), static_cast<double>(y)));
        });
    // NaN in either operand gives NaN, as torch.maximum / torch.minimum.
    case BinaryOp::Maximum:
      return map2<T>(a, b, out, [](T x, T y) {
        if (x != x || y != y) return x != x ? x : y; // x != x only for NaN
        return x > y ? x : y;
      });
    case BinaryOp::Minimum:
      return map2<T>(a, b, out, [](T x, T y) {
        if (x != x || y != y) return x != x ? x : y;
        return x < y ? x : y;
      });
    case BinaryOp::Eq: return map2<T>(a, b, out, [](T x, T y) { return T(x == y); });
    case BinaryOp::Ne: return map2<T>(a, b, out, [](T x, T y) { return T(x != y); });
    case BinaryOp::Lt: return map2<T>(a, b, out, [](T x, T y) { return T(x < y); });
    case BinaryOp::Le: return map2<T>(a, b, out, [](T x, T y) { return T(x <= y); });
    case BinaryOp::Gt: return map2<T>(a, b, out, [](T x, T y) { return T(x > y); });
    case BinaryOp::Ge: return map2<T>(a, b, out, [](T x, T y) { return T(x >= y); });
  }
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  dispatch_dtype(out.dtype(), [&](auto zero) { binary_typed<decltype(zero)>(op, a, b, out); });
}

void where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) {
  dispatch_dtype(out.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* po = out.data<T>();
    dispatch_dtype(cond.dtype(), [&](auto czero) {
      using C = decltype(czero);
      const C* pc = cond.data<C>();
      for_each_strided<4>(out.shape(),
                          {&out.strides(), &cond.strides(), &a.strides(), &b.strides()},
                          [&](const std::array<int64_t, 4>& o) {
                            po[o[0]] = pc[o[1]] != C(0) ? pa[o[2]] : pb[o[3]];
                          });
    });
  });
}

void clamp(const Tensor& x, double lo, double hi, Tensor& out) {
  dispatch_dtype(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T tlo = static_cast<T>(lo), thi = static_cast<T>(hi);
    map1<T>(x, out, [=](T v) { return v < tlo ? tlo : (v > thi ? thi : v); });
  });
}

void add_(Tensor& dst, const Tensor& src) {
  dispatch_dtype(dst.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* pd = dst.data<T>();
    const T* ps = src.data<T>();
    if (dst.is_contiguous() && src.is_contiguous()) {
      for (int64_t i = 0; i < dst.numel(); ++i) pd[i] += ps[i];
      return;
    }
    for_each_strided<2>(dst.shape(), {&dst.strides(), &src.strides()},
                        [&](const std::array<int64_t, 2>& o) { pd[o[0]] += ps[o[1]]; });
  });
}

} // namespace ssm::cpu
