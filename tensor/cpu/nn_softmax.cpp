// nn_softmax.cpp: CPU loops of softmax, log_softmax and cross-entropy (the math and the
// layout are in nn_softmax.h).
//
// Each loop runs parallel_for over the `outer` slabs; a slab (n, inner) is written by one
// thread with its sums taken in a fixed order, so the bits never depend on the thread count.
#include "tensor/cpu/nn_softmax.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "tensor/cpu/parallel.h"

namespace ssm::cpu {

namespace {

// Slabs per parallel_for piece: enough that a piece does ~64k element visits, worth a thread.
int64_t slab_grain(int64_t slab_elements) {
  return std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(1, slab_elements));
}

// m[i] = max_j x[j * inner + i] over one slab. NaN never wins a comparison, so it is skipped
// here and reaches the result through the sum of exponentials instead.
// (With inner = 1, the softmax along the last dim, a plain loop over one contiguous row keeps
// the running value in a register instead of in m[0] or s[0].)
template <typename T>
void slab_max(const T* x, int64_t n, int64_t inner, T* m) {
  if (inner == 1) {
    T best = -std::numeric_limits<T>::infinity();
    for (int64_t j = 0; j < n; ++j) best = x[j] > best ? x[j] : best;
    m[0] = best;
    return;
  }
  std::fill(m, m + inner, -std::numeric_limits<T>::infinity());
  for (int64_t j = 0; j < n; ++j) {
    const T* row = x + j * inner;
    for (int64_t i = 0; i < inner; ++i) m[i] = row[i] > m[i] ? row[i] : m[i];
  }
}

// s[i] = sum_j exp(x[j * inner + i] - m[i]), in double. Each exponential is also stored in e
// (laid out as x) unless e is null.
template <typename T>
void slab_exp_sum(const T* x, int64_t n, int64_t inner, const T* m, double* s, T* e) {
  if (inner == 1) {
    double sum = 0;
    for (int64_t j = 0; j < n; ++j) {
      const T v = std::exp(x[j] - m[0]);
      if (e) e[j] = v;
      sum += v;
    }
    s[0] = sum;
    return;
  }
  std::fill(s, s + inner, 0.0);
  for (int64_t j = 0; j < n; ++j) {
    const T* row = x + j * inner;
    for (int64_t i = 0; i < inner; ++i) {
      const T v = std::exp(row[i] - m[i]);
      if (e) e[j * inner + i] = v;
      s[i] += v;
    }
  }
}

template <typename T>
void softmax_forward_typed(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool log) {
  const int64_t slab = n * inner;
  parallel_for(0, outer, slab_grain(slab), [&](int64_t lo, int64_t hi) {
    std::vector<T> m(inner);      // (inner) row maxima
    std::vector<double> s(inner); // (inner) sums of exp(x - m)
    std::vector<T> scale(inner);  // (inner) 1 / s for softmax, log s for log_softmax
    for (int64_t o = lo; o < hi; ++o) {
      const T* xo = x + o * slab;
      T* yo = y + o * slab;
      slab_max(xo, n, inner, m.data());
      // softmax keeps the exponentials in y and scales them in place below.
      slab_exp_sum(xo, n, inner, m.data(), s.data(), log ? nullptr : yo);
      for (int64_t i = 0; i < inner; ++i)
        scale[i] = static_cast<T>(log ? std::log(s[i]) : 1.0 / s[i]);
      for (int64_t j = 0; j < n; ++j) {
        const T* xr = xo + j * inner;
        T* yr = yo + j * inner;
        if (log)
          for (int64_t i = 0; i < inner; ++i) yr[i] = (xr[i] - m[i]) - scale[i];
        else
          for (int64_t i = 0; i < inner; ++i) yr[i] *= scale[i];
      }
    }
  });
}

template <typename T>
void softmax_backward_typed(const T* y, const T* g, T* dx, int64_t outer, int64_t n, int64_t inner,
                            bool log) {
  const int64_t slab = n * inner;
  parallel_for(0, outer, slab_grain(slab), [&](int64_t lo, int64_t hi) {
    // (inner) softmax: sum_k g_k y_k; log_softmax: sum_k g_k.
    std::vector<double> acc(inner);
    std::vector<T> row_sum(inner);
    for (int64_t o = lo; o < hi; ++o) {
      const T* yo = y + o * slab;
      const T* go = g + o * slab;
      T* dxo = dx + o * slab;
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t j = 0; j < n; ++j) {
        const T* yr = yo + j * inner;
        const T* gr = go + j * inner;
        if (log)
          for (int64_t i = 0; i < inner; ++i) acc[i] += gr[i];
        else
          for (int64_t i = 0; i < inner; ++i) acc[i] += gr[i] * yr[i];
      }
      for (int64_t i = 0; i < inner; ++i) row_sum[i] = static_cast<T>(acc[i]);
      for (int64_t j = 0; j < n; ++j) {
        const T* yr = yo + j * inner;
        const T* gr = go + j * inner;
        T* dxr = dxo + j * inner;
        if (log)
          for (int64_t i = 0; i < inner; ++i) dxr[i] = gr[i] - std::exp(yr[i]) * row_sum[i];
        else
          for (int64_t i = 0; i < inner; ++i) dxr[i] = yr[i] * (gr[i] - row_sum[i]);
      }
    }
  });
}

template <typename T>
void cross_entropy_forward_typed(const T* x, const int64_t* t, T* loss, T* lse, int64_t outer,
                                 int64_t classes, int64_t inner, int64_t ignore_index) {
  const int64_t slab = classes * inner;
  parallel_for(0, outer, slab_grain(slab), [&](int64_t lo, int64_t hi) {
    std::vector<T> m(inner);      // (inner) maxima over the classes
    std::vector<double> s(inner); // (inner) sums of exp(x - m)
    for (int64_t o = lo; o < hi; ++o) {
      const T* xo = x + o * slab;
      slab_max(xo, classes, inner, m.data());
      slab_exp_sum(xo, classes, inner, m.data(), s.data(), static_cast<T*>(nullptr));
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t p = o * inner + i; // position in (outer, inner)
        lse[p] = m[i] + static_cast<T>(std::log(s[i]));
        const int64_t target = t[p];
        loss[p] = target == ignore_index ? T(0) : lse[p] - xo[target * inner + i];
      }
    }
  });
}

template <typename T>
void cross_entropy_backward_typed(const T* x, const int64_t* t, const T* lse, const T* w, T* dx,
                                  int64_t outer, int64_t classes, int64_t inner,
                                  int64_t ignore_index) {
  const int64_t slab = classes * inner;
  parallel_for(0, outer, slab_grain(slab), [&](int64_t lo, int64_t hi) {
    std::vector<T> weight(inner); // (inner) w, or 0 where the target is ignored
    for (int64_t o = lo; o < hi; ++o) {
      const T* xo = x + o * slab;
      T* dxo = dx + o * slab;
      const int64_t* to = t + o * inner;
      const T* lse_o = lse + o * inner;
      for (int64_t i = 0; i < inner; ++i)
        weight[i] = to[i] == ignore_index ? T(0) : w[o * inner + i];
      for (int64_t c = 0; c < classes; ++c) {
        const T* xr = xo + c * inner;
        T* dxr = dxo + c * inner;
        for (int64_t i = 0; i < inner; ++i) dxr[i] = weight[i] * std::exp(xr[i] - lse_o[i]);
      }
      // The -1 of the one-hot target, at each position's target class.
      for (int64_t i = 0; i < inner; ++i)
        if (to[i] != ignore_index) dxo[to[i] * inner + i] -= weight[i];
    }
  });
}

} // namespace

void softmax_forward(const Tensor& x, int64_t outer, int64_t n, int64_t inner, bool log,
                     Tensor& y) {
  dispatch_floating(x.dtype(), log ? "log_softmax" : "softmax", [&](auto zero) {
    using T = decltype(zero);
    softmax_forward_typed(x.data<T>(), y.data<T>(), outer, n, inner, log);
  });
}

void softmax_backward(const Tensor& y, const Tensor& g, int64_t outer, int64_t n, int64_t inner,
                      bool log, Tensor& dx) {
  dispatch_floating(y.dtype(), log ? "log_softmax" : "softmax", [&](auto zero) {
    using T = decltype(zero);
    softmax_backward_typed(y.data<T>(), g.data<T>(), dx.data<T>(), outer, n, inner, log);
  });
}

TargetScan scan_targets(const Tensor& targets, int64_t classes, int64_t ignore_index) {
  const int64_t* t = targets.data<int64_t>();
  TargetScan scan;
  for (int64_t p = 0; p < targets.numel(); ++p) {
    if (t[p] == ignore_index) continue;
    if ((t[p] < 0 || t[p] >= classes) && !scan.out_of_range) scan.out_of_range = t[p];
    ++scan.counted;
  }
  return scan;
}

void cross_entropy_forward(const Tensor& logits, const Tensor& targets, int64_t outer,
                           int64_t classes, int64_t inner, int64_t ignore_index, Tensor& loss,
                           Tensor& lse) {
  dispatch_floating(logits.dtype(), "cross_entropy", [&](auto zero) {
    using T = decltype(zero);
    cross_entropy_forward_typed(logits.data<T>(), targets.data<int64_t>(), loss.data<T>(),
                                lse.data<T>(), outer, classes, inner, ignore_index);
  });
}

void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                            const Tensor& w, int64_t outer, int64_t classes, int64_t inner,
                            int64_t ignore_index, Tensor& dlogits) {
  dispatch_floating(logits.dtype(), "cross_entropy", [&](auto zero) {
    using T = decltype(zero);
    cross_entropy_backward_typed(logits.data<T>(), targets.data<int64_t>(), lse.data<T>(),
                                 w.data<T>(), dlogits.data<T>(), outer, classes, inner,
                                 ignore_index);
  });
}

} // namespace ssm::cpu
