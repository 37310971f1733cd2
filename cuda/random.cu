// random.cu: Philox4x32-10 on the device and the random-fill kernels behind Tensor::rand,
// uniform, randn and randint.
//
//   w = Philox4x32-10(key = (seed lo, seed hi), counter = (c lo, c hi, 0, 0)), c = start + i
//   uniform: t[i] = T(fma(high - low, u, low)),  u = w0 / 2^32 to 24 bits (float32)
//                                                    or (w0, w1) to 53 bits (float64)
//            (a float32 result that rounds up to `high` becomes the float below it)
//   randn:   t[i] = T(sqrt(-2 log u1) cos(2 pi u2)),  u1 = 1 - u53(w0, w1), u2 = u53(w2, w3)
//   randint: t[i] = T(low + ((w0 << 32 | w1) mod range))
// Buffer: t, contiguous, n elements; `start` was reserved from the Generator by the caller.
//
// These are the formulas of tensor/tensor.cpp (uniform_element, normal_element,
// integer_element) and tensor/random.cpp (philox4x32), repeated line for line with the same
// names and in the same double precision, so a Generator state gives the same tensor on the
// CPU and here. uniform and randint involve only exact operations and correctly rounded ones
// (the explicit fma, conversions), hence match bit for bit; randn also goes through log, cos
// and sqrt, whose last bits may differ between the host's libm and CUDA's math library.
//
// Parallelisation: one thread per element in a grid-stride loop. Each thread runs its own ten
// Philox rounds from (seed, start + i); threads share nothing, so the values do not depend on
// the launch shape.
#include <cmath>
#include <type_traits>

#include "cuda/check.h"
#include "cuda/indexing.cuh"
#include "cuda/random.h"
#include "cuda/runtime.h"

namespace ssm::cuda {

// ---- Philox4x32-10 (Salmon et al., SC 2011), as philox4x32 in tensor/random.cpp ----------------

struct PhiloxWords {
  uint32_t word[4];
  __device__ __forceinline__ uint32_t operator[](int i) const { return word[i]; }
};

__device__ __forceinline__ PhiloxWords philox4x32(uint64_t seed, uint64_t counter) {
  // The paper's multipliers, and the Weyl increments (golden ratio and sqrt(3) - 1 in 32-bit
  // fixed point) that bump the key each round.
  const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
  const uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32);
  uint32_t c2 = 0, c3 = 0;
  for (int round = 0; round < 10; ++round) {
    const uint32_t hi0 = __umulhi(M0, c0), lo0 = M0 * c0; // halves of the 64-bit products
    const uint32_t hi1 = __umulhi(M1, c2), lo1 = M1 * c2;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += W0;
    k1 += W1;
  }
  return {{c0, c1, c2, c3}};
}

// 24 random bits -> float in [0, 1); 53 bits -> double in [0, 1). Both products are exact.
__device__ __forceinline__ float uniform_float(uint32_t bits) {
  return (bits >> 8) * (1.0f / 16777216.0f);
}
__device__ __forceinline__ double uniform_double(uint32_t hi, uint32_t lo) {
  const uint64_t bits = (static_cast<uint64_t>(hi) << 32 | lo) >> 11;
  return static_cast<double>(bits) * (1.0 / 9007199254740992.0);
}

// ---- element formulas, as in tensor/tensor.cpp -------------------------------------------------

template <typename T>
__device__ __forceinline__ T uniform_element(const PhiloxWords& w, double low, double high) {
  const double u = std::is_same_v<T, float> ? uniform_float(w[0]) : uniform_double(w[0], w[1]);
  // The explicit fma rounds once, as on the CPU; nvcc would otherwise fuse or not by itself.
  const T v = static_cast<T>(std::fma(high - low, u, low));
  // Rounding to float32 can land exactly on `high`; keep the interval half-open.
  if (v >= static_cast<T>(high) && high > low)
    return std::nextafter(static_cast<T>(high), static_cast<T>(low));
  return v;
}

template <typename T>
__device__ __forceinline__ T normal_element(const PhiloxWords& w) {
  // Box-Muller with 53-bit uniforms; u1 in (0, 1] so the log is finite.
  const double u1 = 1.0 - uniform_double(w[0], w[1]);
  const double u2 = uniform_double(w[2], w[3]);
  return static_cast<T>(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2));
}

template <typename T>
__device__ __forceinline__ T integer_element(const PhiloxWords& w, int64_t low, uint64_t range) {
  // 64 random bits modulo the range; the sum wraps in uint64, exact for any int64 range.
  const uint64_t bits = static_cast<uint64_t>(w[0]) << 32 | w[1];
  return static_cast<T>(static_cast<int64_t>(static_cast<uint64_t>(low) + bits % range));
}

// The element formulas as functors: element(w, T{}) is t[i], as the CPU loop's lambdas.
struct UniformElement {
  double low, high;
  template <typename T>
  __device__ __forceinline__ T operator()(const PhiloxWords& w, T) const {
    return uniform_element<T>(w, low, high);
  }
};
struct NormalElement {
  template <typename T>
  __device__ __forceinline__ T operator()(const PhiloxWords& w, T) const {
    return normal_element<T>(w);
  }
};
struct IntegerElement {
  int64_t low;
  uint64_t range;
  template <typename T>
  __device__ __forceinline__ T operator()(const PhiloxWords& w, T) const {
    return integer_element<T>(w, low, range);
  }
};

// ---- kernel and entry points -------------------------------------------------------------------

// out[i] = element(philox4x32(seed, start + i), T{}) for i in [0, n).
template <typename T, typename Element>
__global__ void random_fill_kernel(T* out, int64_t n, uint64_t seed, uint64_t start,
                                   Element element) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = element(philox4x32(seed, start + static_cast<uint64_t>(i)), T{});
}

template <typename T, typename Element>
static void random_fill(Tensor& t, uint64_t seed, uint64_t start, Element element) {
  const int64_t n = t.numel();
  if (n == 0) return;
  random_fill_kernel<<<elementwise_blocks(n), kElementwiseThreads, 0, stream(t.device().index)>>>(
      t.data<T>(), n, seed, start, element);
  SSM_CUDA_CHECK(cudaGetLastError());
}

void uniform(Tensor& t, double low, double high, uint64_t seed, uint64_t start) {
  dispatch_floating(t.dtype(), "uniform", [&](auto zero) {
    random_fill<decltype(zero)>(t, seed, start, UniformElement{low, high});
  });
}

void randn(Tensor& t, uint64_t seed, uint64_t start) {
  dispatch_floating(t.dtype(), "randn", [&](auto zero) {
    random_fill<decltype(zero)>(t, seed, start, NormalElement{});
  });
}

void randint(Tensor& t, int64_t low, uint64_t range, uint64_t seed, uint64_t start) {
  dispatch_dtype(t.dtype(), [&](auto zero) {
    random_fill<decltype(zero)>(t, seed, start, IntegerElement{low, range});
  });
}

} // namespace ssm::cuda
