// fft_cpu.cpp: the discrete Fourier transform on the CPU, written from the formulas below,
// and the row loops rfft_cpu / irfft_cpu / fft_cpu. Conventions are in fft.h:
//   X_k = sum_{j<n} x_j w_n^{jk},   w_n = exp(-2 pi i / n),   inverse with conj(w) and 1/n.
//
// ---- Radix-2 Cooley-Tukey (Cooley & Tukey 1965, "An algorithm for the machine calculation
// of complex Fourier series") --------------------------------------------------------------
// For n a power of two, split the sum over j into even and odd j. With E and O the DFTs of
// length n/2 of the even samples x_{2j} and of the odd samples x_{2j+1},
//   X_k       = E_k + w_n^k O_k
//   X_{k+n/2} = E_k - w_n^k O_k          (k < n/2; w_n^{n/2} = -1)
// Applied recursively this is log2 n stages of n/2 "butterflies" (a, b) -> (a + w b, a - w b):
// O(n log n) work instead of the sum's O(n^2). The iterative form used here first puts x in
// bit-reversed order (the leaves of the recursion, left to right), then for span = 1, 2, 4,
// ..., n/2 merges neighbouring blocks of `span` values into blocks of 2 span; the twiddle of
// position j in a block of 2 span is w_{2 span}^j. The plan keeps each stage's span twiddles
// side by side (n - 1 values in all) so that the innermost loop reads them in order. The
// inverse uses conj(w).
//
// ---- Bluestein's chirp-z (Bluestein 1970, "A linear filtering approach to the computation
// of discrete Fourier transform"; Rabiner, Schafer & Rader 1969, "The chirp z-transform
// algorithm") -------------------------------------------------------------------------------
// For any n: 2jk = j^2 + k^2 - (k - j)^2, so with the chirp c_j = exp(-i pi j^2 / n),
//   X_k = c_k sum_{j<n} (x_j c_j) conj(c_{k-j}),
// a convolution of a_j = x_j c_j with b_j = conj(c_j), where b is even (b_{-j} = b_j). Zero-pad
// a to m >= 2n - 1 (a power of two) and lay b out circularly: b_j and b_{m-j} = conj(c_j) for
// 0 <= j < n, zero between. The circular convolution of length m then equals the linear one
// at k < n (no wrapped term reaches them), and it costs three radix-2 transforms of length m:
//   X_k = c_k IDFT_m( DFT_m(a) DFT_m(b) )_k,
// one of which, DFT_m(b) / m (the "filter"), is computed once in the plan. c_j depends only on
// j^2 mod 2n (exp(-i pi (j^2 + 2 n q) / n) = c_j), so its angle is taken from that integer,
// not from j^2 / n, which loses bits as j grows. Inverse: x = conj(DFT(conj(X))) / n.
//
// ---- Real input: two real samples in one complex number --------------------------------
// (Press, Teukolsky, Vetterling & Flannery, Numerical Recipes, 3rd ed., sec. 12.3.) For real
// x of even length n, h = n/2, the packed sequence z_j = x_{2j} + i x_{2j+1} (j < h) has DFT
// Z_k = E_k + i O_k, with E, O the length-h DFTs of the even and odd samples. Those are
// spectra of real sequences, E_{h-k} = conj(E_k), so they can be separated again:
//   E_k = (Z_k + conj Z_{h-k}) / 2,   O_k = (Z_k - conj Z_{h-k}) / (2i)    (Z_h = Z_0)
//   X_k = E_k + w_n^k O_k,   k = 0 .. h,
// one complex transform of length h instead of one of length n. The pair (k, h - k) is
// computed together, in place: X_{h-k} = conj(E_k - w_n^k O_k), since w_n^{h-k} = -conj(w_n^k).
// The inverse runs the steps backward: a real signal's spectrum has X_{k+h} = conj(X_{h-k}), so
//   E_k = (X_k + conj X_{h-k}) / 2,   O_k = (X_k - conj X_{h-k}) w_n^{-k} / 2,
//   z = IDFT_h(E + i O),   x_{2j} = Re z_j,   x_{2j+1} = Im z_j.
// At k = 0 only Re X_0 and Re X_h enter (the imaginary parts a real signal cannot have are
// ignored, as NumPy's irfft does). Odd n: a complex transform of length n, of the Hermitian
// completion X_{n-k} = conj(X_k) for the inverse.
//
// ---- Precision -------------------------------------------------------------------------
// Twiddles and chirps are computed in long double and rounded once to T; Bluestein's filter is
// computed in double for both T. A radix-2 transform's error is then about eps_T log2 n
// relative to the norm of the result (Higham, Accuracy and Stability of Numerical Algorithms,
// 2nd ed., sec. 24.1): ~1e-15 in float64 at n = 4096, ~1e-6 in float32. Bluestein's is that of
// three transforms of length m plus two chirp products, a few times larger.
//
// ---- Layout ------------------------------------------------------------------------------
// A complex tensor (..., 2) is read as an array of std::complex<T>: std::complex<T> has the
// layout of T[2] (real, imaginary) and T's alignment ([complex.numbers] in the standard).
// Plans are cached per length (at most kMaxCachedPlans of each kind and type); Bluestein and
// odd-length real transforms use a thread_local scratch buffer, so any number of threads may
// run one plan at once.
#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>

#include "s4/fft.h"
#include "tensor/cpu/parallel.h"

namespace ssm::s4 {

namespace {

constexpr long double kPi = 3.141592653589793238462643383279502884L;
constexpr size_t kMaxCachedPlans = 64;
// Beyond this the bit-reversal table (uint32) would overflow; 2^31 complex values are 16 GiB.
constexpr int64_t kMaxLength = int64_t(1) << 31;

bool is_power_of_two(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

int64_t next_power_of_two(int64_t n) {
  int64_t p = 1;
  while (p < n) p *= 2;
  return p;
}

// exp(i angle), computed in long double and rounded to T.
template <typename T>
std::complex<T> unit(long double angle) {
  return {static_cast<T>(std::cos(angle)), static_cast<T>(std::sin(angle))};
}

// The plan of length n from the cache of `Plan`, built on first use. The build runs outside
// the lock because Bluestein's plan asks the cache for its radix-2 plan; two threads that
// miss at once both build, and the first to insert wins. When the cache is full one entry is
// dropped (any: a workload uses a handful of lengths); plans in use stay alive through their
// shared_ptr.
template <typename Plan>
std::shared_ptr<const Plan> cached_plan(int64_t n) {
  static std::mutex mutex;
  static std::map<int64_t, std::shared_ptr<const Plan>> plans;
  {
    std::lock_guard<std::mutex> lock(mutex);
    const auto found = plans.find(n);
    if (found != plans.end()) return found->second;
  }
  auto plan = std::make_shared<const Plan>(n);
  std::lock_guard<std::mutex> lock(mutex);
  if (plans.size() >= kMaxCachedPlans && plans.find(n) == plans.end()) plans.erase(plans.begin());
  return plans.emplace(n, std::move(plan)).first->second;
}

void check_length(int64_t n, const char* what) {
  if (n < 1 || n > kMaxLength)
    throw std::invalid_argument(
        std::string(what) + ": expected a transform length in [1, 2^31], got " + std::to_string(n));
}

} // namespace

int64_t fft_rows_per_piece(int64_t n) {
  int64_t log2n = 1;
  while ((int64_t(1) << log2n) < n) ++log2n;
  return std::max<int64_t>(1, (int64_t(1) << 17) / (std::max<int64_t>(n, 1) * log2n));
}

// ---- complex plans -------------------------------------------------------------------------

template <typename T>
std::shared_ptr<const FftPlan<T>> FftPlan<T>::get(int64_t n) {
  check_length(n, "fft");
  return cached_plan<FftPlan<T>>(n);
}

template <typename T>
FftPlan<T>::FftPlan(int64_t n) : n_(n), power_of_two_(is_power_of_two(n)) {
  check_length(n, "fft");
  if (power_of_two_) {
    int bits = 0;
    while ((int64_t(1) << bits) < n) ++bits;
    // rev(i) = rev(i / 2) / 2 with i's lowest bit moved to the top.
    bit_reversed_.assign(n, 0);
    for (int64_t i = 1; i < n; ++i)
      bit_reversed_[i] = (bit_reversed_[i >> 1] >> 1) | (uint32_t(i & 1) << (bits - 1));
    // Stage twiddles: w_{2 span}^j = exp(-2 pi i j / (2 span)) at span - 1 + j.
    twiddles_.resize(std::max<int64_t>(n - 1, 0)); // (n - 1)
    for (int64_t span = 1; span < n; span *= 2)
      for (int64_t j = 0; j < span; ++j) twiddles_[span - 1 + j] = unit<T>(-kPi * j / span);
    return;
  }
  const int64_t m = next_power_of_two(2 * n - 1);
  padded_ = FftPlan<T>::get(m);
  chirp_.resize(n);                                 // (n)
  std::vector<std::complex<double>> filter(m, 0.0); // (m) b, then DFT_m(b)
  for (int64_t j = 0; j < n; ++j) {
    const int64_t r = (j * j) % (2 * n); // j < 2^31: j^2 fits in int64
    const long double angle = -kPi * r / n;
    chirp_[j] = unit<T>(angle);
    const std::complex<double> conj_chirp = std::conj(unit<double>(angle));
    filter[j] = conj_chirp;
    if (j > 0) filter[m - j] = conj_chirp;
  }
  FftPlan<double>::get(m)->execute(filter.data(), false);
  filter_.resize(m); // (m)
  for (int64_t k = 0; k < m; ++k) filter_[k] = std::complex<T>(filter[k] / static_cast<double>(m));
}

template <typename T>
void FftPlan<T>::execute(std::complex<T>* data, bool inverse) const {
  if (power_of_two_)
    radix2(data, inverse);
  else
    bluestein(data, inverse);
  if (inverse) {
    const T scale = T(1) / static_cast<T>(n_);
    for (int64_t k = 0; k < n_; ++k) data[k] *= scale;
  }
}

namespace {

// The butterflies of every stage on bit-reversed x. stage_twiddles holds, for span = 1, 2, 4,
// ..., the span twiddles w_{2 span}^j (j < span) at offset span - 1, so each stage reads its
// own contiguously; kInverse uses their conjugates.
template <bool kInverse, typename T>
void radix2_stages(std::complex<T>* x, int64_t n, const std::complex<T>* stage_twiddles) {
  // span 1 and 2 together (w = 1, and w = 1, -i or +i for the inverse): their inner loops are
  // too short to be worth running as loops.
  int64_t first = 1;
  if (n >= 4) {
    for (int64_t start = 0; start < n; start += 4) {
      std::complex<T>* q = x + start;
      const std::complex<T> s0 = q[0] + q[1], d0 = q[0] - q[1];
      const std::complex<T> s1 = q[2] + q[3], d1 = q[2] - q[3];
      // d1 times w_4^1 = -i (forward) or +i (inverse).
      const std::complex<T> t1 = kInverse ? std::complex<T>(-d1.imag(), d1.real())
                                          : std::complex<T>(d1.imag(), -d1.real());
      q[0] = s0 + s1;
      q[2] = s0 - s1;
      q[1] = d0 + t1;
      q[3] = d0 - t1;
    }
    first = 4;
  }
  for (int64_t span = first; span < n; span *= 2) {
    const std::complex<T>* w = stage_twiddles + span - 1; // (span)
    for (int64_t start = 0; start < n; start += 2 * span) {
      // As (real, imaginary) pairs of T, so that the compiler can run several j at once.
      T* a = reinterpret_cast<T*>(x + start);        // (span, 2) first halves
      T* b = reinterpret_cast<T*>(x + start + span); // (span, 2) second halves
      const T* wt = reinterpret_cast<const T*>(w);   // (span, 2)
      for (int64_t j = 0; j < span; ++j) {
        const T w_re = wt[2 * j], w_im = kInverse ? -wt[2 * j + 1] : wt[2 * j + 1];
        const T b_re = b[2 * j], b_im = b[2 * j + 1];
        const T wb_re = w_re * b_re - w_im * b_im, wb_im = w_re * b_im + w_im * b_re;
        const T a_re = a[2 * j], a_im = a[2 * j + 1];
        a[2 * j] = a_re + wb_re;
        a[2 * j + 1] = a_im + wb_im;
        b[2 * j] = a_re - wb_re;
        b[2 * j + 1] = a_im - wb_im;
      }
    }
  }
}

} // namespace

template <typename T>
void FftPlan<T>::radix2(std::complex<T>* x, bool inverse) const {
  for (int64_t i = 0; i < n_; ++i) {
    const int64_t j = bit_reversed_[i];
    if (i < j) std::swap(x[i], x[j]);
  }
  if (inverse)
    radix2_stages<true>(x, n_, twiddles_.data());
  else
    radix2_stages<false>(x, n_, twiddles_.data());
}

template <typename T>
void FftPlan<T>::bluestein(std::complex<T>* x, bool inverse) const {
  const int64_t n = n_, m = padded_->size();
  thread_local std::vector<std::complex<T>> work; // (m) a, its spectrum, the convolution
  work.assign(m, std::complex<T>(0));
  for (int64_t j = 0; j < n; ++j)
    work[j] = complex_mul(inverse ? std::conj(x[j]) : x[j], chirp_[j]);
  padded_->radix2(work.data(), false);
  for (int64_t k = 0; k < m; ++k) work[k] = complex_mul(work[k], filter_[k]);
  padded_->radix2(work.data(), true); // the 1/m is in filter_
  for (int64_t k = 0; k < n; ++k) {
    const std::complex<T> X = complex_mul(work[k], chirp_[k]);
    x[k] = inverse ? std::conj(X) : X;
  }
}

// ---- real-input plans ----------------------------------------------------------------------

template <typename T>
std::shared_ptr<const RealFftPlan<T>> RealFftPlan<T>::get(int64_t n) {
  check_length(n, "rfft");
  return cached_plan<RealFftPlan<T>>(n);
}

template <typename T>
RealFftPlan<T>::RealFftPlan(int64_t n) : n_(n) {
  check_length(n, "rfft");
  if (n % 2 == 0) {
    complex_plan_ = FftPlan<T>::get(n / 2);
    twiddles_.resize(n / 2); // (n/2)
    for (int64_t k = 0; k < n / 2; ++k) twiddles_[k] = unit<T>(-2 * kPi * k / n);
  } else {
    complex_plan_ = FftPlan<T>::get(n);
  }
}

template <typename T>
void RealFftPlan<T>::forward(const T* x, int64_t m, std::complex<T>* X) const {
  const int64_t used = std::min(m, n_); // samples of x that enter; the rest of n are zeros
  if (n_ % 2 == 1) {
    thread_local std::vector<std::complex<T>> work; // (n)
    work.assign(n_, std::complex<T>(0));
    for (int64_t j = 0; j < used; ++j) work[j] = x[j];
    complex_plan_->execute(work.data(), false);
    std::copy(work.begin(), work.begin() + bins(), X);
    return;
  }
  const int64_t h = n_ / 2;
  // Pack: z_j = x_{2j} + i x_{2j+1} into X[0 .. h).
  for (int64_t j = 0; j < h; ++j)
    X[j] = {2 * j < used ? x[2 * j] : T(0), 2 * j + 1 < used ? x[2 * j + 1] : T(0)};
  complex_plan_->execute(X, false); // X[0 .. h) = Z
  // Unpack, in place, the pair (k, h - k) at a time. k = 0: E_0 = Re Z_0, O_0 = Im Z_0.
  const std::complex<T> z0 = X[0];
  X[0] = {z0.real() + z0.imag(), T(0)};
  X[h] = {z0.real() - z0.imag(), T(0)};
  for (int64_t k = 1; 2 * k <= h; ++k) {
    const int64_t j = h - k;
    const std::complex<T> a = X[k], b = std::conj(X[j]);
    const std::complex<T> even = (a + b) * T(0.5);
    const std::complex<T> diff = a - b;
    const std::complex<T> odd{diff.imag() * T(0.5), -diff.real() * T(0.5)}; // diff / (2i)
    const std::complex<T> twisted = complex_mul(twiddles_[k], odd);
    X[k] = even + twisted;
    if (j != k) X[j] = std::conj(even - twisted);
  }
}

template <typename T>
void RealFftPlan<T>::inverse(const std::complex<T>* X, T* x) const {
  if (n_ % 2 == 1) {
    thread_local std::vector<std::complex<T>> work; // (n) the Hermitian completion
    work.resize(n_);
    work[0] = {X[0].real(), T(0)};
    for (int64_t k = 1; k <= n_ / 2; ++k) {
      work[k] = X[k];
      work[n_ - k] = std::conj(X[k]);
    }
    complex_plan_->execute(work.data(), true);
    for (int64_t j = 0; j < n_; ++j) x[j] = work[j].real();
    return;
  }
  const int64_t h = n_ / 2;
  std::complex<T>* z = reinterpret_cast<std::complex<T>*>(x); // (h) z_j = x_{2j} + i x_{2j+1}
  // k = 0: E_0 = (X_0 + X_h) / 2, O_0 = (X_0 - X_h) / 2, real parts only.
  const T x0 = X[0].real(), xh = X[h].real();
  z[0] = {(x0 + xh) * T(0.5), (x0 - xh) * T(0.5)};
  for (int64_t k = 1; k < h; ++k) {
    const std::complex<T> a = X[k], b = std::conj(X[h - k]);
    const std::complex<T> even = (a + b) * T(0.5);
    const std::complex<T> odd = complex_mul_conj((a - b) * T(0.5), twiddles_[k]); // w_n^{-k}
    z[k] = {even.real() - odd.imag(), even.imag() + odd.real()};                  // E + i O
  }
  complex_plan_->execute(z, true);
}

template <typename T>
void fft_inplace(std::complex<T>* data, int64_t n, bool inverse) {
  FftPlan<T>::get(n)->execute(data, inverse);
}

template class FftPlan<float>;
template class FftPlan<double>;
template class RealFftPlan<float>;
template class RealFftPlan<double>;
template void fft_inplace<float>(std::complex<float>*, int64_t, bool);
template void fft_inplace<double>(std::complex<double>*, int64_t, bool);

// ---- the row loops -------------------------------------------------------------------------

namespace {

template <typename T>
std::complex<T>* as_complex(const Tensor& t) {
  return reinterpret_cast<std::complex<T>*>(t.data<T>());
}

} // namespace

void rfft_cpu(const Tensor& x, int64_t n, Tensor& X) {
  const int64_t rows = x.size(0), m = x.size(1), bins = n / 2 + 1;
  dispatch_floating(x.dtype(), "rfft_cpu", [&](auto zero) {
    using T = decltype(zero);
    const auto plan = RealFftPlan<T>::get(n);
    const T* x_p = x.data<T>();              // (rows, m)
    std::complex<T>* X_p = as_complex<T>(X); // (rows, bins)
    cpu::parallel_for(0, rows, fft_rows_per_piece(n), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) plan->forward(x_p + r * m, m, X_p + r * bins);
    });
  });
}

void irfft_cpu(const Tensor& X, int64_t n, Tensor& x) {
  const int64_t rows = X.size(0), bins = n / 2 + 1;
  dispatch_floating(X.dtype(), "irfft_cpu", [&](auto zero) {
    using T = decltype(zero);
    const auto plan = RealFftPlan<T>::get(n);
    const std::complex<T>* X_p = as_complex<T>(X); // (rows, bins)
    T* x_p = x.data<T>();                          // (rows, n)
    cpu::parallel_for(0, rows, fft_rows_per_piece(n), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) plan->inverse(X_p + r * bins, x_p + r * n);
    });
  });
}

void fft_cpu(const Tensor& x, bool inverse, Tensor& out) {
  const int64_t rows = x.size(0), n = x.size(1);
  dispatch_floating(x.dtype(), "fft_cpu", [&](auto zero) {
    using T = decltype(zero);
    const auto plan = FftPlan<T>::get(n);
    const std::complex<T>* x_p = as_complex<T>(x); // (rows, n)
    std::complex<T>* out_p = as_complex<T>(out);   // (rows, n)
    cpu::parallel_for(0, rows, fft_rows_per_piece(n), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        std::copy(x_p + r * n, x_p + (r + 1) * n, out_p + r * n);
        plan->execute(out_p + r * n, inverse);
      }
    });
  });
}

} // namespace ssm::s4
