// fft_conv.cpp: rfft / irfft / fft on tensors (checks, then the CPU loops of fft_cpu.cpp or
// the cuFFT calls of fft.cu by device), and S4's causal long convolution: its CPU loops, its
// autograd op with a hand-written backward, and the direct O(L^2) sum it is checked against.
//
// ---- The convolution (Gu, Goel & Ré 2022, "Efficiently Modeling Long Sequences with
// Structured State Spaces", sec. 2.4 and 3.3) ------------------------------------------------
// An SSM unrolled over L steps is a convolution of the input with the kernel K it generates
// (K_s = C A^s B, discretised; s4/ computes K), plus the skip D. Per batch element b and
// channel h (H independent channels), 0 <= t < L:
//   y[b,h,t] = sum_{s=0}^{t} K[h,s] u[b,h,t-s] + D[h] u[b,h,t]                      (1)
// Computed directly, (1) costs O(L^2) per (b, h); with FFTs O(N log N).
//
// Why zero padding to 2L. The product of two N-point DFTs is the DFT of the circular
// convolution c[t] = sum_{s<N} K[s] u[(t - s) mod N]. With K and u zero beyond L, the wrapped
// terms (t < s) read u at N + t - s >= N - L + 1; they vanish when N - L + 1 >= L, i.e.
// N >= 2L - 1, and then c[t] is (1) for t < L. We take N = the smallest power of two >= 2L
// (causal_conv_fft_size): the radix-2 path on the CPU, and the size cuFFT is fastest at.
//   y = irfft(rfft(u, N) rfft(K, N), N)[:L] + D u
// rfft and irfft are the real-input transforms (N/2 + 1 bins; fft_cpu.cpp, cuFFT R2C/C2R).
//
// ---- Backward, derived by hand ---------------------------------------------------------
// With g = dLoss/dy (B, H, L). y[b,h,t'] depends on u[b,h,t] through K[h, t'-t] for every
// t' >= t, and through D[h] at t' = t; on K[h,s] through u[b,h,t'-s] for t' >= s; on D[h]
// through u[b,h,t']. Summing g times these partial derivatives:
//   du[b,h,t] = sum_{t'=t}^{L-1} K[h,t'-t] g[b,h,t'] + D[h] g[b,h,t]            (2)
//   dK[h,s]   = sum_b sum_{t'=s}^{L-1} g[b,h,t'] u[b,h,t'-s]                     (3)
//   dD[h]     = sum_b sum_t g[b,h,t] u[b,h,t]                                    (4)
// (2) and (3) are correlations, r[t] = sum_{t' >= t} a[t'] c[t' - t], and the DFT turns a
// correlation into a product with a conjugate: for real c, zero-padded to N,
//   DFT(r')_k = A_k conj(C_k),   r'[t] = sum_{t'<N} a[t'] c[(t' - t) mod N]
// (substitute j = t' - t and use conj(C_k) = sum_j c_j exp(+2 pi i j k / N)). For 0 <= t < L,
// t' - t > -L, and a negative t' - t wraps to N + t' - t >= N - L + 1 >= L, where c is zero:
// r'[t] = r[t], by the same padding argument as the forward. Hence
//   du = irfft(rfft(g) conj(rfft(K)))[:L] + D g
//   dK = irfft(sum_b rfft(g_b) conj(rfft(u_b)))[:L]
// The sum over b of (3) is taken on the spectra (the transform is linear): one inverse
// transform per channel rather than per (b, h). (4) is a plain sum, accumulated in double.
//
// ---- Saved for backward ------------------------------------------------------------------
//   K_spectrum = rfft(K, N)  (H, N/2 + 1, 2)     when u needs a gradient (for du)
//   u_spectrum = rfft(u, N)  (B, H, N/2 + 1, 2)  when K needs a gradient (for dK)
//   u                        (B, H, L)           when D needs a gradient (for dD)
//   D                        (H)                 when u needs a gradient (for du)
// Keeping the spectra saves the backward two of its five transforms; u_spectrum costs about
// twice u's memory, and is kept only when dK is wanted.
//
// ---- CPU loops -----------------------------------------------------------------------------
// Forward: every (b, h) row independent, parallel over the B H rows (the H kernel spectra
// first, parallel over h). Backward: parallel over the channels h, each looping over b, so
// that the sum over b for dK (and the sum for dD) is taken by one thread in a fixed order:
// results have the same bits for every thread count.
#include <algorithm>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "s4/fft.h"
#include "tensor/cpu/parallel.h"
#include "tensor/ops.h"

namespace ssm::s4 {

namespace {

// The product of every dim before the last `trailing` ones.
int64_t leading_rows(const Tensor& t, int64_t trailing) {
  return numel_of(Shape(t.shape().begin(), t.shape().end() - trailing));
}

[[noreturn]] void fail(const char* op, const std::string& what) {
  throw std::invalid_argument(std::string(op) + ": " + what);
}

void check_transform_input(const Tensor& t, const char* op) {
  check_defined(t, op);
  check_floating(t, op);
}

// A (..., 2) tensor: the layout of a complex tensor.
void check_complex_layout(const Tensor& t, const char* op, const char* what) {
  if (t.dim() < 2 || t.size(-1) != 2)
    fail(op, std::string("expected a complex tensor ") + what +
                 " (a float tensor whose last dim is 2: real, imaginary), got " +
                 shape_str(t.shape()));
}

template <typename T>
std::complex<T>* as_complex(const Tensor& t) {
  return reinterpret_cast<std::complex<T>*>(t.data<T>());
}

} // namespace

// ---- raw transforms ------------------------------------------------------------------------

Tensor rfft(const Tensor& x, int64_t n) {
  const char* op = "rfft";
  check_transform_input(x, op);
  if (x.dim() < 1) fail(op, "expected a real tensor (..., m), got a 0-dim tensor");
  if (n < 1) fail(op, "expected a transform length n >= 1, got " + std::to_string(n));
  const int64_t rows = leading_rows(x, 1), m = x.size(-1), bins = n / 2 + 1;
  Shape out_shape(x.shape().begin(), x.shape().end() - 1);
  out_shape.push_back(bins);
  out_shape.push_back(2);
  Tensor X = Tensor::empty({rows, bins, 2}, x.dtype(), x.device());
  if (rows == 0) return X.view(out_shape);
  if (m == 0) { // every sample is padding: the spectrum is zero
    X.fill_(0);
    return X.view(out_shape);
  }
  const Tensor x_rows = x.contiguous().view({rows, m});
  if (x.device().is_cuda()) {
#ifdef SSM_CUDA
    rfft_cuda(x_rows, n, X);
#else
    throw_no_cuda(op);
#endif
  } else {
    rfft_cpu(x_rows, n, X);
  }
  return X.view(out_shape);
}

Tensor irfft(const Tensor& X, int64_t n) {
  const char* op = "irfft";
  check_transform_input(X, op);
  check_complex_layout(X, op, "(..., n/2 + 1, 2)");
  if (n < 1) fail(op, "expected a transform length n >= 1, got " + std::to_string(n));
  const int64_t bins = n / 2 + 1;
  if (X.size(-2) != bins)
    fail(op, "expected (..., n/2 + 1 = " + std::to_string(bins) +
                 ", 2) for n = " + std::to_string(n) + ", got " + shape_str(X.shape()));
  const int64_t rows = leading_rows(X, 2);
  Shape out_shape(X.shape().begin(), X.shape().end() - 2);
  out_shape.push_back(n);
  Tensor x = Tensor::empty({rows, n}, X.dtype(), X.device());
  if (rows == 0) return x.view(out_shape);
  const Tensor X_rows = X.contiguous().view({rows, bins, 2});
  if (X.device().is_cuda()) {
#ifdef SSM_CUDA
    irfft_cuda(X_rows, n, x);
#else
    throw_no_cuda(op);
#endif
  } else {
    irfft_cpu(X_rows, n, x);
  }
  return x.view(out_shape);
}

Tensor fft(const Tensor& x, bool inverse) {
  const char* op = inverse ? "fft (inverse)" : "fft";
  check_transform_input(x, op);
  check_complex_layout(x, op, "(..., n, 2)");
  const int64_t n = x.size(-2);
  if (n < 1) fail(op, "expected a transform length n >= 1 (dim -2), got " + shape_str(x.shape()));
  const int64_t rows = leading_rows(x, 2);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (rows == 0) return out;
  const Tensor x_rows = x.contiguous().view({rows, n, 2});
  Tensor out_rows = out.view({rows, n, 2});
  if (x.device().is_cuda()) {
#ifdef SSM_CUDA
    fft_cuda(x_rows, inverse, out_rows);
#else
    throw_no_cuda(op);
#endif
  } else {
    fft_cpu(x_rows, inverse, out_rows);
  }
  return out;
}

// ---- the convolution: shapes -----------------------------------------------------------------

int64_t causal_conv_fft_size(int64_t length) {
  if (length < 1)
    throw std::invalid_argument("causal_conv_fft_size: expected a length >= 1, got " +
                                std::to_string(length));
  int64_t n = 1;
  while (n < 2 * length) n *= 2;
  return n;
}

namespace {

struct ConvShape {
  int64_t batch, channels, length;
};

// Checks u (B, H, L), K (H, L), D (H) or undefined: one floating dtype, one device.
ConvShape check_conv(const char* op, const Tensor& u, const Tensor& K, const Tensor& D) {
  if (!u.defined()) fail(op, "u is undefined");
  if (!K.defined()) fail(op, "K is undefined");
  check_floating(u, op);
  check_same_dtype_device(u, K, op);
  if (D.defined()) check_same_dtype_device(u, D, op);
  if (u.dim() != 3) fail(op, "expected u of shape (batch, H, L), got " + shape_str(u.shape()));
  const ConvShape s{u.size(0), u.size(1), u.size(2)};
  if (s.length < 1) fail(op, "expected a length L >= 1, got u " + shape_str(u.shape()));
  const Shape kernel_shape{s.channels, s.length};
  if (K.shape() != kernel_shape)
    fail(op, "expected K of shape (H, L) = " + shape_str(kernel_shape) + " for u " +
                 shape_str(u.shape()) + ", got " + shape_str(K.shape()));
  if (D.defined() && D.shape() != Shape{s.channels})
    fail(op,
         "expected D of shape (H) = " + shape_str({s.channels}) + ", got " + shape_str(D.shape()));
  return s;
}

// ---- the convolution: CPU loops ------------------------------------------------------------

template <typename T>
void conv_fwd_cpu(const Tensor& u, const Tensor& K, const Tensor& D, int64_t n_fft, Tensor& y,
                  Tensor& u_spectrum, Tensor& K_spectrum) {
  const int64_t B = u.size(0), H = u.size(1), L = u.size(2), bins = n_fft / 2 + 1;
  const auto plan = RealFftPlan<T>::get(n_fft);
  const T* u_p = u.data<T>();                                                       // (B, H, L)
  const T* K_p = K.data<T>();                                                       // (H, L)
  const T* D_p = D.defined() ? D.data<T>() : nullptr;                               // (H)
  T* y_p = y.data<T>();                                                             // (B, H, L)
  std::complex<T>* Kf = as_complex<T>(K_spectrum);                                  // (H, bins)
  std::complex<T>* Uf = u_spectrum.defined() ? as_complex<T>(u_spectrum) : nullptr; // (B, H, bins)
  const int64_t grain = fft_rows_per_piece(n_fft);
  cpu::parallel_for(0, H, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t h = lo; h < hi; ++h) plan->forward(K_p + h * L, L, Kf + h * bins);
  });
  cpu::parallel_for(0, B * H, grain, [&](int64_t lo, int64_t hi) {
    std::vector<std::complex<T>> product(bins); // (bins) rfft(u) rfft(K)
    std::vector<T> full(n_fft);                 // (N) the circular convolution
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t h = r % H;
      const T* u_row = u_p + r * L;
      std::complex<T>* U = Uf ? Uf + r * bins : product.data();
      plan->forward(u_row, L, U);
      for (int64_t k = 0; k < bins; ++k) product[k] = complex_mul(U[k], Kf[h * bins + k]);
      plan->inverse(product.data(), full.data());
      T* y_row = y_p + r * L;
      for (int64_t t = 0; t < L; ++t) y_row[t] = full[t] + (D_p ? D_p[h] * u_row[t] : T(0));
    }
  });
}

template <typename T>
void conv_bwd_cpu(const Tensor& grad_y, const Tensor& u, const Tensor& D, const Tensor& u_spectrum,
                  const Tensor& K_spectrum, int64_t n_fft, Tensor& du, Tensor& dK, Tensor& dD) {
  const int64_t B = grad_y.size(0), H = grad_y.size(1), L = grad_y.size(2);
  const int64_t bins = n_fft / 2 + 1;
  const auto plan = RealFftPlan<T>::get(n_fft);
  const T* g_p = grad_y.data<T>();                                                // (B, H, L)
  const T* u_p = dD.defined() ? u.data<T>() : nullptr;                            // (B, H, L)
  const T* D_p = D.defined() ? D.data<T>() : nullptr;                             // (H)
  const std::complex<T>* Uf = dK.defined() ? as_complex<T>(u_spectrum) : nullptr; // (B, H, bins)
  const std::complex<T>* Kf = du.defined() ? as_complex<T>(K_spectrum) : nullptr; // (H, bins)
  T* du_p = du.defined() ? du.data<T>() : nullptr;                                // (B, H, L)
  T* dK_p = dK.defined() ? dK.data<T>() : nullptr;                                // (H, L)
  T* dD_p = dD.defined() ? dD.data<T>() : nullptr;                                // (H)
  const int64_t grain = std::max<int64_t>(1, fft_rows_per_piece(n_fft) / std::max<int64_t>(B, 1));
  cpu::parallel_for(0, H, grain, [&](int64_t lo, int64_t hi) {
    std::vector<std::complex<T>> G(bins);       // (bins) rfft(g[b, h])
    std::vector<std::complex<T>> product(bins); // (bins) G conj(rfft(K[h]))
    std::vector<std::complex<T>> dK_sum(bins);  // (bins) sum_b G conj(rfft(u[b, h]))
    std::vector<T> full(n_fft);                 // (N) an inverse transform
    for (int64_t h = lo; h < hi; ++h) {
      std::fill(dK_sum.begin(), dK_sum.end(), std::complex<T>(0));
      double dD_sum = 0;
      for (int64_t b = 0; b < B; ++b) {
        const int64_t r = b * H + h;
        const T* g_row = g_p + r * L;
        plan->forward(g_row, L, G.data());
        if (dK_p)
          for (int64_t k = 0; k < bins; ++k) dK_sum[k] += complex_mul_conj(G[k], Uf[r * bins + k]);
        if (du_p) {
          for (int64_t k = 0; k < bins; ++k) product[k] = complex_mul_conj(G[k], Kf[h * bins + k]);
          plan->inverse(product.data(), full.data());
          T* du_row = du_p + r * L;
          for (int64_t t = 0; t < L; ++t) du_row[t] = full[t] + (D_p ? D_p[h] * g_row[t] : T(0));
        }
        if (dD_p) {
          const T* u_row = u_p + r * L;
          for (int64_t t = 0; t < L; ++t)
            dD_sum += static_cast<double>(g_row[t]) * static_cast<double>(u_row[t]);
        }
      }
      if (dK_p) {
        plan->inverse(dK_sum.data(), full.data());
        std::copy(full.begin(), full.begin() + L, dK_p + h * L);
      }
      if (dD_p) dD_p[h] = static_cast<T>(dD_sum);
    }
  });
}

} // namespace

void causal_conv_fwd_cpu(const Tensor& u, const Tensor& K, const Tensor& D, int64_t n_fft,
                         Tensor& y, Tensor& u_spectrum, Tensor& K_spectrum) {
  dispatch_floating(u.dtype(), "causal_conv_fwd_cpu", [&](auto zero) {
    conv_fwd_cpu<decltype(zero)>(u, K, D, n_fft, y, u_spectrum, K_spectrum);
  });
}

void causal_conv_bwd_cpu(const Tensor& grad_y, const Tensor& u, const Tensor& D,
                         const Tensor& u_spectrum, const Tensor& K_spectrum, int64_t n_fft,
                         Tensor& du, Tensor& dK, Tensor& dD) {
  dispatch_floating(grad_y.dtype(), "causal_conv_bwd_cpu", [&](auto zero) {
    conv_bwd_cpu<decltype(zero)>(grad_y, u, D, u_spectrum, K_spectrum, n_fft, du, dK, dD);
  });
}

// ---- the autograd op -----------------------------------------------------------------------

Var causal_conv(const Var& u, const Var& K, const Var& D) {
  const char* op = "causal_conv";
  if (!u.defined() || !K.defined()) fail(op, "u and K are required (D may be undefined)");
  check_inputs(op, {u, K, D});
  const Tensor u_c = u.value().contiguous();                          // (B, H, L)
  const Tensor K_c = K.value().contiguous();                          // (H, L)
  const Tensor D_c = D.defined() ? D.value().contiguous() : Tensor(); // (H) or undefined
  const ConvShape s = check_conv(op, u_c, K_c, D_c);
  const int64_t n_fft = causal_conv_fft_size(s.length), bins = n_fft / 2 + 1;
  const bool recording = grad_enabled();
  const bool need_u = recording && u.requires_grad();
  const bool need_K = recording && K.requires_grad();
  const bool need_D = recording && D.defined() && D.requires_grad();

  Tensor y = Tensor::empty(u_c.shape(), u_c.dtype(), u_c.device());                    // (B, H, L)
  Tensor K_spectrum = Tensor::empty({s.channels, bins, 2}, u_c.dtype(), u_c.device()); // (H, F, 2)
  Tensor u_spectrum = need_K ? Tensor::empty({s.batch, s.channels, bins, 2}, u_c.dtype(),
                                             u_c.device())
                             : Tensor(); // (B, H, F, 2), kept for dK
  if (u_c.device().is_cuda()) {
#ifdef SSM_CUDA
    causal_conv_fwd_cuda(u_c, K_c, D_c, n_fft, y, u_spectrum, K_spectrum);
#else
    throw_no_cuda(op);
#endif
  } else {
    causal_conv_fwd_cpu(u_c, K_c, D_c, n_fft, y, u_spectrum, K_spectrum);
  }

  // What the closure keeps: each saved tensor only when a gradient reads it (fft.h).
  const Tensor saved_K_spectrum = need_u ? K_spectrum : Tensor(); // (H, F, 2), for du
  const Tensor saved_D = need_u ? D_c : Tensor();                 // (H), for du
  const Tensor saved_u = need_D ? u_c : Tensor();                 // (B, H, L), for dD
  const DType dtype = u_c.dtype();
  const Device device = u_c.device();
  return make_result(op, y, {u, K, D}, [=](const Tensor& grad_y) {
    const Tensor g = grad_y.contiguous(); // (B, H, L)
    auto gradient = [&](bool needed, const Shape& shape) {
      return needed ? Tensor::empty(shape, dtype, device) : Tensor();
    };
    Tensor du = gradient(need_u, {s.batch, s.channels, s.length}); // (B, H, L)
    Tensor dK = gradient(need_K, {s.channels, s.length});          // (H, L)
    Tensor dD = gradient(need_D, {s.channels});                    // (H)
    if (device.is_cuda()) {
#ifdef SSM_CUDA
      causal_conv_bwd_cuda(g, saved_u, saved_D, u_spectrum, saved_K_spectrum, n_fft, du, dK, dD);
#else
      throw_no_cuda(op);
#endif
    } else {
      causal_conv_bwd_cpu(g, saved_u, saved_D, u_spectrum, saved_K_spectrum, n_fft, du, dK, dD);
    }
    return std::vector<Tensor>{du, dK, dD};
  });
}

// ---- the direct reference ------------------------------------------------------------------

Tensor causal_conv_direct(const Tensor& u, const Tensor& K, const Tensor& D) {
  const char* op = "causal_conv_direct";
  const ConvShape s = check_conv(op, u, K, D);
  const Device device = u.device();
  const Tensor u_c = u.to(Device::cpu()).contiguous();                          // (B, H, L)
  const Tensor K_c = K.to(Device::cpu()).contiguous();                          // (H, L)
  const Tensor D_c = D.defined() ? D.to(Device::cpu()).contiguous() : Tensor(); // (H)
  Tensor y = Tensor::empty(u_c.shape(), u_c.dtype(), Device::cpu());            // (B, H, L)
  dispatch_floating(u_c.dtype(), op, [&](auto zero) {
    using T = decltype(zero);
    const T* u_p = u_c.data<T>();
    const T* K_p = K_c.data<T>();
    const T* D_p = D_c.defined() ? D_c.data<T>() : nullptr;
    T* y_p = y.data<T>();
    const int64_t H = s.channels, L = s.length;
    const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 16) / (L * L));
    cpu::parallel_for(0, s.batch * H, grain, [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const int64_t h = r % H;
        const T* u_row = u_p + r * L;
        const T* K_row = K_p + h * L;
        for (int64_t t = 0; t < L; ++t) {
          double acc = D_p ? static_cast<double>(D_p[h]) * u_row[t] : 0.0;
          for (int64_t k = 0; k <= t; ++k) acc += static_cast<double>(K_row[k]) * u_row[t - k];
          y_p[r * L + t] = static_cast<T>(acc);
        }
      }
    });
  });
  return y.to(device);
}

} // namespace ssm::s4
