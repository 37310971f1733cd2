// fuzz_safetensors.cpp: libFuzzer target for the safetensors reader, through the in-memory
// parse_safetensors (build: make fuzz; how to run it and the results so far: docs/fuzzing.md).
//
// Every input is parsed as a file. Rejections (std::invalid_argument) are the expected answer
// to most inputs and are ignored. For an input that loads, the writer must round-trip: saving
// every tensor in its stored dtype with the same metadata and reading the bytes back gives the
// same names, stored dtypes, shapes and values (NaN compares equal to NaN); and loading with
// LoadDType::Float64 gives the same values widened. A crash, a sanitizer report, a leak, an
// uncaught exception or a broken round trip is a bug.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "data/safetensors.h"

using namespace ssm;

static bool same_values(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return false;
  const std::vector<double> va = a.to_doubles(), vb = b.to_doubles();
  for (size_t i = 0; i < va.size(); ++i)
    if (!(va[i] == vb[i] || (std::isnan(va[i]) && std::isnan(vb[i])))) return false;
  return true;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  SafetensorsFile file;
  try {
    file = parse_safetensors(data, size, "fuzz");
  } catch (const std::invalid_argument&) {
    return 0;
  }

  std::vector<NamedTensor> tensors;
  for (const auto& entry : file.tensors)
    tensors.push_back({entry.name, entry.tensor, entry.stored});
  const std::vector<uint8_t> bytes = serialize_safetensors(tensors, file.metadata);
  const SafetensorsFile again = parse_safetensors(bytes.data(), bytes.size(), "fuzz: rewritten");
  if (again.tensors.size() != file.tensors.size() || again.metadata != file.metadata)
    __builtin_trap();
  for (size_t i = 0; i < file.tensors.size(); ++i) {
    const SafetensorsTensor& a = file.tensors[i];
    const SafetensorsTensor& b = again.tensors[i];
    if (a.name != b.name || a.stored != b.stored || a.tensor.dtype() != b.tensor.dtype() ||
        !same_values(a.tensor, b.tensor))
      __builtin_trap();
  }

  const SafetensorsFile wide = parse_safetensors(data, size, "fuzz: float64", LoadDType::Float64);
  for (size_t i = 0; i < file.tensors.size(); ++i)
    if (!same_values(file.tensors[i].tensor, wide.tensors[i].tensor)) __builtin_trap();
  return 0;
}
