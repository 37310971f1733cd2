// random.h: a counter-based random generator (Philox4x32-10).
//
// Philox (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011)
// maps a 64-bit key and a 128-bit counter to four 32-bit random words through ten rounds of
// multiply-xor. Because each output is a pure function of (key, counter), element i of a
// random fill can be computed from (seed, offset + i) alone: a sequential CPU loop, a
// multi-threaded one and a CUDA kernel all produce the same numbers. The Generator therefore
// only keeps the seed and an offset that each fill advances by the number of elements it drew.
#pragma once

#include <array>
#include <cstdint>

namespace ssm {

// Four 32-bit words for counter `counter` under key `seed`.
std::array<uint32_t, 4> philox4x32(uint64_t seed, uint64_t counter);

// 24 random bits -> float in [0, 1); 53 bits -> double in [0, 1).
inline float uniform_float(uint32_t bits) { return (bits >> 8) * (1.0f / 16777216.0f); }
inline double uniform_double(uint32_t hi, uint32_t lo) {
  uint64_t bits = (static_cast<uint64_t>(hi) << 32 | lo) >> 11;
  return static_cast<double>(bits) * (1.0 / 9007199254740992.0);
}

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  void manual_seed(uint64_t seed) {
    seed_ = seed;
    offset_ = 0;
  }
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  // Reserves n consecutive counters; the caller uses counters [returned, returned + n).
  uint64_t reserve(uint64_t n) {
    uint64_t start = offset_;
    offset_ += n;
    return start;
  }

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

// The process-wide generator used when an op is given none.
Generator& default_generator();
void manual_seed(uint64_t seed);

} // namespace ssm
