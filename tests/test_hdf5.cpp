// test_hdf5.cpp: the HDF5 reader (data/hdf5.h) on files written here with libhdf5's C API: both
// axis orders, int16 / int32 / float32 / float64 storage, fixed-length (NUL- and space-padded)
// and variable-length channel names, the rate on the dataset or on the file root, labels
// datasets (integer, float, h5py-style bool enum) turned into seizure annotations, and every
// error the reader promises, each checked for the file name, the object and the expectation in
// its message, for silence on stderr, and for no handle left open. The last test trains
// build/train_eeg on a folder of such files.
//
// The tests that need libhdf5 are skipped (and counted as skipped) in a build without it
// (NO_HDF5=1); the first test checks that such a build says how to get it.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/hdf5.h"
#include "data/synthetic_eeg.h"
#include "tests/helpers.h"

#ifdef SSM_HDF5
#include <hdf5.h>
#endif

using namespace ssm::eeg;
namespace fs = std::filesystem;

#define HDF5_TEST_CASE(name) TEST_CASE(name* doctest::skip(!::ssm::eeg::hdf5_available()))

// ---- temporary files -----------------------------------------------------------------------

// A unique path under the system temp directory (pid and a counter), removed at scope exit.
struct TempPath {
  std::string path;
  explicit TempPath(const std::string& extension = ".h5") {
    static int counter = 0;
    path = (fs::temp_directory_path() / ("test_hdf5_" + std::to_string(::getpid()) + "_" +
                                         std::to_string(counter++) + extension))
               .string();
    fs::remove_all(path);
  }
  ~TempPath() { fs::remove_all(path); }
};

// ---- writing HDF5 files --------------------------------------------------------------------

enum class StoredAs { Int16, Int32, Float32, Float64 };
enum class Strings { FixedNulPadded, FixedSpacePadded, Variable };

#ifdef SSM_HDF5

static hid_t file_type_of(StoredAs storage) {
  switch (storage) {
    case StoredAs::Int16: return H5T_STD_I16LE;
    case StoredAs::Int32: return H5T_STD_I32LE;
    case StoredAs::Float32: return H5T_IEEE_F32LE;
    case StoredAs::Float64: return H5T_IEEE_F64LE;
  }
  return H5T_IEEE_F64LE;
}

// Checks every libhdf5 call of the writer; a failure here is a broken test, not a reader error.
static hid_t checked(hid_t id, const char* call) {
  if (id < 0) throw std::logic_error(std::string("test writer: ") + call + " failed");
  return id;
}
#define H5_CHECKED(call) checked(static_cast<hid_t>(call), #call)

// An HDF5 file being written: datasets (created with their intermediate groups) and attributes
// on any object ("/" for the file root). The file is closed by close() or the destructor.
class H5Writer {
 public:
  explicit H5Writer(const std::string& path)
      : file_(H5_CHECKED(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT))) {}
  ~H5Writer() { close(); }
  void close() {
    if (file_ >= 0) H5Fclose(file_);
    file_ = -1;
  }

  // A dataset of `dims` holding `values` (row-major, as doubles) stored as `storage`.
  void dataset(const std::string& name, const std::vector<uint64_t>& dims,
               const std::vector<double>& values, StoredAs storage) {
    write_dataset(name, dims, file_type_of(storage), H5T_NATIVE_DOUBLE, values.data(),
                  values.size());
  }
  // A 1-D dataset of h5py's bool: an enum {FALSE = 0, TRUE = 1} over int8.
  void bool_dataset(const std::string& name, const std::vector<int8_t>& values) {
    const hid_t type = H5_CHECKED(H5Tenum_create(H5T_NATIVE_INT8));
    const int8_t no = 0, yes = 1;
    H5_CHECKED(H5Tenum_insert(type, "FALSE", &no));
    H5_CHECKED(H5Tenum_insert(type, "TRUE", &yes));
    write_dataset(name, {values.size()}, type, type, values.data(), values.size());
    H5Tclose(type);
  }
  // A dataset of fixed-length strings (a non-numeric "recording") of shape `dims` (default:
  // 1-D, one entry per string).
  void string_dataset(const std::string& name, const std::vector<std::string>& strings,
                      std::vector<uint64_t> dims = {}) {
    if (dims.empty()) dims = {strings.size()};
    const hid_t type = string_type(strings, Strings::FixedNulPadded);
    const std::vector<char> bytes = fixed_bytes(strings, H5Tget_size(type), '\0');
    write_dataset(name, dims, type, type, bytes.data(), strings.size());
    H5Tclose(type);
  }
  void group(const std::string& name) {
    H5Gclose(H5_CHECKED(H5Gcreate2(file_, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)));
  }

  // A numeric attribute: a scalar for one value, else 1-D.
  void number_attribute(const std::string& object, const std::string& name,
                        const std::vector<double>& values, StoredAs storage = StoredAs::Float64) {
    write_attribute(
        object, name,
        values.size() == 1 ? std::vector<uint64_t>{} : std::vector<uint64_t>{values.size()},
        file_type_of(storage), H5T_NATIVE_DOUBLE, values.data());
  }
  // A scalar string attribute (one name for a one-channel recording).
  void scalar_string_attribute(const std::string& object, const std::string& name,
                               const std::string& text, Strings kind) {
    const hid_t type = string_type({text}, kind);
    const char* pointer = text.c_str();
    const std::vector<char> bytes = fixed_bytes({text}, H5Tget_size(type), '\0');
    write_attribute(object, name, {}, type, type,
                    kind == Strings::Variable ? static_cast<const void*>(&pointer) : bytes.data());
    H5Tclose(type);
  }
  // A string attribute of shape `dims` (default: 1-D, one entry per string).
  void string_attribute(const std::string& object, const std::string& name,
                        const std::vector<std::string>& strings, Strings kind,
                        std::vector<uint64_t> dims = {}) {
    if (dims.empty()) dims = {strings.size()};
    const hid_t type = string_type(strings, kind);
    if (kind == Strings::Variable) {
      std::vector<const char*> pointers;
      for (const std::string& s : strings) pointers.push_back(s.c_str());
      write_attribute(object, name, dims, type, type, pointers.data());
    } else {
      const std::vector<char> bytes =
          fixed_bytes(strings, H5Tget_size(type), kind == Strings::FixedSpacePadded ? ' ' : '\0');
      write_attribute(object, name, dims, type, type, bytes.data());
    }
    H5Tclose(type);
  }

 private:
  hid_t file_;

  static hid_t make_space(const std::vector<uint64_t>& dims) {
    if (dims.empty()) return H5_CHECKED(H5Screate(H5S_SCALAR));
    const std::vector<hsize_t> extent(dims.begin(), dims.end());
    return H5_CHECKED(H5Screate_simple(static_cast<int>(extent.size()), extent.data(), nullptr));
  }
  // Fixed-length strings as long as the longest (so it fills its slot with no terminator), or
  // variable-length UTF-8 strings as h5py writes str.
  static hid_t string_type(const std::vector<std::string>& strings, Strings kind) {
    const hid_t type = H5_CHECKED(H5Tcopy(H5T_C_S1));
    if (kind == Strings::Variable) {
      H5_CHECKED(H5Tset_size(type, H5T_VARIABLE));
      H5_CHECKED(H5Tset_cset(type, H5T_CSET_UTF8));
      return type;
    }
    size_t longest = 1;
    for (const std::string& s : strings) longest = std::max(longest, s.size());
    H5_CHECKED(H5Tset_size(type, longest));
    H5_CHECKED(H5Tset_strpad(
        type, kind == Strings::FixedSpacePadded ? H5T_STR_SPACEPAD : H5T_STR_NULLPAD));
    return type;
  }
  static std::vector<char> fixed_bytes(const std::vector<std::string>& strings, size_t size,
                                       char pad) {
    std::vector<char> bytes(strings.size() * size, pad);
    for (size_t i = 0; i < strings.size(); ++i)
      std::copy(strings[i].begin(), strings[i].end(), bytes.begin() + i * size);
    return bytes;
  }
  void write_dataset(const std::string& name, const std::vector<uint64_t>& dims, hid_t file_type,
                     hid_t memory_type, const void* data, size_t count) {
    const hid_t link_plist = H5_CHECKED(H5Pcreate(H5P_LINK_CREATE));
    H5_CHECKED(H5Pset_create_intermediate_group(link_plist, 1));
    const hid_t space = make_space(dims);
    const hid_t dataset = H5_CHECKED(
        H5Dcreate2(file_, name.c_str(), file_type, space, link_plist, H5P_DEFAULT, H5P_DEFAULT));
    if (count > 0) H5_CHECKED(H5Dwrite(dataset, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
    H5Dclose(dataset);
    H5Sclose(space);
    H5Pclose(link_plist);
  }
  void write_attribute(const std::string& object, const std::string& name,
                       const std::vector<uint64_t>& dims, hid_t file_type, hid_t memory_type,
                       const void* data) {
    const hid_t target = H5_CHECKED(H5Oopen(file_, object.c_str(), H5P_DEFAULT));
    const hid_t space = make_space(dims);
    const hid_t attribute =
        H5_CHECKED(H5Acreate2(target, name.c_str(), file_type, space, H5P_DEFAULT, H5P_DEFAULT));
    H5_CHECKED(H5Awrite(attribute, memory_type, data));
    H5Aclose(attribute);
    H5Sclose(space);
    H5Oclose(target);
  }
};

// Handles of any kind still open on any file (0 when the reader released everything).
static long open_hdf5_objects() { return H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL); }

// Whether libhdf5 would print its error stack (the reader must restore the handler it silenced).
static bool hdf5_error_printing_on() {
  H5E_auto2_t function = nullptr;
  void* data = nullptr;
  H5Eget_auto2(H5E_DEFAULT, &function, &data);
  return function != nullptr;
}

#else // a build without libhdf5: the tests that call these are skipped.

class H5Writer {
 public:
  explicit H5Writer(const std::string&) { throw std::logic_error("test needs libhdf5"); }
  void close() {}
  void dataset(const std::string&, const std::vector<uint64_t>&, const std::vector<double>&,
               StoredAs) {}
  void bool_dataset(const std::string&, const std::vector<int8_t>&) {}
  void string_dataset(const std::string&, const std::vector<std::string>&,
                      std::vector<uint64_t> = {}) {}
  void group(const std::string&) {}
  void number_attribute(const std::string&, const std::string&, const std::vector<double>&,
                        StoredAs = StoredAs::Float64) {}
  void scalar_string_attribute(const std::string&, const std::string&, const std::string&,
                               Strings) {}
  void string_attribute(const std::string&, const std::string&, const std::vector<std::string>&,
                        Strings, std::vector<uint64_t> = {}) {}
};
static long open_hdf5_objects() { return 0; }
static bool hdf5_error_printing_on() { return false; }

#endif // SSM_HDF5

// ---- helpers -------------------------------------------------------------------------------

// channels[c][t] = (c + 1) * 100 + t - 7 (integers, exact in every storage type), optionally
// halved so that float storage holds non-integers (still exact: multiples of 1/2).
static std::vector<std::vector<double>> test_signal(size_t channel_count, size_t sample_count,
                                                    double scale = 1) {
  std::vector<std::vector<double>> channels(channel_count, std::vector<double>(sample_count));
  for (size_t c = 0; c < channel_count; ++c)
    for (size_t t = 0; t < sample_count; ++t)
      channels[c][t] = scale * (static_cast<double>((c + 1) * 100 + t) - 7);
  return channels;
}

// The channels laid out row-major as (channels, samples) or (samples, channels).
static std::vector<double> layout(const std::vector<std::vector<double>>& channels,
                                  bool channels_first) {
  const size_t channel_count = channels.size(), sample_count = channels[0].size();
  std::vector<double> values(channel_count * sample_count);
  for (size_t c = 0; c < channel_count; ++c)
    for (size_t t = 0; t < sample_count; ++t)
      values[channels_first ? c * sample_count + t : t * channel_count + c] = channels[c][t];
  return values;
}

static std::vector<uint64_t> dims_of(const std::vector<std::vector<double>>& channels,
                                     bool channels_first) {
  const uint64_t channel_count = channels.size(), sample_count = channels[0].size();
  return channels_first ? std::vector<uint64_t>{channel_count, sample_count}
                        : std::vector<uint64_t>{sample_count, channel_count};
}

static void check_channels(const Recording& recording,
                           const std::vector<std::vector<double>>& expected,
                           const std::vector<std::string>& names, double rate_hz,
                           const std::string& unit = "uV") {
  CHECK(recording.source_format == "HDF5");
  REQUIRE(recording.channels.size() == expected.size());
  CHECK(recording.duration_s == doctest::Approx(expected[0].size() / rate_hz).epsilon(1e-15));
  for (size_t c = 0; c < expected.size(); ++c) {
    const Channel& channel = recording.channels[c];
    INFO("channel " << c);
    CHECK(channel.label == names[c]);
    CHECK(channel.unit == unit);
    CHECK(channel.rate_hz == rate_hz);
    // Bit-exact: every test value is representable in the storage type.
    CHECK(channel.samples == expected[c]);
    CHECK(channel.physical_min == *std::min_element(expected[c].begin(), expected[c].end()));
    CHECK(channel.physical_max == *std::max_element(expected[c].begin(), expected[c].end()));
  }
}

// ---- availability --------------------------------------------------------------------------

TEST_CASE("hdf5: hdf5_available matches the build; without libhdf5 the error says how to get it") {
#ifdef SSM_HDF5
  CHECK(hdf5_available());
#else
  CHECK(!hdf5_available());
  ssm::test::check_error<std::invalid_argument>(
      [] { read_hdf5("/no/such/recording.h5"); },
      {"read_hdf5 /no/such/recording.h5",
       "built without HDF5: apt-get install libhdf5-dev and rebuild"});
#endif
}

// ---- reading -------------------------------------------------------------------------------

HDF5_TEST_CASE("hdf5: (channels, samples) int16, variable-length names, rate on the dataset") {
  TempPath file;
  const auto channels = test_signal(3, 50);
  const std::vector<std::string> names = {"EEG FP1-REF", "EEG FP2-REF", "EEG C3-REF"};
  {
    H5Writer writer(file.path);
    writer.dataset("/eeg", dims_of(channels, true), layout(channels, true), StoredAs::Int16);
    writer.number_attribute("/eeg", "sampling_rate", {256});
    writer.string_attribute("/eeg", "channel_names", names, Strings::Variable);
    // A root attribute of the same name must lose to the dataset's own.
    writer.number_attribute("/", "sampling_rate", {1000});
  }
  const Recording recording = read_hdf5(file.path);
  check_channels(recording, channels, names, 256);
  CHECK(recording.annotations.empty());
  CHECK(open_hdf5_objects() == 0);
}

HDF5_TEST_CASE("hdf5: (samples, channels) float32, fixed-length names, rate on the file root") {
  TempPath file;
  const auto channels = test_signal(4, 37, 0.5);
  // "Cz" is shorter than the slot; "EEG T3-LE" fills it with no terminator.
  const std::vector<std::string> names = {"Fp1", "EEG T3-LE", "Cz", "O2"};
  for (const Strings kind : {Strings::FixedNulPadded, Strings::FixedSpacePadded}) {
    INFO("space padded: " << (kind == Strings::FixedSpacePadded));
    {
      H5Writer writer(file.path);
      writer.dataset("/eeg", dims_of(channels, false), layout(channels, false), StoredAs::Float32);
      writer.number_attribute("/", "sampling_rate", {200}, StoredAs::Float32);
      writer.string_attribute("/", "channel_names", names, kind);
    }
    Hdf5Options options;
    options.channels_first = false;
    check_channels(read_hdf5(file.path, options), channels, names, 200);
    CHECK(open_hdf5_objects() == 0);
  }
}

HDF5_TEST_CASE("hdf5: every option: nested float64 dataset, named attributes, rate_hz override") {
  TempPath file;
  const auto channels = test_signal(2, 21, 0.25);
  const std::vector<std::string> names = {"A1", "A2"};
  {
    H5Writer writer(file.path);
    writer.dataset("/patients/p7/session1", dims_of(channels, true), layout(channels, true),
                   StoredAs::Float64);
    writer.number_attribute("/patients/p7/session1", "fs", {128}, StoredAs::Int32);
    writer.string_attribute("/patients/p7/session1", "labels", names, Strings::Variable);
  }
  Hdf5Options options;
  options.dataset = "patients/p7/session1"; // relative to the root
  options.rate_attribute = "fs";
  options.channel_names_attribute = "labels";
  options.unit = "mV";
  check_channels(read_hdf5(file.path, options), channels, names, 128, "mV");

  options.rate_hz = 100; // overrides the attribute
  check_channels(read_hdf5(file.path, options), channels, names, 100, "mV");

  options.channel_names_attribute = ""; // names not read: defaults
  check_channels(read_hdf5(file.path, options), channels, {"ch0", "ch1"}, 100, "mV");
  CHECK(open_hdf5_objects() == 0);
}

HDF5_TEST_CASE("hdf5: no names attribute gives ch0, ch1, ...; rate_hz stands in for no rate") {
  TempPath file;
  auto channels = test_signal(3, 10);
  channels[1].assign(10, 42); // a constant channel: physical range widened to [41, 43]
  {
    H5Writer writer(file.path);
    writer.dataset("/eeg", dims_of(channels, true), layout(channels, true), StoredAs::Int16);
  }
  Hdf5Options options;
  options.rate_hz = 250;
  const Recording recording = read_hdf5(file.path, options);
  REQUIRE(recording.channels.size() == 3);
  CHECK(recording.channels[0].label == "ch0");
  CHECK(recording.channels[2].label == "ch2");
  CHECK(recording.channels[1].samples == channels[1]);
  CHECK(recording.channels[1].physical_min == 41);
  CHECK(recording.channels[1].physical_max == 43);
  CHECK(recording.duration_s == doctest::Approx(10.0 / 250).epsilon(1e-15));
}

HDF5_TEST_CASE("hdf5: one channel named by a scalar string attribute") {
  TempPath file;
  const auto channels = test_signal(1, 5);
  for (const Strings kind : {Strings::Variable, Strings::FixedNulPadded}) {
    {
      H5Writer writer(file.path);
      writer.dataset("/eeg", dims_of(channels, true), layout(channels, true), StoredAs::Int16);
      writer.number_attribute("/eeg", "sampling_rate", {256});
      writer.scalar_string_attribute("/eeg", "channel_names", "EEG CZ-REF", kind);
    }
    check_channels(read_hdf5(file.path), channels, {"EEG CZ-REF"}, 256);
  }
}

HDF5_TEST_CASE("hdf5: per-sample 0/1 labels become seizure annotations") {
  TempPath file;
  const auto channels = test_signal(2, 12);
  // Runs: samples [0, 2), [5, 8) and [10, 12) (to the end); at 4 Hz:
  //   onset 0 s duration 0.5 s, onset 1.25 s duration 0.75 s, onset 2.5 s duration 0.5 s.
  const std::vector<double> labels = {1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1};
  const std::vector<Annotation> expected = {
      {0, 0.5, "seizure"}, {1.25, 0.75, "seizure"}, {2.5, 0.5, "seizure"}};
  std::vector<int8_t> bools(labels.begin(), labels.end());
  {
    H5Writer writer(file.path);
    writer.dataset("/eeg", dims_of(channels, true), layout(channels, true), StoredAs::Int16);
    writer.number_attribute("/eeg", "sampling_rate", {4});
    writer.dataset("/labels/int", {labels.size()}, labels, StoredAs::Int16);
    writer.dataset("/labels/float", {labels.size()}, labels, StoredAs::Float32);
    writer.bool_dataset("/labels/bool", bools);
    writer.dataset("/labels/none", {labels.size()}, std::vector<double>(labels.size(), 0),
                   StoredAs::Int16);
  }
  for (const char* labels_dataset : {"/labels/int", "/labels/float", "/labels/bool"}) {
    INFO("labels " << labels_dataset);
    Hdf5Options options;
    options.labels_dataset = labels_dataset;
    const Recording recording = read_hdf5(file.path, options);
    REQUIRE(recording.annotations.size() == expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      CHECK(recording.annotations[i].onset_s == expected[i].onset_s);
      CHECK(recording.annotations[i].duration_s == expected[i].duration_s);
      CHECK(recording.annotations[i].text == expected[i].text);
    }
  }
  Hdf5Options options;
  options.labels_dataset = "/labels/none";
  CHECK(read_hdf5(file.path, options).annotations.empty());
  // An annotation table beside the file adds its events, sorted in with the labels' runs.
  TempPath table(".csv");
  std::ofstream(table.path) << "onset,duration,description\n1.0,0.25,eye blink\n";
  options.labels_dataset = "/labels/int";
  options.annotations_file = table.path;
  const Recording with_table = read_hdf5(file.path, options);
  REQUIRE(with_table.annotations.size() == 4);
  CHECK(with_table.annotations[1].onset_s == 1.0);
  CHECK(with_table.annotations[1].text == "eye blink");
  CHECK(with_table.annotations[2].onset_s == 1.25);
  CHECK(open_hdf5_objects() == 0);
}

HDF5_TEST_CASE("hdf5: a (samples, channels) dataset larger than one read block") {
  // The reader reads (samples, channels) in blocks of 2^20 values: 2 channels x 600000 samples
  // is two blocks, the second partial. Values wrap to stay within int16.
  TempPath file;
  std::vector<std::vector<double>> channels(2, std::vector<double>(600000));
  for (size_t t = 0; t < channels[0].size(); ++t) {
    channels[0][t] = static_cast<double>(t % 30011) - 15000;
    channels[1][t] = -static_cast<double>(t % 20011);
  }
  {
    H5Writer writer(file.path);
    writer.dataset("/eeg", dims_of(channels, false), layout(channels, false), StoredAs::Int16);
    writer.number_attribute("/", "sampling_rate", {500});
  }
  Hdf5Options options;
  options.channels_first = false;
  const Recording recording = read_hdf5(file.path, options);
  REQUIRE(recording.channels.size() == 2);
  CHECK(recording.channels[0].samples == channels[0]);
  CHECK(recording.channels[1].samples == channels[1]);
}

// ---- errors --------------------------------------------------------------------------------

// Reading `path` with `options` throws std::invalid_argument whose message holds "read_hdf5
// PATH:" and every string of `parts`, prints nothing to stderr, leaves no handle open, and
// leaves libhdf5's error printing on as it found it.
static void check_read_error(const std::string& path, const Hdf5Options& options,
                             std::vector<std::string> parts) {
  parts.push_back("read_hdf5 " + path + ": ");
  // libhdf5 prints its error stack by default, so silence here is the reader's doing.
  REQUIRE(hdf5_error_printing_on());
  // stderr (fd 2) goes to a temporary file while the reader runs.
  TempPath captured(".stderr");
  std::fflush(stderr);
  const int saved_stderr = ::dup(2);
  const int capture = ::open(captured.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  REQUIRE(saved_stderr >= 0);
  REQUIRE(capture >= 0);
  ::dup2(capture, 2);
  ssm::test::check_error<std::invalid_argument>([&] { read_hdf5(path, options); }, parts);
  std::fflush(stderr);
  ::dup2(saved_stderr, 2);
  ::close(saved_stderr);
  ::close(capture);
  CHECK(fs::file_size(captured.path) == 0);
  CHECK(open_hdf5_objects() == 0);
  CHECK(hdf5_error_printing_on());
}

HDF5_TEST_CASE("hdf5: file errors: no file, a directory, not HDF5, truncated") {
  const Hdf5Options defaults;
  TempPath missing;
  check_read_error(missing.path, defaults, {"no such file"});

  TempPath directory;
  fs::create_directories(directory.path);
  check_read_error(directory.path, defaults, {"is a directory; expected an HDF5 file"});

  TempPath text(".txt");
  std::ofstream(text.path) << "0 1 2 3\n4 5 6 7\n";
  check_read_error(text.path, defaults, {"not an HDF5 file", "no HDF5 signature"});

  TempPath truncated;
  const auto channels = test_signal(4, 500);
  {
    H5Writer writer(truncated.path);
    writer.dataset("/eeg", dims_of(channels, true), layout(channels, true), StoredAs::Float64);
    writer.number_attribute("/eeg", "sampling_rate", {256});
  }
  fs::resize_file(truncated.path, fs::file_size(truncated.path) / 2);
  check_read_error(truncated.path, defaults,
                   {"libhdf5 could not open the file (damaged or truncated?)", "libhdf5: \""});
}

HDF5_TEST_CASE("hdf5: dataset errors: missing, a group, wrong rank, not numbers, empty, swapped") {
  TempPath file;
  const auto channels = test_signal(3, 8);
  {
    H5Writer writer(file.path);
    writer.dataset("/eeg", dims_of(channels, true), layout(channels, true), StoredAs::Int16);
    writer.number_attribute("/eeg", "sampling_rate", {256});
    writer.dataset("/recordings/night1/raw", {3, 8}, layout(channels, true), StoredAs::Int16);
    writer.dataset("/one_d", {5}, {1, 2, 3, 4, 5}, StoredAs::Int16);
    writer.dataset("/three_d", {1, 2, 2}, {1, 2, 3, 4}, StoredAs::Int16);
    writer.string_dataset("/text", {"a", "bc", "d", "ef"}, {2, 2});
    writer.dataset("/empty", {3, 0}, {}, StoredAs::Float32);
    writer.dataset("/transposed", {2000, 3}, std::vector<double>(6000, 1), StoredAs::Int16);
  }
  Hdf5Options options;
  options.rate_hz = 256;

  options.dataset = "/data";
  check_read_error(
      file.path, options,
      {"EEG dataset '/data' not found: group '/' holds",
       "eeg, empty, one_d, recordings, text, three_d, transposed", "set Hdf5Options::dataset"});
  options.dataset = "/recordings/night2/raw";
  check_read_error(file.path, options,
                   {"'/recordings/night2/raw' not found: group '/recordings' holds night1"});
  options.dataset = "/recordings";
  check_read_error(file.path, options,
                   {"'/recordings' is a group, not a dataset", "it holds night1"});
  options.dataset = "/one_d";
  check_read_error(file.path, options,
                   {"dataset '/one_d' has rank 1 (shape [5]); expected rank 2, (channels, "
                    "samples)"});
  options.dataset = "/three_d";
  check_read_error(file.path, options, {"has rank 3 (shape [1, 2, 2]); expected rank 2"});
  options.dataset = "/text";
  check_read_error(file.path, options,
                   {"dataset '/text' stores string values; expected integers or floating-point"});
  options.dataset = "";
  check_read_error(file.path, options, {"Hdf5Options::dataset is empty"});

  options.dataset = "/empty";
  check_read_error(file.path, options,
                   {"dataset '/empty' has shape [3, 0], read as (channels, samples): 3 channels "
                    "of 0 samples; expected at least one of each"});
  options.dataset = "/transposed";
  check_read_error(file.path, options,
                   {"2000 channels of 3 samples", "set Hdf5Options::channels_first = false"});
  options.channels_first = false;
  CHECK(read_hdf5(file.path, options).channels.size() == 3);
}

HDF5_TEST_CASE("hdf5: value errors: NaN or infinity in the data") {
  TempPath file;
  auto channels = test_signal(2, 6, 0.5);
  channels[1][2] = std::numeric_limits<double>::quiet_NaN();
  {
    H5Writer writer(file.path);
    writer.dataset("/eeg", dims_of(channels, true), layout(channels, true), StoredAs::Float32);
    writer.number_attribute("/eeg", "sampling_rate", {256});
    channels[1][2] = -std::numeric_limits<double>::infinity();
    writer.dataset("/eeg_inf", dims_of(channels, false), layout(channels, false),
                   StoredAs::Float64);
  }
  Hdf5Options options;
  check_read_error(file.path, options,
                   {"dataset '/eeg' has nan in channel 'ch1' at sample 2; expected finite values"});
  options.dataset = "/eeg_inf";
  options.channels_first = false;
  options.rate_hz = 256;
  check_read_error(file.path, options, {"has -inf in channel 'ch1' at sample 2"});
}

HDF5_TEST_CASE("hdf5: rate errors: none anywhere, not a number, several values, not positive") {
  TempPath file;
  const auto channels = test_signal(2, 8);
  {
    H5Writer writer(file.path);
    writer.dataset("/eeg", dims_of(channels, true), layout(channels, true), StoredAs::Int16);
    writer.string_attribute("/eeg", "rate_text", {"256"}, Strings::Variable);
    writer.number_attribute("/eeg", "rate_pair", {256, 512});
    writer.number_attribute("/", "rate_negative", {-5});
    writer.number_attribute("/eeg", "rate_zero", {0}, StoredAs::Int16);
  }
  Hdf5Options options;
  check_read_error(file.path, options,
                   {"no sampling rate: attribute 'sampling_rate' (Hdf5Options::rate_attribute) "
                    "is neither on dataset '/eeg' nor on the file root, and "
                    "Hdf5Options::rate_hz is 0"});
  options.rate_attribute = "rate_text";
  check_read_error(file.path, options,
                   {"attribute 'rate_text' on dataset '/eeg' has type string; expected a number"});
  options.rate_attribute = "rate_pair";
  check_read_error(file.path, options, {"attribute 'rate_pair' on dataset '/eeg' holds 2 values"});
  options.rate_attribute = "rate_negative";
  check_read_error(file.path, options,
                   {"attribute 'rate_negative' on the file root is -5; expected a positive "
                    "sampling rate in Hz"});
  options.rate_attribute = "rate_zero";
  check_read_error(file.path, options, {"attribute 'rate_zero' on dataset '/eeg' is 0"});
  options.rate_hz = -1;
  check_read_error(file.path, options, {"Hdf5Options::rate_hz is -1; expected a rate in Hz"});
  options.rate_hz = std::nan("");
  check_read_error(file.path, options, {"Hdf5Options::rate_hz is nan"});
}

HDF5_TEST_CASE("hdf5: channel-name errors: wrong count, not strings, not 1-D") {
  TempPath file;
  const auto channels = test_signal(2, 8);
  {
    H5Writer writer(file.path);
    writer.dataset("/eeg", dims_of(channels, true), layout(channels, true), StoredAs::Int16);
    writer.number_attribute("/eeg", "sampling_rate", {256});
    writer.string_attribute("/", "channel_names", {"Fp1", "Fp2", "F3"}, Strings::FixedNulPadded);
    writer.number_attribute("/eeg", "numbers", {1, 2});
    writer.string_attribute("/eeg", "grid", {"Fp1", "Fp2"}, Strings::Variable, {1, 2});
  }
  Hdf5Options options;
  check_read_error(file.path, options,
                   {"attribute 'channel_names' on the file root holds 3 names but dataset '/eeg' "
                    "has 2 channels (shape [2, 8] read as (channels, samples)); expected one "
                    "name per channel"});
  options.channel_names_attribute = "numbers";
  check_read_error(
      file.path, options,
      {"attribute 'numbers' on dataset '/eeg' has type floating-point; expected strings"});
  options.channel_names_attribute = "grid";
  check_read_error(file.path, options,
                   {"attribute 'grid' on dataset '/eeg' has shape [1, 2]; expected a 1-D array"});
}

HDF5_TEST_CASE("hdf5: label errors: missing, wrong length, wrong rank, not 0/1, not numbers") {
  TempPath file;
  const auto channels = test_signal(2, 8);
  {
    H5Writer writer(file.path);
    writer.dataset("/eeg", dims_of(channels, true), layout(channels, true), StoredAs::Int16);
    writer.number_attribute("/eeg", "sampling_rate", {256});
    writer.dataset("/per_second", {5}, {0, 1, 1, 0, 0}, StoredAs::Int16);
    writer.dataset("/column", {8, 1}, std::vector<double>(8, 0), StoredAs::Int16);
    writer.dataset("/classes", {8}, {0, 0, 1, 2, 1, 0, 0, 0}, StoredAs::Int16);
    writer.dataset("/half", {8}, {0, 0, 0.5, 1, 1, 0, 0, 0}, StoredAs::Float32);
    writer.string_dataset("/words", {"a", "b", "c", "d", "e", "f", "g", "h"});
  }
  Hdf5Options options;
  options.labels_dataset = "/seizures";
  check_read_error(file.path, options,
                   {"labels dataset '/seizures' not found", "set Hdf5Options::labels_dataset"});
  options.labels_dataset = "/per_second";
  check_read_error(file.path, options,
                   {"labels dataset '/per_second' holds 5 labels but the data has 8 samples; "
                    "expected one label per sample"});
  options.labels_dataset = "/column";
  check_read_error(file.path, options, {"labels dataset '/column' has shape [8, 1]; expected 1-D"});
  options.labels_dataset = "/classes";
  check_read_error(file.path, options,
                   {"labels dataset '/classes' has value 2 at sample 3; expected 0 or 1"});
  options.labels_dataset = "/half";
  check_read_error(file.path, options, {"has value 0.5 at sample 2"});
  options.labels_dataset = "/words";
  check_read_error(
      file.path, options,
      {"labels dataset '/words' has type string; expected numbers (0 or 1 per sample)"});
}

// The trainer on a folder of HDF5 recordings: four synthetic 2-minute recordings with one
// seizure each, stored as (samples, channels) float32 with the rate on the file root, channel
// names as variable-length strings and the seizures as a per-sample labels dataset. One epoch
// of build/train_eeg must read them all, find the seizures and finish.
HDF5_TEST_CASE("hdf5: train_eeg trains on a folder of HDF5 recordings with a labels dataset") {
  TempPath dir("");
  fs::create_directories(dir.path + "/h5");
  for (int64_t i = 0; i < 4; ++i) {
    SyntheticEegOptions options;
    options.seed = synthetic_recording_seed(5, i);
    options.duration_s = 120;
    options.seizures = 1;
    const Recording r = generate_synthetic_eeg(options).recording;
    const size_t samples = r.channels.front().samples.size();
    std::vector<double> values; // (samples, channels), row-major
    for (size_t t = 0; t < samples; ++t)
      for (const Channel& c : r.channels) values.push_back(c.samples[t]);
    std::vector<double> labels(samples, 0);
    for (const Annotation& a : r.annotations)
      if (a.text == "seizure")
        for (size_t t = static_cast<size_t>(a.onset_s * 200);
             t < std::min(samples, static_cast<size_t>((a.onset_s + a.duration_s) * 200)); ++t)
          labels[t] = 1;
    std::vector<std::string> names;
    for (const Channel& c : r.channels) names.push_back(c.label);
    H5Writer writer(dir.path + "/h5/rec_" + std::to_string(i) + ".h5");
    writer.dataset("/data/eeg", {samples, names.size()}, values, StoredAs::Float32);
    writer.number_attribute("/", "sampling_rate", {200});
    writer.string_attribute("/data/eeg", "channel_names", names, Strings::Variable);
    writer.dataset("/data/seizure", {samples}, labels, StoredAs::Int16);
    // The same seizures as a TUH-style table beside the file (rec_i.csv).
    std::ofstream table(dir.path + "/h5/rec_" + std::to_string(i) + ".csv");
    table << "# version = csv_v1.0.0\nchannel,start_time,stop_time,label,confidence\n";
    for (const Annotation& a : r.annotations)
      if (a.text == "seizure")
        table << "TERM," << a.onset_s << "," << a.onset_s + a.duration_s << ",seiz,1.0\n";
  }
  const std::string program =
      (fs::read_symlink("/proc/self/exe").parent_path() / "train_eeg").string();
  REQUIRE_MESSAGE(fs::exists(program), "build it first: make " << program);
  // Labels from the dataset, then from the tables: the same seizures either way.
  for (const std::string labels : {"--hdf5-labels /data/seizure", "--annotations-suffix .csv"}) {
    const std::string log = dir.path + "/log.txt";
    const std::string command = program + " --device cpu --data " + dir.path +
                                "/h5 --hdf5-dataset /data/eeg --hdf5-channels-last " + labels +
                                " --d-model 8 --layers 1 --epochs 1 --batch 16 --out " + dir.path +
                                "/run > " + log + " 2>&1";
    const int status = std::system(command.c_str());
    std::ifstream in(log);
    const std::string output((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
    INFO(command);
    INFO(output);
    REQUIRE(status == 0);
    CHECK(output.find("recordings: 4 (train 2 with 2 seizures, validation 1 with 1, test 1 with "
                      "1)") != std::string::npos);
    CHECK(fs::exists(dir.path + "/run/results.json"));
    fs::remove_all(dir.path + "/run");
  }
}
