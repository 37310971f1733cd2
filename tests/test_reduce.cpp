// Tests of the raw reductions (tensor/ops_reduce.cpp) against a naive loop over every index,
// for every subset of dims of a 4-d tensor, contiguous and permuted, with and without keepdim.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "tensor/ops.h"
#include "tensor/random.h"
#include "tests/helpers.h"

using namespace ssm;

namespace {

// The reduction of x over `dims` by visiting every element: the reference the loops must match.
// kind: 0 sum, 1 max, 2 min.
std::vector<double> naive_reduce(const Tensor& x, const std::vector<bool>& reduced, int kind) {
  Shape out_shape;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (!reduced[d]) out_shape.push_back(x.size(d));
  std::vector<double> out(numel_of(out_shape), kind == 0 ? 0 : (kind == 1 ? -INFINITY : INFINITY));
  std::vector<int64_t> index(x.dim(), 0);
  for (int64_t flat = 0; flat < x.numel(); ++flat) {
    int64_t rest = flat, out_flat = 0;
    for (int64_t d = x.dim() - 1; d >= 0; --d) {
      index[d] = rest % x.size(d);
      rest /= x.size(d);
    }
    int64_t stride = 1;
    for (int64_t d = x.dim() - 1; d >= 0; --d)
      if (!reduced[d]) {
        out_flat += index[d] * stride;
        stride *= x.size(d);
      }
    const double v = x.at(index);
    double& o = out[out_flat];
    o = kind == 0 ? o + v : (kind == 1 ? std::max(o, v) : std::min(o, v));
  }
  return out;
}

} // namespace

TEST_CASE("reductions match a naive loop for every subset of dims") {
  Generator gen(3);
  const Tensor base = Tensor::randn({3, 4, 2, 5}, DType::Float64, &gen);
  // A permuted (non-contiguous) input exercises the packing path.
  const Tensor permuted = base.permute({2, 0, 3, 1});
  for (const Tensor& x : {base, permuted}) {
    for (int mask = 1; mask < 16; ++mask) {
      std::vector<int64_t> dims;
      std::vector<bool> reduced(4, false);
      for (int64_t d = 0; d < 4; ++d)
        if (mask & (1 << d)) {
          dims.push_back(d);
          reduced[d] = true;
        }
      CAPTURE(mask);
      CAPTURE(x.is_contiguous());
      test::check_values(sum(x, dims), naive_reduce(x, reduced, 0), 1e-12);
      test::check_values(max(x, dims), naive_reduce(x, reduced, 1), 0);
      test::check_values(min(x, dims), naive_reduce(x, reduced, 2), 0);
      Shape kept = x.shape();
      for (int64_t d : dims) kept[d] = 1;
      CHECK(sum(x, dims, true).shape() == kept);
      std::vector<double> means = naive_reduce(x, reduced, 0);
      const double count = static_cast<double>(x.numel()) / static_cast<double>(means.size());
      for (double& m : means) m /= count;
      test::check_values(mean(x, dims), means, 1e-12);
    }
  }
}

TEST_CASE("reductions: all dims, negative dims, 0-d, int64, float32 accumulation") {
  const Tensor x = Tensor::from_values({1, 2, 3, 4, 5, 6}, {2, 3}, DType::Float64);
  CHECK(sum(x).item() == 21);
  CHECK(sum(x).dim() == 0);
  CHECK(sum(x, {}, true).shape() == Shape{1, 1});
  test::check_values(sum(x, {-1}), {6, 15}, 0);
  test::check_values(mean(x, {0}), {2.5, 3.5, 4.5}, 0);
  CHECK(sum(Tensor::scalar(4.0)).item() == 4);
  const Tensor ints = Tensor::arange(0, 10).reshape({2, 5});
  CHECK(sum(ints).dtype() == DType::Int64);
  test::check_values(sum(ints, {1}), {10, 35}, 0);
  test::check_values(max(ints, {0}), {5, 6, 7, 8, 9}, 0);
  CHECK_THROWS_WITH_AS(mean(ints), doctest::Contains("mean"), std::invalid_argument);
  // 100000 copies of 0.1f: a float32 accumulator drifts visibly; the double one does not.
  const Tensor tenths = Tensor::full({100000}, 0.1, DType::Float32);
  CHECK(sum(tenths).item() == doctest::Approx(10000.0).epsilon(1e-6));
  CHECK_THROWS_WITH_AS(sum(x, {0, 0}), doctest::Contains("listed twice"), std::invalid_argument);
  CHECK_THROWS_AS(sum(x, {2}), std::out_of_range);
}

TEST_CASE("reductions: empty tensors and NaN") {
  const Tensor empty = Tensor::zeros({0, 3}, DType::Float64);
  test::check_values(sum(empty, {0}), {0, 0, 0}, 0);
  CHECK_THROWS_WITH_AS(max(empty, {0}), doctest::Contains("empty dim"), std::invalid_argument);
  CHECK(max(empty, {1}).shape() == Shape{0});
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Tensor with_nan = Tensor::from_values({1, nan, 3}, {3}, DType::Float64);
  CHECK(std::isnan(max(with_nan).item()));
  CHECK(std::isnan(min(with_nan).item()));
  CHECK(argmax(with_nan, 0).item() == 1);
}

TEST_CASE("argmax: first maximum along a dim, keepdim, leading and trailing dims") {
  const Tensor x = Tensor::from_values({1, 5, 5, 0, 7, 2, 7, 1}, {2, 4}, DType::Float32);
  test::check_values(argmax(x, 1), {1, 0}, 0);
  test::check_values(argmax(x, 0), {1, 0, 1, 1}, 0);
  CHECK(argmax(x, -1, true).shape() == Shape{2, 1});
  CHECK(argmax(x, 0).dtype() == DType::Int64);
  test::check_values(argmax(x.transpose(0, 1), 0), {1, 0}, 0);
  CHECK_THROWS_AS(argmax(Tensor::zeros({2, 0}), 1), std::invalid_argument);
}

TEST_CASE("sum_to_shape undoes broadcasting") {
  Generator gen(4);
  const Tensor g = Tensor::randn({2, 3, 4}, DType::Float64, &gen);
  test::check_values(sum_to_shape(g, {4}), sum(g, {0, 1}).to_doubles(), 1e-12);
  test::check_values(sum_to_shape(g, {3, 1}), sum(g, {0, 2}).to_doubles(), 1e-12);
  CHECK(sum_to_shape(g, {3, 1}).shape() == Shape{3, 1});
  CHECK(sum_to_shape(g, {1, 1, 1}).shape() == Shape{1, 1, 1});
  CHECK(sum_to_shape(g, {2, 3, 4}).raw_data() == g.raw_data());
  CHECK_THROWS_AS(sum_to_shape(g, {5}), std::invalid_argument);
  CHECK_THROWS_AS(sum_to_shape(g, {1, 2, 3, 4, 5}), std::invalid_argument);
}
