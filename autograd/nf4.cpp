// nf4.cpp: see nf4.h for the format. Quantisation runs on the CPU; dequantisation on the
// weight's device (cuda/nf4.cu holds the kernel, the same arithmetic as dequantize_cpu here).
#include "autograd/nf4.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "tensor/ops.h"
#ifdef SSM_CUDA
#include "cuda/nf4.h"
#include "cuda/runtime.h"
#endif

namespace ssm {

// The NF4 code values (QLoRA, Appendix E; bitsandbytes' table), as float32.
const float kNf4Codes[16] = {-1.0f,
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

// ---- bytes on a device ------------------------------------------------------------------------

DeviceBytes::DeviceBytes(size_t size, Device device) : size_(size), device_(device) {
  if (device.is_cuda()) {
#ifdef SSM_CUDA
    const int index = device.index;
    ptr_ = std::shared_ptr<void>(cuda::allocate(std::max<size_t>(size, 1), index),
                                 [index](void* p) { cuda::release(p, index); });
#else
    throw std::runtime_error("DeviceBytes: built without CUDA");
#endif
  } else {
    ptr_ = std::shared_ptr<void>(std::malloc(std::max<size_t>(size, 1)), std::free);
    if (!ptr_) throw std::bad_alloc();
  }
}

std::vector<uint8_t> DeviceBytes::to_host() const {
  std::vector<uint8_t> out(size_);
  if (size_ == 0) return out;
  if (device_.is_cuda()) {
#ifdef SSM_CUDA
    cuda::copy_device_to_host(out.data(), data(), size_, device_.index);
#endif
  } else {
    std::memcpy(out.data(), data(), size_);
  }
  return out;
}

DeviceBytes DeviceBytes::to(Device device) const {
  if (device == device_) return *this;
  DeviceBytes out(size_, device);
  const std::vector<uint8_t> host = to_host();
  if (size_ == 0) return out;
  if (device.is_cuda()) {
#ifdef SSM_CUDA
    cuda::copy_host_to_device(out.data(), host.data(), size_, device.index);
#endif
  } else {
    std::memcpy(out.data(), host.data(), size_);
  }
  return out;
}

Nf4Weight Nf4Weight::to(Device target) const {
  Nf4Weight out = *this;
  out.device = target;
  out.codes = codes.to(target);
  out.scale_codes = scale_codes.to(target);
  out.scale_scales = scale_scales.to(target);
  return out;
}

// ---- quantising -------------------------------------------------------------------------------

namespace {

// The index of the code nearest to v (ties: the lower index).
uint8_t nearest_code(double v) {
  uint8_t best = 0;
  double best_distance = std::fabs(v - kNf4Codes[0]);
  for (uint8_t i = 1; i < 16; ++i) {
    const double d = std::fabs(v - kNf4Codes[i]);
    if (d < best_distance) {
      best_distance = d;
      best = i;
    }
  }
  return best;
}

// s_b as dequantised: fma(k / 127, t, c) in float32 (the CUDA kernel computes the same).
float dequantized_scale(int8_t k, float t, float c) {
  const float ratio = static_cast<float>(k) / 127.0f;
  return std::fma(ratio, t, c);
}

} // namespace

Nf4Weight nf4_quantize(const Tensor& weight_in) {
  if (weight_in.dtype() != DType::Float32 && weight_in.dtype() != DType::Float64)
    throw std::invalid_argument("nf4_quantize: expected a float32 or float64 tensor");
  const std::vector<double> w =
      weight_in.to(Device::cpu()).to(DType::Float64).contiguous().to_vector<double>();
  Nf4Weight q;
  q.shape = weight_in.shape();
  q.numel = weight_in.numel();
  const int64_t n = q.numel, blocks = q.blocks();
  const int64_t scale_blocks = (blocks + kNf4ScaleBlock - 1) / kNf4ScaleBlock;
  for (double v : w)
    if (!std::isfinite(v)) throw std::invalid_argument("nf4_quantize: the weight holds NaN or inf");

  // First level: absmax per block of 64.
  std::vector<double> absmax(static_cast<size_t>(blocks), 0.0);
  for (int64_t i = 0; i < n; ++i)
    absmax[i / kNf4Block] = std::max(absmax[i / kNf4Block], std::fabs(w[i]));
  // Second level: centre, then one float32 scale per 256 scales and an int8 per scale.
  double mean = 0;
  for (double s : absmax) mean += s;
  mean = blocks ? mean / static_cast<double>(blocks) : 0.0;
  q.scale_mean = static_cast<float>(mean);
  std::vector<float> t(static_cast<size_t>(scale_blocks), 0.0f);
  std::vector<int8_t> k(static_cast<size_t>(blocks), 0);
  for (int64_t b = 0; b < blocks; ++b) {
    const double centred = absmax[b] - q.scale_mean;
    float& tj = t[b / kNf4ScaleBlock];
    tj = std::max(tj, static_cast<float>(std::fabs(centred)));
  }
  for (int64_t b = 0; b < blocks; ++b) {
    const float tj = t[b / kNf4ScaleBlock];
    const double centred = absmax[b] - q.scale_mean;
    const double level = tj > 0 ? std::round(127.0 * centred / tj) : 0.0;
    k[b] = static_cast<int8_t>(std::clamp(level, -127.0, 127.0));
  }
  // Codes against the scales as they will be dequantised, so the rounding of s_b is seen.
  std::vector<uint8_t> codes(static_cast<size_t>((n + 1) / 2), 0);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t b = i / kNf4Block;
    const double s = dequantized_scale(k[b], t[b / kNf4ScaleBlock], q.scale_mean);
    const uint8_t code = s > 0 ? nearest_code(w[i] / s) : 7; // 7 is the code 0
    codes[i / 2] |= static_cast<uint8_t>(i % 2 ? code << 4 : code);
  }
  q.codes = DeviceBytes(codes.size(), Device::cpu());
  std::memcpy(q.codes.data(), codes.data(), codes.size());
  q.scale_codes = DeviceBytes(k.size(), Device::cpu());
  std::memcpy(q.scale_codes.data(), k.data(), k.size());
  q.scale_scales = DeviceBytes(t.size() * sizeof(float), Device::cpu());
  std::memcpy(q.scale_scales.data(), t.data(), t.size() * sizeof(float));
  return weight_in.device().is_cuda() ? q.to(weight_in.device()) : q;
}

std::vector<float> nf4_block_scales(const Nf4Weight& q) {
  const std::vector<uint8_t> k = q.scale_codes.to_host(), t_bytes = q.scale_scales.to_host();
  std::vector<float> t(t_bytes.size() / sizeof(float));
  std::memcpy(t.data(), t_bytes.data(), t_bytes.size());
  std::vector<float> s(static_cast<size_t>(q.blocks()));
  for (int64_t b = 0; b < q.blocks(); ++b)
    s[b] = dequantized_scale(static_cast<int8_t>(k[b]), t[b / kNf4ScaleBlock], q.scale_mean);
  return s;
}

// ---- dequantising -----------------------------------------------------------------------------

Tensor nf4_dequantize(const Nf4Weight& q) {
  Tensor out = Tensor::empty(q.shape, DType::Float32, q.device);
  if (q.numel == 0) return out;
  if (q.device.is_cuda()) {
#ifdef SSM_CUDA
    cuda::nf4_dequantize(static_cast<const uint8_t*>(q.codes.data()),
                         static_cast<const int8_t*>(q.scale_codes.data()),
                         static_cast<const float*>(q.scale_scales.data()), q.scale_mean, q.numel,
                         out.data<float>(), q.device.index);
    return out;
#else
    throw std::runtime_error("nf4_dequantize: built without CUDA");
#endif
  }
  const uint8_t* codes = static_cast<const uint8_t*>(q.codes.data());
  const std::vector<float> scales = nf4_block_scales(q);
  float* o = out.data<float>();
  for (int64_t i = 0; i < q.numel; ++i) {
    const uint8_t byte = codes[i / 2];
    const uint8_t code = i % 2 ? byte >> 4 : byte & 0x0f;
    o[i] = kNf4Codes[code] * scales[i / kNf4Block];
  }
  return out;
}

// ---- the layer --------------------------------------------------------------------------------

Var nf4_linear(const Var& x, const std::shared_ptr<const Nf4Weight>& weight, const Var& bias) {
  if (!weight || weight->shape.size() != 2)
    throw std::invalid_argument("nf4_linear: expected a 2-D NF4 weight (out, in)");
  const int64_t out_features = weight->shape[0], in_features = weight->shape[1];
  const Tensor& xv = x.value();
  if (xv.dim() == 0 || xv.size(-1) != in_features)
    throw std::invalid_argument("nf4_linear: input of shape " + shape_str(xv.shape()) +
                                " does not match the weight's " + shape_str(weight->shape));
  if (xv.device() != weight->device)
    throw std::invalid_argument("nf4_linear: the input is on " + xv.device().str() +
                                ", the NF4 weight on " + weight->device.str());
  if (bias.defined() && bias.requires_grad())
    throw std::invalid_argument("nf4_linear: the bias of a quantised layer must be frozen");
  const DType dtype = xv.dtype();
  const int64_t rows = xv.numel() / in_features;
  Tensor y;
  {
    const Tensor w = nf4_dequantize(*weight).to(dtype); // (out, in), freed at the end of scope
    y = matmul(xv.reshape({rows, in_features}), w.transpose(0, 1)); // (rows, out)
  }
  if (bias.defined()) add_(y, bias.value());
  Shape y_shape = xv.shape();
  y_shape.back() = out_features;
  const Shape x_shape = xv.shape();
  return make_result("nf4_linear", y.view(y_shape), {x}, [=](const Tensor& g) {
    // d/dx: g W, with W dequantised again (the forward kept no copy).
    const Tensor w = nf4_dequantize(*weight).to(g.dtype());
    return std::vector<Tensor>{matmul(g.reshape({rows, out_features}), w).view(x_shape)};
  });
}

} // namespace ssm
