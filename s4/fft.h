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
// symmetry and returns n real values.
#pragma once

#include <complex>
#include <cstdint>

#include "autograd/variable.h"
#include "tensor/tensor.h"

namespace ssm::s4 {

// ---- raw transforms (no autograd) -----------------------------------------------------
// In place on n contiguous complex values, any n >= 1 (radix-2 when n is a power of two,
// Bluestein's chirp-z otherwise). inverse = true applies the 1/n normalisation.
template <typename T>
void fft_inplace(std::complex<T>* data, int64_t n, bool inverse);

// x real (..., m), zero-padded or truncated to n along the last dim -> (..., n/2 + 1, 2).
Tensor rfft(const Tensor& x, int64_t n);
// X complex (..., n/2 + 1, 2) -> real (..., n).
Tensor irfft(const Tensor& X, int64_t n);
// Complex to complex along the second-to-last dim: (..., n, 2) -> (..., n, 2).
Tensor fft(const Tensor& x, bool inverse = false);

// ---- the causal convolution (autograd op) ----------------------------------------------
// u (batch, H, L), K (H, L), D (H) or undefined ->
//   y[b, h, t] = sum_{s <= t} K[h, s] u[b, h, t - s] + D[h] u[b, h, t]
// computed as irfft(rfft(u, 2L) * rfft(K, 2L), 2L)[..., :L] (zero padding to 2L makes the
// circular convolution of the FFT a linear one). Differentiable in u, K and D.
Var causal_conv(const Var& u, const Var& K, const Var& D = Var());

// The same sum computed directly, O(L^2): the reference the FFT path is checked against.
Tensor causal_conv_direct(const Tensor& u, const Tensor& K, const Tensor& D);

} // namespace ssm::s4
