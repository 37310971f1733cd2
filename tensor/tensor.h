// tensor.h: the Tensor, an n-dimensional view onto refcounted storage.
//
// A Tensor is (storage, shape, strides, offset, dtype, device). The storage is a flat byte
// buffer shared by every view of it (std::shared_ptr counts the owners); element
// [i0, ..., ik] lives at storage[offset + i0*stride0 + ... + ik*stridek]. View operations
// (reshape of a contiguous tensor, permute, transpose, narrow/slice, squeeze, unsqueeze,
// expand) only make a new (shape, strides, offset) over the same storage: writing through a
// view writes the original. contiguous(), clone() and to() copy.
//
// This layer knows nothing of gradients; autograd/ wraps Tensors in Vars for that.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "tensor/dtype.h"
#include "tensor/shape.h"

namespace ssm {

class Generator;

// A flat buffer of bytes on one device, aligned to 64 bytes on the CPU.
class Storage {
 public:
  Storage(size_t nbytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
};

class Tensor {
 public:
  Tensor() = default; // an undefined tensor: defined() is false, every other call throws

  // ---- creation --------------------------------------------------------------------------
  static Tensor empty(const Shape& shape, DType dtype = DType::Float32, Device device = {});
  static Tensor zeros(const Shape& shape, DType dtype = DType::Float32, Device device = {});
  static Tensor ones(const Shape& shape, DType dtype = DType::Float32, Device device = {});
  static Tensor full(const Shape& shape, double value, DType dtype = DType::Float32,
                     Device device = {});
  // [start, start+step, ...) up to but excluding `end`, like torch.arange.
  static Tensor arange(double start, double end, double step = 1, DType dtype = DType::Int64,
                       Device device = {});
  static Tensor scalar(double value, DType dtype = DType::Float32, Device device = {});
  // Copies `values` (row-major) into a new tensor of `shape`; the dtype follows T.
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape, Device device = {});
  // Same, converting doubles to `dtype` (handy in tests: from_values({1, 2}, {2}, Float64)).
  static Tensor from_values(const std::vector<double>& values, const Shape& shape,
                            DType dtype = DType::Float32, Device device = {});

  // Random fills. Each draws from a counter-based generator (Philox4x32-10): element i of the
  // result depends only on (seed, the generator's offset, i), never on threads or device.
  // Passing no generator uses the global one (seeded by manual_seed()).
  static Tensor rand(const Shape& shape, DType dtype = DType::Float32, Generator* gen = nullptr,
                     Device device = {}); // uniform [0, 1)
  static Tensor randn(const Shape& shape, DType dtype = DType::Float32, Generator* gen = nullptr,
                      Device device = {}); // standard normal
  static Tensor uniform(const Shape& shape, double low, double high, DType dtype = DType::Float32,
                        Generator* gen = nullptr, Device device = {}); // uniform [low, high)
  static Tensor randint(int64_t low, int64_t high, const Shape& shape, DType dtype = DType::Int64,
                        Generator* gen = nullptr, Device device = {}); // integers in [low, high)

  // ---- metadata --------------------------------------------------------------------------
  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int64_t offset() const { return offset_; }
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  int64_t size(int64_t d) const; // negative d counts from the end
  int64_t numel() const { return numel_of(shape_); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  // "Tensor[2, 3] float32 cpu"
  std::string describe() const;

  // Pointer to element [0, ..., 0] (storage + offset). Checks that T matches the dtype.
  template <typename T>
  T* data() const;
  void* raw_data() const;

  // ---- views (share storage) -------------------------------------------------------------
  Tensor view(const Shape& shape) const;    // contiguous only; one size may be -1
  Tensor reshape(const Shape& shape) const; // a view when possible, else a copy
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  // Elements start, start+step, ... < end of `dim` (end clamped to the size, negatives wrap).
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const; // removes `dim`
  Tensor squeeze() const;                          // drops every size-1 dim
  Tensor squeeze(int64_t dim) const;               // drops `dim` if its size is 1
  Tensor unsqueeze(int64_t dim) const;
  Tensor expand(const Shape& shape) const; // size-1 dims broadcast with stride 0; -1 keeps

  // ---- copies ----------------------------------------------------------------------------
  Tensor contiguous() const;      // this tensor if already contiguous, else a packed copy
  Tensor clone() const;           // always a new contiguous copy
  Tensor to(DType dtype) const;   // this tensor when the dtype already matches, else a copy
  Tensor to(Device device) const; // likewise for the device
  // Copies `src` into this tensor's elements, broadcasting src to this shape and converting
  // its dtype. Writes through views.
  void copy_(const Tensor& src);
  void fill_(double value);

  // ---- element access (for tests, printing and small loops; not for hot paths) -----------
  double item() const; // a one-element tensor's value
  double at(const std::vector<int64_t>& index) const;
  void set(const std::vector<int64_t>& index, double value);
  std::vector<double> to_doubles() const; // every element, row-major
  template <typename T>
  std::vector<T> to_vector() const;

 private:
  std::shared_ptr<Storage> storage_;
  Shape shape_;
  Shape strides_;
  int64_t offset_ = 0;
  DType dtype_ = DType::Float32;
  Device device_;

  Tensor with_layout(Shape shape, Shape strides, int64_t offset) const;
  void check_defined(const char* op) const;
  int64_t element_offset(const std::vector<int64_t>& index, const char* op) const;
};

// Prints the shape, dtype and device, then the values (elided in the middle when large).
std::ostream& operator<<(std::ostream& os, const Tensor& t);

// Throws unless `t` is on the CPU. An op without a CUDA kernel calls this before its CPU loop,
// so that a CUDA tensor reaching a CPU loop is a clear error, not a crash.
void check_cpu(const Tensor& t, const char* op);
// Throws "<op>: CUDA tensors are not supported by this build (CPU only)".
[[noreturn]] void throw_no_cuda(const char* op);

// Whether this build has the CUDA backend and at least one GPU is visible.
bool cuda_available();
int cuda_device_count();

// ---- template definitions ------------------------------------------------------------------

template <typename T>
T* Tensor::data() const {
  check_defined("data");
  if (dtype_of<T>::value != dtype_)
    throw std::invalid_argument(std::string("Tensor::data: requested ") +
                                dtype_name(dtype_of<T>::value) + " from a " + dtype_name(dtype_) +
                                " tensor");
  return static_cast<T*>(storage_->data()) + offset_;
}

template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape, Device device) {
  if (static_cast<int64_t>(values.size()) != numel_of(shape))
    throw std::invalid_argument("Tensor::from_vector: " + std::to_string(values.size()) +
                                " values do not fill shape " + shape_str(shape));
  Tensor t = empty(shape, dtype_of<T>::value, Device::cpu());
  T* p = t.data<T>();
  for (size_t i = 0; i < values.size(); ++i) p[i] = values[i];
  return device.is_cpu() ? t : t.to(device);
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = to(dtype_of<T>::value).to(Device::cpu()).contiguous();
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}

} // namespace ssm
