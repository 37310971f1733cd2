// nf4.h: 4-bit NormalFloat (NF4) storage of frozen weights, for QLoRA (Dettmers et al. 2023,
// "QLoRA: Efficient Finetuning of Quantized LLMs", Section 3).
//
// NF4 has 16 code values q_0..q_15 in [-1, 1], the quantiles of a standard normal scaled to
// [-1, 1] with an exact 0 (the table of the paper's Appendix E, as in bitsandbytes):
//     kNf4Codes = {-1, -0.6962, -0.5251, -0.3949, -0.2844, -0.1848, -0.0911, 0,
//                  0.0796, 0.1609, 0.2461, 0.3379, 0.4407, 0.5626, 0.7230, 1}
// A weight (any shape, read flat in row-major order) is cut into blocks of 64 values. Block b
// keeps its absolute maximum s_b and, for each value w, the index of the code nearest to
// w / s_b (4 bits). Dequantised: w ~ q[index] * s_b.
//
// Double quantisation (Section 3, "Double Quantization"): the float32 scales s_b cost 32 / 64 =
// 0.5 bits a value, so they are quantised too. With c = mean(s) over all blocks, the centred
// scales d_b = s_b - c are cut into blocks of 256; block j keeps t_j = max |d_b| (float32) and
// each d_b as an 8-bit integer k_b = round(127 d_b / t_j). Dequantised, in float32:
//     s_b ~ fma(k_b / 127, t_j, c)        (one rounding in the fma: the CPU and CUDA agree bit
//                                          for bit)
//     w   ~ q[index] * s_b
// (bitsandbytes quantises the centred scales with its dynamic 8-bit map; this is the linear
// 8-bit map, simpler to read, with the same storage. Its absolute error is up to t_j / 254, so
// a block whose absmax is far below the others' can get a scale much too large or one <= 0,
// which stores the block as zeros: a weight with such blocks loses them. Trained weights have
// absmaxes of one order of magnitude; the tests measure the scale error on normal data.)
//
// Storage for n values: n / 2 bytes of codes (two per byte, value 2i in the low nibble, 2i + 1
// in the high one), n / 64 bytes of k_b, 4 n / 16384 bytes of t_j, and c: about 0.516 bytes a
// value, against 4 in float32.
//
// nf4_linear(x, W, b) = x W^T + b with W dequantised on the fly, in the forward and again in
// the backward (which gives x its gradient; W and b get none): no full-precision copy of W
// outlives one call.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "autograd/variable.h"
#include "tensor/tensor.h"

namespace ssm {

extern const float kNf4Codes[16];
constexpr int64_t kNf4Block = 64;       // values per absmax scale
constexpr int64_t kNf4ScaleBlock = 256; // scales per second-level scale

// Bytes on a device (CPU or CUDA), freed with the last reference.
class DeviceBytes {
 public:
  DeviceBytes() = default;
  DeviceBytes(size_t size, Device device);
  void* data() const { return ptr_.get(); }
  size_t size() const { return size_; }
  Device device() const { return device_; }
  DeviceBytes to(Device device) const;
  std::vector<uint8_t> to_host() const;

 private:
  std::shared_ptr<void> ptr_;
  size_t size_ = 0;
  Device device_ = Device::cpu();
};

struct Nf4Weight {
  Shape shape; // of the original weight
  int64_t numel = 0;
  Device device = Device::cpu();
  DeviceBytes codes;        // (ceil(numel / 2)) uint8: two 4-bit code indices per byte
  DeviceBytes scale_codes;  // (blocks) int8: k_b
  DeviceBytes scale_scales; // (ceil(blocks / 256)) float32: t_j
  float scale_mean = 0;     // c

  int64_t blocks() const { return (numel + kNf4Block - 1) / kNf4Block; }
  size_t bytes() const { return codes.size() + scale_codes.size() + scale_scales.size() + 4; }
  Nf4Weight to(Device device) const;
};

// Quantises a float32/float64 tensor (on any device; the arithmetic runs on the CPU in
// float64 and the result is stored on the tensor's device).
Nf4Weight nf4_quantize(const Tensor& weight);
// The dequantised weight, float32 of the original shape, on the weight's device (a CUDA
// kernel there, bit-identical to the CPU loop).
Tensor nf4_dequantize(const Nf4Weight& weight);
// The block scales s_b as dequantised (float32, (blocks)), on the CPU: for tests and reports.
std::vector<float> nf4_block_scales(const Nf4Weight& weight);

// y = x W^T + b with W in NF4 (see above). x (..., in) float32 or float64 (W is dequantised to
// x's dtype); W (out, in); bias (out) or undefined, frozen.
Var nf4_linear(const Var& x, const std::shared_ptr<const Nf4Weight>& weight, const Var& bias);

} // namespace ssm
