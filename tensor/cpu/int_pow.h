// int_pow.h: integer powers, shared by the CPU loop and the CUDA kernel so both give the same
// bits (a detour through double pow is inexact above 2^53 and undefined when the result
// overflows int64).
//
//   n >= 0: x^n by repeated squaring in unsigned arithmetic, i.e. exact modulo 2^64 (two's
//           complement wrap-around, the same as repeated int64 multiplication would give);
//   n < 0:  the truncation toward zero of 1 / x^|n|: 1 for x = 1, +-1 for x = -1, 0 otherwise
//           (including x = 0, where the real value is infinite).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define SSM_HOST_DEVICE __host__ __device__
#else
#define SSM_HOST_DEVICE
#endif

namespace ssm {

SSM_HOST_DEVICE inline int64_t int_pow(int64_t x, int64_t n) {
  if (n < 0) {
    if (x == 1) return 1;
    if (x == -1) return (n & 1) ? -1 : 1;
    return 0;
  }
  uint64_t base = static_cast<uint64_t>(x), result = 1;
  for (uint64_t e = static_cast<uint64_t>(n); e; e >>= 1) {
    if (e & 1) result *= base;
    base *= base;
  }
  return static_cast<int64_t>(result);
}

} // namespace ssm
