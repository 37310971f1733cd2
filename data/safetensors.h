// safetensors.h: reading and writing .safetensors files (the Hugging Face weight format).
//
// Layout of a file of S bytes:
//     bytes [0, 8)        N, the header length, uint64 little-endian
//     bytes [8, 8+N)      header: a JSON object
//                           "<tensor name>": {"dtype": "F32", "shape": [50, 32],
//                                             "data_offsets": [begin, end]}
//                           "__metadata__": {"<key>": "<string value>", ...}   (optional)
//     bytes [8+N, S)      data section; a tensor's bytes are [8+N+begin, 8+N+end), row-major,
//                         little-endian, end - begin = prod(shape) * dtype size
//
// Reading: every stored dtype below converts to a project dtype. Integers and BOOL become
// Int64. Floating formats follow LoadDType: Native keeps F64 as Float64 and turns F32, F16 and
// BF16 into Float32 (lossless); Float32 / Float64 force one type (Float64 for gradient
// references). The reader checks everything before it reads data and throws
// std::invalid_argument naming the file and the problem, for: a file under 8 bytes; a header
// length beyond the file or above 100 MB; invalid JSON; a header that is not an object;
// duplicate names; an entry that is not an object or lacks dtype / shape / data_offsets or
// has them with the wrong type; an unknown dtype; shape entries that are negative or not
// integers; a shape whose element count overflows int64; begin > end; end beyond the data
// section; end - begin != prod(shape) * dtype size; two tensors whose byte ranges overlap;
// metadata that is not an object of strings. Accepted on purpose (other readers differ):
// gaps between tensors and unused bytes after the last one (never read, so harmless), and
// unknown extra keys inside an entry (ignored, as the reference Rust reader does).
//
// Writing: each tensor is stored as F64 / F32 / I64 after its dtype, or as the storage dtype
// its entry requests: F16 and BF16 round to nearest, ties to even; I32, I16, I8, U8 and
// BOOL require integer tensors whose every value fits (std::out_of_range names the tensor,
// the element and the value otherwise); a finite value that overflows a narrower float
// format throws the same way. Views of any layout are written contiguously, in the order
// given, without gaps; the header (metadata first) is padded with spaces to a multiple of 8
// bytes so the data section starts 8-byte aligned. Files are written with
// write_file_atomic.
//
// The format is little-endian; so is every machine this project targets (x86-64, aarch64,
// and the GPU hosts), and safetensors.cpp refuses to compile elsewhere.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace ssm {

// The dtypes of the file format, by their header names.
enum class StorageDType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };
const char* storage_dtype_name(StorageDType dtype); // "F16"
size_t storage_dtype_size(StorageDType dtype);      // bytes per element
bool is_floating(StorageDType dtype);
// Parses a header name; std::nullopt for unknown or unsupported ones (U64, F8_E4M3, ...).
std::optional<StorageDType> parse_storage_dtype(const std::string& name);

enum class LoadDType { Native, Float32, Float64 };

struct SafetensorsTensor {
  std::string name;
  StorageDType stored; // the dtype in the file, before conversion
  Tensor tensor;       // CPU, contiguous
};

struct SafetensorsFile {
  std::string name; // the path (or buffer name) that error messages start with
  std::vector<SafetensorsTensor> tensors; // header order
  std::map<std::string, std::string> metadata;

  bool contains(const std::string& tensor_name) const;
  const SafetensorsTensor* find(const std::string& tensor_name) const; // nullptr if absent
  // std::out_of_range "model.safetensors: no tensor named 'x'" when absent.
  const Tensor& get(const std::string& tensor_name) const;
  std::vector<std::string> names() const;
};

// Parses a whole file held in memory; `name` starts every error message.
SafetensorsFile parse_safetensors(const uint8_t* bytes, size_t size, const std::string& name,
                                  LoadDType load = LoadDType::Native);
SafetensorsFile load_safetensors(const std::string& path, LoadDType load = LoadDType::Native);

struct NamedTensor {
  std::string name;
  Tensor tensor;
  // Storage dtype in the file; std::nullopt stores Float64 / Float32 / Int64 as F64 / F32 / I64.
  std::optional<StorageDType> storage = std::nullopt;
};

// The file's bytes. Names must be unique and not "__metadata__" (any other string is a
// valid JSON key, so any other string is allowed, as the reader allows it).
std::vector<uint8_t> serialize_safetensors(const std::vector<NamedTensor>& tensors,
                                           const std::map<std::string, std::string>& metadata = {});
void save_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// The 16-bit float formats, by hand (IEEE 754 binary16; bfloat16 = the top half of a float32).
// Both directions handle zeros, subnormals, infinities and NaN; rounding is to nearest, ties
// to even, directly from double (no double rounding through float).
float half_bits_to_float(uint16_t bits);
uint16_t float_to_half_bits(double value);
float bfloat16_bits_to_float(uint16_t bits);
uint16_t float_to_bfloat16_bits(double value);

} // namespace ssm
