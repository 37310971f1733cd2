// test_safetensors.cpp: the safetensors reader and writer, the 16-bit float conversions, the
// Hugging Face fixture files, malformed files, and atomic writes.
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "data/atomic_file.h"
#include "data/safetensors.h"
#include "tensor/random.h"
#include "tests/helpers.h"

using namespace ssm;
namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("test_safetensors_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
  // Names of the entries in the directory, to spot leftover temporary files.
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path)) names.push_back(e.path().filename());
    return names;
  }
};

static SafetensorsFile round_trip(const std::vector<NamedTensor>& tensors,
                                  const std::map<std::string, std::string>& metadata = {},
                                  LoadDType load = LoadDType::Native) {
  const std::vector<uint8_t> bytes = serialize_safetensors(tensors, metadata);
  return parse_safetensors(bytes.data(), bytes.size(), "memory", load);
}

// ---- 16-bit floats -------------------------------------------------------------------------

TEST_CASE("safetensors: F16 conversion of known values") {
  // Bit patterns from the IEEE 754 binary16 definition: sign | 5-bit exponent | 10-bit fraction.
  CHECK(float_to_half_bits(1.0) == 0x3c00);
  CHECK(float_to_half_bits(-2.5) == 0xc100);
  CHECK(float_to_half_bits(65504.0) == 0x7bff);                 // largest finite
  CHECK(float_to_half_bits(std::ldexp(1.0, -14)) == 0x0400);    // smallest normal
  CHECK(float_to_half_bits(std::ldexp(1.0, -24)) == 0x0001);    // smallest subnormal
  CHECK(float_to_half_bits(std::ldexp(1023.0, -24)) == 0x03ff); // largest subnormal
  CHECK(float_to_half_bits(0.0) == 0x0000);
  CHECK(float_to_half_bits(-0.0) == 0x8000);
  CHECK(float_to_half_bits(INFINITY) == 0x7c00);
  CHECK(float_to_half_bits(-INFINITY) == 0xfc00);
  const uint16_t nan_bits = float_to_half_bits(std::nan(""));
  CHECK((nan_bits & 0x7c00) == 0x7c00);
  CHECK((nan_bits & 0x03ff) != 0);

  // Rounding: to nearest, ties to the even significand.
  CHECK(float_to_half_bits(1.0 + std::ldexp(1.0, -11)) == 0x3c00);     // tie -> even (down)
  CHECK(float_to_half_bits(1.0 + 3 * std::ldexp(1.0, -11)) == 0x3c02); // tie -> even (up)
  CHECK(float_to_half_bits(1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -30)) == 0x3c01);
  CHECK(float_to_half_bits(std::ldexp(1.0, -25)) == 0x0000);    // half the smallest subnormal
  CHECK(float_to_half_bits(std::ldexp(3.0, -25)) == 0x0002);    // 1.5 subnormal quanta -> 2
  CHECK(float_to_half_bits(std::ldexp(1023.5, -24)) == 0x0400); // carries into the exponent
  CHECK(float_to_half_bits(65519.0) == 0x7bff);
  CHECK(float_to_half_bits(65520.0) == 0x7c00); // the tie above 65504 rounds to infinity
  CHECK(float_to_half_bits(1e10) == 0x7c00);
  CHECK(float_to_half_bits(1e-10) == 0x0000);

  CHECK(half_bits_to_float(0x3c00) == 1.0f);
  CHECK(half_bits_to_float(0xc100) == -2.5f);
  CHECK(half_bits_to_float(0x7bff) == 65504.0f);
  CHECK(half_bits_to_float(0x0001) == std::ldexp(1.0f, -24));
  CHECK(half_bits_to_float(0x3555) == 0.333251953125f);
  CHECK(std::signbit(half_bits_to_float(0x8000)));
  CHECK(half_bits_to_float(0xfc00) == -INFINITY);
  CHECK(std::isnan(half_bits_to_float(0x7e00)));
  CHECK(std::isnan(half_bits_to_float(0xfc01)));

  // Every non-NaN pattern decodes and encodes back to itself.
  int mismatches = 0;
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    const float value = half_bits_to_float(static_cast<uint16_t>(bits));
    if (!std::isnan(value) && float_to_half_bits(value) != bits) ++mismatches;
  }
  CHECK(mismatches == 0);
}

TEST_CASE("safetensors: BF16 conversion of known values") {
  CHECK(float_to_bfloat16_bits(1.0) == 0x3f80);
  CHECK(float_to_bfloat16_bits(-2.5) == 0xc020);
  CHECK(float_to_bfloat16_bits(INFINITY) == 0x7f80);
  CHECK(float_to_bfloat16_bits(std::ldexp(1.0, -133)) == 0x0001);     // smallest subnormal
  CHECK(float_to_bfloat16_bits(1.0 + std::ldexp(1.0, -8)) == 0x3f80); // tie -> even
  CHECK(float_to_bfloat16_bits(1.0 + 3 * std::ldexp(1.0, -8)) == 0x3f82);
  CHECK(float_to_bfloat16_bits(FLT_MAX) == 0x7f80); // above the last tie: infinity
  CHECK(std::isnan(bfloat16_bits_to_float(float_to_bfloat16_bits(std::nan("")))));
  CHECK(bfloat16_bits_to_float(0x7f7f) == 3.3895313892515355e38f);
  CHECK(bfloat16_bits_to_float(0x0001) == std::ldexp(1.0f, -133));
  CHECK(bfloat16_bits_to_float(0xc020) == -2.5f);

  // Against the usual integer formula for float32 input, top16(bits + 0x7fff + lsb), on a
  // spread of float32 values (random bit patterns, NaN excluded).
  Generator gen(7);
  const std::vector<int64_t> patterns =
      Tensor::randint(0, int64_t{1} << 32, {20000}, DType::Int64, &gen).to_vector<int64_t>();
  int mismatches = 0;
  for (int64_t p : patterns) {
    const uint32_t bits = static_cast<uint32_t>(p);
    float value;
    std::memcpy(&value, &bits, 4);
    if (std::isnan(value)) continue;
    const uint16_t expected = static_cast<uint16_t>((bits + 0x7fff + ((bits >> 16) & 1)) >> 16);
    if (float_to_bfloat16_bits(value) != expected) ++mismatches;
  }
  CHECK(mismatches == 0);
}

// ---- round trips ---------------------------------------------------------------------------

TEST_CASE("safetensors: round trip of every storage dtype") {
  Generator gen(11);
  const Tensor x = Tensor::randn({3, 5}, DType::Float64, &gen);
  const Tensor ids = Tensor::from_vector<int64_t>({0, 1, 2, 127, 200, 255}, {2, 3});
  const SafetensorsFile f = round_trip({
      {"f64", x},
      {"f32", x.to(DType::Float32)},
      {"f64_as_f32", x, StorageDType::F32},
      {"f16", x, StorageDType::F16},
      {"bf16", x.to(DType::Float32), StorageDType::BF16},
      {"i64", ids},
      {"i32", ids, StorageDType::I32},
      {"i16", ids, StorageDType::I16},
      {"u8", ids, StorageDType::U8},
      {"i8", Tensor::from_vector<int64_t>({-128, 0, 127}, {3}), StorageDType::I8},
      {"bool", Tensor::from_vector<int64_t>({1, 0, 1}, {3}), StorageDType::BOOL},
  });
  REQUIRE(f.tensors.size() == 11);
  CHECK(f.names().front() == "f64"); // insertion order is kept
  CHECK(f.names().back() == "bool");
  const std::vector<double> xs = x.to_doubles();

  const auto stored = [&](const std::string& n) { return f.find(n)->stored; };
  CHECK(stored("f64") == StorageDType::F64);
  CHECK(stored("f32") == StorageDType::F32);
  CHECK(stored("f16") == StorageDType::F16);
  CHECK(stored("u8") == StorageDType::U8);

  CHECK(f.get("f64").dtype() == DType::Float64);
  CHECK(f.get("f64").to_doubles() == xs); // bit-exact
  CHECK(f.get("f32").dtype() == DType::Float32);
  CHECK(f.get("f32").to_doubles() == x.to(DType::Float32).to_doubles());
  CHECK(f.get("f64_as_f32").to_doubles() == x.to(DType::Float32).to_doubles());
  for (const char* n : {"f16", "bf16"}) {
    const Tensor t = f.get(n);
    CHECK(t.dtype() == DType::Float32);
    CHECK(t.shape() == Shape{3, 5});
    const std::vector<double> got = t.to_doubles();
    for (size_t i = 0; i < xs.size(); ++i) {
      const double expected = std::string(n) == "f16"
                                  ? half_bits_to_float(float_to_half_bits(xs[i]))
                                  : bfloat16_bits_to_float(float_to_bfloat16_bits(xs[i]));
      CHECK(got[i] == expected);
      // Relative spacing of the format: 2^-11 (F16) / 2^-8 (BF16) at worst for normals.
      CHECK(std::fabs(got[i] - xs[i]) <=
            std::fabs(xs[i]) * (std::string(n) == "f16" ? 1e-3 : 4e-3));
    }
  }
  for (const char* n : {"i64", "i32", "i16", "u8"}) {
    CHECK(f.get(n).dtype() == DType::Int64);
    CHECK(f.get(n).to_vector<int64_t>() == ids.to_vector<int64_t>());
  }
  CHECK(f.get("i8").to_vector<int64_t>() == std::vector<int64_t>{-128, 0, 127});
  CHECK(f.get("bool").to_vector<int64_t>() == std::vector<int64_t>{1, 0, 1});
}

TEST_CASE("safetensors: non-contiguous views, 0-d and empty tensors") {
  Generator gen(3);
  const Tensor base = Tensor::randn({4, 6}, DType::Float32, &gen);
  const Tensor transposed = base.transpose(0, 1);                         // [6, 4], strides (1, 6)
  const Tensor strided = base.slice(1, 1, 6, 2);                          // [4, 3], step 2
  const Tensor broadcast = base.select(0, 2).unsqueeze(0).expand({3, 6}); // stride 0
  const Tensor ids = Tensor::arange(0, 12).view({3, 4}).transpose(0, 1);
  REQUIRE_FALSE(transposed.is_contiguous());
  const SafetensorsFile f = round_trip({
      {"transposed", transposed},
      {"strided_f16", strided, StorageDType::F16},
      {"broadcast", broadcast},
      {"ids_u8", ids, StorageDType::U8},
      {"scalar", Tensor::scalar(3.5, DType::Float64)},
      {"empty", Tensor::zeros({0, 3})},
      {"empty_i32", Tensor::zeros({2, 0}, DType::Int64), StorageDType::I32},
      {"after_empty", Tensor::scalar(-1, DType::Int64)},
  });
  CHECK(f.get("transposed").shape() == Shape{6, 4});
  CHECK(f.get("transposed").to_doubles() == transposed.contiguous().to_doubles());
  CHECK(f.get("broadcast").to_doubles() == broadcast.contiguous().to_doubles());
  CHECK(f.get("ids_u8").to_vector<int64_t>() == ids.contiguous().to_vector<int64_t>());
  const std::vector<double> s = strided.to_doubles(), got = f.get("strided_f16").to_doubles();
  for (size_t i = 0; i < s.size(); ++i)
    CHECK(got[i] == half_bits_to_float(float_to_half_bits(s[i])));
  CHECK(f.get("scalar").dim() == 0);
  CHECK(f.get("scalar").item() == 3.5);
  CHECK(f.get("empty").shape() == Shape{0, 3});
  CHECK(f.get("empty_i32").shape() == Shape{2, 0});
  CHECK(f.get("after_empty").item() == -1);
}

TEST_CASE("safetensors: layout of a written file and load dtype choices") {
  const std::vector<uint8_t> bytes = serialize_safetensors(
      {{"a", Tensor::ones({3}), StorageDType::F16}, {"b", Tensor::ones({2}, DType::Float64)}},
      {{"format", "pt"}});
  uint64_t header_size;
  std::memcpy(&header_size, bytes.data(), 8);
  CHECK(header_size % 8 == 0); // the data section starts 8-byte aligned
  CHECK(bytes.size() == 8 + header_size + 3 * 2 + 2 * 8);
  const std::string header(reinterpret_cast<const char*>(bytes.data()) + 8, header_size);
  CHECK(header.rfind(R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F16","shape":[3],)"
                     R"("data_offsets":[0,6]},"b":{"dtype":"F64","shape":[2],)"
                     R"("data_offsets":[6,22]}})",
                     0) == 0);
  CHECK(header.find_last_not_of(' ') + 1 >= header.size() - 7); // padding: spaces, under 8

  const auto load = [&](LoadDType d) {
    return parse_safetensors(bytes.data(), bytes.size(), "m", d);
  };
  CHECK(load(LoadDType::Native).get("a").dtype() == DType::Float32);
  CHECK(load(LoadDType::Native).get("b").dtype() == DType::Float64);
  CHECK(load(LoadDType::Float64).get("a").dtype() == DType::Float64);
  CHECK(load(LoadDType::Float32).get("b").dtype() == DType::Float32);
  CHECK(load(LoadDType::Float32).get("b").to_doubles() == std::vector<double>{1, 1});
}

TEST_CASE("safetensors: metadata round trip and lookups") {
  const std::map<std::string, std::string> metadata = {
      {"format", "pt"}, {"step", "1200"}, {"note", "quotes \" and \\ and \n and \xc3\xa9"}};
  const SafetensorsFile f = round_trip({{"w", Tensor::ones({2})}}, metadata);
  CHECK(f.metadata == metadata);
  CHECK(round_trip({{"w", Tensor::ones({2})}}).metadata.empty());
  CHECK(f.contains("w"));
  CHECK_FALSE(f.contains("v"));
  CHECK_THROWS_WITH_AS(f.get("v"), "memory: no tensor named 'v' (the file has 1 tensors)",
                       std::out_of_range);
}

TEST_CASE("safetensors: write-side checks name the tensor") {
  const Tensor ids = Tensor::from_vector<int64_t>({1, 2, 300}, {3});
  CHECK_THROWS_WITH_AS(serialize_safetensors({{"mask", ids, StorageDType::U8}}),
                       "serialize_safetensors: tensor 'mask' element 2 is 300, outside the U8 "
                       "range [0, 255]",
                       std::out_of_range);
  CHECK_THROWS_WITH_AS(
      serialize_safetensors(
          {{"ids", Tensor::from_vector<int64_t>({-3000000000}, {1}), StorageDType::I32}}),
      doctest::Contains("tensor 'ids' element 0 is -3000000000, outside the I32 range"),
      std::out_of_range);
  CHECK_THROWS_AS(serialize_safetensors({{"b", ids, StorageDType::BOOL}}), std::out_of_range);
  CHECK_THROWS_WITH_AS(
      serialize_safetensors({{"big", Tensor::from_values({1, 1e5}, {2}), StorageDType::F16}}),
      "serialize_safetensors: tensor 'big' element 1 is 100000, outside the F16 range (the "
      "value would become infinity)",
      std::out_of_range);
  CHECK_THROWS_WITH_AS(
      serialize_safetensors(
          {{"h", Tensor::from_values({1e300}, {1}, DType::Float64), StorageDType::F32}}),
      doctest::Contains("tensor 'h' element 0 is 1e+300, outside the F32 range"),
      std::out_of_range);
  // Infinity itself is representable and stays infinity.
  CHECK(std::isinf(
      round_trip({{"inf", Tensor::full({1}, INFINITY), StorageDType::F16}}).get("inf").item()));
  CHECK_THROWS_WITH_AS(serialize_safetensors({{"w", Tensor::ones({2}), StorageDType::I32}}),
                       "serialize_safetensors: tensor 'w' is float32; I32 storage needs an int64 "
                       "tensor",
                       std::invalid_argument);
  CHECK_THROWS_WITH(serialize_safetensors({{"w", Tensor::ones({1})}, {"w", Tensor::ones({1})}}),
                    "serialize_safetensors: tensor name 'w' appears twice");
  CHECK_THROWS_WITH_AS(serialize_safetensors({{"__metadata__", Tensor::ones({1})}}),
                       "serialize_safetensors: '__metadata__' is reserved, not a tensor name",
                       std::invalid_argument);
  CHECK_THROWS_AS(serialize_safetensors({{"u", Tensor()}}), std::invalid_argument);
}

// ---- the Hugging Face fixtures -------------------------------------------------------------

const std::string kFixtureDir = "../shared/fixtures/hf_mamba_tiny/";

// A deliberately separate, minimal reader for cross-checking values: the header length from
// its 8 bytes assembled by hand, a tensor's begin offset found by text search in the header,
// an element assembled from its little-endian bytes.
struct RawFixture {
  std::string bytes;
  uint64_t header_size = 0;

  explicit RawFixture(const std::string& path) {
    REQUIRE_MESSAGE(fs::exists(path), "fixture " << path
                                                 << " is missing: run the tests from the "
                                                    "repository root with ../shared/fixtures "
                                                    "present (see its README.md)");
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    for (int i = 7; i >= 0; --i) header_size = header_size << 8 | byte(i);
  }
  uint8_t byte(size_t at) const { return static_cast<uint8_t>(bytes[at]); }
  uint64_t element_bits(const std::string& name, size_t index, size_t width) const {
    const std::string header = bytes.substr(8, header_size);
    const size_t entry = header.find("\"" + name + "\":");
    REQUIRE(entry != std::string::npos);
    const size_t offsets = header.find("\"data_offsets\":[", entry) + 16;
    const uint64_t begin = std::stoull(header.substr(offsets, 20));
    const size_t at = 8 + header_size + begin + index * width;
    uint64_t bits = 0;
    for (size_t i = width; i-- > 0;) bits = bits << 8 | byte(at + i);
    return bits;
  }
  float f32(const std::string& name, size_t index) const {
    const uint32_t bits = static_cast<uint32_t>(element_bits(name, index, 4));
    float v;
    std::memcpy(&v, &bits, 4);
    return v;
  }
  double f64(const std::string& name, size_t index) const {
    const uint64_t bits = element_bits(name, index, 8);
    double v;
    std::memcpy(&v, &bits, 8);
    return v;
  }
  int64_t i64(const std::string& name, size_t index) const {
    return static_cast<int64_t>(element_bits(name, index, 8));
  }
};

TEST_CASE("safetensors: the HF Mamba fixture model loads with the right names, shapes, values") {
  const std::string path = kFixtureDir + "model.safetensors";
  const RawFixture raw(path);
  const SafetensorsFile model = load_safetensors(path);
  CHECK(model.tensors.size() == 22); // 1 embedding + 2 layers x 10 + norm_f; lm_head is tied
  CHECK_FALSE(model.contains("lm_head.weight"));
  CHECK(model.metadata == std::map<std::string, std::string>{{"format", "pt"}});
  for (const auto& entry : model.tensors) {
    CHECK(entry.stored == StorageDType::F32);
    CHECK(entry.tensor.dtype() == DType::Float32);
  }
  const Tensor& embedding = model.get("backbone.embeddings.weight");
  CHECK(embedding.shape() == Shape{50, 32});
  CHECK(model.get("backbone.layers.0.mixer.A_log").shape() == Shape{64, 8});
  CHECK(model.get("backbone.layers.1.mixer.conv1d.weight").shape() == Shape{64, 1, 4});
  CHECK(model.get("backbone.layers.1.mixer.x_proj.weight").shape() == Shape{18, 64});
  CHECK(model.get("backbone.norm_f.weight").shape() == Shape{32});

  const std::vector<float> e = embedding.to_vector<float>();
  for (size_t i : {size_t{0}, size_t{1}, size_t{777}, size_t{1599}})
    CHECK(e[i] == raw.f32("backbone.embeddings.weight", i));
  const std::vector<float> a_log = model.get("backbone.layers.1.mixer.A_log").to_vector<float>();
  for (size_t i : {size_t{0}, size_t{100}, size_t{511}})
    CHECK(a_log[i] == raw.f32("backbone.layers.1.mixer.A_log", i));
  CHECK(model.get("backbone.norm_f.weight").at({31}) == raw.f32("backbone.norm_f.weight", 31));

  // Loading as Float64 widens exactly.
  const SafetensorsFile wide = load_safetensors(path, LoadDType::Float64);
  CHECK(wide.get("backbone.embeddings.weight").dtype() == DType::Float64);
  CHECK(wide.get("backbone.embeddings.weight").to_doubles() == embedding.to_doubles());
}

TEST_CASE("safetensors: the HF Mamba reference outputs load with the right names and values") {
  const std::string path = kFixtureDir + "reference.safetensors";
  const RawFixture raw(path);
  const SafetensorsFile ref = load_safetensors(path);
  const SafetensorsFile model = load_safetensors(kFixtureDir + "model.safetensors");

  const Tensor& input_ids = ref.get("input_ids");
  CHECK(ref.find("input_ids")->stored == StorageDType::I64);
  CHECK(input_ids.dtype() == DType::Int64);
  CHECK(input_ids.shape() == Shape{2, 17});
  for (int64_t id : input_ids.to_vector<int64_t>()) CHECK((id >= 0 && id < 50));
  CHECK(input_ids.at({0, 0}) == raw.i64("input_ids", 0));
  CHECK(input_ids.at({1, 16}) == raw.i64("input_ids", 33));

  const std::vector<int64_t> prompt = ref.get("gen.prompt").to_vector<int64_t>();
  const std::vector<int64_t> tokens = ref.get("gen.tokens").to_vector<int64_t>();
  CHECK(ref.get("gen.prompt").shape() == Shape{1, 5});
  CHECK(ref.get("gen.tokens").shape() == Shape{1, 13});
  CHECK(std::vector<int64_t>(tokens.begin(), tokens.begin() + 5) == prompt);

  const Tensor& logits = ref.get("logits");
  CHECK(ref.find("logits")->stored == StorageDType::F32);
  CHECK(logits.dtype() == DType::Float32);
  CHECK(logits.shape() == Shape{2, 17, 50});
  CHECK(logits.at({1, 16, 49}) == raw.f32("logits", 2 * 17 * 50 - 1));
  CHECK(logits.at({0, 3, 7}) == raw.f32("logits", 3 * 50 + 7));
  CHECK(ref.get("loss").shape() == Shape{1});
  CHECK(ref.get("loss").item() == raw.f32("loss", 0));
  CHECK(ref.get("loss").item() == doctest::Approx(3.98008).epsilon(1e-5));

  for (const char* h : {"hidden.0", "hidden.1", "hidden.2"}) {
    CHECK(ref.get(h).dtype() == DType::Float64);
    CHECK(ref.get(h).shape() == Shape{2, 17, 32});
  }
  CHECK(ref.get("hidden.0").at({1, 2, 3}) == raw.f64("hidden.0", (17 + 2) * 32 + 3));

  // One gradient per parameter, F64, with the parameter's shape.
  int n_grads = 0;
  for (const auto& entry : ref.tensors) {
    if (entry.name.rfind("grad.", 0) != 0) continue;
    ++n_grads;
    INFO(entry.name);
    CHECK(entry.stored == StorageDType::F64);
    CHECK(entry.tensor.dtype() == DType::Float64);
    const std::string parameter = entry.name.substr(5);
    REQUIRE(model.contains(parameter));
    CHECK(entry.tensor.shape() == model.get(parameter).shape());
  }
  CHECK(n_grads == 22);
  CHECK(ref.get("grad.backbone.layers.0.mixer.D").at({5}) ==
        raw.f64("grad.backbone.layers.0.mixer.D", 5));
}

TEST_CASE("safetensors: a fixture re-saved through the writer loads back identical") {
  TempDir dir;
  const SafetensorsFile ref = load_safetensors(kFixtureDir + "reference.safetensors");
  std::vector<NamedTensor> tensors;
  for (const auto& entry : ref.tensors) tensors.push_back({entry.name, entry.tensor});
  save_safetensors(dir.file("copy.safetensors"), tensors, ref.metadata);
  const SafetensorsFile copy = load_safetensors(dir.file("copy.safetensors"));
  REQUIRE(copy.names() == ref.names());
  for (const auto& entry : ref.tensors) {
    CHECK(copy.find(entry.name)->stored == entry.stored);
    CHECK(copy.get(entry.name).to_doubles() == entry.tensor.to_doubles());
  }
}

// ---- malformed files -----------------------------------------------------------------------

// A file from a header text and a data section, with a correct 8-byte length unless
// `header_size` overrides it.
static std::vector<uint8_t> make_file(const std::string& header, size_t data_bytes,
                                      uint64_t header_size = UINT64_MAX) {
  if (header_size == UINT64_MAX) header_size = header.size();
  std::vector<uint8_t> bytes(8 + header.size() + data_bytes, 0);
  std::memcpy(bytes.data(), &header_size, 8);
  std::memcpy(bytes.data() + 8, header.data(), header.size());
  return bytes;
}

static std::string load_error(const std::vector<uint8_t>& bytes) {
  try {
    parse_safetensors(bytes.data(), bytes.size(), "bad.safetensors");
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(loaded without error)";
}

TEST_CASE("safetensors: malformed files are rejected with a message naming the problem") {
  const std::string good = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  REQUIRE(load_error(make_file(good, 8)) == "(loaded without error)");

  struct Case {
    const char* what;
    std::vector<uint8_t> bytes;
    const char* message_part;
  };
  const Case cases[] = {
      {"truncated before the length", {1, 0, 0, 0, 0}, "file is only 5 bytes"},
      {"empty file", {}, "file is only 0 bytes"},
      {"header length past the end", make_file(good, 8, 1000), "runs past the end of the file"},
      {"absurd header length", make_file(good, 8, uint64_t{1} << 62), "above the 100000000-byte"},
      {"invalid JSON", make_file(R"({"a":{"dtype":"F32",)", 8), "header: invalid JSON at byte"},
      {"header not an object", make_file("[1, 2]", 0), "header must be a JSON object, found array"},
      {"entry not an object", make_file(R"({"a": 3})", 0), "tensor 'a': expected an object"},
      {"missing data_offsets", make_file(R"({"a":{"dtype":"F32","shape":[2]}})", 8),
       "tensor 'a': missing 'data_offsets'"},
      {"missing dtype", make_file(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", 8),
       "tensor 'a': missing 'dtype'"},
      {"missing shape", make_file(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", 8),
       "tensor 'a': missing 'shape'"},
      {"dtype not a string", make_file(R"({"a":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", 8),
       "'dtype' must be a string, found number"},
      {"shape not an array",
       make_file(R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", 8),
       "'shape' must be an array"},
      {"unknown dtype",
       make_file(R"({"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", 2),
       "unknown or unsupported dtype 'F8_E4M3'"},
      {"negative shape", make_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8),
       "shape[0] must be a non-negative integer, found number -2"},
      {"fractional shape",
       make_file(R"({"a":{"dtype":"F32","shape":[1,2.5],"data_offsets":[0,8]}})", 8),
       "shape[1] must be a non-negative integer, found number 2.5"},
      {"shape product overflow",
       make_file(R"({"a":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8),
       "more elements than int64 can count"},
      {"three offsets", make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}})", 8),
       "data_offsets must be [begin, end], found 3 values"},
      {"offset as string",
       make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":["0",8]}})", 8),
       "data_offsets[0] must be a non-negative integer, found string \"0\""},
      {"begin > end", make_file(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8),
       "have begin > end"},
      {"end beyond the data", make_file(good, 4), "run past the end of the data section (4 bytes)"},
      {"wrong byte size for the shape",
       make_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
       "hold 8 bytes, but F32 shape [3] needs 3 elements of 4 bytes (wrong size)"},
      {"overlapping tensors",
       make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                 R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                 12),
       "tensors 'a' [0, 8) and 'b' [4, 12) overlap"},
      {"duplicate tensor name",
       make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                 R"("a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                 16),
       "'a' appears twice (duplicate key)"},
      {"non-string metadata",
       make_file(R"({"__metadata__":{"epoch":3},"a":{"dtype":"F32","shape":[2],)"
                 R"("data_offsets":[0,8]}})",
                 8),
       "__metadata__ value of 'epoch' must be a string, found number"},
      {"metadata not an object", make_file(R"({"__metadata__":["x"]})", 0),
       "__metadata__ must be an object of strings, found array"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    const std::string message = load_error(c.bytes);
    INFO("message: " << message);
    CHECK(message.rfind("bad.safetensors: ", 0) == 0);
    CHECK(message.find(c.message_part) != std::string::npos);
  }
}

TEST_CASE("safetensors: accepted on purpose: gaps, trailing bytes, extra keys, empty header") {
  // Bytes [8, 12) belong to no tensor and 4 more trail the last one.
  const std::vector<uint8_t> bytes =
      make_file(R"({"b":{"dtype":"I32","shape":[1],"data_offsets":[12,16]},)"
                R"("a":{"dtype":"U8","shape":[2,4],"data_offsets":[0,8],"extra":1}} )",
                20);
  const SafetensorsFile f = parse_safetensors(bytes.data(), bytes.size(), "gaps");
  CHECK(f.names() == std::vector<std::string>{"b", "a"});
  CHECK(f.get("a").shape() == Shape{2, 4});
  const std::vector<uint8_t> empty = make_file("{}", 0);
  CHECK(parse_safetensors(empty.data(), empty.size(), "empty").tensors.empty());
}

TEST_CASE("safetensors: load errors name the path") {
  CHECK_THROWS_WITH_AS(load_safetensors("no/such/file.safetensors"),
                       doctest::Contains("no/such/file.safetensors: open for reading failed"),
                       std::runtime_error);
}

// ---- atomic writes -------------------------------------------------------------------------

TEST_CASE("safetensors: writes are atomic: replace the target or leave it untouched") {
  TempDir dir;
  const std::string path = dir.file("w.safetensors");
  write_file_atomic(path, std::string("old contents"));
  CHECK(read_file(path) == "old contents");

  // Overwriting replaces the file, and no temporary file is left behind.
  save_safetensors(path, {{"w", Tensor::full({2}, 7)}});
  CHECK(load_safetensors(path).get("w").to_doubles() == std::vector<double>{7, 7});
  CHECK(dir.entries() == std::vector<std::string>{"w.safetensors"});

  // A failing save (value out of range) leaves the previous file as it was.
  CHECK_THROWS_AS(
      save_safetensors(path, {{"w", Tensor::full({2}, 300, DType::Int64), StorageDType::U8}}),
      std::out_of_range);
  CHECK(load_safetensors(path).get("w").to_doubles() == std::vector<double>{7, 7});

  // A directory that does not exist: the error names the path and the reason.
  const std::string missing = dir.file("no_dir/w.safetensors");
  CHECK_THROWS_WITH_AS(save_safetensors(missing, {{"w", Tensor::ones({1})}}),
                       doctest::Contains("no_dir/w.safetensors.tmp."), std::runtime_error);
  CHECK_THROWS_WITH(write_file_atomic(missing, std::string("x")),
                    doctest::Contains("No such file or directory"));

  // The rename fails when the target is a non-empty directory: the temporary file is removed.
  fs::create_directories(dir.path / "occupied" / "inside");
  CHECK_THROWS_WITH_AS(write_file_atomic(dir.file("occupied"), std::string("x")),
                       doctest::Contains("occupied: rename from the temporary file failed"),
                       std::runtime_error);
  std::vector<std::string> left = dir.entries();
  std::sort(left.begin(), left.end());
  CHECK(left == std::vector<std::string>{"occupied", "w.safetensors"});
}
