// test_selective_scan.cpp: the CPU selective scan against an independent formulation, its
// float64 gradient check, the backward with a last-state gradient, and bad input.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "autograd/functions.h"
#include "mamba/selective_scan.h"
#include "tensor/ops.h"
#include "tests/helpers.h"

namespace ssm {
namespace {

using test::normalized_error;
using test::rand64;

struct ScanCase {
  int64_t batch, length, d_inner, n, groups;
  bool grouped_layout; // B, C as (b, l, groups, n) rather than (b, l, n)
  bool D, z, bias, softplus;
};

std::string describe(const ScanCase& c) {
  return "b=" + std::to_string(c.batch) + " l=" + std::to_string(c.length) +
         " d=" + std::to_string(c.d_inner) + " n=" + std::to_string(c.n) +
         " groups=" + std::to_string(c.groups) + (c.D ? " D" : "") + (c.z ? " z" : "") +
         (c.bias ? " bias" : "") + (c.softplus ? " softplus" : "");
}

// Random float64 inputs in the range Mamba sees: A = -exp(.) < 0, dt of order 0.01 .. 1.
ScanInputs make_inputs(const ScanCase& c, uint64_t seed) {
  ScanInputs in;
  const Shape bld{c.batch, c.length, c.d_inner};
  const Shape bc =
      c.grouped_layout ? Shape{c.batch, c.length, c.groups, c.n} : Shape{c.batch, c.length, c.n};
  in.u = rand64(bld, seed + 1);
  in.delta = c.softplus ? rand64(bld, seed + 2, -3, 1) : rand64(bld, seed + 2, 0.01, 1);
  in.A = neg(exp(rand64({c.d_inner, c.n}, seed + 3, -1, 1.5)));
  in.B = rand64(bc, seed + 4);
  in.C = rand64(bc, seed + 5);
  if (c.D) in.D = rand64({c.d_inner}, seed + 6);
  if (c.z) in.z = rand64(bld, seed + 7, -2, 2);
  if (c.bias) in.delta_bias = rand64({c.d_inner}, seed + 8, -1, 0.5);
  return in;
}

const ScanCase kCases[] = {
    {1, 1, 1, 1, 1, false, false, false, false, false},
    {2, 7, 3, 5, 1, false, true, false, false, false},
    {2, 9, 4, 3, 1, false, true, true, true, true},
    {1, 13, 6, 4, 3, true, true, true, false, true},
    {3, 5, 6, 2, 2, true, false, true, true, false},
    {2, 6, 4, 16, 4, true, true, true, true, true},
};

TEST_CASE("selective_scan: CPU loop equals the materialised formulation (float64)") {
  for (const ScanCase& c : kCases) {
    INFO(describe(c));
    const ScanInputs in = make_inputs(c, 100);
    const ScanShape s = make_scan_shape("test", in, c.softplus);
    Tensor out = Tensor::empty(in.u.shape(), DType::Float64);
    Tensor last = Tensor::empty({c.batch, c.d_inner, c.n}, DType::Float64);
    selective_scan_fwd_cpu(in, s, out, last);
    Tensor naive_last;
    const Tensor naive = selective_scan_naive(in, c.softplus, &naive_last);
    // Same sums in a different order: a few ulps.
    CHECK(normalized_error(out, naive, 1e-13, 1e-12) <= 1);
    CHECK(normalized_error(last, naive_last, 1e-13, 1e-12) <= 1);
  }
}

TEST_CASE("selective_scan: float32 loop agrees with float64") {
  const ScanCase c{2, 50, 4, 8, 2, true, true, true, true, true};
  const ScanInputs in64 = make_inputs(c, 7);
  ScanInputs in32;
  for (auto [dst, src] : {std::pair{&in32.u, &in64.u},
                          {&in32.delta, &in64.delta},
                          {&in32.A, &in64.A},
                          {&in32.B, &in64.B},
                          {&in32.C, &in64.C},
                          {&in32.D, &in64.D},
                          {&in32.z, &in64.z},
                          {&in32.delta_bias, &in64.delta_bias}})
    *dst = src->to(DType::Float32);
  const ScanShape s = make_scan_shape("test", in64, true);
  Tensor out64 = Tensor::empty(in64.u.shape(), DType::Float64), none;
  Tensor out32 = Tensor::empty(in64.u.shape(), DType::Float32);
  selective_scan_fwd_cpu(in64, s, out64, none);
  selective_scan_fwd_cpu(in32, s, out32, none);
  // float32 rounding through 50 steps of a contracting recurrence: ~1e-6 relative.
  CHECK(normalized_error(out32, out64, 1e-5, 1e-4) <= 1);
}

TEST_CASE("gradcheck selective_scan (float64, every input)") {
  for (const ScanCase& c : kCases) {
    INFO(describe(c));
    const ScanInputs in = make_inputs(c, 200);
    std::vector<Tensor> inputs = {in.u, in.delta, in.A, in.B, in.C};
    for (const Tensor& t : {in.D, in.z, in.delta_bias})
      if (t.defined()) inputs.push_back(t);
    test::expect_gradcheck(
        [&](const std::vector<Var>& v) {
          size_t next = 5;
          Var D = c.D ? v[next++] : Var();
          Var z = c.z ? v[next++] : Var();
          Var bias = c.bias ? v[next++] : Var();
          return selective_scan(v[0], v[1], v[2], v[3], v[4], D, z, bias, c.softplus);
        },
        inputs);
  }
}

TEST_CASE("selective_scan: gradient only for some inputs") {
  const ScanCase c{2, 5, 4, 3, 2, true, true, true, true, true};
  const ScanInputs in = make_inputs(c, 300);
  Var u(in.u), delta(in.delta, true), A(in.A), B(in.B), C(in.C, true), D(in.D), z(in.z),
      bias(in.delta_bias);
  Var out = selective_scan(u, delta, A, B, C, D, z, bias, true);
  sum(out).backward();
  CHECK(delta.grad().defined());
  CHECK(C.grad().defined());
  CHECK_FALSE(u.grad().defined());
  CHECK_FALSE(A.grad().defined());
}

// The backward with a gradient for the last state, which the autograd op never passes:
// checked as one directional derivative of f = <go, out> + <gH, h_L> along a random
// direction of every input at once, by central differences.
TEST_CASE("selective_scan_bwd_cpu with a last-state gradient (directional derivative)") {
  for (const ScanCase& c : kCases) {
    INFO(describe(c));
    const ScanInputs in = make_inputs(c, 400);
    const ScanShape s = make_scan_shape("test", in, c.softplus);
    const Tensor go = rand64(in.u.shape(), 401);
    const Tensor gH = rand64({c.batch, c.d_inner, c.n}, 402);
    auto f = [&](const ScanInputs& x) {
      Tensor out = Tensor::empty(x.u.shape(), DType::Float64);
      Tensor last = Tensor::empty({c.batch, c.d_inner, c.n}, DType::Float64);
      selective_scan_fwd_cpu(x, s, out, last);
      return sum(mul(out, go)).item() + sum(mul(last, gH)).item();
    };
    ScanGrads g;
    Tensor* gp[8] = {&g.u, &g.delta, &g.A, &g.B, &g.C, &g.D, &g.z, &g.delta_bias};
    const Tensor* ip[8] = {&in.u, &in.delta, &in.A, &in.B, &in.C, &in.D, &in.z, &in.delta_bias};
    for (int i = 0; i < 8; ++i)
      if (ip[i]->defined()) *gp[i] = Tensor::empty(ip[i]->shape(), DType::Float64);
    selective_scan_bwd_cpu(in, s, go, gH, g);

    const double eps = 1e-6;
    ScanInputs plus = in, minus = in;
    Tensor* pp[8] = {&plus.u, &plus.delta, &plus.A, &plus.B,
                     &plus.C, &plus.D,     &plus.z, &plus.delta_bias};
    Tensor* mp[8] = {&minus.u, &minus.delta, &minus.A, &minus.B,
                     &minus.C, &minus.D,     &minus.z, &minus.delta_bias};
    double analytic = 0;
    for (int i = 0; i < 8; ++i) {
      if (!ip[i]->defined()) continue;
      const Tensor dir = rand64(ip[i]->shape(), 500 + i);
      analytic += sum(mul(*gp[i], dir)).item();
      *pp[i] = add(*ip[i], mul(dir, eps));
      *mp[i] = add(*ip[i], mul(dir, -eps));
    }
    const double numeric = (f(plus) - f(minus)) / (2 * eps);
    CHECK(std::fabs(analytic - numeric) <= 1e-6 * (1 + std::fabs(numeric)));
  }
}

TEST_CASE("selective_scan: bad input names what was expected") {
  const ScanCase c{2, 5, 4, 3, 1, false, false, false, false, false};
  const ScanInputs in = make_inputs(c, 600);
  auto run = [](const ScanInputs& x) {
    selective_scan(Var(x.u), Var(x.delta), Var(x.A), Var(x.B), Var(x.C),
                   x.D.defined() ? Var(x.D) : Var(), x.z.defined() ? Var(x.z) : Var(),
                   x.delta_bias.defined() ? Var(x.delta_bias) : Var(), false);
  };
  ScanInputs bad = in;
  bad.u = rand64({2, 5}, 1);
  test::check_error<std::invalid_argument>([&] { run(bad); }, {"selective_scan", "u must be"});
  bad = in;
  bad.A = rand64({5, 3}, 1);
  test::check_error<std::invalid_argument>([&] { run(bad); }, {"A must be (d_inner = 4", "[5, 3]"});
  bad = in;
  bad.B = rand64({2, 5, 3, 3}, 1);
  test::check_error<std::invalid_argument>([&] { run(bad); }, {"B has 3 groups but C has 1"});
  bad = in;
  bad.B = rand64({2, 5, 3, 3}, 1);
  bad.C = rand64({2, 5, 3, 3}, 2);
  test::check_error<std::invalid_argument>([&] { run(bad); }, {"not divisible by groups 3"});
  bad = in;
  bad.D = rand64({3}, 1);
  test::check_error<std::invalid_argument>([&] { run(bad); }, {"D must be (d_inner)"});
  bad = in;
  bad.z = rand64({2, 5, 3}, 1);
  test::check_error<std::invalid_argument>([&] { run(bad); }, {"z must have u's shape"});
  bad = in;
  bad.delta = in.delta.to(DType::Float32);
  test::check_error<std::invalid_argument>([&] { run(bad); }, {"selective_scan"});
}

} // namespace
} // namespace ssm
