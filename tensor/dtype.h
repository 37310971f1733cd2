// dtype.h: element types and devices of a Tensor.
//
// Three element types cover the project: float32 (training), float64 (gradient checks and
// reference computations) and int64 (token ids, indices, argmax results). A Device says where
// a tensor's storage lives: the CPU today; CUDA is reserved for the GPU backend, and every op
// dispatches on it so a CUDA kernel can sit beside each CPU loop.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace ssm {

enum class DType { Float32, Float64, Int64 };

inline size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::Float32: return 4;
    case DType::Float64: return 8;
    case DType::Int64: return 8;
  }
  return 0;
}

inline const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::Int64: return "int64";
  }
  return "?";
}

inline bool is_floating(DType dtype) { return dtype != DType::Int64; }

// The C++ type of each dtype, and back.
template <typename T>
struct dtype_of;
template <>
struct dtype_of<float> {
  static constexpr DType value = DType::Float32;
};
template <>
struct dtype_of<double> {
  static constexpr DType value = DType::Float64;
};
template <>
struct dtype_of<int64_t> {
  static constexpr DType value = DType::Int64;
};

// Calls fn(T{}) with T the C++ type of `dtype`. Kernels are templates on T; this is the one
// place that turns a runtime dtype into a compile-time type.
template <typename Fn>
decltype(auto) dispatch_dtype(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::Float32: return fn(float{});
    case DType::Float64: return fn(double{});
    case DType::Int64: return fn(int64_t{});
  }
  throw std::logic_error("dispatch_dtype: unknown dtype");
}

// Same, for ops defined only on floating-point tensors; `op` names the op in the error.
template <typename Fn>
decltype(auto) dispatch_floating(DType dtype, const char* op, Fn&& fn) {
  switch (dtype) {
    case DType::Float32: return fn(float{});
    case DType::Float64: return fn(double{});
    case DType::Int64: break;
  }
  throw std::invalid_argument(std::string(op) + ": expected a float32 or float64 tensor, got " +
                              dtype_name(dtype));
}

enum class DeviceType { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0; // GPU ordinal; always 0 for the CPU

  static Device cpu() { return {DeviceType::CPU, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::CUDA, index}; }
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }
};

// Parses "cpu", "cuda" or "cuda:N".
Device parse_device(const std::string& text);

} // namespace ssm
