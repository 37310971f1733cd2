// safetensors.cpp: the safetensors reader (validate the header, then convert each tensor's
// bytes) and writer (build the header, pad it, encode each tensor); see safetensors.h for the
// layout and the rules.
#include "data/safetensors.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>
#include <stdexcept>

#include "data/atomic_file.h"
#include "data/json.h"

namespace ssm {

// Elements are copied between the file and memory with memcpy, which is only correct when the
// machine's byte order matches the file's.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors.cpp assumes a little-endian machine (the file format is little-endian)");

// The reference implementation refuses headers above 100 MB; a larger length means a corrupt
// or foreign file, and checking it first avoids a huge allocation.
constexpr uint64_t kMaxHeaderBytes = 100000000;

// ---- dtypes --------------------------------------------------------------------------------

struct StorageDTypeInfo {
  StorageDType dtype;
  const char* name;
  size_t size;
  bool floating;
};

static const StorageDTypeInfo kStorageDTypes[] = {
    {StorageDType::F64, "F64", 8, true},  {StorageDType::F32, "F32", 4, true},
    {StorageDType::F16, "F16", 2, true},  {StorageDType::BF16, "BF16", 2, true},
    {StorageDType::I64, "I64", 8, false}, {StorageDType::I32, "I32", 4, false},
    {StorageDType::I16, "I16", 2, false}, {StorageDType::I8, "I8", 1, false},
    {StorageDType::U8, "U8", 1, false},   {StorageDType::BOOL, "BOOL", 1, false},
};

static const StorageDTypeInfo& info_of(StorageDType dtype) {
  for (const auto& info : kStorageDTypes)
    if (info.dtype == dtype) return info;
  throw std::logic_error("safetensors: unknown StorageDType");
}

const char* storage_dtype_name(StorageDType dtype) { return info_of(dtype).name; }
size_t storage_dtype_size(StorageDType dtype) { return info_of(dtype).size; }
bool is_floating(StorageDType dtype) { return info_of(dtype).floating; }

std::optional<StorageDType> parse_storage_dtype(const std::string& name) {
  for (const auto& info : kStorageDTypes)
    if (name == info.name) return info.dtype;
  return std::nullopt;
}

static std::string supported_dtype_list() {
  std::string list;
  for (const auto& info : kStorageDTypes) list += std::string(list.empty() ? "" : ", ") + info.name;
  return list;
}

// ---- 16-bit floats -------------------------------------------------------------------------

// binary16: sign (1) | exponent (5, bias 15) | fraction (10)
//     exponent 0:      (-1)^s * 0.fraction * 2^-14   = fraction * 2^-24   (zero, subnormal)
//     exponent 1..30:  (-1)^s * 1.fraction * 2^(e-15) = (1024 + fraction) * 2^(e-25)
//     exponent 31:     infinity (fraction 0) or NaN
float half_bits_to_float(uint16_t bits) {
  const bool negative = bits >> 15;
  const int exponent = (bits >> 10) & 0x1f;
  const int fraction = bits & 0x3ff;
  float magnitude;
  if (exponent == 0)
    magnitude = std::ldexp(static_cast<float>(fraction), -24);
  else if (exponent == 31)
    magnitude =
        fraction ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  else
    magnitude = std::ldexp(static_cast<float>(1024 + fraction), exponent - 25);
  return negative ? -magnitude : magnitude;
}

// bfloat16 is the upper 16 bits of a float32: the same 8-bit exponent, 7 fraction bits.
float bfloat16_bits_to_float(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &wide, sizeof value);
  return value;
}

// Rounds `value` to a binary format with `exponent_bits` exponent bits (bias 2^(k-1) - 1) and
// `fraction_bits` stored fraction bits, to nearest with ties to even, and returns its bits.
//
// With E = max(floor(log2 |x|), 1 - bias) the representable values near |x| are multiples of
// the quantum q = 2^(E - fraction_bits), so n = round(|x| / q) is the significand (|x| / q is
// exact: q is a power of two). nearbyint rounds ties to even in the default rounding mode.
//     normal (E >= 1 - bias, n in [2^f, 2^(f+1)]): bits = ((E + bias) << f) + (n - 2^f)
//     subnormal (|x| < 2^(1 - bias)):              bits = n
// When rounding carries n up to 2^(f+1) (or a subnormal up to 2^f) the addition moves the carry
// into the exponent field by itself; past the largest exponent the bits reach the infinity
// pattern, which is the correct overflow result.
static uint16_t round_to_small_float(double value, int exponent_bits, int fraction_bits) {
  const uint32_t sign = std::signbit(value) ? 1u << (exponent_bits + fraction_bits) : 0;
  const uint32_t infinity = ((1u << exponent_bits) - 1) << fraction_bits;
  if (std::isnan(value)) return static_cast<uint16_t>(sign | infinity | 1u << (fraction_bits - 1));
  const double magnitude = std::fabs(value);
  if (std::isinf(magnitude)) return static_cast<uint16_t>(sign | infinity);
  if (magnitude == 0) return static_cast<uint16_t>(sign);
  const int bias = (1 << (exponent_bits - 1)) - 1;
  const int min_exponent = 1 - bias;
  const int exponent = std::max(std::ilogb(magnitude), min_exponent);
  if (exponent + bias >= static_cast<int>((1u << exponent_bits) - 1))
    return static_cast<uint16_t>(sign | infinity);
  const double quantum = std::ldexp(1.0, exponent - fraction_bits);
  const uint32_t n = static_cast<uint32_t>(std::nearbyint(magnitude / quantum));
  const uint32_t bits =
      magnitude < std::ldexp(1.0, min_exponent)
          ? n
          : (static_cast<uint32_t>(exponent + bias) << fraction_bits) + (n - (1u << fraction_bits));
  return static_cast<uint16_t>(sign | std::min(bits, infinity));
}

uint16_t float_to_half_bits(double value) { return round_to_small_float(value, 5, 10); }
uint16_t float_to_bfloat16_bits(double value) { return round_to_small_float(value, 8, 7); }

// ---- SafetensorsFile -----------------------------------------------------------------------

const SafetensorsTensor* SafetensorsFile::find(const std::string& tensor_name) const {
  for (const auto& entry : tensors)
    if (entry.name == tensor_name) return &entry;
  return nullptr;
}

bool SafetensorsFile::contains(const std::string& tensor_name) const {
  return find(tensor_name) != nullptr;
}

const Tensor& SafetensorsFile::get(const std::string& tensor_name) const {
  const SafetensorsTensor* entry = find(tensor_name);
  if (!entry)
    throw std::out_of_range(name + ": no tensor named '" + tensor_name + "' (the file has " +
                            std::to_string(tensors.size()) + " tensors)");
  return entry->tensor;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> result;
  for (const auto& entry : tensors) result.push_back(entry.name);
  return result;
}

// ---- reading -------------------------------------------------------------------------------

// One header entry after validation; bytes [begin, end) of the data section.
struct HeaderEntry {
  std::string name;
  StorageDType stored;
  Shape shape;
  int64_t numel;
  uint64_t begin, end;
};

[[noreturn]] static void bad_file(const std::string& file, const std::string& problem) {
  throw std::invalid_argument(file + ": " + problem);
}

// A non-negative integer that fits in int64, or a message naming `what` and the found value.
static int64_t header_count(const Json& value, const std::string& file, const std::string& what) {
  if (!value.is_integer() || value.as_int() < 0)
    bad_file(file, what + " must be a non-negative integer, found " +
                       (value.is_number() || value.is_string()
                            ? value.type_name() + std::string(" ") + value.dump()
                            : value.type_name()));
  return value.as_int();
}

static const Json& entry_field(const Json& entry, const std::string& file,
                               const std::string& tensor, const char* key,
                               bool (Json::*has_type)() const, const char* expected) {
  const Json* field = entry.find(key);
  if (!field) bad_file(file, "tensor '" + tensor + "': missing '" + key + "'");
  if (!(field->*has_type)())
    bad_file(file, "tensor '" + tensor + "': '" + key + "' must be " + expected + ", found " +
                       field->type_name());
  return *field;
}

static HeaderEntry parse_entry(const std::string& tensor, const Json& entry,
                               const std::string& file, uint64_t data_size) {
  if (!entry.is_object())
    bad_file(file, "tensor '" + tensor +
                       "': expected an object with dtype, shape and data_offsets, found " +
                       entry.type_name());
  HeaderEntry result;
  result.name = tensor;
  const std::string& dtype_name =
      entry_field(entry, file, tensor, "dtype", &Json::is_string, "a string").as_string();
  const std::optional<StorageDType> stored = parse_storage_dtype(dtype_name);
  if (!stored)
    bad_file(file, "tensor '" + tensor + "': unknown or unsupported dtype '" + dtype_name +
                       "' (supported: " + supported_dtype_list() + ")");
  result.stored = *stored;

  // numel = prod(shape). Zero dims make it 0; the product of the other dims must still fit
  // in int64, because Tensor's strides are products of the non-zero dims.
  const Json& shape = entry_field(entry, file, tensor, "shape", &Json::is_array, "an array");
  int64_t nonzero_product = 1;
  bool has_zero = false;
  for (size_t i = 0; i < shape.size(); ++i) {
    const int64_t dim = header_count(shape.at(i), file,
                                     "tensor '" + tensor + "': shape[" + std::to_string(i) + "]");
    result.shape.push_back(dim);
    if (dim == 0) {
      has_zero = true;
    } else if (nonzero_product > std::numeric_limits<int64_t>::max() / dim) {
      bad_file(file, "tensor '" + tensor + "': shape " + shape.dump() +
                         " has more elements than int64 can count (overflow)");
    } else {
      nonzero_product *= dim;
    }
  }
  result.numel = has_zero ? 0 : nonzero_product;

  const Json& offsets =
      entry_field(entry, file, tensor, "data_offsets", &Json::is_array, "an array");
  if (offsets.size() != 2)
    bad_file(file, "tensor '" + tensor + "': data_offsets must be [begin, end], found " +
                       std::to_string(offsets.size()) + " values");
  result.begin = header_count(offsets.at(0), file, "tensor '" + tensor + "': data_offsets[0]");
  result.end = header_count(offsets.at(1), file, "tensor '" + tensor + "': data_offsets[1]");
  const std::string range =
      "[" + std::to_string(result.begin) + ", " + std::to_string(result.end) + "]";
  if (result.begin > result.end)
    bad_file(file, "tensor '" + tensor + "': data_offsets " + range + " have begin > end");
  if (result.end > data_size)
    bad_file(file, "tensor '" + tensor + "': data_offsets " + range +
                       " run past the end of the data section (" + std::to_string(data_size) +
                       " bytes)");
  const uint64_t length = result.end - result.begin;
  const uint64_t element_size = storage_dtype_size(result.stored);
  if (length % element_size != 0 || length / element_size != static_cast<uint64_t>(result.numel))
    bad_file(file, "tensor '" + tensor + "': data_offsets " + range + " hold " +
                       std::to_string(length) + " bytes, but " + dtype_name + " shape " +
                       shape_str(result.shape) + " needs " + std::to_string(result.numel) +
                       " elements of " + std::to_string(element_size) + " bytes (wrong size)");
  return result;
}

// Non-empty byte ranges must be disjoint: sorted by begin, each starts at or after the
// previous end. Empty tensors occupy no bytes and may sit anywhere.
static void check_no_overlap(const std::vector<HeaderEntry>& entries, const std::string& file) {
  std::vector<const HeaderEntry*> sorted;
  for (const auto& entry : entries)
    if (entry.begin < entry.end) sorted.push_back(&entry);
  std::sort(sorted.begin(), sorted.end(),
            [](const HeaderEntry* a, const HeaderEntry* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < sorted.size(); ++i)
    if (sorted[i]->begin < sorted[i - 1]->end)
      bad_file(file, "tensors '" + sorted[i - 1]->name + "' [" +
                         std::to_string(sorted[i - 1]->begin) + ", " +
                         std::to_string(sorted[i - 1]->end) + ") and '" + sorted[i]->name + "' [" +
                         std::to_string(sorted[i]->begin) + ", " + std::to_string(sorted[i]->end) +
                         ") overlap");
}

// dst[i] = convert(element i of src), each element read with memcpy (no alignment needed).
template <typename Stored, typename Out, typename Convert>
static void decode_each(const uint8_t* src, int64_t n, Out* dst, Convert convert) {
  for (int64_t i = 0; i < n; ++i) {
    Stored stored;
    std::memcpy(&stored, src + i * sizeof(Stored), sizeof(Stored));
    dst[i] = static_cast<Out>(convert(stored));
  }
}

template <typename Out>
static void decode(StorageDType stored, const uint8_t* src, int64_t n, Out* dst) {
  const auto same = [](auto v) { return v; };
  switch (stored) {
    case StorageDType::F64: decode_each<double>(src, n, dst, same); return;
    case StorageDType::F32: decode_each<float>(src, n, dst, same); return;
    case StorageDType::F16: decode_each<uint16_t>(src, n, dst, half_bits_to_float); return;
    case StorageDType::BF16: decode_each<uint16_t>(src, n, dst, bfloat16_bits_to_float); return;
    case StorageDType::I64: decode_each<int64_t>(src, n, dst, same); return;
    case StorageDType::I32: decode_each<int32_t>(src, n, dst, same); return;
    case StorageDType::I16: decode_each<int16_t>(src, n, dst, same); return;
    case StorageDType::I8: decode_each<int8_t>(src, n, dst, same); return;
    case StorageDType::U8: decode_each<uint8_t>(src, n, dst, same); return;
    case StorageDType::BOOL:
      decode_each<uint8_t>(src, n, dst, [](uint8_t v) { return v != 0 ? 1 : 0; });
      return;
  }
}

static DType load_dtype(StorageDType stored, LoadDType load) {
  if (!is_floating(stored)) return DType::Int64;
  switch (load) {
    case LoadDType::Float32: return DType::Float32;
    case LoadDType::Float64: return DType::Float64;
    case LoadDType::Native: break;
  }
  return stored == StorageDType::F64 ? DType::Float64 : DType::Float32;
}

SafetensorsFile parse_safetensors(const uint8_t* bytes, size_t size, const std::string& name,
                                  LoadDType load) {
  if (size < 8)
    bad_file(name, "file is only " + std::to_string(size) +
                       " bytes; a safetensors file starts with an 8-byte header length");
  uint64_t header_size;
  std::memcpy(&header_size, bytes, 8);
  if (header_size > kMaxHeaderBytes)
    bad_file(name, "header length " + std::to_string(header_size) + " is above the " +
                       std::to_string(kMaxHeaderBytes) +
                       "-byte limit (corrupt, or not a safetensors file)");
  if (header_size > size - 8)
    bad_file(name, "header length " + std::to_string(header_size) +
                       " runs past the end of the file (" + std::to_string(size) + " bytes)");
  const uint8_t* data = bytes + 8 + header_size;
  const uint64_t data_size = size - 8 - header_size;

  const Json header = Json::parse(
      std::string(reinterpret_cast<const char*>(bytes) + 8, header_size), name + ": header");
  if (!header.is_object())
    bad_file(name, std::string("header must be a JSON object, found ") + header.type_name());

  SafetensorsFile file;
  file.name = name;
  std::vector<HeaderEntry> entries;
  for (const auto& [key, value] : header.as_object()) {
    if (key != "__metadata__") {
      entries.push_back(parse_entry(key, value, name, data_size));
      continue;
    }
    if (!value.is_object())
      bad_file(name, std::string("__metadata__ must be an object of strings, found ") +
                         value.type_name());
    for (const auto& [meta_key, meta_value] : value.as_object()) {
      if (!meta_value.is_string())
        bad_file(name, "__metadata__ value of '" + meta_key + "' must be a string, found " +
                           meta_value.type_name());
      file.metadata[meta_key] = meta_value.as_string();
    }
  }
  check_no_overlap(entries, name);

  for (const auto& entry : entries) {
    Tensor tensor = Tensor::empty(entry.shape, load_dtype(entry.stored, load));
    dispatch_dtype(tensor.dtype(), [&](auto zero) {
      using T = decltype(zero);
      decode(entry.stored, data + entry.begin, entry.numel, tensor.data<T>());
    });
    file.tensors.push_back({entry.name, entry.stored, std::move(tensor)});
  }
  return file;
}

SafetensorsFile load_safetensors(const std::string& path, LoadDType load) {
  const std::string bytes = read_file(path);
  return parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path,
                           load);
}

// ---- writing -------------------------------------------------------------------------------

static StorageDType default_storage(DType dtype) {
  switch (dtype) {
    case DType::Float32: return StorageDType::F32;
    case DType::Float64: return StorageDType::F64;
    case DType::Int64: return StorageDType::I64;
  }
  throw std::logic_error("safetensors: unknown DType");
}

[[noreturn]] static void value_out_of_range(const std::string& context, const std::string& tensor,
                                            int64_t index, const std::string& value,
                                            StorageDType storage, const std::string& range) {
  throw std::out_of_range(context + ": tensor '" + tensor + "' element " + std::to_string(index) +
                          " is " + value + ", outside the " + storage_dtype_name(storage) +
                          " range " + range);
}

// Writes convert(values[i], i) for i < n to dst as n consecutive Stored values.
template <typename Stored, typename T, typename Convert>
static void encode_each(const T* values, int64_t n, uint8_t* dst, Convert convert) {
  for (int64_t i = 0; i < n; ++i) {
    const Stored stored = convert(values[i], i);
    std::memcpy(dst + i * sizeof(Stored), &stored, sizeof(Stored));
  }
}

// Encodes n contiguous values as `storage`. Float formats must not turn a finite value into
// infinity; integer formats need lo <= v <= hi (only int64 tensors reach them, the caller
// checks that).
template <typename T>
static void encode(const T* values, int64_t n, StorageDType storage, uint8_t* dst,
                   const std::string& context, const std::string& tensor) {
  const auto check_overflow = [&](int64_t i, double value, bool stored_is_infinite) {
    if (std::isfinite(value) && stored_is_infinite)
      value_out_of_range(context, tensor, i, Json(value).dump(), storage,
                         "(the value would become infinity)");
  };
  const auto to_16_bits = [&](uint16_t (*to_bits)(double), float (*from_bits)(uint16_t)) {
    encode_each<uint16_t>(values, n, dst, [&](T v, int64_t i) {
      const uint16_t bits = to_bits(static_cast<double>(v));
      check_overflow(i, static_cast<double>(v), std::isinf(from_bits(bits)));
      return bits;
    });
  };
  const auto to_integer = [&](auto stored_zero, int64_t lo, int64_t hi) {
    using Stored = decltype(stored_zero);
    encode_each<Stored>(values, n, dst, [&](T v, int64_t i) {
      const int64_t x = static_cast<int64_t>(v);
      if (x < lo || x > hi)
        value_out_of_range(context, tensor, i, std::to_string(x), storage,
                           "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
      return static_cast<Stored>(x);
    });
  };
  switch (storage) {
    case StorageDType::F64:
      encode_each<double>(values, n, dst, [](T v, int64_t) { return static_cast<double>(v); });
      return;
    case StorageDType::F32:
      encode_each<float>(values, n, dst, [&](T v, int64_t i) {
        const float f = static_cast<float>(v);
        check_overflow(i, static_cast<double>(v), std::isinf(f));
        return f;
      });
      return;
    case StorageDType::F16: to_16_bits(float_to_half_bits, half_bits_to_float); return;
    case StorageDType::BF16: to_16_bits(float_to_bfloat16_bits, bfloat16_bits_to_float); return;
    case StorageDType::I64: to_integer(int64_t{}, INT64_MIN, INT64_MAX); return;
    case StorageDType::I32: to_integer(int32_t{}, INT32_MIN, INT32_MAX); return;
    case StorageDType::I16: to_integer(int16_t{}, INT16_MIN, INT16_MAX); return;
    case StorageDType::I8: to_integer(int8_t{}, INT8_MIN, INT8_MAX); return;
    case StorageDType::U8: to_integer(uint8_t{}, 0, UINT8_MAX); return;
    case StorageDType::BOOL: to_integer(uint8_t{}, 0, 1); return;
  }
}

static std::vector<uint8_t> serialize(const std::vector<NamedTensor>& tensors,
                                      const std::map<std::string, std::string>& metadata,
                                      const std::string& context) {
  // Header: metadata first, then one entry per tensor with back-to-back byte ranges.
  Json::Object header;
  if (!metadata.empty()) {
    Json::Object meta;
    for (const auto& [key, value] : metadata) meta.emplace_back(key, Json(value));
    header.emplace_back("__metadata__", Json(std::move(meta)));
  }
  std::set<std::string> seen;
  std::vector<StorageDType> storages;
  uint64_t offset = 0;
  for (const auto& entry : tensors) {
    if (entry.name == "__metadata__")
      throw std::invalid_argument(context + ": '__metadata__' is reserved, not a tensor name");
    if (!seen.insert(entry.name).second)
      throw std::invalid_argument(context + ": tensor name '" + entry.name + "' appears twice");
    if (!entry.tensor.defined())
      throw std::invalid_argument(context + ": tensor '" + entry.name + "' is undefined");
    const StorageDType storage = entry.storage.value_or(default_storage(entry.tensor.dtype()));
    if (!is_floating(storage) && is_floating(entry.tensor.dtype()))
      throw std::invalid_argument(context + ": tensor '" + entry.name + "' is " +
                                  dtype_name(entry.tensor.dtype()) + "; " +
                                  storage_dtype_name(storage) + " storage needs an int64 tensor");
    storages.push_back(storage);
    const uint64_t length =
        static_cast<uint64_t>(entry.tensor.numel()) * storage_dtype_size(storage);
    Json::Array shape;
    for (int64_t dim : entry.tensor.shape()) shape.emplace_back(dim);
    header.emplace_back(
        entry.name, Json(Json::Object{
                        {"dtype", Json(storage_dtype_name(storage))},
                        {"shape", Json(std::move(shape))},
                        {"data_offsets", Json(Json::Array{Json(offset), Json(offset + length)})}}));
    offset += length;
  }
  std::string header_text = Json(std::move(header)).dump();
  header_text.append((8 - header_text.size() % 8) % 8, ' ');

  std::vector<uint8_t> bytes(8 + header_text.size() + offset);
  const uint64_t header_size = header_text.size();
  std::memcpy(bytes.data(), &header_size, 8);
  std::memcpy(bytes.data() + 8, header_text.data(), header_text.size());
  uint8_t* dst = bytes.data() + 8 + header_text.size();
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor values = tensors[i].tensor.to(Device::cpu()).contiguous(); // CUDA: a host copy
    dispatch_dtype(values.dtype(), [&](auto zero) {
      using T = decltype(zero);
      encode(values.data<T>(), values.numel(), storages[i], dst, context, tensors[i].name);
    });
    dst += values.numel() * storage_dtype_size(storages[i]);
  }
  return bytes;
}

std::vector<uint8_t> serialize_safetensors(const std::vector<NamedTensor>& tensors,
                                           const std::map<std::string, std::string>& metadata) {
  return serialize(tensors, metadata, "serialize_safetensors");
}

void save_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const std::vector<uint8_t> bytes = serialize(tensors, metadata, path);
  write_file_atomic(path, bytes.data(), bytes.size());
}

} // namespace ssm
