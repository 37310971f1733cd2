// strided.h: the one loop that walks tensors of any layout on the CPU.
//
// for_each_strided visits every index (i0, ..., ik) of `shape` in row-major order and hands
// `fn` the element offset of that index in each of N operands:
//     offsets[n] = i0*strides[n][0] + ... + ik*strides[n][k]
// The offsets are updated incrementally (one add per element, a carry at the end of each row),
// so views with arbitrary strides, including the stride-0 dims that broadcasting makes, are
// read in place without a copy.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "tensor/shape.h"

namespace ssm::cpu {

template <size_t N, typename Fn>
void for_each_strided(const Shape& shape, const std::array<const Shape*, N>& strides, Fn&& fn) {
  const int64_t ndim = static_cast<int64_t>(shape.size());
  for (int64_t s : shape)
    if (s == 0) return;
  std::array<int64_t, N> base{};
  if (ndim == 0) {
    fn(base);
    return;
  }
  std::array<int64_t, N> inner_stride;
  for (size_t n = 0; n < N; ++n) inner_stride[n] = (*strides[n])[ndim - 1];
  const int64_t inner = shape[ndim - 1];
  std::vector<int64_t> index(ndim, 0);
  while (true) {
    std::array<int64_t, N> offsets = base;
    for (int64_t i = 0; i < inner; ++i) {
      fn(offsets);
      for (size_t n = 0; n < N; ++n) offsets[n] += inner_stride[n];
    }
    // Advance the outer index like an odometer.
    int64_t d = ndim - 2;
    for (; d >= 0; --d) {
      ++index[d];
      for (size_t n = 0; n < N; ++n) base[n] += (*strides[n])[d];
      if (index[d] < shape[d]) break;
      for (size_t n = 0; n < N; ++n) base[n] -= (*strides[n])[d] * shape[d];
      index[d] = 0;
    }
    if (d < 0) return;
  }
}

} // namespace ssm::cpu
