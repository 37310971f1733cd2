// reduce.cpp: the CPU loops of sum, max, min and argmax over the middle dim of a
// (pre, inner, post) view; tensor/cpu/reduce.h states the layout and the accumulation rules.
#include "tensor/cpu/reduce.h"

#include <cmath>
#include <type_traits>
#include <vector>

namespace ssm::cpu {

template <typename T>
static bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>)
    return std::isnan(v);
  else
    return false;
}

// Whether v replaces best in a max (min) reduction; a NaN wins and then stays, as in PyTorch.
template <typename T>
static bool better(ReduceKind kind, T v, T best) {
  if (is_nan(best)) return false;
  return is_nan(v) || (kind == ReduceKind::Max ? v > best : v < best);
}

void reduce(ReduceKind kind, const Tensor& x, int64_t pre, int64_t inner, int64_t post,
            Tensor& out) {
  dispatch_dtype(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    // int64 sums accumulate in uint64: wrapping modulo 2^64 instead of undefined overflow.
    using Acc = std::conditional_t<std::is_floating_point_v<T>, double, uint64_t>;
    const T* px = x.data<T>();
    T* po = out.data<T>();
    std::vector<Acc> acc(post); // one accumulator per output of the current p
    for (int64_t p = 0; p < pre; ++p) {
      const T* block = px + p * inner * post; // (inner, post)
      T* out_row = po + p * post;             // (post)
      if (kind == ReduceKind::Sum) {
        std::fill(acc.begin(), acc.end(), Acc(0));
        for (int64_t r = 0; r < inner; ++r)
          for (int64_t q = 0; q < post; ++q) acc[q] += block[r * post + q];
        for (int64_t q = 0; q < post; ++q) out_row[q] = static_cast<T>(acc[q]);
        continue;
      }
      for (int64_t q = 0; q < post; ++q) out_row[q] = block[q];
      for (int64_t r = 1; r < inner; ++r)
        for (int64_t q = 0; q < post; ++q)
          if (better(kind, block[r * post + q], out_row[q])) out_row[q] = block[r * post + q];
    }
  });
}

void argmax(const Tensor& x, int64_t pre, int64_t inner, int64_t post, Tensor& out) {
  dispatch_dtype(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    int64_t* po = out.data<int64_t>();
    for (int64_t p = 0; p < pre; ++p) {
      const T* block = px + p * inner * post;
      for (int64_t q = 0; q < post; ++q) {
        int64_t best = 0;
        for (int64_t r = 1; r < inner; ++r)
          if (better(ReduceKind::Max, block[r * post + q], block[best * post + q])) best = r;
        po[p * post + q] = best;
      }
    }
  });
}

} // namespace ssm::cpu
