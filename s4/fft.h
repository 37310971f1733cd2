// fft.h: the discrete Fourier transform, CPU (written here) and CUDA (cuFFT), and the causal
// long convolution that S4 computes with it.
//
// Complex tensors: this project's tensors are real, so a complex tensor is a float tensor
// whose last dimension has size 2, (real, imaginary), as torch.view_as_real lays it out.
//
// Conventions (NumPy's and PyTorch's):
//   forward  X_k = sum_{j<n} x_j exp(-2 pi i j k / n)
//   inverse  x_j = (1/n) sum_{k<n} X_k exp(+2 pi i j k / n)
// rfft keeps the n/2 + 1 non-redundant outputs of a real input; irfft assumes Hermitian
// symmetry and returns n real values. As NumPy's irfft, it ignores the imaginary part of X_0
// and, for even n, of X_{n/2} (a real signal's spectrum has none there).
//
// Files:
//   fft_cpu.cpp   the CPU transforms: radix-2 Cooley-Tukey for powers of two, Bluestein's
//                 chirp-z for every other length, the real-input transforms built on them,
//                 cached plans; the row loops rfft_cpu / irfft_cpu / fft_cpu. The math is in
//                 its header.
//   fft_conv.cpp  rfft / irfft / fft on tensors (checks, dispatch by device), the causal
//                 convolution's CPU loops and autograd op (its backward derived in the
//                 header), and the direct O(L^2) reference.
//   fft.cu        the CUDA side: cuFFT plans cached per (n, batch, type, device) on the
//                 project's stream, and the small kernels around them (padding, spectrum
//                 products, crop + skip, the D gradient).
#pragma once

#include <complex>
#include <cstdint>
#include <memory>
#include <vector>

#include "autograd/variable.h"
#include "tensor/tensor.h"

namespace ssm::s4 {

// ---- CPU plans (fft_cpu.cpp) -------------------------------------------------------------
// A plan holds what a transform of one length needs that does not depend on the data: the
// twiddle factors, the bit-reversal permutation, Bluestein's chirp and filter spectrum. Plans
// are immutable once built and cached per length (get() is thread-safe), so the threads of a
// parallel loop share one.

// (a + bi)(c + di) and (a + bi) conj(c + di), written out: std::complex's operator* follows
// C99 Annex G, which tests every product for NaN and calls a library routine to recover
// infinities, a test that costs more than the product in an FFT's innermost loop. Here an
// infinite input simply gives NaN.
template <typename T>
inline std::complex<T> complex_mul(std::complex<T> a, std::complex<T> b) {
  return {a.real() * b.real() - a.imag() * b.imag(), a.real() * b.imag() + a.imag() * b.real()};
}
template <typename T>
inline std::complex<T> complex_mul_conj(std::complex<T> a, std::complex<T> b) {
  return {a.real() * b.real() + a.imag() * b.imag(), a.imag() * b.real() - a.real() * b.imag()};
}

// Rows of length-n transforms that one piece of a cpu::parallel_for should take: about 2^17
// butterfly operations, a few tens of microseconds, the cost of starting a thread.
int64_t fft_rows_per_piece(int64_t n);

// Complex to complex, length n >= 1.
template <typename T>
class FftPlan {
 public:
  static std::shared_ptr<const FftPlan> get(int64_t n); // cached; builds on first use
  explicit FftPlan(int64_t n);                          // builds (get() is the way to obtain one)
  int64_t size() const { return n_; }
  // In place on n complex values. inverse = true: +i in the exponent and the 1/n factor.
  void execute(std::complex<T>* data, bool inverse) const;

 private:
  void radix2(std::complex<T>* data, bool inverse) const;    // unnormalised, n a power of 2
  void bluestein(std::complex<T>* data, bool inverse) const; // unnormalised, any n

  int64_t n_ = 0;
  bool power_of_two_ = false;
  std::vector<uint32_t> bit_reversed_;    // (n) radix-2: index i -> i with its bits reversed
  std::vector<std::complex<T>> twiddles_; // (n - 1) radix-2: w_{2s}^j at s - 1 + j, j < s
  std::vector<std::complex<T>> chirp_;    // (n) Bluestein: exp(-i pi j^2 / n)
  std::vector<std::complex<T>> filter_;   // (m) Bluestein: DFT_m of conj(chirp), times 1/m
  std::shared_ptr<const FftPlan> padded_; // Bluestein: the radix-2 plan of length m
};

// Real input of length n >= 1, the n/2 + 1 bins of its spectrum. Even n is computed as a
// complex transform of half the length (two real samples packed in one complex number), odd
// n as a complex transform of length n.
template <typename T>
class RealFftPlan {
 public:
  static std::shared_ptr<const RealFftPlan> get(int64_t n); // cached; builds on first use
  explicit RealFftPlan(int64_t n);
  int64_t size() const { return n_; }
  int64_t bins() const { return n_ / 2 + 1; }
  // x: m real values, zero-padded (m < n) or truncated (m > n) to n -> X: n/2 + 1 bins.
  void forward(const T* x, int64_t m, std::complex<T>* X) const;
  // X: n/2 + 1 bins -> x: n real values (with the 1/n factor). X is not modified.
  void inverse(const std::complex<T>* X, T* x) const;

 private:
  int64_t n_ = 0;
  std::shared_ptr<const FftPlan<T>> complex_plan_; // length n/2 (even n) or n (odd n)
  std::vector<std::complex<T>> twiddles_;          // (n/2) even n: exp(-2 pi i k / n)
};

// In place on n contiguous complex values, any n >= 1 (radix-2 when n is a power of two,
// Bluestein's chirp-z otherwise). inverse = true applies the 1/n normalisation.
template <typename T>
void fft_inplace(std::complex<T>* data, int64_t n, bool inverse);

// ---- raw transforms on tensors (no autograd) -----------------------------------------------
// float32 or float64, CPU or CUDA; the result is a new contiguous tensor on the input's device.

// x real (..., m), zero-padded or truncated to n along the last dim -> (..., n/2 + 1, 2).
Tensor rfft(const Tensor& x, int64_t n);
// X complex (..., n/2 + 1, 2) -> real (..., n).
Tensor irfft(const Tensor& X, int64_t n);
// Complex to complex along the second-to-last dim: (..., n, 2) -> (..., n, 2).
Tensor fft(const Tensor& x, bool inverse = false);

// The row loops behind them, on contiguous buffers that the caller has checked and allocated:
//   rfft:   x (rows, m)        -> X (rows, n/2 + 1, 2)
//   irfft:  X (rows, n/2 + 1, 2) -> x (rows, n)
//   fft:    x (rows, n, 2)     -> out (rows, n, 2)
void rfft_cpu(const Tensor& x, int64_t n, Tensor& X);
void irfft_cpu(const Tensor& X, int64_t n, Tensor& x);
void fft_cpu(const Tensor& x, bool inverse, Tensor& out);
#ifdef SSM_CUDA
void rfft_cuda(const Tensor& x, int64_t n, Tensor& X);
void irfft_cuda(const Tensor& X, int64_t n, Tensor& x);
void fft_cuda(const Tensor& x, bool inverse, Tensor& out);
#endif

// ---- the causal convolution (autograd op) ----------------------------------------------
// u (batch, H, L), K (H, L), D (H) or undefined ->
//   y[b, h, t] = sum_{s <= t} K[h, s] u[b, h, t - s] + D[h] u[b, h, t]
// computed as irfft(rfft(u, 2L) * rfft(K, 2L), 2L)[..., :L] (zero padding to 2L makes the
// circular convolution of the FFT a linear one). Differentiable in u, K and D.
// The transform length is causal_conv_fft_size(L), the smallest power of two >= 2L (see
// fft_conv.cpp for why).
Var causal_conv(const Var& u, const Var& K, const Var& D = Var());

// The same sum computed directly, O(L^2): the reference the FFT path is checked against.
// D may be undefined. Sums in double on the CPU (a CUDA input is copied there and the result
// copied back).
Tensor causal_conv_direct(const Tensor& u, const Tensor& K, const Tensor& D);

// The FFT length of causal_conv: the smallest power of two >= 2L.
int64_t causal_conv_fft_size(int64_t length);

// The convolution's two halves on contiguous, checked buffers (fft_conv.cpp: *_cpu; fft.cu:
// *_cuda), with N = n_fft and F = N/2 + 1 bins:
//   forward:  u (B, H, L), K (H, L), D (H) or undefined -> y (B, H, L) and K_spectrum
//             (H, F, 2) = rfft(K, N); u_spectrum (B, H, F, 2) = rfft(u, N) is written too when
//             it is defined on entry (the backward needs it for dK).
//   backward: grad_y (B, H, L), D (H) or undefined -> du (B, H, L), dK (H, L), dD (H), each
//             written when defined on entry. Each input that only one gradient reads may be
//             undefined when that gradient is: u (B, H, L) is read for dD, u_spectrum for dK,
//             K_spectrum for du.
void causal_conv_fwd_cpu(const Tensor& u, const Tensor& K, const Tensor& D, int64_t n_fft,
                         Tensor& y, Tensor& u_spectrum, Tensor& K_spectrum);
void causal_conv_bwd_cpu(const Tensor& grad_y, const Tensor& u, const Tensor& D,
                         const Tensor& u_spectrum, const Tensor& K_spectrum, int64_t n_fft,
                         Tensor& du, Tensor& dK, Tensor& dD);
#ifdef SSM_CUDA
void causal_conv_fwd_cuda(const Tensor& u, const Tensor& K, const Tensor& D, int64_t n_fft,
                          Tensor& y, Tensor& u_spectrum, Tensor& K_spectrum);
void causal_conv_bwd_cuda(const Tensor& grad_y, const Tensor& u, const Tensor& D,
                          const Tensor& u_spectrum, const Tensor& K_spectrum, int64_t n_fft,
                          Tensor& du, Tensor& dK, Tensor& dD);
#endif

} // namespace ssm::s4
