// nn_accumulate.h: the double-precision sum that the nn loops (nn_conv.cpp, nn_norm.cpp) use
// for dot products and row statistics.
//
// A single running sum s += term(i) is a chain of dependent additions: each waits for the
// previous one (about 4 cycles), which makes a long dot product latency-bound. Four
// interleaved partial sums (terms i = 0, 4, 8, ... in the first, 1, 5, 9, ... in the second,
// and so on), added together at the end, keep four additions in flight. The order is fixed
// by n alone, so the result is deterministic and the same on every thread.
#pragma once

#include <cstdint>

namespace ssm::cpu {

// sum_{i < n} term(i), accumulated in double.
template <typename Term>
double sum_in_double(int64_t n, Term&& term) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += term(i);
    s1 += term(i + 1);
    s2 += term(i + 2);
    s3 += term(i + 3);
  }
  for (; i < n; ++i) s0 += term(i);
  return (s0 + s1) + (s2 + s3);
}

} // namespace ssm::cpu
