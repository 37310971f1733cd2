// nn_norm.cpp: CPU loops of layer_norm and rms_norm (the math is in nn_norm.h).
#include "tensor/cpu/nn_norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "tensor/cpu/nn_accumulate.h"
#include "tensor/cpu/parallel.h"

namespace ssm::cpu {

namespace {

// Rows per parallel_for piece: enough that a piece visits ~64k elements, worth a thread.
int64_t row_grain(int64_t n) {
  return std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(1, n));
}

// The pointer to a tensor's elements, or nullptr when it is undefined (no affine weight).
template <typename T>
const T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

template <typename T>
void norm_forward_typed(NormKind kind, const T* x, const T* w, const T* b, double eps, T* y,
                        T* mean, T* rstd, int64_t rows, int64_t n) {
  parallel_for(0, rows, row_grain(n), [&](int64_t lo, int64_t hi) {
    for (int64_t row = lo; row < hi; ++row) {
      const T* xr = x + row * n;
      T* yr = y + row * n;
      const double mu = kind == NormKind::LayerNorm
                            ? sum_in_double(n, [&](int64_t j) { return double(xr[j]); }) / double(n)
                            : 0.0;
      // Two passes (the mean, then squares of centred values) avoid the cancellation of
      // mean(x^2) - mu^2 when |mu| is large against the spread.
      const double var = sum_in_double(n,
                                       [&](int64_t j) {
                                         const double centred = xr[j] - mu;
                                         return centred * centred;
                                       }) /
                         double(n);
      const double r = 1.0 / std::sqrt(var + eps);
      const T mu_t = static_cast<T>(mu), r_t = static_cast<T>(r);
      for (int64_t j = 0; j < n; ++j) {
        T v = (xr[j] - mu_t) * r_t;
        if (w) v *= w[j];
        if (b) v += b[j];
        yr[j] = v;
      }
      if (mean) mean[row] = mu_t;
      rstd[row] = r_t;
    }
  });
}

template <typename T>
void norm_backward_typed(NormKind kind, const T* x, const T* w, const T* mean, const T* rstd,
                         const T* g, T* dx, T* dw, T* db, int64_t rows, int64_t n) {
  auto mu_of = [&](int64_t row) { return kind == NormKind::LayerNorm ? mean[row] : T(0); };
  if (dx) {
    parallel_for(0, rows, row_grain(n), [&](int64_t lo, int64_t hi) {
      for (int64_t row = lo; row < hi; ++row) {
        const T* xr = x + row * n;
        const T* gr = g + row * n;
        T* dxr = dx + row * n;
        const T mu = mu_of(row), r = rstd[row];
        auto gh = [&](int64_t j) { return w ? gr[j] * w[j] : gr[j]; };
        auto xhat = [&](int64_t j) { return (xr[j] - mu) * r; };
        const T mean_gh =
            kind == NormKind::LayerNorm
                ? T(sum_in_double(n, [&](int64_t j) { return double(gh(j)); }) / double(n))
                : T(0);
        const T mean_gh_xhat =
            T(sum_in_double(n, [&](int64_t j) { return double(gh(j)) * xhat(j); }) / double(n));
        for (int64_t j = 0; j < n; ++j) dxr[j] = r * (gh(j) - mean_gh - xhat(j) * mean_gh_xhat);
      }
    });
  }
  if (dw || db) {
    std::vector<double> sum_g_xhat(dw ? n : 0), sum_g(db ? n : 0); // (n) each
    for (int64_t row = 0; row < rows; ++row) {
      const T* xr = x + row * n;
      const T* gr = g + row * n;
      const T mu = mu_of(row), r = rstd[row];
      if (dw)
        for (int64_t j = 0; j < n; ++j) sum_g_xhat[j] += gr[j] * ((xr[j] - mu) * r);
      if (db)
        for (int64_t j = 0; j < n; ++j) sum_g[j] += gr[j];
    }
    for (int64_t j = 0; dw && j < n; ++j) dw[j] = static_cast<T>(sum_g_xhat[j]);
    for (int64_t j = 0; db && j < n; ++j) db[j] = static_cast<T>(sum_g[j]);
  }
}

} // namespace

void norm_forward(NormKind kind, const Tensor& x, const Tensor& weight, const Tensor& bias,
                  double eps, Tensor& y, Tensor& mean, Tensor& rstd) {
  const char* op = kind == NormKind::LayerNorm ? "layer_norm" : "rms_norm";
  const int64_t n = x.dim() == 0 ? 1 : x.size(-1);
  const int64_t rows = n == 0 ? 0 : x.numel() / n;
  dispatch_floating(x.dtype(), op, [&](auto zero) {
    using T = decltype(zero);
    T* mean_data = kind == NormKind::LayerNorm ? mean.data<T>() : nullptr;
    norm_forward_typed(kind, x.data<T>(), data_or_null<T>(weight), data_or_null<T>(bias), eps,
                       y.data<T>(), mean_data, rstd.data<T>(), rows, n);
  });
}

void norm_backward(NormKind kind, const Tensor& x, const Tensor& weight, const Tensor& mean,
                   const Tensor& rstd, const Tensor& g, Tensor& dx, Tensor& dweight,
                   Tensor& dbias) {
  const char* op = kind == NormKind::LayerNorm ? "layer_norm" : "rms_norm";
  const int64_t n = x.dim() == 0 ? 1 : x.size(-1);
  const int64_t rows = n == 0 ? 0 : x.numel() / n;
  dispatch_floating(x.dtype(), op, [&](auto zero) {
    using T = decltype(zero);
    const T* mean_data = kind == NormKind::LayerNorm ? mean.data<T>() : nullptr;
    T* dx_data = dx.defined() ? dx.data<T>() : nullptr;
    T* dw_data = dweight.defined() ? dweight.data<T>() : nullptr;
    T* db_data = dbias.defined() ? dbias.data<T>() : nullptr;
    norm_backward_typed(kind, x.data<T>(), data_or_null<T>(weight), mean_data, rstd.data<T>(),
                        g.data<T>(), dx_data, dw_data, db_data, rows, n);
  });
}

} // namespace ssm::cpu
