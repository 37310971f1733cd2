// elementwise.cu: the elementwise ops on CUDA tensors.
//
//   unary:   out[i] = f(x[i])                  f one of UnaryOp (tensor/ops.h)
//   binary:  out[i] = g(a[i], b[i])            g one of BinaryOp
//   where:   out[i] = cond[i] != 0 ? a[i] : b[i]
//   clamp:   out[i] = x[i] < lo ? lo : (x[i] > hi ? hi : x[i])
//   add_:    dst[i] += src[i]
// Buffers: every operand has the output's shape (n elements), broadcast operands with stride
// 0; out is contiguous except for add_, whose dst may be a strided view.
//
// Parallelisation: one thread per element in a grid-stride loop of 256-thread blocks (at most
// 65535 blocks; thread t visits t, t + 65535 * 256, ... on larger tensors). When out is
// contiguous and every input is either contiguous or one value broadcast everywhere (a scalar
// operand), element i sits at i * step in each buffer with step 1 or 0: the flat kernels. Any
// other layout goes through StridedLayout (cuda/indexing.cuh), which costs a division per
// remaining dim per element.
//
// Each op is a small functor whose call operator repeats the CPU loop's lambda of
// tensor/cpu/elementwise.cpp: the same formula in the same precision (softplus threshold 20,
// sigmoid with two branches, pow through double, NaN-propagating maximum/minimum, comparisons
// giving 0/1 in the input dtype). Results differ from the CPU's only where the math libraries
// differ (exp, log, tanh, erf, ...: a few ulps) or where nvcc fuses a multiply-add.
#include <stdexcept>
#include <string>
#include <type_traits>

#include "cuda/check.h"
#include "cuda/elementwise.h"
#include "cuda/indexing.cuh"
#include "cuda/runtime.h"
#include "tensor/cpu/int_pow.h"

namespace ssm::cuda {

// ---- the ops, one functor each ---------------------------------------------------------------

template <typename T>
__device__ __forceinline__ T sigmoid_of(T v) {
  // Two branches keep exp() from overflowing for large |v|.
  if (v >= 0) return T(1) / (T(1) + std::exp(-v));
  const T e = std::exp(v);
  return e / (T(1) + e);
}

template <UnaryOp Op>
struct UnaryFn {
  template <typename T>
  __device__ __forceinline__ T operator()(T v) const {
    if constexpr (Op == UnaryOp::Neg)
      return -v;
    else if constexpr (Op == UnaryOp::Abs)
      return v < 0 ? -v : v;
    else if constexpr (Op == UnaryOp::Sign)
      return T((v > 0) - (v < 0));
    else if constexpr (Op == UnaryOp::Square)
      return v * v;
    else if constexpr (Op == UnaryOp::Exp)
      return std::exp(v);
    else if constexpr (Op == UnaryOp::Log)
      return std::log(v);
    else if constexpr (Op == UnaryOp::Sqrt)
      return std::sqrt(v);
    else if constexpr (Op == UnaryOp::Rsqrt)
      return T(1) / std::sqrt(v);
    else if constexpr (Op == UnaryOp::Reciprocal)
      return T(1) / v;
    else if constexpr (Op == UnaryOp::Sin)
      return std::sin(v);
    else if constexpr (Op == UnaryOp::Cos)
      return std::cos(v);
    else if constexpr (Op == UnaryOp::Tanh)
      return std::tanh(v);
    else if constexpr (Op == UnaryOp::Sigmoid)
      return sigmoid_of(v);
    else if constexpr (Op == UnaryOp::Relu)
      return v > 0 ? v : T(0);
    else if constexpr (Op == UnaryOp::Silu)
      return v * sigmoid_of(v);
    // PyTorch's softplus with beta 1, threshold 20.
    else if constexpr (Op == UnaryOp::Softplus)
      return v > T(20) ? v : std::log1p(std::exp(v));
    else if constexpr (Op == UnaryOp::GeluTanh) {
      const T k = T(0.7978845608028654); // sqrt(2 / pi)
      return T(0.5) * v * (T(1) + std::tanh(k * (v + T(0.044715) * v * v * v)));
    } else if constexpr (Op == UnaryOp::GeluErf) {
      return T(0.5) * v * (T(1) + std::erf(v * T(0.7071067811865476))); // 1 / sqrt(2)
    } else if constexpr (Op == UnaryOp::Erf)
      return std::erf(v);
    else if constexpr (Op == UnaryOp::Log1p)
      return std::log1p(v);
    else
      return std::expm1(v); // Op == UnaryOp::Expm1
  }
};

template <BinaryOp Op>
struct BinaryFn {
  template <typename T>
  __device__ __forceinline__ T operator()(T x, T y) const {
    if constexpr (Op == BinaryOp::Add)
      return x + y;
    else if constexpr (Op == BinaryOp::Sub)
      return x - y;
    else if constexpr (Op == BinaryOp::Mul)
      return x * y;
    else if constexpr (Op == BinaryOp::Div)
      return x / y; // floating point; integers: IntDivFn
    else if constexpr (Op == BinaryOp::Pow && std::is_integral_v<T>)
      return int_pow(x, y); // exact, shared with the CPU loop
    else if constexpr (Op == BinaryOp::Pow)
      return static_cast<T>(std::pow(static_cast<double>(x), static_cast<double>(y)));
    // NaN in either operand gives NaN, as torch.maximum / torch.minimum (x != x only for NaN).
    else if constexpr (Op == BinaryOp::Maximum) {
      if (x != x || y != y) return x != x ? x : y;
      return x > y ? x : y;
    } else if constexpr (Op == BinaryOp::Minimum) {
      if (x != x || y != y) return x != x ? x : y;
      return x < y ? x : y;
    } else if constexpr (Op == BinaryOp::Eq)
      return T(x == y);
    else if constexpr (Op == BinaryOp::Ne)
      return T(x != y);
    else if constexpr (Op == BinaryOp::Lt)
      return T(x < y);
    else if constexpr (Op == BinaryOp::Le)
      return T(x <= y);
    else if constexpr (Op == BinaryOp::Gt)
      return T(x > y);
    else
      return T(x >= y); // Op == BinaryOp::Ge
  }
};

// Integer division truncating toward zero. A zero divisor cannot throw on the device: it sets
// *division_by_zero, which the host reads after the kernel and turns into the CPU's exception.
struct IntDivFn {
  int64_t* division_by_zero;
  __device__ __forceinline__ int64_t operator()(int64_t x, int64_t y) const {
    if (y == 0) {
      *division_by_zero = 1;
      return 0;
    }
    return x / y;
  }
};

template <typename T>
struct ClampFn {
  T lo, hi;
  __device__ __forceinline__ T operator()(T v) const { return v < lo ? lo : (v > hi ? hi : v); }
};

// ---- kernels ----------------------------------------------------------------------------------

__device__ __forceinline__ int64_t first_index() {
  return blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_stride() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

// out[i] = f(x[i * x_step]), out packed, x_step 1 (packed) or 0 (one broadcast value).
template <typename T, typename F>
__global__ void map1_flat(T* out, const T* x, int64_t x_step, int64_t n, F f) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) out[i] = f(x[i * x_step]);
}

template <typename T, typename F>
__global__ void map1_strided(T* out, const T* x, int64_t n, StridedLayout<2> layout, F f) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    int64_t off[2];
    layout.offsets(i, off);
    out[off[0]] = f(x[off[1]]);
  }
}

// out[i] = f(a[i * a_step], b[i * b_step]).
template <typename T, typename F>
__global__ void map2_flat(T* out, const T* a, int64_t a_step, const T* b, int64_t b_step, int64_t n,
                          F f) {
  for (int64_t i = first_index(); i < n; i += grid_stride())
    out[i] = f(a[i * a_step], b[i * b_step]);
}

template <typename T, typename F>
__global__ void map2_strided(T* out, const T* a, const T* b, int64_t n, StridedLayout<3> layout,
                             F f) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    int64_t off[3];
    layout.offsets(i, off);
    out[off[0]] = f(a[off[1]], b[off[2]]);
  }
}

template <typename T, typename C>
__global__ void where_strided(T* out, const C* cond, const T* a, const T* b, int64_t n,
                              StridedLayout<4> layout) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    int64_t off[4];
    layout.offsets(i, off);
    out[off[0]] = cond[off[1]] != C(0) ? a[off[2]] : b[off[3]];
  }
}

// ---- launches ---------------------------------------------------------------------------------

// Step of an operand in a flat kernel: 1 when packed, 0 when one value is broadcast to the
// whole shape (stride 0 in every dim of size > 1), -1 when neither holds and offsets must be
// computed.
static int64_t flat_step(const Tensor& t) {
  if (t.is_contiguous()) return 1;
  for (int64_t d = 0; d < t.dim(); ++d)
    if (t.shape()[d] != 1 && t.strides()[d] != 0) return -1;
  return 0;
}

template <typename T, typename F>
static void map1(const Tensor& x, Tensor& out, F f, const char* op) {
  const int64_t n = out.numel();
  if (n == 0) return;
  cudaStream_t s = stream(out.device().index);
  const int64_t x_step = flat_step(x);
  if (out.is_contiguous() && x_step >= 0) {
    map1_flat<<<elementwise_blocks(n), kElementwiseThreads, 0, s>>>(out.data<T>(), x.data<T>(),
                                                                    x_step, n, f);
  } else {
    const StridedLayout<2> layout = make_layout<2>(out.shape(), {&out, &x}, op);
    map1_strided<<<elementwise_blocks(n), kElementwiseThreads, 0, s>>>(out.data<T>(), x.data<T>(),
                                                                       n, layout, f);
  }
  SSM_CUDA_CHECK(cudaGetLastError());
}

template <typename T, typename F>
static void map2(const Tensor& a, const Tensor& b, Tensor& out, F f, const char* op) {
  const int64_t n = out.numel();
  if (n == 0) return;
  cudaStream_t s = stream(out.device().index);
  const int64_t a_step = flat_step(a), b_step = flat_step(b);
  if (out.is_contiguous() && a_step >= 0 && b_step >= 0) {
    map2_flat<<<elementwise_blocks(n), kElementwiseThreads, 0, s>>>(
        out.data<T>(), a.data<T>(), a_step, b.data<T>(), b_step, n, f);
  } else {
    const StridedLayout<3> layout = make_layout<3>(out.shape(), {&out, &a, &b}, op);
    map2_strided<<<elementwise_blocks(n), kElementwiseThreads, 0, s>>>(out.data<T>(), a.data<T>(),
                                                                       b.data<T>(), n, layout, f);
  }
  SSM_CUDA_CHECK(cudaGetLastError());
}

// ---- entry points -----------------------------------------------------------------------------

template <typename T>
static void unary_typed(UnaryOp op, const Tensor& x, Tensor& out) {
  const char* name = unary_name(op);
  switch (op) {
    case UnaryOp::Neg: return map1<T>(x, out, UnaryFn<UnaryOp::Neg>{}, name);
    case UnaryOp::Abs: return map1<T>(x, out, UnaryFn<UnaryOp::Abs>{}, name);
    case UnaryOp::Sign: return map1<T>(x, out, UnaryFn<UnaryOp::Sign>{}, name);
    case UnaryOp::Square: return map1<T>(x, out, UnaryFn<UnaryOp::Square>{}, name);
    default: break;
  }
  if constexpr (std::is_floating_point_v<T>) {
    switch (op) {
      case UnaryOp::Exp: return map1<T>(x, out, UnaryFn<UnaryOp::Exp>{}, name);
      case UnaryOp::Log: return map1<T>(x, out, UnaryFn<UnaryOp::Log>{}, name);
      case UnaryOp::Sqrt: return map1<T>(x, out, UnaryFn<UnaryOp::Sqrt>{}, name);
      case UnaryOp::Rsqrt: return map1<T>(x, out, UnaryFn<UnaryOp::Rsqrt>{}, name);
      case UnaryOp::Reciprocal: return map1<T>(x, out, UnaryFn<UnaryOp::Reciprocal>{}, name);
      case UnaryOp::Sin: return map1<T>(x, out, UnaryFn<UnaryOp::Sin>{}, name);
      case UnaryOp::Cos: return map1<T>(x, out, UnaryFn<UnaryOp::Cos>{}, name);
      case UnaryOp::Tanh: return map1<T>(x, out, UnaryFn<UnaryOp::Tanh>{}, name);
      case UnaryOp::Sigmoid: return map1<T>(x, out, UnaryFn<UnaryOp::Sigmoid>{}, name);
      case UnaryOp::Relu: return map1<T>(x, out, UnaryFn<UnaryOp::Relu>{}, name);
      case UnaryOp::Silu: return map1<T>(x, out, UnaryFn<UnaryOp::Silu>{}, name);
      case UnaryOp::Softplus: return map1<T>(x, out, UnaryFn<UnaryOp::Softplus>{}, name);
      case UnaryOp::GeluTanh: return map1<T>(x, out, UnaryFn<UnaryOp::GeluTanh>{}, name);
      case UnaryOp::GeluErf: return map1<T>(x, out, UnaryFn<UnaryOp::GeluErf>{}, name);
      case UnaryOp::Erf: return map1<T>(x, out, UnaryFn<UnaryOp::Erf>{}, name);
      case UnaryOp::Log1p: return map1<T>(x, out, UnaryFn<UnaryOp::Log1p>{}, name);
      case UnaryOp::Expm1: return map1<T>(x, out, UnaryFn<UnaryOp::Expm1>{}, name);
      default: break;
    }
  }
  throw std::logic_error(std::string("unary: unhandled op ") + name);
}

void unary(UnaryOp op, const Tensor& x, Tensor& out) {
  dispatch_dtype(x.dtype(), [&](auto zero) { unary_typed<decltype(zero)>(op, x, out); });
}

// The int64 division: launches IntDivFn, then waits for its flag.
static void integer_div(const Tensor& a, const Tensor& b, Tensor& out) {
  Tensor division_by_zero = Tensor::zeros({}, DType::Int64, out.device());
  map2<int64_t>(a, b, out, IntDivFn{division_by_zero.data<int64_t>()}, "div");
  if (division_by_zero.item() != 0) throw std::domain_error("div: integer division by zero");
}

template <typename T>
static void binary_typed(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  const char* name = binary_name(op);
  switch (op) {
    case BinaryOp::Add: return map2<T>(a, b, out, BinaryFn<BinaryOp::Add>{}, name);
    case BinaryOp::Sub: return map2<T>(a, b, out, BinaryFn<BinaryOp::Sub>{}, name);
    case BinaryOp::Mul: return map2<T>(a, b, out, BinaryFn<BinaryOp::Mul>{}, name);
    case BinaryOp::Div:
      if constexpr (std::is_integral_v<T>)
        return integer_div(a, b, out);
      else
        return map2<T>(a, b, out, BinaryFn<BinaryOp::Div>{}, name);
    case BinaryOp::Pow: return map2<T>(a, b, out, BinaryFn<BinaryOp::Pow>{}, name);
    case BinaryOp::Maximum: return map2<T>(a, b, out, BinaryFn<BinaryOp::Maximum>{}, name);
    case BinaryOp::Minimum: return map2<T>(a, b, out, BinaryFn<BinaryOp::Minimum>{}, name);
    case BinaryOp::Eq: return map2<T>(a, b, out, BinaryFn<BinaryOp::Eq>{}, name);
    case BinaryOp::Ne: return map2<T>(a, b, out, BinaryFn<BinaryOp::Ne>{}, name);
    case BinaryOp::Lt: return map2<T>(a, b, out, BinaryFn<BinaryOp::Lt>{}, name);
    case BinaryOp::Le: return map2<T>(a, b, out, BinaryFn<BinaryOp::Le>{}, name);
    case BinaryOp::Gt: return map2<T>(a, b, out, BinaryFn<BinaryOp::Gt>{}, name);
    case BinaryOp::Ge: return map2<T>(a, b, out, BinaryFn<BinaryOp::Ge>{}, name);
  }
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  dispatch_dtype(out.dtype(), [&](auto zero) { binary_typed<decltype(zero)>(op, a, b, out); });
}

void where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  const StridedLayout<4> layout = make_layout<4>(out.shape(), {&out, &cond, &a, &b}, "where");
  dispatch_dtype(out.dtype(), [&](auto zero) {
    using T = decltype(zero);
    dispatch_dtype(cond.dtype(), [&](auto cond_zero) {
      using C = decltype(cond_zero);
      where_strided<<<elementwise_blocks(n), kElementwiseThreads, 0, stream(out.device().index)>>>(
          out.data<T>(), cond.data<C>(), a.data<T>(), b.data<T>(), n, layout);
      SSM_CUDA_CHECK(cudaGetLastError());
    });
  });
}

void clamp(const Tensor& x, double lo, double hi, Tensor& out) {
  dispatch_dtype(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    map1<T>(x, out, ClampFn<T>{static_cast<T>(lo), static_cast<T>(hi)}, "clamp");
  });
}

void add_(Tensor& dst, const Tensor& src) {
  // dst = dst + src, element by element: reading and writing one element in one thread.
  dispatch_dtype(dst.dtype(), [&](auto zero) {
    map2<decltype(zero)>(dst, src, dst, BinaryFn<BinaryOp::Add>{}, "add_");
  });
}

} // namespace ssm::cuda
