#include "tensor/tensor.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <limits>
#include <new>
#include <ostream>
#include <sstream>

#include "tensor/cpu/strided.h"
#include "tensor/random.h"

#ifdef SSM_CUDA
#include "cuda/copy.h"
#include "cuda/random.h"
#include "cuda/runtime.h"
#endif

namespace ssm {

// ---- devices and storage -------------------------------------------------------------------

Device parse_device(const std::string& text) {
  if (text == "cpu") return Device::cpu();
  if (text == "cuda") return Device::cuda(0);
  if (text.rfind("cuda:", 0) == 0) {
    const std::string digits = text.substr(5);
    // At most 9 digits, so that stoi cannot overflow.
    const auto is_digit = [](unsigned char c) { return std::isdigit(c) != 0; };
    if (!digits.empty() && digits.size() <= 9 &&
        std::all_of(digits.begin(), digits.end(), is_digit))
      return Device::cuda(std::stoi(digits));
  }
  throw std::invalid_argument("device: expected cpu, cuda or cuda:N, got '" + text + "'");
}

[[noreturn]] void throw_no_cuda(const char* op) {
  throw std::runtime_error(std::string(op) +
                           ": CUDA tensors are not supported by this build (CPU only)");
}

void check_cpu(const Tensor& t, const char* op) {
  if (t.defined() && !t.device().is_cpu())
    throw std::invalid_argument(std::string(op) + ": has no CUDA implementation yet (got " +
                                t.describe() + "); move the tensor with .to(Device::cpu())");
}

bool cuda_available() { return cuda_device_count() > 0; }

int cuda_device_count() {
#ifdef SSM_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  if (device.is_cuda()) {
#ifdef SSM_CUDA
    data_ = cuda::allocate(nbytes, device.index);
    return;
#else
    throw_no_cuda("Storage");
#endif
  }
  // 64-byte alignment lets vector loads of any width start at element 0.
  size_t rounded = (nbytes + 63) / 64 * 64;
  data_ = std::aligned_alloc(64, rounded ? rounded : 64);
  if (!data_) throw std::bad_alloc();
}

Storage::~Storage() {
#ifdef SSM_CUDA
  if (device_.is_cuda()) {
    cuda::release(data_, device_.index);
    return;
  }
#endif
  std::free(data_);
}

// ---- creation ------------------------------------------------------------------------------

static void check_shape(const Shape& shape, const char* op) {
  for (int64_t s : shape)
    if (s < 0)
      throw std::invalid_argument(std::string(op) + ": negative size in shape " + shape_str(shape));
  // The byte count must fit too: numel * 8 bytes below 2^63.
  const int64_t n = numel_of(shape);
  if (n > (int64_t(1) << 59))
    throw std::invalid_argument(std::string(op) + ": shape " + shape_str(shape) +
                                " is too large to allocate");
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  check_shape(shape, "Tensor::empty");
  Tensor t;
  t.storage_ = std::make_shared<Storage>(numel_of(shape) * dtype_size(dtype), device);
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dtype;
  t.device_ = device;
  return t;
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  return full(shape, 0.0, dtype, device);
}

Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) {
  return full(shape, 1.0, dtype, device);
}

Tensor Tensor::scalar(double value, DType dtype, Device device) {
  return full({}, value, dtype, device);
}

Tensor Tensor::arange(double start, double end, double step, DType dtype, Device device) {
  if (step == 0 || !std::isfinite(start) || !std::isfinite(end) || !std::isfinite(step))
    throw std::invalid_argument("arange: need finite start/end and a non-zero step");
  int64_t n = static_cast<int64_t>(std::ceil((end - start) / step));
  if (n < 0) n = 0;
  Tensor t = empty({n}, dtype, Device::cpu());
  dispatch_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    T* p = t.data<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(start + static_cast<double>(i) * step);
  });
  return device.is_cpu() ? t : t.to(device);
}

Tensor Tensor::from_values(const std::vector<double>& values, const Shape& shape, DType dtype,
                           Device device) {
  return from_vector(values, shape, Device::cpu()).to(dtype).to(device);
}

// Every random fill has the same form: reserve numel counters from the generator, then set
// element i from the four Philox words of counter (start + i). The reservation is the same
// whichever device fills the tensor, and the CUDA kernels (cuda/random.cu) repeat the element
// formulas below line for line, so one Generator state gives the same tensor on CPU and CUDA.
using PhiloxWords = std::array<uint32_t, 4>;
struct PhiloxCounters {
  uint64_t seed, start; // element i uses philox4x32(seed, start + i)
};

static PhiloxCounters reserve_counters(Generator* gen, int64_t numel) {
  Generator& g = gen ? *gen : default_generator();
  return {g.seed(), g.reserve(static_cast<uint64_t>(numel))};
}

// The CPU loop: t[i] = element(philox4x32(seed, start + i), T{}) over a fresh contiguous t.
template <typename Element>
static void random_fill_cpu(Tensor& t, PhiloxCounters counters, Element&& element) {
  dispatch_dtype(t.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i)
      p[i] = element(philox4x32(counters.seed, counters.start + static_cast<uint64_t>(i)), zero);
  });
}

template <typename T>
static T uniform_element(const PhiloxWords& w, double low, double high) {
  const double u = std::is_same_v<T, float> ? uniform_float(w[0]) : uniform_double(w[0], w[1]);
  // low + (high - low) u as an explicit fused multiply-add: whether a compiler fuses the
  // written-out form depends on its flags, and every build and device must round alike.
  const T v = static_cast<T>(std::fma(high - low, u, low));
  // Rounding to float32 can land exactly on `high`; keep the interval half-open.
  if (v >= static_cast<T>(high) && high > low)
    return std::nextafter(static_cast<T>(high), static_cast<T>(low));
  return v;
}

template <typename T>
static T normal_element(const PhiloxWords& w) {
  // Box-Muller with 53-bit uniforms; u1 in (0, 1] so the log is finite.
  const double u1 = 1.0 - uniform_double(w[0], w[1]);
  const double u2 = uniform_double(w[2], w[3]);
  return static_cast<T>(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2));
}

template <typename T>
static T integer_element(const PhiloxWords& w, int64_t low, uint64_t range) {
  // 64 random bits modulo the range: the bias is below range / 2^64, negligible here. The sum
  // wraps in uint64 so that it is exact for any int64 range, even one wider than 2^63.
  const uint64_t bits = static_cast<uint64_t>(w[0]) << 32 | w[1];
  return static_cast<T>(static_cast<int64_t>(static_cast<uint64_t>(low) + bits % range));
}

Tensor Tensor::rand(const Shape& shape, DType dtype, Generator* gen, Device device) {
  return uniform(shape, 0.0, 1.0, dtype, gen, device);
}

Tensor Tensor::uniform(const Shape& shape, double low, double high, DType dtype, Generator* gen,
                       Device device) {
  dispatch_floating(dtype, "uniform", [](auto) {});
  Tensor t = empty(shape, dtype, device);
  const PhiloxCounters counters = reserve_counters(gen, t.numel());
  if (device.is_cuda()) {
#ifdef SSM_CUDA
    cuda::uniform(t, low, high, counters.seed, counters.start);
#else
    throw_no_cuda("uniform");
#endif
  } else {
    random_fill_cpu(t, counters, [&](const PhiloxWords& w, auto zero) {
      return uniform_element<decltype(zero)>(w, low, high);
    });
  }
  return t;
}

Tensor Tensor::randn(const Shape& shape, DType dtype, Generator* gen, Device device) {
  dispatch_floating(dtype, "randn", [](auto) {});
  Tensor t = empty(shape, dtype, device);
  const PhiloxCounters counters = reserve_counters(gen, t.numel());
  if (device.is_cuda()) {
#ifdef SSM_CUDA
    cuda::randn(t, counters.seed, counters.start);
#else
    throw_no_cuda("randn");
#endif
  } else {
    random_fill_cpu(t, counters, [](const PhiloxWords& w, auto zero) {
      return normal_element<decltype(zero)>(w);
    });
  }
  return t;
}

Tensor Tensor::randint(int64_t low, int64_t high, const Shape& shape, DType dtype, Generator* gen,
                       Device device) {
  if (high <= low)
    throw std::invalid_argument("randint: need low < high, got [" + std::to_string(low) + ", " +
                                std::to_string(high) + ")");
  const uint64_t range = static_cast<uint64_t>(high) - static_cast<uint64_t>(low);
  Tensor t = empty(shape, dtype, device);
  const PhiloxCounters counters = reserve_counters(gen, t.numel());
  if (device.is_cuda()) {
#ifdef SSM_CUDA
    cuda::randint(t, low, range, counters.seed, counters.start);
#else
    throw_no_cuda("randint");
#endif
  } else {
    random_fill_cpu(t, counters, [&](const PhiloxWords& w, auto zero) {
      return integer_element<decltype(zero)>(w, low, range);
    });
  }
  return t;
}

// ---- metadata ------------------------------------------------------------------------------

void Tensor::check_defined(const char* op) const {
  if (!defined())
    throw std::logic_error(std::string(op) + ": the tensor is undefined (default-constructed)");
}

int64_t Tensor::size(int64_t d) const { return shape_[wrap_dim(d, dim(), "Tensor::size")]; }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int64_t d = dim() - 1; d >= 0; --d) {
    if (shape_[d] != 1 && strides_[d] != expected) return false;
    expected *= shape_[d];
  }
  return true;
}

std::string Tensor::describe() const {
  if (!defined()) return "Tensor(undefined)";
  return "Tensor" + shape_str(shape_) + " " + dtype_name(dtype_) + " " + device_.str();
}

void* Tensor::raw_data() const {
  check_defined("raw_data");
  return static_cast<char*>(storage_->data()) + offset_ * dtype_size(dtype_);
}

// ---- views ---------------------------------------------------------------------------------

Tensor Tensor::with_layout(Shape shape, Shape strides, int64_t offset) const {
  Tensor t = *this;
  t.shape_ = std::move(shape);
  t.strides_ = std::move(strides);
  t.offset_ = offset;
  return t;
}

// Resolves a single -1 in a requested shape and checks the element count.
static Shape infer_shape(const Shape& requested, int64_t numel, const char* op, const Shape& from) {
  Shape shape = requested;
  int64_t known = 1, infer_at = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer_at >= 0) throw std::invalid_argument(std::string(op) + ": more than one -1");
      infer_at = static_cast<int64_t>(i);
    } else if (shape[i] < 0) {
      throw std::invalid_argument(std::string(op) + ": invalid size in " + shape_str(requested));
    } else {
      known *= shape[i];
    }
  }
  if (infer_at >= 0 && known != 0 && numel % known == 0) shape[infer_at] = numel / known;
  if (numel_of(shape) != numel || (infer_at >= 0 && known == 0))
    throw std::invalid_argument(std::string(op) + ": cannot reshape " + shape_str(from) + " (" +
                                std::to_string(numel) + " elements) to " + shape_str(requested));
  return shape;
}

Tensor Tensor::view(const Shape& shape) const {
  check_defined("view");
  if (!is_contiguous())
    throw std::invalid_argument("view: tensor of shape " + shape_str(shape_) +
                                " is not contiguous; use reshape() or contiguous()");
  Shape resolved = infer_shape(shape, numel(), "view", shape_);
  Shape strides = contiguous_strides(resolved);
  return with_layout(resolved, strides, offset_);
}

Tensor Tensor::reshape(const Shape& shape) const {
  check_defined("reshape");
  const Shape resolved = infer_shape(shape, numel(), "reshape", shape_);
  return is_contiguous() ? view(resolved) : contiguous().view(resolved);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  check_defined("permute");
  if (static_cast<int64_t>(dims.size()) != dim())
    throw std::invalid_argument("permute: got " + std::to_string(dims.size()) +
                                " dims for a tensor of shape " + shape_str(shape_));
  Shape shape(dims.size()), strides(dims.size());
  std::vector<bool> seen(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], dim(), "permute");
    if (seen[d]) throw std::invalid_argument("permute: dim " + std::to_string(d) + " repeated");
    seen[d] = true;
    shape[i] = shape_[d];
    strides[i] = strides_[d];
  }
  return with_layout(shape, strides, offset_);
}

Tensor Tensor::transpose(int64_t dim0, int64_t dim1) const {
  check_defined("transpose");
  std::vector<int64_t> dims(dim());
  for (int64_t i = 0; i < dim(); ++i) dims[i] = i;
  std::swap(dims[wrap_dim(dim0, dim(), "transpose")], dims[wrap_dim(dim1, dim(), "transpose")]);
  return permute(dims);
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  check_defined("narrow");
  d = wrap_dim(d, dim(), "narrow");
  if (start < 0) start += shape_[d];
  if (start < 0 || length < 0 || start + length > shape_[d])
    throw std::out_of_range("narrow: [" + std::to_string(start) + ", " +
                            std::to_string(start + length) + ") is outside dim " +
                            std::to_string(d) + " of size " + std::to_string(shape_[d]));
  Shape shape = shape_;
  shape[d] = length;
  return with_layout(shape, strides_, offset_ + start * strides_[d]);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  check_defined("slice");
  d = wrap_dim(d, dim(), "slice");
  if (step <= 0) throw std::invalid_argument("slice: step must be positive");
  const int64_t n = shape_[d];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape shape = shape_, strides = strides_;
  shape[d] = (end - start + step - 1) / step;
  strides[d] = strides_[d] * step;
  return with_layout(shape, strides, offset_ + start * strides_[d]);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  check_defined("select");
  d = wrap_dim(d, dim(), "select");
  if (index < 0) index += shape_[d];
  if (index < 0 || index >= shape_[d])
    throw std::out_of_range("select: index " + std::to_string(index) + " is out of range for dim " +
                            std::to_string(d) + " of size " + std::to_string(shape_[d]));
  Shape shape = shape_, strides = strides_;
  shape.erase(shape.begin() + d);
  strides.erase(strides.begin() + d);
  return with_layout(shape, strides, offset_ + index * strides_[d]);
}

Tensor Tensor::squeeze() const {
  check_defined("squeeze");
  Shape shape, strides;
  for (int64_t d = 0; d < dim(); ++d)
    if (shape_[d] != 1) {
      shape.push_back(shape_[d]);
      strides.push_back(strides_[d]);
    }
  return with_layout(shape, strides, offset_);
}

Tensor Tensor::squeeze(int64_t d) const {
  check_defined("squeeze");
  d = wrap_dim(d, dim(), "squeeze");
  if (shape_[d] != 1) return *this;
  Shape shape = shape_, strides = strides_;
  shape.erase(shape.begin() + d);
  strides.erase(strides.begin() + d);
  return with_layout(shape, strides, offset_);
}

Tensor Tensor::unsqueeze(int64_t d) const {
  check_defined("unsqueeze");
  d = wrap_dim(d, dim() + 1, "unsqueeze");
  Shape shape = shape_, strides = strides_;
  int64_t stride = d < dim() ? strides_[d] * shape_[d] : 1;
  shape.insert(shape.begin() + d, 1);
  strides.insert(strides.begin() + d, stride);
  return with_layout(shape, strides, offset_);
}

Tensor Tensor::expand(const Shape& shape) const {
  check_defined("expand");
  const int64_t n = static_cast<int64_t>(shape.size());
  if (n < dim())
    throw std::invalid_argument("expand: cannot expand " + shape_str(shape_) + " to " +
                                shape_str(shape) + " (fewer dims)");
  Shape out_shape(n), out_strides(n);
  for (int64_t i = n - 1; i >= 0; --i) {
    int64_t src = i - (n - dim()); // matching dim of this tensor, or < 0 for a new leading dim
    int64_t want = shape[i];
    if (want < -1)
      throw std::invalid_argument("expand: negative size " + std::to_string(want) + " in " +
                                  shape_str(shape));
    if (src < 0) {
      if (want < 0) throw std::invalid_argument("expand: -1 is not allowed for a new dim");
      out_shape[i] = want;
      out_strides[i] = 0;
    } else if (want == -1 || want == shape_[src]) {
      out_shape[i] = shape_[src];
      out_strides[i] = strides_[src];
    } else if (shape_[src] == 1) {
      out_shape[i] = want;
      out_strides[i] = 0;
    } else {
      throw std::invalid_argument("expand: cannot expand " + shape_str(shape_) + " to " +
                                  shape_str(shape) + " (size " + std::to_string(shape_[src]) +
                                  " at dim " + std::to_string(src) + " is not 1)");
    }
  }
  return with_layout(out_shape, out_strides, offset_);
}

// ---- copies --------------------------------------------------------------------------------

void Tensor::copy_(const Tensor& src) {
  check_defined("copy_");
  src.check_defined("copy_");
  if (broadcast_shapes(shape_, src.shape_, "copy_") != shape_)
    throw std::invalid_argument("copy_: cannot copy shape " + shape_str(src.shape_) +
                                " into shape " + shape_str(shape_));
  // A source on another device is first moved here, packed; a source sharing this tensor's
  // storage (t.copy_(t.transpose(0, 1))) is first copied, so no element is read after it was
  // overwritten.
  const Tensor moved = src.device_ == device_ ? src : src.to(device_);
  const Tensor from = (moved.storage_ == storage_ ? moved.clone() : moved).expand(shape_);
  if (device_.is_cuda()) {
#ifdef SSM_CUDA
    cuda::copy(from, *this);
    return;
#else
    throw_no_cuda("copy_");
#endif
  }
  dispatch_dtype(dtype_, [&](auto dst_zero) {
    using D = decltype(dst_zero);
    D* dst = data<D>();
    dispatch_dtype(from.dtype_, [&](auto src_zero) {
      using S = decltype(src_zero);
      const S* s = from.data<S>();
      cpu::for_each_strided<2>(
          shape_, {&strides_, &from.strides_},
          [&](const std::array<int64_t, 2>& o) { dst[o[0]] = static_cast<D>(s[o[1]]); });
    });
  });
}

void Tensor::fill_(double value) {
  check_defined("fill_");
  if (device_.is_cuda()) {
#ifdef SSM_CUDA
    cuda::fill(*this, value);
    return;
#else
    throw_no_cuda("fill_");
#endif
  }
  dispatch_dtype(dtype_, [&](auto zero) {
    using T = decltype(zero);
    T* p = data<T>();
    const T v = static_cast<T>(value);
    cpu::for_each_strided<1>(shape_, {&strides_},
                             [&](const std::array<int64_t, 1>& o) { p[o[0]] = v; });
  });
}

Tensor Tensor::clone() const {
  check_defined("clone");
  Tensor t = empty(shape_, dtype_, device_);
  t.copy_(*this);
  return t;
}

Tensor Tensor::contiguous() const {
  check_defined("contiguous");
  return is_contiguous() ? *this : clone();
}

Tensor Tensor::to(DType dtype) const {
  check_defined("to");
  if (dtype == dtype_) return *this;
  Tensor t = empty(shape_, dtype, device_);
  t.copy_(*this);
  return t;
}

Tensor Tensor::to(Device device) const {
  check_defined("to");
  if (device == device_) return *this;
#ifdef SSM_CUDA
  // Host <-> device transfers move packed bytes; CUDA -> other CUDA goes through the host.
  const Tensor packed = contiguous();
  const size_t bytes = static_cast<size_t>(numel()) * dtype_size(dtype_);
  if (device_.is_cuda() && device.is_cuda()) return to(Device::cpu()).to(device);
  Tensor out = empty(shape_, dtype_, device);
  if (device.is_cuda())
    cuda::copy_host_to_device(out.raw_data(), packed.raw_data(), bytes, device.index);
  else
    cuda::copy_device_to_host(out.raw_data(), packed.raw_data(), bytes, device_.index);
  return out;
#else
  throw_no_cuda("Tensor::to(device)");
#endif
}

// ---- element access ------------------------------------------------------------------------

int64_t Tensor::element_offset(const std::vector<int64_t>& index, const char* op) const {
  check_defined(op);
  if (static_cast<int64_t>(index.size()) != dim())
    throw std::invalid_argument(std::string(op) + ": " + std::to_string(index.size()) +
                                " indices for a tensor of shape " + shape_str(shape_));
  int64_t off = 0;
  for (int64_t d = 0; d < dim(); ++d) {
    if (index[d] < 0 || index[d] >= shape_[d])
      throw std::out_of_range(std::string(op) + ": index " + std::to_string(index[d]) +
                              " out of range for dim " + std::to_string(d) + " of size " +
                              std::to_string(shape_[d]));
    off += index[d] * strides_[d];
  }
  return off;
}

double Tensor::at(const std::vector<int64_t>& index) const {
  const int64_t off = element_offset(index, "at");
  if (!device_.is_cpu()) return with_layout({}, {}, offset_ + off).to(Device::cpu()).at({});
  return dispatch_dtype(dtype_, [&](auto zero) {
    using T = decltype(zero);
    return static_cast<double>(data<T>()[off]);
  });
}

void Tensor::set(const std::vector<int64_t>& index, double value) {
  const int64_t off = element_offset(index, "set");
  if (!device_.is_cpu()) {
    with_layout({}, {}, offset_ + off).fill_(value);
    return;
  }
  dispatch_dtype(dtype_, [&](auto zero) {
    using T = decltype(zero);
    data<T>()[off] = static_cast<T>(value);
  });
}

double Tensor::item() const {
  check_defined("item");
  if (numel() != 1)
    throw std::invalid_argument("item: expected a tensor with one element, got shape " +
                                shape_str(shape_));
  return reshape({}).at({});
}

std::vector<double> Tensor::to_doubles() const { return to_vector<double>(); }

// ---- printing ------------------------------------------------------------------------------

// One element: int64 exactly, float32 with 6 significant digits, float64 with 10.
// Element `index` of a CPU tensor; int64 values are read as int64 (a double holds only 53 bits).
static void print_element(std::ostream& os, const Tensor& t, const std::vector<int64_t>& index) {
  if (t.dtype() != DType::Int64) {
    os << std::setprecision(t.dtype() == DType::Float32 ? 6 : 10) << t.at(index);
    return;
  }
  int64_t offset = 0;
  for (size_t d = 0; d < index.size(); ++d) offset += index[d] * t.strides()[d];
  os << t.data<int64_t>()[offset];
}

// Prints nested brackets like PyTorch, eliding the middle of any dim longer than 6.
static void print_values(std::ostream& os, const Tensor& t, std::vector<int64_t>& index,
                         int64_t d) {
  const int64_t n = t.shape()[d];
  const int64_t edge = 3;
  os << "[";
  for (int64_t i = 0; i < n; ++i) {
    if (i) os << (d + 1 == t.dim() ? ", " : ",\n" + std::string(d + 1, ' '));
    if (n > 2 * edge && i == edge) {
      os << "...";
      i = n - edge - 1;
      continue;
    }
    index[d] = i;
    if (d + 1 == t.dim()) {
      print_element(os, t, index);
    } else {
      print_values(os, t, index, d + 1);
    }
  }
  os << "]";
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  os << t.describe();
  if (!t.defined()) return os;
  if (!t.device().is_cpu()) {
    // Print the values of a host copy, keeping the device in the header line.
    std::ostringstream body;
    body << t.to(Device::cpu());
    const std::string text = body.str();
    return os << text.substr(text.find('\n'));
  }
  os << "\n";
  const std::streamsize caller_precision = os.precision();
  std::vector<int64_t> index(t.dim(), 0);
  if (t.dim() == 0)
    print_element(os, t, index);
  else
    print_values(os, t, index, 0);
  os.precision(caller_precision);
  return os;
}

} // namespace ssm
