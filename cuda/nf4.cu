// nf4.cu: NF4 dequantisation (see cuda/nf4.h and autograd/nf4.h).
#include "cuda/check.h"
#include "cuda/indexing.cuh"
#include "cuda/nf4.h"
#include "cuda/runtime.h"

namespace ssm::cuda {

namespace {

// The 16 NF4 code values, the same float32 numbers as kNf4Codes in autograd/nf4.cpp.
__constant__ float kCodes[16] = {-1.0f,
                                 -0.6961928009986877f,
                                 -0.5250730514526367f,
                                 -0.39491748809814453f,
                                 -0.28444138169288635f,
                                 -0.18477343022823334f,
                                 -0.09105003625154495f,
                                 0.0f,
                                 0.07958029955625534f,
                                 0.16093020141124725f,
                                 0.24611230194568634f,
                                 0.33791524171829224f,
                                 0.44070982933044434f,
                                 0.5626170039176941f,
                                 0.7229568362236023f,
                                 1.0f};

// Work per thread: one value (a nibble, its block's int8 scale code and second-level scale).
__global__ void nf4_dequantize_kernel(const uint8_t* codes, const int8_t* scale_codes,
                                      const float* scale_scales, float scale_mean, int64_t n,
                                      float* out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const uint8_t byte = codes[i / 2];
    const int code = (i & 1) ? byte >> 4 : byte & 0x0f;
    const int64_t b = i / 64;                                   // kNf4Block
    const float ratio = __fdiv_rn(static_cast<float>(scale_codes[b]), 127.0f);
    const float scale = __fmaf_rn(ratio, scale_scales[b / 256], scale_mean); // kNf4ScaleBlock
    out[i] = __fmul_rn(kCodes[code], scale);
  }
}

} // namespace

void nf4_dequantize(const uint8_t* codes, const int8_t* scale_codes, const float* scale_scales,
                    float scale_mean, int64_t n, float* out, int device) {
  if (n == 0) return;
  ensure_device(device);
  nf4_dequantize_kernel<<<elementwise_blocks(n), kElementwiseThreads, 0, stream(device)>>>(
      codes, scale_codes, scale_scales, scale_mean, n, out);
  SSM_CUDA_CHECK(cudaGetLastError());
}

} // namespace ssm::cuda
