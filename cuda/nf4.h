// nf4.h: the CUDA dequantisation of NF4 weights (autograd/nf4.h has the format). One thread
// per output value, grid-stride; the arithmetic is the CPU loop's, rounding for rounding:
//     s_b = fma(float(k_b) / 127, t_(b / 256), c)      (__fdiv_rn, __fmaf_rn)
//     out[i] = code[index_i] * s_(i / 64)              (__fmul_rn)
// so the result is bit-identical to nf4_dequantize on the CPU.
#pragma once

#include <cstdint>

namespace ssm::cuda {

// codes (ceil(n / 2)) uint8, scale_codes (blocks) int8, scale_scales (ceil(blocks / 256))
// float32, all on device `device`; out (n) float32 there.
void nf4_dequantize(const uint8_t* codes, const int8_t* scale_codes, const float* scale_scales,
                    float scale_mean, int64_t n, float* out, int device);

} // namespace ssm::cuda
