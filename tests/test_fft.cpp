// test_fft.cpp: the CPU FFT (s4/fft_cpu.cpp) against a direct O(n^2) DFT, the real-input
// transforms against the definitions, and S4's causal convolution (s4/fft_conv.cpp) against
// the direct O(L^2) sum: forward, every gradient (against the hand-derived sums and by float64
// gradient checks), the same bits at every thread count, and bad input.
//
// Errors are measured relative to the largest magnitude of the reference,
//   rel_max = max_i |a_i - ref_i| / max_i |ref_i|,
// since an FFT's rounding error is spread evenly over its outputs (about eps log2 n times
// their norm; Higham, Accuracy and Stability of Numerical Algorithms, sec. 24.1): a small
// output carries the absolute error of the large ones, and an element-wise relative error
// would be set by whichever output happens to land nearest zero.
// Tolerances, and why:
//   float64 1e-12: eps = 1.1e-16 times log2 n (at most 11 here) times a small constant is
//     ~1e-14; Bluestein (n not a power of two) runs three transforms of length m <= 2048 and
//     two chirp products, a few times more; the direct references sum in long double or
//     double. Measured: at most 1.3e-15 anywhere in this file.
//   float32 5e-6 for the transforms and 2e-6 for the convolution and its gradients, the same
//     argument with eps = 6e-8; measured against float64 references: at most 6.2e-7 (irfft of
//     a random spectrum, n = 1000) and 2.1e-7. A wrong twiddle, a wrong sign or a lost
//     padding is off by 1e-2 or more.
#include <doctest/doctest.h>

#include <cmath>
#include <complex>
#include <cstdlib>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "s4/fft.h"
#include "tensor/ops.h"
#include "tests/helpers.h"

namespace ssm {
namespace {

using s4::causal_conv;
using s4::causal_conv_direct;
using test::rand64;

constexpr double kF64Tol = 1e-12;
constexpr double kF32FftTol = 5e-6;
constexpr double kF32ConvTol = 2e-6;

// max |a - ref| / max |ref| (0 when both are all zero).
double rel_max(const Tensor& a, const Tensor& ref) {
  REQUIRE(a.shape() == ref.shape());
  const std::vector<double> va = a.to_doubles(), vr = ref.to_doubles();
  double diff = 0, scale = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    const double d = std::fabs(va[i] - vr[i]);
    if (!(d <= diff)) diff = d; // NaN sticks
    scale = std::max(scale, std::fabs(vr[i]));
  }
  return scale > 0 ? diff / scale : diff;
}

// The DFT of each row of x (rows, n, 2) by its definition, summed in long double, with
// w^{jk} = w^{jk mod n} taken from a table computed in long double.
Tensor direct_dft(const Tensor& x, bool inverse) {
  const int64_t rows = x.size(0), n = x.size(1);
  const std::vector<double> v = x.contiguous().to_doubles();
  const long double pi = 3.141592653589793238462643383279502884L;
  std::vector<std::complex<long double>> w(n); // w^q, q < n
  for (int64_t q = 0; q < n; ++q) {
    const long double angle = (inverse ? 2 : -2) * pi * q / n;
    w[q] = {std::cos(angle), std::sin(angle)};
  }
  std::vector<double> out(v.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < n; ++k) {
      std::complex<long double> sum = 0;
      for (int64_t j = 0; j < n; ++j)
        sum +=
            std::complex<long double>(v[2 * (r * n + j)], v[2 * (r * n + j) + 1]) * w[(j * k) % n];
      if (inverse) sum /= static_cast<long double>(n);
      out[2 * (r * n + k)] = static_cast<double>(sum.real());
      out[2 * (r * n + k) + 1] = static_cast<double>(sum.imag());
    }
  return Tensor::from_vector(out, x.shape());
}

// A real (rows, m) tensor as a complex (rows, n, 2) one, zero-padded or truncated to n.
Tensor real_as_complex(const Tensor& x, int64_t n) {
  const int64_t rows = x.size(0), m = x.size(1);
  Tensor out = Tensor::zeros({rows, n, 2}, DType::Float64);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < std::min(m, n); ++j) out.set({r, j, 0}, x.at({r, j}));
  return out;
}

const std::vector<int64_t> kLengths = {1, 2, 3, 5, 8, 12, 64, 100, 256, 1000};

// ---- complex transforms ----------------------------------------------------------------------

TEST_CASE("fft: radix-2 and Bluestein equal the direct DFT (float64 and float32)") {
  for (int64_t n : kLengths)
    for (bool inverse : {false, true}) {
      INFO("n = " << n << ", " << std::string(inverse ? "inverse" : "forward"));
      const Tensor x = rand64({3, n, 2}, 100 + n);
      const Tensor ref = direct_dft(x, inverse);
      CHECK(rel_max(s4::fft(x, inverse), ref) <= kF64Tol);
      CHECK(rel_max(s4::fft(x.to(DType::Float32), inverse), ref) <= kF32FftTol);
    }
}

TEST_CASE("fft: fft_inplace, batch dims, and the inverse undoes the forward") {
  const int64_t n = 100;
  const Tensor x = rand64({n, 2}, 7);
  std::vector<std::complex<double>> data(n);
  for (int64_t j = 0; j < n; ++j) data[j] = {x.at({j, 0}), x.at({j, 1})};
  s4::fft_inplace(data.data(), n, false);
  const Tensor ref = direct_dft(x.unsqueeze(0), false).squeeze(0);
  double worst = 0;
  for (int64_t k = 0; k < n; ++k)
    worst =
        std::max(worst, std::abs(data[k] - std::complex<double>(ref.at({k, 0}), ref.at({k, 1}))));
  CHECK(worst <= 1e-12 * n);

  // Leading dims are rows; the result keeps x's shape.
  const Tensor batched = rand64({2, 3, 12, 2}, 8);
  const Tensor X = s4::fft(batched);
  CHECK(X.shape() == batched.shape());
  CHECK(rel_max(X.reshape({6, 12, 2}), direct_dft(batched.reshape({6, 12, 2}), false)) <= kF64Tol);
  for (int64_t len : {1, 7, 64, 1000}) {
    const Tensor y = rand64({2, len, 2}, 9 + len);
    CHECK(rel_max(s4::fft(s4::fft(y), true), y) <= kF64Tol);
  }
  // A strided (non-contiguous) input is read correctly.
  const Tensor wide = rand64({12, 3, 2}, 10);
  const Tensor column = wide.narrow(1, 1, 1).squeeze(1).unsqueeze(0); // (1, 12, 2), strided
  CHECK(rel_max(s4::fft(column), direct_dft(column.contiguous(), false)) <= kF64Tol);
}

// ---- real-input transforms -------------------------------------------------------------------

TEST_CASE("rfft: the first n/2 + 1 bins of the DFT, with zero padding and truncation") {
  for (int64_t n : {1, 2, 3, 5, 8, 12, 64, 100, 255, 256, 1000})
    for (int64_t m : {n, n / 2 + 1, n + 3}) {
      INFO("n = " << n << ", m = " << m);
      const Tensor x = rand64({3, m}, 200 + n + m);
      const Tensor full = direct_dft(real_as_complex(x, n), false); // (3, n, 2)
      const Tensor ref = full.narrow(1, 0, n / 2 + 1);
      const Tensor X = s4::rfft(x, n);
      REQUIRE(X.shape() == Shape{3, n / 2 + 1, 2});
      CHECK(rel_max(X, ref) <= kF64Tol);
      CHECK(rel_max(s4::rfft(x.to(DType::Float32), n), ref) <= kF32FftTol);
    }
  // Leading dims, and an empty input row: the spectrum of n zeros.
  CHECK(s4::rfft(rand64({2, 3, 10}, 1), 16).shape() == Shape{2, 3, 9, 2});
  CHECK(s4::rfft(Tensor::zeros({2, 0}, DType::Float64), 4).to_doubles() ==
        std::vector<double>(2 * 3 * 2, 0.0));
}

TEST_CASE("irfft: undoes rfft, and equals the Hermitian completion's inverse DFT") {
  for (int64_t n : {1, 2, 3, 5, 8, 12, 64, 100, 255, 256, 1000}) {
    INFO("n = " << n);
    const int64_t bins = n / 2 + 1;
    const Tensor x = rand64({3, n}, 300 + n);
    CHECK(rel_max(s4::irfft(s4::rfft(x, n), n), x) <= kF64Tol);
    CHECK(rel_max(s4::irfft(s4::rfft(x.to(DType::Float32), n), n), x) <= kF32FftTol);

    // A random spectrum, not that of a real signal: irfft reads Re X_0, (even n) Re X_{n/2}
    // and X_1 .. X_{(n-1)/2}, completed by X_{n-k} = conj(X_k).
    const Tensor X = rand64({3, bins, 2}, 400 + n);
    Tensor completed = Tensor::zeros({3, n, 2}, DType::Float64);
    for (int64_t r = 0; r < 3; ++r) {
      completed.set({r, 0, 0}, X.at({r, 0, 0}));
      for (int64_t k = 1; k < bins; ++k) {
        const bool nyquist = n % 2 == 0 && k == n / 2;
        completed.set({r, k, 0}, X.at({r, k, 0}));
        completed.set({r, k, 1}, nyquist ? 0.0 : X.at({r, k, 1}));
        completed.set({r, n - k, 0}, X.at({r, k, 0}));
        completed.set({r, n - k, 1}, nyquist ? 0.0 : -X.at({r, k, 1}));
      }
    }
    const Tensor ref = direct_dft(completed, true).select(2, 0); // (3, n): real parts
    CHECK(rel_max(s4::irfft(X, n), ref) <= kF64Tol);
    CHECK(rel_max(s4::irfft(X.to(DType::Float32), n), ref) <= kF32FftTol);
  }
}

// ---- the causal convolution ------------------------------------------------------------------

struct ConvInputs {
  Tensor u, K, D;
};

// u, K, D ~ U(-1, 1); K decays as exp(-3 s / L) like an SSM kernel.
ConvInputs conv_inputs(int64_t B, int64_t H, int64_t L, uint64_t seed) {
  ConvInputs in;
  in.u = rand64({B, H, L}, seed);
  const Tensor decay = exp(mul(Tensor::arange(0, static_cast<double>(L), 1, DType::Float64),
                               -3.0 / static_cast<double>(L)));
  in.K = mul(rand64({H, L}, seed + 1), decay);
  in.D = rand64({H}, seed + 2);
  return in;
}

// A leaf that requires a gradient, or a constant; an undefined Var for an undefined tensor.
Var leaf(const Tensor& t) { return t.defined() ? Var(t, true) : Var(); }
Var constant(const Tensor& t) { return t.defined() ? Var(t) : Var(); }

TEST_CASE("causal_conv: the FFT path equals the direct sum (float64 and float32)") {
  for (int64_t L : {1, 7, 64, 100, 257})
    for (bool with_D : {true, false}) {
      INFO("L = " << L << ", D " << std::string(with_D ? "given" : "undefined"));
      const ConvInputs in = conv_inputs(2, 3, L, 500 + L);
      const Tensor D = with_D ? in.D : Tensor();
      const Tensor ref = causal_conv_direct(in.u, in.K, D);
      CHECK(rel_max(causal_conv(Var(in.u), Var(in.K), constant(D)).value(), ref) <= kF64Tol);
      const Tensor D32 = with_D ? D.to(DType::Float32) : Tensor();
      const Var y32 =
          causal_conv(Var(in.u.to(DType::Float32)), Var(in.K.to(DType::Float32)), constant(D32));
      CHECK(y32.dtype() == DType::Float32);
      CHECK(rel_max(y32.value(), ref) <= kF32ConvTol);
    }
  // The direct sum itself, by hand: u = (1, 2, 3), K = (1, 10, 100), D = 0.5.
  const Tensor u = Tensor::from_values({1, 2, 3}, {1, 1, 3}, DType::Float64);
  const Tensor K = Tensor::from_values({1, 10, 100}, {1, 3}, DType::Float64);
  const Tensor D = Tensor::from_values({0.5}, {1}, DType::Float64);
  test::check_values(causal_conv_direct(u, K, D), {1.5, 13, 123 + 1.5}, 0);
}

// The gradients (2)-(4) of fft_conv.cpp's header as direct sums.
struct ConvGrads {
  Tensor du, dK, dD;
};
ConvGrads direct_grads(const ConvInputs& in, const Tensor& g) {
  const int64_t B = in.u.size(0), H = in.u.size(1), L = in.u.size(2);
  const std::vector<double> u = in.u.to_doubles(), K = in.K.to_doubles(), D = in.D.to_doubles(),
                            gv = g.to_doubles();
  std::vector<double> du(B * H * L), dK(H * L, 0.0), dD(H, 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t row = (b * H + h) * L;
      for (int64_t t = 0; t < L; ++t) {
        double du_t = D[h] * gv[row + t], dK_t = 0;
        for (int64_t t2 = t; t2 < L; ++t2) {
          du_t += K[h * L + t2 - t] * gv[row + t2]; // (2)
          dK_t += gv[row + t2] * u[row + t2 - t];   // (3), one b
        }
        du[row + t] = du_t;
        dK[h * L + t] += dK_t;
        dD[h] += gv[row + t] * u[row + t]; // (4)
      }
    }
  return {Tensor::from_vector(du, {B, H, L}), Tensor::from_vector(dK, {H, L}),
          Tensor::from_vector(dD, {H})};
}

TEST_CASE("causal_conv: the backward equals the direct sums of du, dK, dD") {
  for (int64_t L : {1, 7, 64, 100, 257}) {
    INFO("L = " << L);
    const ConvInputs in = conv_inputs(2, 3, L, 600 + L);
    const Tensor g = rand64({2, 3, L}, 700 + L);
    const ConvGrads ref = direct_grads(in, g);
    const Var u = leaf(in.u), K = leaf(in.K), D = leaf(in.D);
    causal_conv(u, K, D).backward(g);
    CHECK(rel_max(u.grad(), ref.du) <= kF64Tol);
    CHECK(rel_max(K.grad(), ref.dK) <= kF64Tol);
    CHECK(rel_max(D.grad(), ref.dD) <= kF64Tol);

    const Var u32 = leaf(in.u.to(DType::Float32)), K32 = leaf(in.K.to(DType::Float32)),
              D32 = leaf(in.D.to(DType::Float32));
    causal_conv(u32, K32, D32).backward(g.to(DType::Float32));
    CHECK(rel_max(u32.grad(), ref.du) <= kF32ConvTol);
    CHECK(rel_max(K32.grad(), ref.dK) <= kF32ConvTol);
    CHECK(rel_max(D32.grad(), ref.dD) <= kF32ConvTol);
  }
}

TEST_CASE("causal_conv: float64 gradient check in u, K and D") {
  struct Case {
    int64_t B, H, L;
  };
  for (const Case& c : {Case{1, 1, 1}, Case{2, 3, 7}, Case{2, 2, 16}, Case{1, 2, 33}}) {
    INFO("(B, H, L) = (" << c.B << ", " << c.H << ", " << c.L << ")");
    const ConvInputs in = conv_inputs(c.B, c.H, c.L, 800 + c.L);
    test::expect_gradcheck([](const std::vector<Var>& v) { return causal_conv(v[0], v[1], v[2]); },
                           {in.u, in.K, in.D});
    test::expect_gradcheck([](const std::vector<Var>& v) { return causal_conv(v[0], v[1]); },
                           {in.u, in.K});
  }
  // Only some inputs need a gradient: the others get none, and the ones asked for are right.
  const ConvInputs in = conv_inputs(2, 3, 10, 900);
  const Tensor g = rand64({2, 3, 10}, 901);
  const ConvGrads ref = direct_grads(in, g);
  const Var u = leaf(in.u), K(in.K), D(in.D);
  causal_conv(u, K, D).backward(g);
  CHECK(rel_max(u.grad(), ref.du) <= kF64Tol);
  CHECK_FALSE(K.grad().defined());
  const Var u2(in.u), K2 = leaf(in.K), D2(in.D);
  causal_conv(u2, K2, D2).backward(g);
  CHECK(rel_max(K2.grad(), ref.dK) <= kF64Tol);
}

// Sets SSM_NUM_THREADS for the lifetime of the object, then restores the previous value.
class ThreadCount {
 public:
  explicit ThreadCount(const std::string& value) {
    if (const char* old = std::getenv("SSM_NUM_THREADS")) previous_ = old, had_previous_ = true;
    setenv("SSM_NUM_THREADS", value.c_str(), 1);
  }
  ~ThreadCount() {
    if (had_previous_)
      setenv("SSM_NUM_THREADS", previous_.c_str(), 1);
    else
      unsetenv("SSM_NUM_THREADS");
  }

 private:
  std::string previous_;
  bool had_previous_ = false;
};

TEST_CASE("causal_conv: the same bits with 1 and 4 threads") {
  const ConvInputs in = conv_inputs(4, 16, 300, 1000);
  const Tensor g = rand64({4, 16, 300}, 1001);
  std::vector<std::vector<double>> runs;
  for (const char* threads : {"1", "4"}) {
    const ThreadCount count(threads);
    const Var u = leaf(in.u), K = leaf(in.K), D = leaf(in.D);
    const Var y = causal_conv(u, K, D);
    y.backward(g);
    std::vector<double> all = y.value().to_doubles();
    for (const Var* v : {&u, &K, &D}) {
      const std::vector<double> grad = v->grad().to_doubles();
      all.insert(all.end(), grad.begin(), grad.end());
    }
    runs.push_back(all);
  }
  CHECK(runs[0] == runs[1]);
}

TEST_CASE("causal_conv: no batch, and the FFT length") {
  const ConvInputs in = conv_inputs(1, 3, 5, 1100);
  const Var u = leaf(Tensor::zeros({0, 3, 5}, DType::Float64)), K = leaf(in.K), D = leaf(in.D);
  const Var y = causal_conv(u, K, D);
  CHECK(y.shape() == Shape{0, 3, 5});
  sum(y).backward();
  CHECK(K.grad().to_doubles() == std::vector<double>(15, 0.0));
  CHECK(D.grad().to_doubles() == std::vector<double>(3, 0.0));

  CHECK(s4::causal_conv_fft_size(1) == 2);
  CHECK(s4::causal_conv_fft_size(100) == 256);
  CHECK(s4::causal_conv_fft_size(2048) == 4096);
  CHECK(s4::causal_conv_fft_size(2049) == 8192);
}

// ---- bad input -------------------------------------------------------------------------------

TEST_CASE("fft, rfft, irfft, causal_conv: bad input is a clear error") {
  using test::check_error;
  const ConvInputs in = conv_inputs(2, 3, 8, 1200);
  auto conv = [](const Tensor& u, const Tensor& K, const Tensor& D) {
    return causal_conv(Var(u), Var(K), constant(D));
  };
  check_error<std::invalid_argument>([&] { conv(in.u.select(0, 0), in.K, in.D); },
                                     {"causal_conv", "(batch, H, L)", "[3, 8]"});
  check_error<std::invalid_argument>([&] { conv(in.u, in.K.narrow(1, 0, 7), in.D); },
                                     {"causal_conv", "K", "[3, 8]", "[3, 7]"});
  check_error<std::invalid_argument>([&] { conv(in.u, in.K.narrow(0, 0, 2), in.D); },
                                     {"causal_conv", "K", "[3, 8]", "[2, 8]"});
  check_error<std::invalid_argument>([&] { conv(in.u, in.K, rand64({4}, 1)); },
                                     {"causal_conv", "D", "[3]", "[4]"});
  check_error<std::invalid_argument>([&] { conv(in.u, in.K.to(DType::Float32), in.D); },
                                     {"causal_conv", "float32", "float64"});
  check_error<std::invalid_argument>(
      [&] { conv(in.u.to(DType::Int64), in.K.to(DType::Int64), Tensor()); },
      {"causal_conv", "int64"});
  check_error<std::invalid_argument>(
      [&] {
        conv(Tensor::zeros({2, 3, 0}, DType::Float64), Tensor::zeros({3, 0}, DType::Float64),
             Tensor());
      },
      {"causal_conv", "L >= 1"});
  check_error<std::invalid_argument>([&] { causal_conv(Var(in.u), Var()); },
                                     {"causal_conv", "required"});
  check_error<std::invalid_argument>([&] { causal_conv_direct(in.u, in.K.narrow(1, 0, 4), in.D); },
                                     {"causal_conv_direct", "K"});

  check_error<std::invalid_argument>([&] { s4::rfft(in.u, 0); }, {"rfft", "n >= 1", "0"});
  check_error<std::invalid_argument>([&] { s4::rfft(in.u.to(DType::Int64), 8); },
                                     {"rfft", "int64"});
  check_error<std::invalid_argument>([&] { s4::rfft(Tensor::scalar(1, DType::Float64), 8); },
                                     {"rfft", "0-dim"});
  check_error<std::invalid_argument>(
      [&] {
        s4::irfft(rand64({2, 5, 2}, 1), 16);
      },
      {"irfft", "n/2 + 1 = 9", "[2, 5, 2]"});
  check_error<std::invalid_argument>(
      [&] {
        s4::irfft(rand64({2, 5, 3}, 1), 8);
      },
      {"irfft", "complex", "[2, 5, 3]"});
  check_error<std::invalid_argument>(
      [&] {
        s4::irfft(rand64({2, 5, 2}, 1), -1);
      },
      {"irfft", "n >= 1"});
  check_error<std::invalid_argument>([&] { s4::fft(rand64({2}, 1)); }, {"fft", "complex", "[2]"});
  check_error<std::invalid_argument>(
      [&] {
        s4::fft(rand64({4, 3}, 1));
      },
      {"fft", "complex", "[4, 3]"});
  check_error<std::invalid_argument>(
      [&] {
        s4::fft(Tensor::zeros({3, 0, 2}, DType::Float64));
      },
      {"fft", "n >= 1"});
  check_error<std::invalid_argument>([] { s4::FftPlan<double>::get(0); }, {"fft", "length"});
}

} // namespace
} // namespace ssm
