#include "tensor/cpu/reduce.h"

#include <cmath>
#include <type_traits>

namespace ssm::cpu {

template <typename T> static bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>)
    return std::isnan(v);
  else
    return false;
}

void reduce(ReduceKind kind, const Tensor& x, int64_t outer, int64_t inner, Tensor& out) {
  dispatch_dtype(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
    const T* px = x.data<T>();
    T* po = out.data<T>();
    for (int64_t o = 0; o < outer; ++o) {
      const T* row = px + o * inner;
      if (kind == ReduceKind::Sum) {
        Acc acc = 0;
        for (int64_t i = 0; i < inner; ++i) acc += row[i];
        po[o] = static_cast<T>(acc);
        continue;
      }
      // Max / Min: a NaN anywhere makes the result NaN, as in PyTorch.
      T best = row[0];
      for (int64_t i = 1; i < inner && !is_nan(best); ++i) {
        const T v = row[i];
        if (is_nan(v) || (kind == ReduceKind::Max ? v > best : v < best)) best = v;
      }
      po[o] = best;
    }
  });
}

void argmax(const Tensor& x, int64_t outer, int64_t inner, Tensor& out) {
  dispatch_dtype(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    int64_t* po = out.data<int64_t>();
    for (int64_t o = 0; o < outer; ++o) {
      const T* row = px + o * inner;
      int64_t best = 0;
      for (int64_t i = 1; i < inner && !is_nan(row[best]); ++i)
        if (is_nan(row[i]) || row[i] > row[best]) best = i;
      po[o] = best;
    }
  });
}

} // namespace ssm::cpu
