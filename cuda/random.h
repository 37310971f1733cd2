// random.h: the CUDA side of the random fills Tensor::rand, uniform, randn and randint.
//
// Element i of a fill is a pure function of the four Philox4x32-10 words of counter
// (start + i) under key `seed` (tensor/random.h). The caller (tensor/tensor.cpp) reserves the
// counters from the Generator exactly as for a CPU fill; these kernels then evaluate the same
// element formulas as the CPU loop, so one Generator state gives the same tensor on either
// device: bit for bit for uniform and randint, and for randn up to the last-ulp differences
// between the host's and CUDA's log, cos and sqrt.
//
// `t` is a fresh contiguous CUDA tensor; its dtype picks the formula's precision.
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace ssm::cuda {

// Uniform on [low, high); float32 or float64.
void uniform(Tensor& t, double low, double high, uint64_t seed, uint64_t start);
// Standard normal (Box-Muller); float32 or float64.
void randn(Tensor& t, uint64_t seed, uint64_t start);
// Integers low + (64 random bits mod range), i.e. in [low, low + range); any dtype.
void randint(Tensor& t, int64_t low, uint64_t range, uint64_t seed, uint64_t start);

} // namespace ssm::cuda
