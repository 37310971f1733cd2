// Tests of the core Tensor (tensor/tensor.h): creation, Philox random fills, views and the
// storage they share, copies and conversions, element access, printing and devices; then the
// elementwise ops (tensor/ops_elementwise.cpp) against std:: math, with broadcasting, views
// and every error path.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <limits>
#include <sstream>
#include <string>

#include "tensor/ops.h"
#include "tensor/random.h"
#include "tests/helpers.h"

using namespace ssm;
using test::check_error;
using test::check_values;
using test::iota;

namespace {

std::string printed(const Tensor& t) {
  std::ostringstream os;
  os << t;
  return os.str();
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

// ---- creation ------------------------------------------------------------------------------

TEST_CASE("tensor: zeros, ones, full and scalar have the asked shape, dtype and values") {
  Tensor z = Tensor::zeros({2, 3});
  CHECK(z.shape() == Shape{2, 3});
  CHECK(z.dtype() == DType::Float32);
  CHECK(z.numel() == 6);
  CHECK(z.dim() == 2);
  CHECK(z.is_contiguous());
  CHECK(z.strides() == Shape{3, 1});
  check_values(z, std::vector<double>(6, 0));
  check_values(Tensor::ones({4}, DType::Float64), {1, 1, 1, 1});
  Tensor f = Tensor::full({1, 2}, 7.9, DType::Int64); // converted like a C++ cast: 7
  CHECK(f.to_vector<int64_t>() == std::vector<int64_t>{7, 7});
  Tensor s = Tensor::scalar(-2.5, DType::Float64);
  CHECK(s.dim() == 0);
  CHECK(s.numel() == 1);
  CHECK(s.item() == -2.5);
  CHECK(Tensor::zeros({0, 3}).numel() == 0);
  check_error<std::invalid_argument>([] { Tensor::zeros({2, -1}); }, {"negative size", "[2, -1]"});
}

TEST_CASE("tensor: arange with integer, fractional and negative steps") {
  Tensor a = Tensor::arange(0, 5);
  CHECK(a.dtype() == DType::Int64);
  CHECK(a.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3, 4});
  Tensor f = Tensor::arange(1, 2, 0.25, DType::Float32);
  CHECK(f.dtype() == DType::Float32);
  check_values(f, {1, 1.25, 1.5, 1.75}, 0);
  check_values(Tensor::arange(5, 0, -2), {5, 3, 1}, 0);
  check_values(Tensor::arange(0, -1, -0.5, DType::Float64), {0, -0.5}, 0);
  check_values(Tensor::arange(0, 10, 3), {0, 3, 6, 9}, 0); // end excluded, last step partial
  CHECK(Tensor::arange(0, 5, -1).numel() == 0);            // steps away from the end
  CHECK(Tensor::arange(2, 2).numel() == 0);
  check_error<std::invalid_argument>([] { Tensor::arange(0, 5, 0); }, {"arange", "step"});
}

TEST_CASE("tensor: from_vector follows the element type; from_values converts") {
  Tensor fl = Tensor::from_vector(std::vector<float>{1.5f, 2.5f}, {2});
  CHECK(fl.dtype() == DType::Float32);
  Tensor in = Tensor::from_vector(std::vector<int64_t>{4, 5, 6, 7}, {2, 2});
  CHECK(in.dtype() == DType::Int64);
  CHECK(in.at({1, 0}) == 6);
  Tensor db = Tensor::from_values({1, 2, 3}, {3, 1}, DType::Float64);
  CHECK(db.dtype() == DType::Float64);
  CHECK(db.shape() == Shape{3, 1});
  check_values(db, {1, 2, 3}, 0);
  check_error<std::invalid_argument>(
      [] {
        Tensor::from_vector(std::vector<double>{1, 2, 3}, {2, 2});
      },
      {"from_vector", "3 values", "[2, 2]"});
  check_error<std::invalid_argument>(
      [] {
        Tensor::from_values({1, 2, 3, 4, 5}, {2, 2});
      },
      {"5 values", "[2, 2]"});
}

// ---- random --------------------------------------------------------------------------------

TEST_CASE("random: Philox4x32-10 matches the Random123 known-answer vector") {
  // Random123's kat_vectors: philox4x32 10 rounds, counter {0, 0, 0, 0}, key {0, 0} ->
  // {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}. philox4x32(seed, counter) uses
  // key = (seed lo, seed hi) and counter = (counter lo, counter hi, 0, 0).
  const std::array<uint32_t, 4> words = philox4x32(0, 0);
  CHECK(words[0] == 0x6627e8d5u);
  CHECK(words[1] == 0xe169c58du);
  CHECK(words[2] == 0xbc57ac4cu);
  CHECK(words[3] == 0x9b00dbd8u);
  // Both halves of the key and of the counter change the output.
  CHECK(philox4x32(1, 0) != words);
  CHECK(philox4x32(uint64_t(1) << 32, 0) != words);
  CHECK(philox4x32(0, 1) != words);
  CHECK(philox4x32(0, uint64_t(1) << 32) != words);
}

TEST_CASE("random: equal seeds give equal sequences, different seeds differ") {
  Generator g1(42), g2(42), g3(43);
  for (int draw = 0; draw < 3; ++draw) {
    INFO("draw " << draw);
    const Tensor a = Tensor::rand({64}, DType::Float32, &g1);
    const Tensor b = Tensor::rand({64}, DType::Float32, &g2);
    const Tensor c = Tensor::rand({64}, DType::Float32, &g3);
    CHECK(a.to_doubles() == b.to_doubles());
    CHECK(a.to_doubles() != c.to_doubles());
  }
  // Each fill advances the generator by its element count, so later draws are new numbers.
  CHECK(g1.offset() == 3 * 64);
  Generator h(42);
  const Tensor first = Tensor::randn({8}, DType::Float64, &h);
  const Tensor second = Tensor::randn({8}, DType::Float64, &h);
  CHECK(first.to_doubles() != second.to_doubles());
  h.manual_seed(42);
  CHECK(Tensor::randn({8}, DType::Float64, &h).to_doubles() == first.to_doubles());
  // The global generator is reseeded by manual_seed().
  manual_seed(9);
  const std::vector<double> global = Tensor::rand({16}, DType::Float64).to_doubles();
  manual_seed(9);
  CHECK(Tensor::rand({16}, DType::Float64).to_doubles() == global);
}

TEST_CASE("random: rand and uniform stay in their half-open interval") {
  Generator gen(1);
  for (DType dtype : {DType::Float32, DType::Float64}) {
    INFO(dtype_name(dtype));
    const std::vector<double> u = Tensor::rand({100000}, dtype, &gen).to_doubles();
    double lo = 1, hi = 0, total = 0;
    for (double v : u) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
      total += v;
    }
    CHECK(lo >= 0);
    CHECK(hi < 1);
    // Mean of 1e5 uniforms: standard error sqrt(1/12 / 1e5) = 9.1e-4; 0.005 is 5.5 sigma.
    CHECK(std::fabs(total / u.size() - 0.5) < 0.005);
    const std::vector<double> w = Tensor::uniform({1000}, -3, -2, dtype, &gen).to_doubles();
    CHECK(*std::min_element(w.begin(), w.end()) >= -3);
    CHECK(*std::max_element(w.begin(), w.end()) < -2);
  }
  check_error<std::invalid_argument>([] { Tensor::rand({2}, DType::Int64); }, {"uniform", "int64"});
}

TEST_CASE("random: randn over 100k samples has mean 0, std 1 and the normal's 1-sigma mass") {
  Generator gen(2024);
  const std::vector<double> z = Tensor::randn({100000}, DType::Float64, &gen).to_doubles();
  const double n = static_cast<double>(z.size());
  double total = 0, total_sq = 0, inside = 0;
  for (double v : z) {
    total += v;
    total_sq += v * v;
    inside += std::fabs(v) < 1;
  }
  const double mean = total / n;
  const double std_dev = std::sqrt(total_sq / n - mean * mean);
  // Standard errors for n = 1e5 normal samples: mean 1/sqrt(n) = 3.2e-3; std
  // 1/sqrt(2n) = 2.2e-3; fraction within one sigma sqrt(p(1-p)/n) = 1.5e-3 with
  // p = erf(1/sqrt(2)) = 0.6827. Each bound below is about 5 standard errors, so any correct
  // generator passes for practically every seed, while a wrong transform (uniform, a missing
  // sqrt(-2 log u), a doubled angle) misses by far more.
  CHECK(std::fabs(mean) < 0.016);
  CHECK(std::fabs(std_dev - 1) < 0.011);
  CHECK(std::fabs(inside / n - std::erf(1 / std::sqrt(2.0))) < 0.0075);
  const std::vector<double> z32 = Tensor::randn({1000}, DType::Float32, &gen).to_doubles();
  for (double v : z32) CHECK(std::isfinite(v));
  check_error<std::invalid_argument>([] { Tensor::randn({2}, DType::Int64); }, {"randn", "int64"});
}

TEST_CASE("random: randint covers [low, high) and nothing else") {
  Generator gen(5);
  const Tensor r = Tensor::randint(-3, 4, {7000}, DType::Int64, &gen);
  CHECK(r.dtype() == DType::Int64);
  std::vector<int> counts(7, 0);
  for (int64_t v : r.to_vector<int64_t>()) {
    REQUIRE(v >= -3);
    REQUIRE(v < 4);
    ++counts[v + 3];
  }
  // Each of the 7 values expects 1000 draws, standard deviation sqrt(7000 * 1/7 * 6/7) = 29.
  for (int c : counts) CHECK(std::abs(c - 1000) < 150);
  const Tensor one_value = Tensor::randint(5, 6, {10}, DType::Float32, &gen);
  check_values(one_value, std::vector<double>(10, 5), 0);
  check_error<std::invalid_argument>([] { Tensor::randint(3, 3, {2}); }, {"randint", "low < high"});
}

// ---- views ---------------------------------------------------------------------------------

TEST_CASE("views: reshape with -1, view on a non-contiguous tensor") {
  const Tensor x = iota({2, 3, 4});
  Tensor r = x.reshape({4, -1});
  CHECK(r.shape() == Shape{4, 6});
  CHECK((r.storage() == x.storage())); // contiguous: a view, no copy
  CHECK(x.reshape({-1}).shape() == Shape{24});
  CHECK(x.view({2, -1, 2}).shape() == Shape{2, 6, 2});
  check_error<std::invalid_argument>([&] { x.reshape({-1, -1}); }, {"reshape", "-1"});
  check_error<std::invalid_argument>([&] { x.reshape({5, -1}); }, {"reshape", "[5, -1]"});
  check_error<std::invalid_argument>([&] { x.view({7}); }, {"view", "[2, 3, 4]", "[7]"});
  const Tensor t = iota({2, 3}).transpose(0, 1); // [[0 3] [1 4] [2 5]]
  check_error<std::invalid_argument>([&] { t.view({6}); }, {"view", "not contiguous"});
  Tensor flat = t.reshape({6}); // a copy, in the transposed order
  CHECK(!(flat.storage() == t.storage()));
  check_values(flat, {0, 3, 1, 4, 2, 5}, 0);
}

TEST_CASE("views: permute and transpose move strides, not data") {
  const Tensor x = iota({2, 3, 4});
  CHECK(x.strides() == Shape{12, 4, 1});
  Tensor p = x.permute({2, 0, 1});
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(p.strides() == Shape{1, 12, 4});
  CHECK(!p.is_contiguous());
  CHECK(p.at({3, 1, 2}) == x.at({1, 2, 3}));
  CHECK(p.at({1, 0, 2}) == 9); // x[0][2][1]
  Tensor t = x.transpose(-1, 0);
  CHECK(t.shape() == Shape{4, 3, 2});
  CHECK(t.strides() == Shape{1, 4, 12});
  CHECK(t.at({2, 1, 1}) == x.at({1, 1, 2}));
  CHECK(x.permute({-3, -2, -1}).strides() == x.strides());
  check_error<std::invalid_argument>([&] { x.permute({0, 0, 1}); }, {"permute", "repeated"});
  check_error<std::invalid_argument>([&] { x.permute({0, 1}); }, {"permute", "[2, 3, 4]"});
  check_error<std::out_of_range>([&] { x.transpose(0, 3); }, {"transpose", "dim 3"});
}

TEST_CASE("views: narrow, slice with steps and negatives, select") {
  const Tensor x = iota({3, 5}); // rows [0..4], [5..9], [10..14]
  Tensor n = x.narrow(1, 1, 3);
  CHECK(n.shape() == Shape{3, 3});
  CHECK(n.offset() == 1);
  check_values(n, {1, 2, 3, 6, 7, 8, 11, 12, 13}, 0);
  check_values(x.narrow(0, -1, 1), {10, 11, 12, 13, 14}, 0);
  check_error<std::out_of_range>([&] { x.narrow(1, 3, 3); }, {"narrow", "dim 1", "size 5"});

  Tensor s = x.slice(1, 0, 5, 2);
  CHECK(s.shape() == Shape{3, 3});
  CHECK(s.strides() == Shape{5, 2});
  check_values(s, {0, 2, 4, 5, 7, 9, 10, 12, 14}, 0);
  check_values(x.slice(1, -3, -1), {2, 3, 7, 8, 12, 13}, 0);    // negatives wrap
  check_values(x.slice(0, 1, 100, 3), {5, 6, 7, 8, 9}, 0);      // end clamped to the size
  check_values(x.slice(-1, 1, 5, 3).select(0, 2), {11, 14}, 0); // elements 1 and 4
  CHECK(x.slice(1, 4, 2).size(1) == 0);                         // end before start: empty
  check_error<std::invalid_argument>([&] { x.slice(0, 0, 3, 0); }, {"slice", "step"});

  Tensor row = x.select(0, 1);
  CHECK(row.shape() == Shape{5});
  check_values(row, {5, 6, 7, 8, 9}, 0);
  check_values(x.select(1, -1), {4, 9, 14}, 0);
  check_error<std::out_of_range>([&] { x.select(0, 3); }, {"select", "index 3", "size 3"});
  check_error<std::out_of_range>([&] { x.select(1, -6); }, {"select", "size 5"});
}

TEST_CASE("views: squeeze and unsqueeze") {
  const Tensor x = iota({1, 3, 1});
  CHECK(x.squeeze().shape() == Shape{3});
  CHECK(x.squeeze(0).shape() == Shape{3, 1});
  CHECK(x.squeeze(-1).shape() == Shape{1, 3});
  CHECK(x.squeeze(1).shape() == Shape{1, 3, 1}); // size 3: unchanged
  const Tensor v = iota({3});
  CHECK(v.unsqueeze(0).shape() == Shape{1, 3});
  CHECK(v.unsqueeze(-1).shape() == Shape{3, 1});
  CHECK(v.unsqueeze(1).shape() == Shape{3, 1});
  check_values(v.unsqueeze(0), {0, 1, 2}, 0);
  CHECK(Tensor::scalar(4).unsqueeze(0).shape() == Shape{1});
  CHECK(Tensor::ones({1, 1}).squeeze().dim() == 0);
  check_error<std::out_of_range>([&] { v.unsqueeze(2); }, {"unsqueeze", "dim 2"});
}

TEST_CASE("views: expand repeats size-1 dims with stride 0") {
  const Tensor col = Tensor::from_values({1, 2, 3}, {3, 1});
  Tensor e = col.expand({3, 4});
  CHECK(e.shape() == Shape{3, 4});
  CHECK(e.strides() == Shape{1, 0});
  CHECK((e.storage() == col.storage()));
  check_values(e, {1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3}, 0);
  Tensor lead = col.expand({2, -1, 2});
  CHECK(lead.shape() == Shape{2, 3, 2});
  CHECK(lead.strides() == Shape{0, 1, 0});
  check_error<std::invalid_argument>(
      [&] {
        iota({3, 2}).expand({3, 4});
      },
      {"expand", "[3, 2]", "[3, 4]", "not 1"});
  check_error<std::invalid_argument>([&] { col.expand({4}); }, {"expand", "fewer dims"});
  check_error<std::invalid_argument>([&] { col.expand({-1, 3, 1}); }, {"expand", "-1"});
  check_error<std::invalid_argument>([&] { col.expand({3, -2}); }, {"expand", "[3, -2]"});
}

TEST_CASE("views: writing through a view writes the base") {
  Tensor x = Tensor::zeros({3, 4});
  x.select(0, 1).fill_(9);
  x.transpose(0, 1).set({3, 2}, 5);              // x[2][3]
  x.slice(1, 0, 4, 2).narrow(0, 0, 1).fill_(-1); // x[0][0], x[0][2]
  check_values(x, {-1, 0, -1, 0, 9, 9, 9, 9, 0, 0, 0, 5}, 0);
}

TEST_CASE("copies: contiguous of a transposed view, clone independence") {
  const Tensor x = iota({2, 3});
  const Tensor t = x.transpose(0, 1);
  CHECK(!t.is_contiguous());
  Tensor c = t.contiguous();
  CHECK(c.is_contiguous());
  CHECK(c.strides() == Shape{2, 1});
  CHECK(!(c.storage() == x.storage()));
  check_values(c, {0, 3, 1, 4, 2, 5}, 0);
  CHECK((x.contiguous().storage() == x.storage())); // already contiguous: the same tensor

  Tensor base = iota({2, 2});
  Tensor copy = base.clone();
  copy.set({0, 0}, 100);
  CHECK(base.at({0, 0}) == 0);
  base.set({1, 1}, -7);
  CHECK(copy.at({1, 1}) == 3);
  CHECK(t.clone().is_contiguous());
}

TEST_CASE("copies: to(dtype) converts like a C++ cast (float -> int truncates)") {
  const Tensor f = Tensor::from_values({-2.7, -0.5, 0.5, 2.7, 3.0}, {5}, DType::Float64);
  Tensor i = f.to(DType::Int64);
  CHECK(i.dtype() == DType::Int64);
  CHECK(i.to_vector<int64_t>() == std::vector<int64_t>{-2, 0, 0, 2, 3});
  Tensor back = i.to(DType::Float32);
  CHECK(back.dtype() == DType::Float32);
  check_values(back, {-2, 0, 0, 2, 3}, 0);
  const Tensor third = Tensor::from_values({1.0 / 3}, {1}, DType::Float64);
  CHECK(third.to(DType::Float32).item() == static_cast<double>(1.0f / 3));
  // A view converts element by element in logical order.
  check_values(iota({2, 2}, DType::Int64).transpose(0, 1).to(DType::Float64), {0, 2, 1, 3}, 0);
  CHECK(f.to(DType::Float64).dtype() == DType::Float64);
}

TEST_CASE("copies: copy_ broadcasts, converts and writes through views") {
  Tensor dst = Tensor::zeros({3, 4});
  dst.copy_(Tensor::from_values({1, 2, 3, 4}, {4}));
  check_values(dst, {1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4}, 0);
  dst.copy_(Tensor::from_values({7, 8, 9}, {3, 1}, DType::Int64));
  check_values(dst, {7, 7, 7, 7, 8, 8, 8, 8, 9, 9, 9, 9}, 0);
  Tensor base = Tensor::zeros({2, 3});
  Tensor t = base.transpose(0, 1);
  t.copy_(iota({3, 2})); // t[i][j] = 2i + j, so base[j][i] = 2i + j
  check_values(base, {0, 2, 4, 1, 3, 5}, 0);
  check_error<std::invalid_argument>(
      [&] {
        dst.copy_(Tensor::zeros({2, 4}));
      },
      {"copy_", "[2, 4]", "[3, 4]"});
}

TEST_CASE("access: item, at and set check their indices") {
  Tensor x = iota({2, 3});
  CHECK(x.at({1, 2}) == 5);
  x.set({0, 1}, 42);
  CHECK(x.at({0, 1}) == 42);
  CHECK(x.size(-1) == 3);
  CHECK(Tensor::from_values({3.5}, {1, 1}).item() == 3.5);
  CHECK(x.select(1, 2).narrow(0, 1, 1).item() == 5);
  check_error<std::invalid_argument>([&] { x.item(); }, {"item", "[2, 3]"});
  check_error<std::invalid_argument>([&] { x.at({1}); }, {"at", "1 indices", "[2, 3]"});
  check_error<std::out_of_range>([&] { x.at({0, 3}); }, {"at", "index 3", "dim 1", "size 3"});
  check_error<std::out_of_range>([&] { x.at({-1, 0}); }, {"at", "index -1", "dim 0"});
  check_error<std::out_of_range>([&] { x.set({2, 0}, 1); }, {"set", "index 2", "size 2"});
  check_error<std::out_of_range>([&] { x.size(2); }, {"size", "dim 2"});
  check_error<std::invalid_argument>([&] { x.data<double>(); }, {"float64", "float32"});
  check_error<std::logic_error>([] { (void)Tensor().clone(); }, {"clone", "undefined"});
}

TEST_CASE("printing: operator<< shows shape, dtype and values, eliding long dims") {
  const std::string small = printed(iota({2, 3}));
  CHECK(contains(small, "Tensor[2, 3] float32 cpu"));
  CHECK(contains(small, "[[0, 1, 2],\n [3, 4, 5]]"));
  const std::string long_row = printed(Tensor::arange(0, 10));
  CHECK(contains(long_row, "Tensor[10] int64 cpu"));
  CHECK(contains(long_row, "[0, 1, 2, ..., 7, 8, 9]"));
  CHECK(!contains(long_row, "5"));
  const std::string tall = printed(iota({8, 2}, DType::Int64));
  CHECK(contains(tall, " ...,\n"));
  CHECK(!contains(tall, "[6, 7]"));
  CHECK(contains(tall, "[14, 15]]"));
  CHECK(contains(printed(Tensor::from_values({1.0 / 3}, {1}, DType::Float64)), "0.3333333333"));
  CHECK(contains(printed(Tensor::scalar(1234567, DType::Int64)), "\n1234567"));
  CHECK(contains(printed(Tensor::scalar(0.5)), "Tensor[] float32 cpu\n0.5"));
  CHECK(printed(Tensor()) == "Tensor(undefined)");
  // Printing leaves the stream's own formatting as it found it.
  std::ostringstream os;
  os << Tensor::ones({1}, DType::Float64) << " " << 3.14159265358979;
  CHECK(contains(os.str(), " 3.14159"));
  CHECK(!contains(os.str(), "3.141592"));
}

TEST_CASE("devices: describe and parse_device") {
  CHECK(iota({2, 3}).describe() == "Tensor[2, 3] float32 cpu");
  CHECK(Tensor::scalar(1, DType::Int64).describe() == "Tensor[] int64 cpu");
  CHECK(Tensor().describe() == "Tensor(undefined)");
  CHECK(parse_device("cpu") == Device::cpu());
  CHECK(parse_device("cuda") == Device::cuda(0));
  CHECK(parse_device("cuda:3") == Device::cuda(3));
  CHECK(parse_device("cuda:3").str() == "cuda:3");
  for (const char* bad :
       {"gpu", "CPU", "cuda:", "cuda:x", "cuda:-1", "cuda:1a", "", "cuda:99999999999999999999"}) {
    INFO("'" << bad << "'");
    check_error<std::invalid_argument>([&] { parse_device(bad); }, {"device", "cuda:N"});
  }
}

// ---- elementwise: unary --------------------------------------------------------------------

namespace {

struct UnaryCase {
  UnaryOp op;
  double (*reference)(double);
  std::vector<double> inputs;
};

double sigmoid_ref(double x) { return 1 / (1 + std::exp(-x)); }

std::vector<UnaryCase> unary_cases() {
  const std::vector<double> any = {-3, -0.5, 0, 0.7, 2.5};
  const std::vector<double> positive = {0.1, 1, 2.5, 7};
  const std::vector<double> nonzero = {-3, -0.5, 0.7, 2.5};
  return {
      {UnaryOp::Neg, [](double x) { return -x; }, any},
      {UnaryOp::Exp, [](double x) { return std::exp(x); }, any},
      {UnaryOp::Log, [](double x) { return std::log(x); }, positive},
      {UnaryOp::Sqrt, [](double x) { return std::sqrt(x); }, positive},
      {UnaryOp::Rsqrt, [](double x) { return 1 / std::sqrt(x); }, positive},
      {UnaryOp::Abs, [](double x) { return std::fabs(x); }, any},
      {UnaryOp::Sign, [](double x) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0); }, any},
      {UnaryOp::Square, [](double x) { return x * x; }, any},
      {UnaryOp::Reciprocal, [](double x) { return 1 / x; }, nonzero},
      {UnaryOp::Sin, [](double x) { return std::sin(x); }, any},
      {UnaryOp::Cos, [](double x) { return std::cos(x); }, any},
      {UnaryOp::Tanh, [](double x) { return std::tanh(x); }, any},
      {UnaryOp::Sigmoid, sigmoid_ref, any},
      {UnaryOp::Relu, [](double x) { return x > 0 ? x : 0.0; }, any},
      {UnaryOp::Silu, [](double x) { return x * sigmoid_ref(x); }, any},
      {UnaryOp::Softplus, [](double x) { return std::log1p(std::exp(x)); }, any},
      {UnaryOp::GeluTanh,
       [](double x) {
         return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
       },
       any},
      {UnaryOp::GeluErf, [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); },
       any},
      {UnaryOp::Erf, [](double x) { return std::erf(x); }, any},
      {UnaryOp::Log1p, [](double x) { return std::log1p(x); }, {-0.5, 0, 0.7, 2.5}},
      {UnaryOp::Expm1, [](double x) { return std::expm1(x); }, any},
  };
}

} // namespace

TEST_CASE("unary: every op matches std:: math in float64 and float32") {
  const std::vector<UnaryCase> cases = unary_cases();
  CHECK(cases.size() == static_cast<size_t>(UnaryOp::Expm1) + 1); // every op has a case
  for (const UnaryCase& c : cases) {
    INFO(unary_name(c.op));
    std::vector<double> expected;
    for (double x : c.inputs) expected.push_back(c.reference(x));
    const Shape shape = {static_cast<int64_t>(c.inputs.size())};
    // float64 runs the same formula as the reference: only last-bit differences.
    check_values(unary(c.op, Tensor::from_values(c.inputs, shape, DType::Float64)), expected,
                 1e-13);
    // float32 inputs are exact (all are float-representable except 0.1, 0.7, whose rounding
    // moves the result by < 1e-7 relative); float32 math adds a few ulp (1.2e-7 each).
    Tensor y32 = unary(c.op, Tensor::from_values(c.inputs, shape, DType::Float32));
    CHECK(y32.dtype() == DType::Float32);
    check_values(y32, expected, 2e-6);
  }
}

TEST_CASE("unary: softplus switches to x above 20; gelu forms at known points") {
  const Tensor x = Tensor::from_values({19.5, 20.0, 20.5, 50, -30}, {5}, DType::Float64);
  const std::vector<double> y = softplus(x).to_doubles();
  CHECK(y[0] == std::log1p(std::exp(19.5))); // at or below 20: the formula
  CHECK(y[1] == std::log1p(std::exp(20.0)));
  CHECK(y[2] == 20.5); // above 20: exactly x (log1p(exp(20.5)) = 20.5 + 1.25e-9)
  CHECK(y[3] == 50);
  CHECK(y[4] == doctest::Approx(std::exp(-30.0)).epsilon(1e-12));
  // Values from 0.5 x (1 + erf(x / sqrt 2)) and the tanh approximation in float64.
  const Tensor g = Tensor::from_values({1, -0.5, 2}, {3}, DType::Float64);
  check_values(unary(UnaryOp::GeluErf, g),
               {0.8413447460685429, -0.15426876936299344, 1.9544997361036416}, 1e-15);
  check_values(unary(UnaryOp::GeluTanh, g),
               {0.8411919906082768, -0.15428599017485606, 1.954597694087775}, 1e-15);
  // Sigmoid and silu stay finite far out where exp() overflows.
  check_values(sigmoid(Tensor::from_values({-1000, 1000}, {2}, DType::Float64)), {0, 1}, 0);
  check_values(silu(Tensor::from_values({-1000, 1000}, {2})), {0, 1000}, 0);
}

TEST_CASE("unary: int64 works for neg, abs, sign, square and is rejected by the rest") {
  const Tensor xi = Tensor::from_values({-3, 0, 2}, {3}, DType::Int64);
  CHECK(neg(xi).to_vector<int64_t>() == std::vector<int64_t>{3, 0, -2});
  CHECK(abs(xi).to_vector<int64_t>() == std::vector<int64_t>{3, 0, 2});
  CHECK(sign(xi).to_vector<int64_t>() == std::vector<int64_t>{-1, 0, 1});
  CHECK(square(xi).dtype() == DType::Int64);
  CHECK(square(xi).to_vector<int64_t>() == std::vector<int64_t>{9, 0, 4});
  for (const UnaryCase& c : unary_cases()) {
    if (c.op == UnaryOp::Neg || c.op == UnaryOp::Abs || c.op == UnaryOp::Sign ||
        c.op == UnaryOp::Square)
      continue;
    INFO(unary_name(c.op));
    check_error<std::invalid_argument>([&] { unary(c.op, xi); },
                                       {unary_name(c.op), "float32 or float64", "int64"});
  }
}

TEST_CASE("unary: non-contiguous and broadcast inputs give contiguous results") {
  const Tensor t = iota({2, 3}).transpose(0, 1); // [[0 3] [1 4] [2 5]]
  Tensor y = square(t);
  CHECK(y.is_contiguous());
  check_values(y, {0, 9, 1, 16, 4, 25}, 0);
  check_values(neg(Tensor::from_values({2, 3}, {2, 1}).expand({2, 3})), {-2, -2, -2, -3, -3, -3},
               0);
  check_values(exp(Tensor::scalar(0)), {1}, 0);
}

// ---- elementwise: binary and the rest ------------------------------------------------------

TEST_CASE("binary: every op on a few values, comparisons return 0 or 1 in the input dtype") {
  const std::vector<double> va = {-2, 0.5, 3, 1.5}, vb = {3, 0.5, 2, 1.5};
  const Tensor a = Tensor::from_values(va, {4}, DType::Float64);
  const Tensor b = Tensor::from_values(vb, {4}, DType::Float64);
  struct Case {
    BinaryOp op;
    std::vector<double> expected;
  };
  const std::vector<Case> cases = {
      {BinaryOp::Add, {1, 1, 5, 3}},
      {BinaryOp::Sub, {-5, 0, 1, 0}},
      {BinaryOp::Mul, {-6, 0.25, 6, 2.25}},
      {BinaryOp::Div, {-2.0 / 3, 1, 1.5, 1}},
      {BinaryOp::Pow, {-8, std::sqrt(0.5), 9, std::pow(1.5, 1.5)}},
      {BinaryOp::Maximum, {3, 0.5, 3, 1.5}},
      {BinaryOp::Minimum, {-2, 0.5, 2, 1.5}},
      {BinaryOp::Eq, {0, 1, 0, 1}},
      {BinaryOp::Ne, {1, 0, 1, 0}},
      {BinaryOp::Lt, {1, 0, 0, 0}},
      {BinaryOp::Le, {1, 1, 0, 1}},
      {BinaryOp::Gt, {0, 0, 1, 0}},
      {BinaryOp::Ge, {0, 1, 1, 1}},
  };
  CHECK(cases.size() == static_cast<size_t>(BinaryOp::Ge) + 1); // every op has a case
  for (const Case& c : cases) {
    INFO(binary_name(c.op));
    Tensor y = binary(c.op, a, b);
    CHECK(y.dtype() == DType::Float64);
    check_values(y, c.expected, 1e-15);
    check_values(binary(c.op, a.to(DType::Float32), b.to(DType::Float32)), c.expected, 1e-7);
  }
  const Tensor ai = Tensor::from_values({-2, 5, 3}, {3}, DType::Int64);
  const Tensor bi = Tensor::from_values({3, 5, 2}, {3}, DType::Int64);
  CHECK(add(ai, bi).to_vector<int64_t>() == std::vector<int64_t>{1, 10, 5});
  CHECK(mul(ai, bi).to_vector<int64_t>() == std::vector<int64_t>{-6, 25, 6});
  CHECK(pow(ai, bi).to_vector<int64_t>() == std::vector<int64_t>{-8, 3125, 9});
  Tensor eqi = eq(ai, bi);
  CHECK(eqi.dtype() == DType::Int64);
  CHECK(eqi.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 0});
}

TEST_CASE("binary: broadcasting (3,1)x(1,4), (2,3)x(3), 0-d and scalar operands") {
  const Tensor col = Tensor::from_values({1, 2, 3}, {3, 1});
  const Tensor row = Tensor::from_values({10, 20, 30, 40}, {1, 4});
  Tensor s = add(col, row);
  CHECK(s.shape() == Shape{3, 4});
  check_values(s, {11, 21, 31, 41, 12, 22, 32, 42, 13, 23, 33, 43}, 0);
  check_values(sub(row, col), {9, 19, 29, 39, 8, 18, 28, 38, 7, 17, 27, 37}, 0);
  const Tensor m = iota({2, 3});
  const Tensor v = Tensor::from_values({1, 2, 3}, {3});
  Tensor p = mul(m, v);
  CHECK(p.shape() == Shape{2, 3});
  check_values(p, {0, 2, 6, 3, 8, 15}, 0);
  check_values(div(v, m.select(0, 1)), {1.0 / 3, 0.5, 0.6});
  check_values(gt(m, Tensor::scalar(2)), {0, 0, 0, 1, 1, 1}, 0);
  check_values(maximum(Tensor::scalar(2.5), m), {2.5, 2.5, 2.5, 3, 4, 5}, 0);
  check_values(add(m, 2.0), {2, 3, 4, 5, 6, 7}, 0);
  check_values(sub(m, 0.5), {-0.5, 0.5, 1.5, 2.5, 3.5, 4.5}, 0);
  check_values(mul(m, -2.0), {0, -2, -4, -6, -8, -10}, 0);
  check_values(div(m, 4.0), {0, 0.25, 0.5, 0.75, 1, 1.25}, 0);
  check_values(pow(m, 2.0), {0, 1, 4, 9, 16, 25}, 0);
  check_values(binary_scalar(BinaryOp::Le, m, 2), {1, 1, 1, 0, 0, 0}, 0);
  check_values(binary_scalar(BinaryOp::Ne, m, 4), {1, 1, 1, 1, 0, 1}, 0);
  // The scalar takes a's dtype: 2.9 becomes 2 for an int64 tensor.
  CHECK(add(iota({2}, DType::Int64), 2.9).to_vector<int64_t>() == std::vector<int64_t>{2, 3});
  // Views as operands.
  check_values(add(m.transpose(0, 1), m.transpose(0, 1)), {0, 6, 2, 8, 4, 10}, 0);
  check_values(mul(m.slice(1, 0, 3, 2), col.narrow(0, 1, 2)), {0, 4, 9, 15}, 0);
}

TEST_CASE("binary: dtype mismatches and shapes that do not broadcast name the op and shapes") {
  const Tensor f32 = Tensor::zeros({2, 3});
  const Tensor f64 = Tensor::zeros({2, 3}, DType::Float64);
  check_error<std::invalid_argument>(
      [&] { add(f32, f64); },
      {"add", "dtypes differ", "Tensor[2, 3] float32 cpu", "Tensor[2, 3] float64 cpu"});
  check_error<std::invalid_argument>([&] { binary(BinaryOp::Ge, f32, iota({3}, DType::Int64)); },
                                     {"ge", "dtypes differ", "[2, 3]", "[3]"});
  check_error<std::invalid_argument>([&] { mul(f32, Tensor::zeros({4})); },
                                     {"mul", "[2, 3]", "[4]", "broadcast"});
  check_error<std::invalid_argument>(
      [&] {
        sub(Tensor::zeros({3, 2}), Tensor::zeros({2, 4, 2}));
      },
      {"sub", "[3, 2]", "[2, 4, 2]"});
  check_error<std::invalid_argument>([&] { add(f32, Tensor()); }, {"add", "undefined"});
}

TEST_CASE("where, masked_fill and clamp") {
  const Tensor cond = Tensor::from_values({1, 0, 2}, {3}, DType::Int64); // non-zero = true
  const Tensor a = iota({2, 3});
  check_values(where(cond, a, Tensor::scalar(-1)), {0, -1, 2, 3, -1, 5}, 0);
  check_values(where(gt(a, Tensor::scalar(2)), Tensor::scalar(1), Tensor::scalar(0)),
               {0, 0, 0, 1, 1, 1}, 0);
  check_error<std::invalid_argument>([&] { where(cond, a, Tensor::scalar(1, DType::Float64)); },
                                     {"where", "dtypes differ"});
  check_error<std::invalid_argument>([&] { where(Tensor::zeros({2}), a, a); },
                                     {"where", "[2]", "[2, 3]"});

  const Tensor mask = Tensor::from_values({0, 1, 0}, {1, 3});
  check_values(masked_fill(a, mask, 9), {0, 9, 2, 3, 9, 5}, 0);
  check_values(masked_fill(a.transpose(0, 1), Tensor::from_values({1, 0}, {2}), -4),
               {-4, 3, -4, 4, -4, 5}, 0);
  check_error<std::invalid_argument>(
      [&] {
        masked_fill(a, Tensor::zeros({2, 2, 3}), 0);
      },
      {"masked_fill", "[2, 2, 3]", "[2, 3]"});

  check_values(clamp(Tensor::from_values({-3, -0.5, 0.25, 4}, {4}), -1, 1), {-1, -0.5, 0.25, 1}, 0);
  CHECK(clamp(Tensor::from_values({-5, 2, 9}, {3}, DType::Int64), 0, 4).to_vector<int64_t>() ==
        std::vector<int64_t>{0, 2, 4});
  check_error<std::invalid_argument>([&] { clamp(a, 1, -1); }, {"clamp", "lo", "hi"});
}

TEST_CASE("add_: accumulates in place with broadcasting, through strided views") {
  Tensor dst = Tensor::ones({2, 3});
  add_(dst, Tensor::from_values({1, 2, 3}, {3}));
  check_values(dst, {2, 3, 4, 2, 3, 4}, 0);
  add_(dst, dst.clone());
  check_values(dst, {4, 6, 8, 4, 6, 8}, 0);
  Tensor base = Tensor::zeros({2, 4});
  Tensor odd_cols = base.slice(1, 1, 4, 2); // (2, 2), column stride 2
  add_(odd_cols, iota({2, 2}));
  check_values(base, {0, 0, 0, 1, 0, 2, 0, 3}, 0);
  Tensor base2 = Tensor::zeros({2, 3});
  Tensor t = base2.transpose(0, 1); // (3, 2)
  add_(t, Tensor::from_values({1, 10}, {2}));
  check_values(base2, {1, 1, 1, 10, 10, 10}, 0);
  check_error<std::invalid_argument>(
      [&] {
        add_(t, Tensor::zeros({4, 3, 2}));
      },
      {"add_", "[4, 3, 2]", "[3, 2]"});
  check_error<std::invalid_argument>(
      [&] {
        add_(t, Tensor::zeros({3, 2}, DType::Int64));
      },
      {"add_", "dtypes differ"});
}

TEST_CASE("pow on int64 is exact, wraps on overflow, truncates negative exponents") {
  const Tensor base = Tensor::from_vector<int64_t>({3, -3, 2, 1, -1, 5, 0}, {7});
  const Tensor exponent = Tensor::from_vector<int64_t>({39, 3, 64, -5, -3, -2, 0}, {7});
  // 3^39 = 4052555153018976267 needs 62 bits (inexact through double); 2^64 wraps to 0.
  CHECK(pow(base, exponent).to_vector<int64_t>() ==
        std::vector<int64_t>{4052555153018976267LL, -27, 0, 1, -1, 0, 1});
}

TEST_CASE("int64 division of INT64_MIN by -1 wraps instead of trapping; huge shapes are refused") {
  const int64_t min = std::numeric_limits<int64_t>::min();
  const Tensor q =
      div(Tensor::from_vector<int64_t>({min, 7}, {2}), Tensor::from_vector<int64_t>({-1, -1}, {2}));
  CHECK(q.to_vector<int64_t>() == std::vector<int64_t>{min, -7});
  CHECK_THROWS_WITH_AS(Tensor::zeros({int64_t(1) << 62, 4}), doctest::Contains("int64"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(Tensor::zeros({int64_t(1) << 31, int64_t(1) << 31}),
                       doctest::Contains("too large"), std::invalid_argument);
}

TEST_CASE("copy_ from an overlapping view, add_ into an expanded view, int64 printing") {
  Tensor t = Tensor::from_values({1, 2, 3, 4}, {2, 2}, DType::Float64);
  t.copy_(t.transpose(0, 1));
  check_values(t, {1, 3, 2, 4}, 0);
  Tensor expanded = Tensor::zeros({1}, DType::Float64).expand({4});
  CHECK_THROWS_WITH_AS(add_(expanded, Tensor::ones({4}, DType::Float64)),
                       doctest::Contains("expanded view"), std::invalid_argument);
  std::ostringstream s;
  s << Tensor::from_vector<int64_t>({std::numeric_limits<int64_t>::max(), (int64_t(1) << 53) + 1},
                                    {2});
  CHECK(s.str().find("9223372036854775807") != std::string::npos);
  CHECK(s.str().find("9007199254740993") != std::string::npos);
}

TEST_CASE("int64 arithmetic wraps modulo 2^64 instead of overflowing") {
  const int64_t max = std::numeric_limits<int64_t>::max(),
                min = std::numeric_limits<int64_t>::min();
  const Tensor a = Tensor::from_vector<int64_t>({max, min, max}, {3});
  const Tensor one = Tensor::from_vector<int64_t>({1, 1, 2}, {3});
  CHECK(add(a, one).to_vector<int64_t>() == std::vector<int64_t>{min, min + 1, min + 1});
  CHECK(sub(a, one).to_vector<int64_t>() == std::vector<int64_t>{max - 1, max, max - 2});
  CHECK(mul(a, one).to_vector<int64_t>() == std::vector<int64_t>{max, min, -2});
  CHECK(neg(a).to_vector<int64_t>() == std::vector<int64_t>{-max, min, -max});
  CHECK(sum(Tensor::from_vector<int64_t>({max, 1}, {2})).item() == static_cast<double>(min));
}
