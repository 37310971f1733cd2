// test_matmul.cpp: matmul, bmm, the CPU GEMM and parallel_for.
//
// The reference is a naive triple loop in double over Tensor::at(), so it reads any view the
// same way the user sees it:  ref(i, j) = sum_k a(i, k) b(k, j).
#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "tensor/cpu/gemm.h"
#include "tensor/cpu/parallel.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tests/helpers.h"

using namespace ssm;

namespace {

// a (M, K) x b (K, N) -> (M, N) in float64, by the definition.
Tensor naive_matmul(const Tensor& a, const Tensor& b) {
  const int64_t M = a.size(0), K = a.size(1), N = b.size(1);
  Tensor out = Tensor::zeros({M, N}, DType::Float64);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double sum = 0;
      for (int64_t k = 0; k < K; ++k) sum += a.at({i, k}) * b.at({k, j});
      out.set({i, j}, sum);
    }
  return out;
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

// Float64 sums of K products in another order than the reference: each differs from the exact
// sum by at most about K * 2^-53 * sum_k |a_ik b_kj| (Higham, Accuracy and Stability of
// Numerical Algorithms, 2nd ed., eq. 3.5); for K <= 600 standard-normal inputs that is below
// 1e-10.
constexpr double f64_atol = 1e-10;

} // namespace

TEST_CASE("matmul matches the naive loop at odd shapes and across block edges (float64)") {
  manual_seed(1);
  // {M, K, N}: tiny, not multiples of the 12 x 16 tile, K across KC = 256 blocks, M across
  // MC = 252 blocks, N across NC = 1536 blocks.
  const std::vector<std::array<int64_t, 3>> shapes = {
      {1, 1, 1}, {7, 5, 3}, {33, 65, 17}, {13, 600, 19}, {260, 7, 5}, {2, 3, 1601}, {12, 4, 16}};
  for (const auto& s : shapes) {
    const int64_t M = s[0], K = s[1], N = s[2];
    INFO("M, K, N = " << M << ", " << K << ", " << N);
    Tensor a = Tensor::randn({M, K}, DType::Float64);
    Tensor b = Tensor::randn({K, N}, DType::Float64);
    Tensor out = matmul(a, b);
    CHECK(out.shape() == Shape{M, N});
    CHECK(test::normalized_error(out, naive_matmul(a, b), f64_atol, 0) <= 1);
  }
}

TEST_CASE("matmul with an empty inner dim gives zeros; empty outer dims give empty results") {
  Tensor out = matmul(Tensor::ones({3, 0}, DType::Float64), Tensor::ones({0, 4}, DType::Float64));
  CHECK(out.shape() == Shape{3, 4});
  test::check_values(out, std::vector<double>(12, 0.0));
  CHECK(matmul(Tensor::ones({0, 3}), Tensor::ones({3, 4})).shape() == Shape{0, 4});
  CHECK(bmm(Tensor::ones({0, 2, 3}), Tensor::ones({0, 3, 4})).shape() == Shape{0, 2, 4});
}

TEST_CASE("matmul reads transposed and strided views in place with the same results") {
  manual_seed(2);
  const int64_t M = 29, K = 41, N = 35;
  // Transposes of contiguous matrices (the GEMM's trans flags).
  Tensor a_t = Tensor::randn({K, M}, DType::Float64).transpose(0, 1);
  Tensor b_t = Tensor::randn({N, K}, DType::Float64).transpose(0, 1);
  // A narrowed column range (row stride K + 6) and a column-strided view that needs a copy.
  Tensor a_narrow = Tensor::randn({M, K + 6}, DType::Float64).narrow(1, 3, K);
  Tensor b_stepped = Tensor::randn({K, 2 * N}, DType::Float64).slice(1, 0, 2 * N, 2);
  REQUIRE(!a_t.is_contiguous());
  REQUIRE(!a_narrow.is_contiguous());
  REQUIRE(!b_stepped.is_contiguous());
  const std::vector<std::pair<Tensor, Tensor>> pairs = {
      {a_t, b_t}, {a_t, b_stepped}, {a_narrow, b_t}, {a_narrow, b_stepped}};
  for (const auto& [a, b] : pairs) {
    Tensor out = matmul(a, b);
    CHECK(test::normalized_error(out, naive_matmul(a, b), f64_atol, 0) <= 1);
    // Every layout packs to the same values, so the bits equal those of contiguous copies.
    CHECK(out.to_doubles() == matmul(a.contiguous(), b.contiguous()).to_doubles());
  }
}

TEST_CASE("matmul with 1-D operands: dot, matrix-vector, vector-matrix, batched") {
  Tensor v = Tensor::from_values({1, 2, 3}, {3}, DType::Float64);
  Tensor w = Tensor::from_values({4, 5, 6}, {3}, DType::Float64);
  Tensor m = Tensor::from_values({1, 0, 2, 0, 1, -1}, {2, 3}, DType::Float64); // (2, 3)
  Tensor mt = m.transpose(0, 1);                                               // (3, 2)

  Tensor dot = matmul(v, w);
  CHECK(dot.dim() == 0);
  CHECK(dot.item() == 32); // 4 + 10 + 18

  Tensor mv = matmul(m, v); // (2, 3) x (3) -> (2)
  CHECK(mv.shape() == Shape{2});
  test::check_values(mv, {7, -1});

  Tensor vm = matmul(v, mt); // (3) x (3, 2) -> (2)
  CHECK(vm.shape() == Shape{2});
  test::check_values(vm, {7, -1});

  // (3) x (2, 3, 2) -> (2, 2): the vector times each matrix of the batch.
  Tensor b3 = Tensor::from_values({1, 0, 0, 1, 1, 1, 2, 0, 0, 2, 0, 0}, {2, 3, 2}, DType::Float64);
  Tensor vb = matmul(v, b3);
  CHECK(vb.shape() == Shape{2, 2});
  test::check_values(vb, {4, 5, 2, 4});

  // (2, 2, 3) x (3) -> (2, 2): each matrix of the batch times the vector.
  Tensor a3 = Tensor::from_values({1, 0, 2, 0, 1, -1, 1, 1, 1, 0, 0, 1}, {2, 2, 3}, DType::Float64);
  Tensor bv = matmul(a3, v);
  CHECK(bv.shape() == Shape{2, 2});
  test::check_values(bv, {7, -1, 6, 3});
}

TEST_CASE("matmul broadcasts batch dims: (2, 1, 3, 4) x (5, 4, 2) -> (2, 5, 3, 2)") {
  manual_seed(3);
  Tensor a = Tensor::randn({2, 1, 3, 4}, DType::Float64);
  Tensor b = Tensor::randn({5, 4, 2}, DType::Float64);
  Tensor out = matmul(a, b);
  REQUIRE(out.shape() == Shape{2, 5, 3, 2});
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 5; ++j) {
      INFO("batch entry " << i << ", " << j);
      Tensor ref = naive_matmul(a.select(0, i).select(0, 0), b.select(0, j));
      CHECK(test::normalized_error(out.select(0, i).select(0, j), ref, f64_atol, 0) <= 1);
    }
  // A 2-D weight shared by a batch: (4, 3, 4) x (4, 2).
  Tensor x = Tensor::randn({4, 3, 4}, DType::Float64);
  Tensor out2 = matmul(x, b.select(0, 1));
  REQUIRE(out2.shape() == Shape{4, 3, 2});
  for (int64_t i = 0; i < 4; ++i)
    CHECK(test::normalized_error(out2.select(0, i), naive_matmul(x.select(0, i), b.select(0, 1)),
                                 f64_atol, 0) <= 1);
}

TEST_CASE("bmm matches the naive loop per batch entry, including transposed operands") {
  manual_seed(4);
  Tensor a = Tensor::randn({3, 9, 14}, DType::Float64);
  Tensor b = Tensor::randn({3, 11, 14}, DType::Float64).transpose(1, 2); // (3, 14, 11)
  Tensor out = bmm(a, b);
  REQUIRE(out.shape() == Shape{3, 9, 11});
  for (int64_t i = 0; i < 3; ++i)
    CHECK(test::normalized_error(out.select(0, i), naive_matmul(a.select(0, i), b.select(0, i)),
                                 f64_atol, 0) <= 1);
}

TEST_CASE("matmul in float32 agrees with float64 within the rounding-error bound") {
  manual_seed(5);
  for (int64_t K : {5, 64, 300}) {
    const int64_t M = 23, N = 37;
    Tensor a32 = Tensor::randn({M, K});
    Tensor b32 = Tensor::randn({K, N});
    // The same (float32-representable) inputs in float64, so only the product's rounding
    // differs.
    Tensor a64 = a32.to(DType::Float64), b64 = b32.to(DType::Float64);
    std::vector<double> got = matmul(a32, b32).to_doubles();
    std::vector<double> ref = matmul(a64, b64).to_doubles();
    // Any order of K float32 products and sums is within K u sum_k |a_ik b_kj| of the exact
    // value, u = 2^-24 (Higham eq. 3.5, first order); the float64 reference is exact to far
    // below that. The factor 1.01 covers the float64 side and the second-order term.
    Tensor abs_product = matmul(abs(a64), abs(b64));
    std::vector<double> magnitude = abs_product.to_doubles();
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      const double bound = 1.01 * static_cast<double>(K) * std::ldexp(1.0, -24) * magnitude[i];
      worst = std::max(worst, std::fabs(got[i] - ref[i]) / bound);
    }
    INFO("K = " << K << ": worst |f32 - f64| / bound = " << worst);
    CHECK(worst <= 1);
  }
}

TEST_CASE("matmul on int64 is exact") {
  Tensor a = Tensor::from_values({1, 2, 3, 4, 5, 6}, {2, 3}, DType::Int64);
  Tensor b = Tensor::from_values({7, 8, 9, 10, 11, 12}, {3, 2}, DType::Int64);
  Tensor out = matmul(a, b);
  CHECK(out.dtype() == DType::Int64);
  test::check_values(out, {58, 64, 139, 154}, 0);
}

TEST_CASE("matmul gives the same bits for every thread count") {
  manual_seed(6);
  // 2 * 130 * 300 * 170 flops: enough for gemm to split C's rows across threads; the wide
  // product splits its columns. The batch of small products is split by batch entry instead.
  Tensor a = Tensor::randn({130, 300});
  Tensor b = Tensor::randn({170, 300}).transpose(0, 1);
  Tensor wide_a = Tensor::randn({20, 600});
  Tensor wide_b = Tensor::randn({600, 800});
  Tensor small_a = Tensor::randn({256, 16, 64}, DType::Float64);
  Tensor small_b = Tensor::randn({256, 64, 32}, DType::Float64);
  std::vector<float> reference, wide_reference;
  std::vector<double> small_reference;
  for (const char* threads : {"1", "2", "3", "5"}) {
    ThreadCount scope(threads);
    INFO("SSM_NUM_THREADS = " << threads);
    std::vector<float> got = matmul(a, b).to_vector<float>();
    std::vector<float> wide_got = matmul(wide_a, wide_b).to_vector<float>();
    std::vector<double> small_got = bmm(small_a, small_b).to_vector<double>();
    if (reference.empty()) {
      reference = got;
      wide_reference = wide_got;
      small_reference = small_got;
    }
    CHECK(got == reference);
    CHECK(wide_got == wide_reference);
    CHECK(small_got == small_reference);
  }
}

TEST_CASE("gemm accumulates into C when asked and respects leading dimensions") {
  // C is a 2 x 3 block of a 2 x 5 buffer (ldc 5); the last two columns must stay untouched.
  const std::vector<double> A = {1, 2, 3, 4};       // (2, 2)
  const std::vector<double> B = {1, 0, 1, 0, 1, 1}; // (2, 3)
  std::vector<double> C = {10, 10, 10, -1, -1, 20, 20, 20, -1, -1};
  cpu::gemm<double>(2, 3, 2, A.data(), 2, false, B.data(), 3, false, C.data(), 5, true);
  CHECK(C == std::vector<double>{11, 12, 13, -1, -1, 23, 24, 27, -1, -1});
  // Without accumulate the old contents, even NaN, are ignored.
  std::vector<double> D(6, std::nan(""));
  cpu::gemm<double>(2, 3, 2, A.data(), 2, false, B.data(), 3, false, D.data(), 3, false);
  CHECK(D == std::vector<double>{1, 2, 3, 3, 4, 7});
}

TEST_CASE("parallel_for covers each index once, rethrows, and runs nested loops inline") {
  for (const char* threads : {"1", "2", "7"}) {
    ThreadCount scope(threads);
    for (int64_t grain : {1, 3, 100}) {
      std::vector<std::atomic<int>> hits(50);
      cpu::parallel_for(0, 50, grain, [&](int64_t lo, int64_t hi) {
        CHECK(hi - lo >= std::min<int64_t>(grain, 50));
        for (int64_t i = lo; i < hi; ++i) ++hits[i];
      });
      int64_t once = 0;
      for (auto& h : hits) once += h.load() == 1;
      CHECK(once == 50);
    }
  }
  ThreadCount two("2");
  CHECK_THROWS_WITH_AS(cpu::parallel_for(0, 10, 1,
                                         [](int64_t lo, int64_t) {
                                           if (lo > 0) throw std::out_of_range("piece failed");
                                         }),
                       "piece failed", std::out_of_range);
  std::atomic<int> inner_pieces{0};
  cpu::parallel_for(0, 2, 1, [&](int64_t, int64_t) {
    cpu::parallel_for(0, 100, 1, [&](int64_t lo, int64_t hi) {
      CHECK(lo == 0);
      CHECK(hi == 100);
      ++inner_pieces;
    });
  });
  CHECK(inner_pieces.load() == 2);
  ThreadCount bad("zero");
  CHECK_THROWS_WITH_AS(cpu::parallel_for(0, 10, 1, [](int64_t, int64_t) {}),
                       "SSM_NUM_THREADS: expected an integer in [1, 4096], got 'zero'",
                       std::invalid_argument);
}

TEST_CASE("matmul and bmm errors name the op and both shapes") {
  CHECK_THROWS_WITH_AS(matmul(Tensor::ones({2, 3}), Tensor::ones({4, 5})),
                       "matmul: inner dims differ: [2, 3] x [4, 5]", std::invalid_argument);
  CHECK_THROWS_WITH_AS(matmul(Tensor::ones({3}), Tensor::ones({4})),
                       "matmul: inner dims differ: [3] x [4]", std::invalid_argument);
  CHECK_THROWS_WITH_AS(matmul(Tensor::ones({2, 3, 4}), Tensor::ones({5, 4, 2})),
                       "matmul: batch dims do not broadcast: [2, 3, 4] x [5, 4, 2]",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(matmul(Tensor::scalar(1), Tensor::ones({3})),
                       "matmul: expected operands of at least 1 dim, got [] x [3]",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(matmul(Tensor::ones({2, 3}), Tensor::ones({3, 4}, DType::Float64)),
                       "matmul: dtypes differ (Tensor[2, 3] float32 cpu vs Tensor[3, 4] float64 "
                       "cpu); convert one with .to(dtype)",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(bmm(Tensor::ones({2, 3}), Tensor::ones({2, 3, 4})),
                       "bmm: expected 3-D operands (B, M, K) x (B, K, N), got [2, 3] x [2, 3, 4]",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(bmm(Tensor::ones({2, 3, 4}), Tensor::ones({3, 4, 5})),
                       "bmm: batch sizes differ: [2, 3, 4] x [3, 4, 5]", std::invalid_argument);
  CHECK_THROWS_WITH_AS(bmm(Tensor::ones({2, 3, 4}), Tensor::ones({2, 5, 6})),
                       "bmm: inner dims differ: [2, 3, 4] x [2, 5, 6]", std::invalid_argument);
}
