// hdf5.cpp: EEG recordings read from HDF5 files through libhdf5's C API (Debian's libhdf5-dev),
// built when the Makefile finds libhdf5 with pkg-config (-DSSM_HDF5).
//
// What is read; every name is an Hdf5Options field, its default in brackets:
//   dataset [/eeg]        a 2-D dataset of numbers: (channels, samples) when channels_first
//                         [true], (samples, channels) otherwise. Any integer or floating-point
//                         storage type (int16, int32, float32, float64, ...): libhdf5 converts
//                         every value to double while reading (H5Dread into H5T_NATIVE_DOUBLE),
//                         exactly for integers below 2^53. Values are taken as physical values
//                         in `unit` [uV]; no scaling is applied. NaN or infinity is an error.
//   rate_attribute [sampling_rate]
//                         a numeric attribute holding one value, the sampling rate in Hz,
//                         looked up on the dataset first, then on the file root. rate_hz [0],
//                         when > 0, is used instead of the attribute (which is then not read);
//                         when neither gives a rate the read fails.
//   channel_names_attribute [channel_names]
//                         a string attribute with one name per channel (1-D; a scalar for one
//                         channel), on the dataset first, then on the file root. Variable-length
//                         strings (h5py's str) and fixed-length ones (numpy 'S', NUL- or
//                         space-padded) both work. Absent (or the option empty): "ch0", "ch1"...
//   labels_dataset [none] a 1-D dataset with one 0/1 value per sample (integer, floating-point,
//                         or h5py's bool enum). Each run of 1s, samples [first, end), becomes an
//                         Annotation{onset = first / rate, duration = (end - first) / rate,
//                         "seizure"}. Per-sample rather than per-second labels because they keep
//                         exact boundaries at any rate (per-second labels at 256 Hz expand to
//                         per-sample ones with numpy.repeat(labels, 256)); a length that is not
//                         the sample count is an error that says so.
//   annotations_file [none] a table of events (onset, duration or end, text) in a text file,
//                         read by data/annotations.h and added to the annotations: labels kept
//                         beside the recording rather than in it.
//
// The Recording: source_format "HDF5", duration_s = samples / rate, one Channel per channel with
// the same rate and unit. Each channel's EDF physical range (physical_min/max) is set to the
// channel's own minimum and maximum (widened by 1 for a constant channel), so that writing the
// recording as EDF (data/edf.h) quantises it to 16 bits over its range instead of clipping it at
// the default +-3200 uV.
//
// A (samples, channels) dataset read with the default channels_first = true would give one
// "channel" per sample; more than kMaxChannels channels that also outnumber the samples is
// therefore refused with a message pointing at channels_first.
//
// Errors: every failure throws std::invalid_argument starting "read_hdf5 FILE:" and naming the
// dataset or attribute and what was expected versus found: no such file, not an HDF5 file (no
// signature), a file libhdf5 cannot open (its innermost error message is quoted), a missing
// dataset (with the names the nearest existing group holds), a group where a dataset was
// expected, a rank other than 2, a non-numeric type, an empty dataset, no sampling rate, a
// malformed rate or names attribute, a name count that differs from the channel count, labels of
// the wrong rank, length or values. A build without libhdf5 throws "built without HDF5: apt-get
// install libhdf5-dev and rebuild".
//
// libhdf5 prints its error stack to stderr by default; that printing is switched off for the
// duration of each read (H5Eset_auto2) and the previous handler restored after. Every handle
// (file, dataset, dataspace, datatype, attribute) is owned by an Hid, which closes it on every
// path, including exceptions. Debian's serial libhdf5 is not thread-safe, so reads are serialised
// by a mutex.
#include "data/hdf5.h"

#include "data/annotations.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <vector>

#ifdef SSM_HDF5
#include <hdf5.h>
#endif

namespace ssm::eeg {

#ifndef SSM_HDF5

bool hdf5_available() { return false; }

Recording read_hdf5(const std::string& path, const Hdf5Options&) {
  throw std::invalid_argument("read_hdf5 " + path +
                              ": built without HDF5: apt-get install libhdf5-dev and rebuild");
}

#else

bool hdf5_available() { return true; }

// More channels than this, and more channels than samples, is taken for a transposed dataset.
constexpr hsize_t kMaxChannels = 1024;
// A (samples, channels) dataset is read in blocks of whole rows of about this many values
// (8 MB of doubles), then scattered into the channels, so the whole file is never held twice.
constexpr hsize_t kReadBlockValues = hsize_t(1) << 20;

// ---- handles and libhdf5's error stack -----------------------------------------------------

// Owns one libhdf5 identifier and closes it with the matching H5?close when destroyed.
class Hid {
 public:
  using Closer = herr_t (*)(hid_t);
  Hid(hid_t id, Closer close) : id_(id), close_(close) {}
  Hid(Hid&& other) noexcept : id_(other.id_), close_(other.close_) { other.id_ = H5I_INVALID_HID; }
  Hid& operator=(Hid&&) = delete;
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  ~Hid() {
    if (id_ >= 0) close_(id_);
  }
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }

 private:
  hid_t id_;
  Closer close_;
};

// Switches off libhdf5's printing of its error stack for one read; restores the old handler.
class QuietHdf5Errors {
 public:
  QuietHdf5Errors() {
    H5Eget_auto2(H5E_DEFAULT, &old_function_, &old_data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~QuietHdf5Errors() { H5Eset_auto2(H5E_DEFAULT, old_function_, old_data_); }
  QuietHdf5Errors(const QuietHdf5Errors&) = delete;
  QuietHdf5Errors& operator=(const QuietHdf5Errors&) = delete;

 private:
  H5E_auto2_t old_function_ = nullptr;
  void* old_data_ = nullptr;
};

static herr_t keep_innermost_error(unsigned depth, const H5E_error2_t* error, void* out) {
  if (depth == 0 && error->desc) *static_cast<std::string*>(out) = error->desc;
  return 0;
}

// The most specific message on libhdf5's error stack (left by the call that just failed), in
// quotes, and the stack cleared.
static std::string hdf5_error_detail() {
  std::string innermost;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, keep_innermost_error, &innermost);
  H5Eclear2(H5E_DEFAULT);
  return innermost.empty() ? "libhdf5 gave no message" : "libhdf5: \"" + innermost + "\"";
}

// The errors of one read all start "read_hdf5 FILE: ".
struct ErrorPrefix {
  std::string text;
  [[noreturn]] void fail(const std::string& message) const {
    throw std::invalid_argument(text + message);
  }
};

static const char* type_class_name(H5T_class_t type_class) {
  switch (type_class) {
    case H5T_INTEGER: return "integer";
    case H5T_FLOAT: return "floating-point";
    case H5T_TIME: return "time";
    case H5T_STRING: return "string";
    case H5T_BITFIELD: return "bitfield";
    case H5T_OPAQUE: return "opaque";
    case H5T_COMPOUND: return "compound";
    case H5T_REFERENCE: return "reference";
    case H5T_ENUM: return "enum";
    case H5T_VLEN: return "variable-length sequence";
    case H5T_ARRAY: return "array";
    default: return "unknown";
  }
}

// A number as a person writes it: 256, 0.5, -3, nan (std::to_string would give 256.000000).
static std::string number_string(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

static std::string dims_string(const std::vector<hsize_t>& dims) {
  std::string text = "[";
  for (size_t i = 0; i < dims.size(); ++i)
    text += (i ? ", " : "") + std::to_string(static_cast<unsigned long long>(dims[i]));
  return text + "]";
}

// ---- the file ------------------------------------------------------------------------------

// The HDF5 format signature, \211 H D F \r \n \032 \n, starts the superblock, which lies at file
// offset 0, 512, 1024, 2048, ... (HDF5 File Format Specification, version 3.0, section II.A).
static bool has_hdf5_signature(const std::string& path) {
  static const char kSignature[8] = {'\211', 'H', 'D', 'F', '\r', '\n', '\032', '\n'};
  std::ifstream in(path, std::ios::binary);
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  for (std::streamoff offset = 0; in && offset + 8 <= size; offset = offset ? offset * 2 : 512) {
    char head[8];
    in.seekg(offset);
    if (in.read(head, 8) && std::memcmp(head, kSignature, 8) == 0) return true;
  }
  return false;
}

static Hid open_file(const std::string& path, const ErrorPrefix& error) {
  std::error_code ec;
  const std::filesystem::file_status status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) error.fail("no such file");
  if (std::filesystem::is_directory(status)) error.fail("is a directory; expected an HDF5 file");
  Hid file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (file.valid()) return file;
  const std::string detail = hdf5_error_detail();
  if (!has_hdf5_signature(path))
    error.fail("not an HDF5 file (no HDF5 signature at byte 0, 512, 1024, ...)");
  error.fail("libhdf5 could not open the file (damaged or truncated?): " + detail);
}

// The names of the links in group `group_path` (at most 20, then "..."), for error messages.
static std::string group_members(hid_t file, const std::string& group_path) {
  H5G_info_t info;
  if (H5Gget_info_by_name(file, group_path.c_str(), &info, H5P_DEFAULT) < 0) {
    H5Eclear2(H5E_DEFAULT);
    return "no links (it is not a group)";
  }
  std::string names;
  const hsize_t shown = std::min<hsize_t>(info.nlinks, 20);
  for (hsize_t i = 0; i < shown; ++i) {
    char name[256] = {0};
    H5Lget_name_by_idx(file, group_path.c_str(), H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof(name),
                       H5P_DEFAULT);
    names += (i ? ", " : "") + std::string(name);
  }
  if (info.nlinks > shown) names += ", ...";
  H5Eclear2(H5E_DEFAULT);
  return info.nlinks == 0 ? "nothing" : names;
}

// Opens the dataset at `dataset_path` (`role` says what it is for, "EEG" or "labels"),
// explaining what is there instead when it is missing or not a dataset.
static Hid open_dataset(hid_t file, const std::string& dataset_path, const std::string& role,
                        const std::string& option, const ErrorPrefix& error) {
  // Walk the path one component at a time: H5Lexists fails (rather than answering no) when an
  // intermediate group is missing, and the deepest existing group is the useful one to list.
  std::string existing_group = "/", prefix;
  size_t start = 0;
  while (start < dataset_path.size()) {
    size_t slash = dataset_path.find('/', start);
    if (slash == std::string::npos) slash = dataset_path.size();
    if (slash > start) {
      prefix += "/" + dataset_path.substr(start, slash - start);
      if (H5Lexists(file, prefix.c_str(), H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        error.fail(role + " dataset '" + dataset_path + "' not found: group '" + existing_group +
                   "' holds " + group_members(file, existing_group) +
                   "; set Hdf5Options::" + option);
      }
      if (slash < dataset_path.size()) existing_group = prefix;
    }
    start = slash + 1;
  }
  Hid object(H5Oopen(file, dataset_path.c_str(), H5P_DEFAULT), H5Oclose);
  if (!object.valid())
    error.fail("cannot open " + role + " dataset '" + dataset_path + "': " + hdf5_error_detail());
  const H5I_type_t kind = H5Iget_type(object.get());
  if (kind != H5I_DATASET)
    error.fail("'" + dataset_path + "' is a " +
               (kind == H5I_GROUP ? std::string("group") : std::string("named datatype")) +
               ", not a dataset; expected the " + role + " dataset (Hdf5Options::" + option +
               "); it holds " +
               (kind == H5I_GROUP ? group_members(file, dataset_path) : std::string("no data")));
  return object;
}

// The extent of a dataset or attribute's dataspace; a scalar has rank 0, a null space -1.
static std::vector<hsize_t> extent_of(hid_t space, int* rank) {
  if (H5Sget_simple_extent_type(space) == H5S_NULL) {
    *rank = -1;
    return {};
  }
  *rank = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> dims(std::max(*rank, 0));
  if (*rank > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  return dims;
}

static H5T_class_t type_class_of(hid_t object, bool is_attribute) {
  Hid type(is_attribute ? H5Aget_type(object) : H5Dget_type(object), H5Tclose);
  return type.valid() ? H5Tget_class(type.get()) : H5T_NO_CLASS;
}

// ---- attributes ----------------------------------------------------------------------------

// The attribute `name` on the dataset, or failing that on the file root; `found_on` says which.
// An invalid Hid when neither has it.
static Hid find_attribute(hid_t dataset, hid_t file, const std::string& dataset_path,
                          const std::string& name, std::string* found_on) {
  const std::pair<hid_t, std::string> places[] = {{dataset, "dataset '" + dataset_path + "'"},
                                                  {file, "the file root"}};
  for (const auto& [location, description] : places) {
    if (H5Aexists(location, name.c_str()) > 0) {
      *found_on = description;
      return Hid(H5Aopen(location, name.c_str(), H5P_DEFAULT), H5Aclose);
    }
  }
  H5Eclear2(H5E_DEFAULT);
  return Hid(H5I_INVALID_HID, H5Aclose);
}

// One positive, finite number from a numeric attribute holding a single value.
static double read_rate_attribute(hid_t attribute, const std::string& what,
                                  const ErrorPrefix& error) {
  const H5T_class_t type_class = type_class_of(attribute, true);
  if (type_class != H5T_INTEGER && type_class != H5T_FLOAT)
    error.fail(what + " has type " + type_class_name(type_class) +
               "; expected a number (the sampling rate in Hz)");
  Hid space(H5Aget_space(attribute), H5Sclose);
  const hssize_t count = H5Sget_simple_extent_npoints(space.get());
  if (count != 1)
    error.fail(what + " holds " + std::to_string(static_cast<long long>(count)) +
               " values; expected one (the sampling rate in Hz)");
  double rate = 0;
  if (H5Aread(attribute, H5T_NATIVE_DOUBLE, &rate) < 0)
    error.fail("cannot read " + what + ": " + hdf5_error_detail());
  if (!(std::isfinite(rate) && rate > 0))
    error.fail(what + " is " + number_string(rate) + "; expected a positive sampling rate in Hz");
  return rate;
}

// Releases the strings libhdf5 allocated for a variable-length string read.
struct VariableStringsGuard {
  hid_t memory_type, space;
  std::vector<char*>* pointers;
  ~VariableStringsGuard() {
#if H5_VERSION_GE(1, 12, 0)
    H5Treclaim(memory_type, space, H5P_DEFAULT, pointers->data());
#else
    H5Dvlen_reclaim(memory_type, space, H5P_DEFAULT, pointers->data());
#endif
  }
};

// The strings of a string attribute (1-D, or a scalar read as one string), fixed- or
// variable-length.
static std::vector<std::string> read_string_attribute(hid_t attribute, const std::string& what,
                                                      const ErrorPrefix& error) {
  Hid file_type(H5Aget_type(attribute), H5Tclose);
  const H5T_class_t type_class = H5Tget_class(file_type.get());
  if (type_class != H5T_STRING)
    error.fail(what + " has type " + type_class_name(type_class) +
               "; expected strings (channel names)");
  Hid space(H5Aget_space(attribute), H5Sclose);
  int rank = 0;
  const std::vector<hsize_t> dims = extent_of(space.get(), &rank);
  if (rank != 0 && rank != 1)
    error.fail(what + " has shape " + dims_string(dims) +
               "; expected a 1-D array of strings, one per channel");
  const size_t count = rank == 0 ? 1 : dims[0];
  std::vector<std::string> strings(count);

  if (H5Tis_variable_str(file_type.get()) > 0) {
    Hid memory_type(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(memory_type.get(), H5T_VARIABLE);
    H5Tset_cset(memory_type.get(), H5Tget_cset(file_type.get()));
    std::vector<char*> pointers(count, nullptr);
    if (H5Aread(attribute, memory_type.get(), pointers.data()) < 0)
      error.fail("cannot read " + what + ": " + hdf5_error_detail());
    VariableStringsGuard release{memory_type.get(), space.get(), &pointers};
    for (size_t i = 0; i < count; ++i)
      if (pointers[i]) strings[i] = pointers[i];
    return strings;
  }

  // Fixed length: read the bytes as stored (the file's type as the memory type, so no
  // conversion), then cut each string at its first NUL, and at trailing spaces when padded so.
  const size_t size = H5Tget_size(file_type.get());
  const bool space_padded = H5Tget_strpad(file_type.get()) == H5T_STR_SPACEPAD;
  std::vector<char> bytes(count * size);
  if (H5Aread(attribute, file_type.get(), bytes.data()) < 0)
    error.fail("cannot read " + what + ": " + hdf5_error_detail());
  for (size_t i = 0; i < count; ++i) {
    const char* begin = bytes.data() + i * size;
    std::string text(begin, std::find(begin, begin + size, '\0'));
    if (space_padded) text.erase(text.find_last_not_of(' ') + 1);
    strings[i] = text;
  }
  return strings;
}

// ---- samples and labels --------------------------------------------------------------------

// Reads the (channels, samples) or (samples, channels) dataset into each channel's samples.
static void read_samples(hid_t dataset, bool channels_first, hsize_t channel_count,
                         hsize_t sample_count, std::vector<Channel>& channels,
                         const std::string& what, const ErrorPrefix& error) {
  Hid file_space(H5Dget_space(dataset), H5Sclose);
  if (channels_first) {
    // Row c of the dataset, [c, 0 : samples], straight into channel c.
    Hid memory_space(H5Screate_simple(1, &sample_count, nullptr), H5Sclose);
    for (hsize_t c = 0; c < channel_count; ++c) {
      const hsize_t start[2] = {c, 0}, count[2] = {1, sample_count};
      H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr);
      if (H5Dread(dataset, H5T_NATIVE_DOUBLE, memory_space.get(), file_space.get(), H5P_DEFAULT,
                  channels[c].samples.data()) < 0)
        error.fail("cannot read " + what + " row " + std::to_string(c) + ": " +
                   hdf5_error_detail());
    }
    return;
  }
  // Blocks of rows [first, first + rows) x all channels, then scattered:
  //   block[i * channel_count + c] -> channels[c].samples[first + i]
  const hsize_t block_rows = std::max<hsize_t>(1, kReadBlockValues / channel_count);
  std::vector<double> block(std::min(block_rows, sample_count) * channel_count);
  for (hsize_t first = 0; first < sample_count; first += block_rows) {
    const hsize_t rows = std::min(block_rows, sample_count - first);
    const hsize_t start[2] = {first, 0}, count[2] = {rows, channel_count};
    H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr);
    Hid memory_space(H5Screate_simple(2, count, nullptr), H5Sclose);
    if (H5Dread(dataset, H5T_NATIVE_DOUBLE, memory_space.get(), file_space.get(), H5P_DEFAULT,
                block.data()) < 0)
      error.fail("cannot read " + what + " rows " + std::to_string(first) + ".." +
                 std::to_string(first + rows) + ": " + hdf5_error_detail());
    for (hsize_t i = 0; i < rows; ++i)
      for (hsize_t c = 0; c < channel_count; ++c)
        channels[c].samples[first + i] = block[i * channel_count + c];
  }
}

// The labels dataset as "seizure" annotations: each run of 1s, samples [first, end), becomes
// onset first / rate, duration (end - first) / rate.
static std::vector<Annotation> read_label_annotations(hid_t file, const Hdf5Options& options,
                                                      hsize_t sample_count, double rate_hz,
                                                      const ErrorPrefix& error) {
  const std::string& path = options.labels_dataset;
  const std::string what = "labels dataset '" + path + "'";
  Hid labels(open_dataset(file, path, "labels", "labels_dataset", error));
  const H5T_class_t type_class = type_class_of(labels.get(), false);
  if (type_class != H5T_INTEGER && type_class != H5T_FLOAT && type_class != H5T_ENUM)
    error.fail(what + " has type " + type_class_name(type_class) +
               "; expected numbers (0 or 1 per sample)");
  Hid space(H5Dget_space(labels.get()), H5Sclose);
  int rank = 0;
  const std::vector<hsize_t> dims = extent_of(space.get(), &rank);
  if (rank != 1)
    error.fail(what + " has shape " + dims_string(dims) +
               "; expected 1-D, one 0/1 label per sample");
  if (dims[0] != sample_count)
    error.fail(what + " holds " + std::to_string(dims[0]) + " labels but the data has " +
               std::to_string(sample_count) +
               " samples; expected one label per sample (per-second labels: repeat each "
               "rate times)");
  std::vector<double> values(sample_count);
  if (H5Dread(labels.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) < 0)
    error.fail("cannot read " + what + ": " + hdf5_error_detail());

  std::vector<Annotation> annotations;
  hsize_t run_start = 0;
  bool in_run = false;
  for (hsize_t i = 0; i <= sample_count; ++i) {
    const double label = i < sample_count ? values[i] : 0;
    if (label != 0 && label != 1)
      error.fail(what + " has value " + number_string(label) + " at sample " + std::to_string(i) +
                 "; expected 0 or 1");
    if (label == 1 && !in_run) run_start = i;
    if (label == 0 && in_run)
      annotations.push_back({static_cast<double>(run_start) / rate_hz,
                             static_cast<double>(i - run_start) / rate_hz, "seizure"});
    in_run = label == 1;
  }
  return annotations;
}

// ---- read_hdf5 -----------------------------------------------------------------------------

Recording read_hdf5(const std::string& path, const Hdf5Options& options) {
  const ErrorPrefix error{"read_hdf5 " + path + ": "};
  if (options.dataset.empty()) error.fail("Hdf5Options::dataset is empty; expected a path");
  if (!std::isfinite(options.rate_hz) || options.rate_hz < 0)
    error.fail("Hdf5Options::rate_hz is " + number_string(options.rate_hz) +
               "; expected a rate in Hz, or 0 to read it from the file");

  static std::mutex hdf5_mutex;
  const std::lock_guard<std::mutex> lock(hdf5_mutex);
  const QuietHdf5Errors quiet;

  Hid file = open_file(path, error);
  const std::string what = "dataset '" + options.dataset + "'";
  Hid dataset = open_dataset(file.get(), options.dataset, "EEG", "dataset", error);

  // dims: (channels, samples) or (samples, channels)
  Hid space(H5Dget_space(dataset.get()), H5Sclose);
  int rank = 0;
  const std::vector<hsize_t> dims = extent_of(space.get(), &rank);
  if (rank != 2)
    error.fail(what + " has " +
               (rank < 0 ? std::string("a null dataspace (no elements)")
                         : "rank " + std::to_string(rank) + " (shape " + dims_string(dims) + ")") +
               "; expected rank 2, " +
               (options.channels_first ? "(channels, samples)" : "(samples, channels)"));
  const H5T_class_t type_class = type_class_of(dataset.get(), false);
  if (type_class != H5T_INTEGER && type_class != H5T_FLOAT)
    error.fail(what + " stores " + type_class_name(type_class) +
               " values; expected integers or floating-point numbers");
  const hsize_t channel_count = options.channels_first ? dims[0] : dims[1];
  const hsize_t sample_count = options.channels_first ? dims[1] : dims[0];
  const std::string layout = options.channels_first ? "(channels, samples)" : "(samples, channels)";
  if (channel_count == 0 || sample_count == 0)
    error.fail(what + " has shape " + dims_string(dims) + ", read as " + layout + ": " +
               std::to_string(channel_count) + " channels of " + std::to_string(sample_count) +
               " samples; expected at least one of each");
  if (channel_count > kMaxChannels && channel_count > sample_count)
    error.fail(what + " has shape " + dims_string(dims) + ", read as " + layout + ": " +
               std::to_string(channel_count) + " channels of " + std::to_string(sample_count) +
               " samples; the axes look swapped: set Hdf5Options::channels_first = " +
               (options.channels_first ? "false" : "true"));

  double rate_hz = options.rate_hz;
  if (rate_hz <= 0) {
    std::string found_on;
    Hid rate_attribute = options.rate_attribute.empty()
                             ? Hid(H5I_INVALID_HID, H5Aclose)
                             : find_attribute(dataset.get(), file.get(), options.dataset,
                                              options.rate_attribute, &found_on);
    if (!rate_attribute.valid())
      error.fail("no sampling rate: attribute '" + options.rate_attribute +
                 "' (Hdf5Options::rate_attribute) is neither on " + what +
                 " nor on the file root, and Hdf5Options::rate_hz is 0; expected one of them");
    rate_hz = read_rate_attribute(
        rate_attribute.get(), "attribute '" + options.rate_attribute + "' on " + found_on, error);
  }

  std::vector<std::string> names;
  if (!options.channel_names_attribute.empty()) {
    std::string found_on;
    Hid names_attribute = find_attribute(dataset.get(), file.get(), options.dataset,
                                         options.channel_names_attribute, &found_on);
    if (names_attribute.valid()) {
      const std::string names_what =
          "attribute '" + options.channel_names_attribute + "' on " + found_on;
      names = read_string_attribute(names_attribute.get(), names_what, error);
      if (names.size() != channel_count)
        error.fail(names_what + " holds " + std::to_string(names.size()) + " names but " + what +
                   " has " + std::to_string(channel_count) + " channels (shape " +
                   dims_string(dims) + " read as " + layout + "); expected one name per channel");
    }
  }

  Recording recording;
  recording.source_format = "HDF5";
  recording.duration_s = static_cast<double>(sample_count) / rate_hz;
  recording.channels.resize(channel_count);
  for (hsize_t c = 0; c < channel_count; ++c) {
    Channel& channel = recording.channels[c];
    channel.label = names.empty() ? "ch" + std::to_string(c) : names[c];
    channel.unit = options.unit;
    channel.rate_hz = rate_hz;
    channel.samples.resize(sample_count);
  }
  read_samples(dataset.get(), options.channels_first, channel_count, sample_count,
               recording.channels, what, error);
  for (Channel& channel : recording.channels) {
    const auto bad = std::find_if(channel.samples.begin(), channel.samples.end(),
                                  [](double v) { return !std::isfinite(v); });
    if (bad != channel.samples.end())
      error.fail(what + " has " + number_string(*bad) + " in channel '" + channel.label +
                 "' at sample " + std::to_string(bad - channel.samples.begin()) +
                 "; expected finite values");
    const auto [lowest, highest] =
        std::minmax_element(channel.samples.begin(), channel.samples.end());
    channel.physical_min = *lowest;
    channel.physical_max = *highest;
    if (*lowest == *highest) {
      channel.physical_min -= 1;
      channel.physical_max += 1;
    }
  }

  if (!options.labels_dataset.empty())
    recording.annotations =
        read_label_annotations(file.get(), options, sample_count, rate_hz, error);
  if (!options.annotations_file.empty()) add_annotation_file(recording, options.annotations_file);
  return recording;
}

#endif // SSM_HDF5

} // namespace ssm::eeg
