// GPU parity of matmul / bmm (cuBLAS through cuda/matmul.cpp) against the CPU GEMM, the
// accumulate and K = 0 paths of cuda::gemm itself, and TF32 mode.
//
// Tolerances. float64: test::kF64Atol / kF64Rtol (1e-12): the CPU GEMM and cuBLAS sum in
// different orders, which moves a float64 result of these sizes (|c| ~ sqrt(K) <= 23) by a few
// 1e-14 at most. float32: each side's result is within gamma_K (|A||B|)_ij of the exact
// product, gamma_K = K u / (1 - K u), u = 2^-24 (Higham, Accuracy and Stability of Numerical
// Algorithms, 2nd ed., sec. 3.5), and, for rounding errors that behave as independent
// zero-mean variables, within about lambda sqrt(K) u (|A||B|)_ij (Higham & Mary, "A new
// approach to probabilistic rounding error analysis", SIAM J. Sci. Comput. 41(5), 2019). The
// two sides differ by at most twice that: atol = 2.02 u min(K, 5 sqrt(K)) max_ij (|A||B|)_ij,
// the rigorous bound up to K = 25 and the probabilistic one with lambda = 5 beyond. For unit
// normal inputs (|A||B|)_ij ~ 0.64 K, so at K = 511 atol is ~2e-3 against a typical
// difference of u K / sqrt(3) ~ 2e-5; a TF32 product (relative error ~2^-11 per term,
// ~7e-3 per element) or any indexing mistake fails it.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

#ifdef SSM_CUDA
#include "cuda/matmul.h"
#include "cuda/runtime.h"
#endif
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tests/helpers.h"
#include "tests/parity.h"

using namespace ssm;

namespace {

const Device kGpu = Device::cuda(0);

double f32_atol(const Tensor& a, const Tensor& b) {
  const double K = static_cast<double>(a.size(-1));
  const Tensor abs_product = matmul(abs(a.to(DType::Float64)), abs(b.to(DType::Float64)));
  const double scale = abs_product.numel() > 0 ? max(abs_product).item() : 0;
  const double u = std::ldexp(1.0, -24);
  return 2.02 * u * std::min(K, 5 * std::sqrt(K)) * scale;
}

// matmul (or bmm) of the same inputs on the CPU and on the GPU, compared with the tolerance
// of the dtype (file comment).
void check_product(const char* op, const Tensor& a, const Tensor& b, const std::string& config) {
  const bool is_bmm = std::string(op) == "bmm";
  const Tensor cpu = is_bmm ? bmm(a, b) : matmul(a, b);
  const Tensor gpu = is_bmm ? bmm(a.to(kGpu), b.to(kGpu)) : matmul(a.to(kGpu), b.to(kGpu));
  CHECK(gpu.device() == kGpu);
  if (a.dtype() == DType::Float64)
    test::check_parity(op, config, gpu, cpu, test::kF64Atol, test::kF64Rtol);
  else
    test::check_parity(op, config, gpu, cpu, f32_atol(a, b), 0);
}

void check_matmul(const Tensor& a, const Tensor& b, const std::string& config) {
  check_product("matmul", a, b, config);
}

std::string product_str(int64_t M, int64_t K, int64_t N) {
  return "[" + std::to_string(M) + ", " + std::to_string(K) + "] x [" + std::to_string(K) + ", " +
         std::to_string(N) + "]";
}

} // namespace

GPU_TEST_CASE("cuda matmul: 2-D shapes, transposed views, strided views, 1-D operands") {
  Generator gen(21);
  const std::vector<std::array<int64_t, 3>> sizes = {{1, 1, 1},       {7, 5, 3},    {33, 65, 17},
                                                     {257, 129, 511}, {1, 300, 64}, {64, 1, 300}};
  for (DType dtype : {DType::Float64, DType::Float32}) {
    for (const auto& [M, K, N] : sizes) {
      const std::string shape = product_str(M, K, N);
      const Tensor a = Tensor::randn({M, K}, dtype, &gen), b = Tensor::randn({K, N}, dtype, &gen);
      check_matmul(a, b, shape);
      // Transposes of contiguous matrices: read in place with the transpose flag.
      const Tensor at = Tensor::randn({K, M}, dtype, &gen).transpose(0, 1);
      const Tensor bt = Tensor::randn({N, K}, dtype, &gen).transpose(0, 1);
      check_matmul(at, b, shape + " a transposed");
      check_matmul(a, bt, shape + " b transposed");
      check_matmul(at, bt, shape + " both transposed");
    }
    const Tensor v = Tensor::randn({9}, dtype, &gen), m = Tensor::randn({9, 4}, dtype, &gen);
    check_matmul(v, m, "[9] x [9, 4]");
    check_matmul(m.transpose(0, 1), v, "[4, 9] x [9]");
    check_matmul(v, v, "[9] x [9] (dot)");
    // A narrowed view (row stride 20 > row length 8), read in place with ld = 20, and a column
    // slice with stride 2, which neither GEMM reads in place (copied first).
    const Tensor wide = Tensor::randn({6, 20}, dtype, &gen);
    check_matmul(wide.narrow(1, 3, 8), Tensor::randn({8, 5}, dtype, &gen),
                 "narrowed [6, 8] x [8, 5]");
    check_matmul(Tensor::randn({5, 6}, dtype, &gen), wide.narrow(1, 2, 7),
                 "[5, 6] x narrowed [6, 7]");
    check_matmul(wide.slice(1, 0, 20, 2), Tensor::randn({10, 3}, dtype, &gen),
                 "strided columns [6, 10] x [10, 3]");
    // One row broadcast to five (row stride 0): cuBLAS cannot read overlapping rows, so it is
    // made contiguous first.
    const Tensor row = Tensor::randn({1, 7}, dtype, &gen).expand({5, 7});
    check_matmul(row, Tensor::randn({7, 3}, dtype, &gen), "expanded rows [5, 7] x [7, 3]");
  }
}

GPU_TEST_CASE("cuda matmul: batch broadcasting, merged and permuted batches, bmm, 70000 entries") {
  Generator gen(22);
  for (DType dtype : {DType::Float64, DType::Float32}) {
    // Batch (2, 5) with strides a (12, 0), b (0, 8): two strided-batched calls of 5.
    check_matmul(Tensor::randn({2, 1, 3, 4}, dtype, &gen), Tensor::randn({5, 4, 2}, dtype, &gen),
                 "[2, 1, 3, 4] x [5, 4, 2]");
    // A weight shared by the whole batch: batch stride 0 on b.
    check_matmul(Tensor::randn({4, 3, 6}, dtype, &gen), Tensor::randn({6, 2}, dtype, &gen),
                 "[4, 3, 6] x [6, 2] (shared weight)");
    // Two contiguous batch dims merge into one batch of 12.
    check_matmul(Tensor::randn({3, 4, 5, 6}, dtype, &gen), Tensor::randn({3, 4, 6, 2}, dtype, &gen),
                 "[3, 4, 5, 6] x [3, 4, 6, 2]");
    // Batch dims permuted (not mergeable) and batched transposed matrices.
    check_matmul(Tensor::randn({4, 3, 5, 6}, dtype, &gen).transpose(0, 1),
                 Tensor::randn({3, 4, 2, 6}, dtype, &gen).transpose(-1, -2),
                 "permuted batch [3, 4, 5, 6] x transposed [3, 4, 6, 2]");
    check_product("bmm", Tensor::randn({3, 7, 5}, dtype, &gen),
                  Tensor::randn({3, 4, 5}, dtype, &gen).transpose(1, 2),
                  "[3, 7, 5] x transposed [3, 5, 4]");
    // More entries than a CUDA grid's y or z dimension holds (65535).
    check_product("bmm", Tensor::randn({70000, 2, 3}, dtype, &gen),
                  Tensor::randn({70000, 3, 2}, dtype, &gen), "[70000, 2, 3] x [70000, 3, 2]");
  }
}

GPU_TEST_CASE("cuda matmul: K = 0 gives zeros, empty outputs, int64 refused") {
  Generator gen(23);
  for (DType dtype : {DType::Float64, DType::Float32}) {
    // cuBLAS is never called with k = 0; the output (uninitialised memory) is zeroed.
    const Tensor zeros_2d = matmul(Tensor::randn({3, 0}, dtype, &gen).to(kGpu),
                                   Tensor::randn({0, 4}, dtype, &gen).to(kGpu));
    CHECK(zeros_2d.shape() == Shape{3, 4});
    test::check_values(zeros_2d.to(Device::cpu()), std::vector<double>(12, 0), 0);
    const Tensor zeros_3d = bmm(Tensor::randn({2, 3, 0}, dtype, &gen).to(kGpu),
                                Tensor::randn({2, 0, 4}, dtype, &gen).to(kGpu));
    CHECK(zeros_3d.shape() == Shape{2, 3, 4});
    test::check_values(zeros_3d.to(Device::cpu()), std::vector<double>(24, 0), 0);
    const Tensor no_rows = matmul(Tensor::randn({0, 5}, dtype, &gen).to(kGpu),
                                  Tensor::randn({5, 3}, dtype, &gen).to(kGpu));
    CHECK(no_rows.shape() == Shape{0, 3});
    const Tensor no_batch = bmm(Tensor::randn({0, 2, 5}, dtype, &gen).to(kGpu),
                                Tensor::randn({0, 5, 3}, dtype, &gen).to(kGpu));
    CHECK(no_batch.shape() == Shape{0, 2, 3});
  }
  CHECK_THROWS_AS(
      matmul(Tensor::ones({2, 2}, DType::Int64, kGpu), Tensor::ones({2, 2}, DType::Int64, kGpu)),
      std::invalid_argument);
}

#ifdef SSM_CUDA
GPU_TEST_CASE("cuda::gemm: accumulate, K = 0 into strided outputs, overlapping rows refused") {
  Generator gen(24);
  const DType f64 = DType::Float64;
  // C += A B on a C that holds random values.
  const Tensor a = Tensor::randn({5, 3}, f64, &gen), b = Tensor::randn({3, 4}, f64, &gen);
  const Tensor c_before = Tensor::randn({5, 4}, f64, &gen);
  const Tensor ga = a.to(kGpu), gb = b.to(kGpu), gc = c_before.to(kGpu);
  cuda::gemm<double>(0, 5, 4, 3, ga.data<double>(), 3, false, gb.data<double>(), 4, false,
                     gc.data<double>(), 4, true);
  test::check_parity("cuda::gemm", "C += [5, 3] x [3, 4]", gc, add(c_before, matmul(a, b)),
                     test::kF64Atol, test::kF64Rtol);
  // K = 0 accumulating leaves C as it is, bit for bit.
  const Tensor c_after = gc.to(Device::cpu());
  cuda::gemm<double>(0, 5, 4, 0, nullptr, 1, false, nullptr, 4, false, gc.data<double>(), 4, true);
  test::check_values(gc.to(Device::cpu()), c_after.to_doubles(), 0);

  // K = 0 into 3 x 4 matrices with ldc = 6 inside a buffer of sevens: batch entries 18 apart
  // (one 2-D memset) and 20 apart (one per entry). Only the 3 x 4 blocks become 0.
  for (int64_t stride_c : {18, 20}) {
    const Tensor buffer = Tensor::full({2 * stride_c}, 7, f64, kGpu);
    cuda::gemm_strided_batched<double>(0, 2, 3, 4, 0, nullptr, 1, 0, false, nullptr, 4, 0, false,
                                       buffer.data<double>(), 6, stride_c, false);
    std::vector<double> expected(2 * stride_c, 7);
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t r = 0; r < 3; ++r)
        for (int64_t c = 0; c < 4; ++c) expected[i * stride_c + r * 6 + c] = 0;
    INFO("stride_c " << stride_c);
    test::check_values(buffer.to(Device::cpu()), expected, 0);
  }
  // lda = 0 with two rows of A (a stride-0 broadcast row) is refused before cuBLAS sees it.
  CHECK_THROWS_AS(cuda::gemm<double>(0, 2, 4, 3, ga.data<double>(), 0, false, gb.data<double>(), 4,
                                     false, gc.data<double>(), 4, false),
                  std::invalid_argument);
}

GPU_TEST_CASE("cuda matmul: TF32 mode is opt-in, about 1e-3 accurate, and switches back off") {
  Generator gen(25);
  const Tensor a = Tensor::randn({512, 512}, DType::Float32, &gen);
  const Tensor b = Tensor::randn({512, 512}, DType::Float32, &gen);
  // The float32 inputs are exact in float64, so this is the exact product to ~1e-16.
  const Tensor reference = matmul(a.to(DType::Float64), b.to(DType::Float64));
  const Tensor ga = a.to(kGpu), gb = b.to(kGpu);
  auto relative_error = [&](const Tensor& out) {
    const Tensor diff = sub(out.to(Device::cpu()).to(DType::Float64), reference);
    return std::sqrt(sum(mul(diff, diff)).item() / sum(mul(reference, reference)).item());
  };
  CHECK_FALSE(cuda::tf32_enabled());
  const double before = relative_error(matmul(ga, gb));
  cuda::set_tf32(true);
  CHECK(cuda::tf32_enabled());
  const double tf32 = relative_error(matmul(ga, gb));
  cuda::set_tf32(false);
  CHECK_FALSE(cuda::tf32_enabled());
  const double after = relative_error(matmul(ga, gb));
  MESSAGE("relative L2 error vs float64 at 512^3: float32 " << before << ", tf32 " << tf32
                                                            << ", float32 again " << after);
  // Full float32: a sum of K products with one rounding each, ~u K / sqrt(6) absolute against
  // |c| ~ sqrt(K), i.e. ~5e-7 relative at K = 512 for sequential sums (blocked ones less).
  CHECK(before < 2e-6);
  CHECK(after < 2e-6);
  // TF32 rounds each input to 10 mantissa bits (u = 2^-11 when rounding to nearest, 2^-10 when
  // truncating): ~4e-4 to 8e-4 relative. Well above the float32 error, which shows the mode
  // took effect.
  CHECK(tf32 < 3e-3);
  CHECK(tf32 > 1e-5);
}
#endif
