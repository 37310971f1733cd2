// edf.cpp: the EDF/EDF+ reader and writer (data/edf.h).
//
// Sources: Kemp, Värri, Rosa, Nielsen, Gade 1992, "A simple format for exchange of digitized
// polygraphic recordings", Electroencephalogr. Clin. Neurophysiol. 82:391-393 (EDF); Kemp,
// Olivan 2003, "European data format 'plus' (EDF+), an EDF alike standard format for the
// exchange of physiological data", Clin. Neurophysiol. 114:1755-1761, and its specification at
// edfplus.info (EDF+).
//
// ---- layout --------------------------------------------------------------------------------
// A file is a header of 256 * (ns + 1) bytes followed by `records` data records. Every header
// field is ASCII text (bytes 32..126), left-aligned and padded with spaces.
//
//   main header, 256 bytes
//     bytes     width  field
//     0..7        8    version of the data format: "0"
//     8..87      80    local patient identification (EDF+: "code sex birthdate name", X = unknown)
//     88..167    80    local recording identification (EDF+: "Startdate dd-MMM-yyyy ...")
//     168..175    8    start date, dd.mm.yy (yy: 85..99 = 1985..1999, 00..84 = 2000..2084)
//     176..183    8    start time, hh.mm.ss
//     184..191    8    number of bytes in the header = 256 * (ns + 1)
//     192..235   44    reserved; EDF+ starts it with "EDF+C" (contiguous) or "EDF+D"
//     236..243    8    number of data records (-1 only while the file is being recorded)
//     244..251    8    duration of a data record in seconds, a decimal number (1, 0.5, ...)
//     252..255    4    ns, the number of signals
//
//   signal headers, ns * 256 bytes, stored field by field (all ns labels, then all ns
//   transducers, ...): field f of signal i starts at 256 + ns * (widths of the fields before
//   f) + i * width_f.
//     width  field
//     16     label ("EEG Fp1-REF"; "EDF Annotations" marks an EDF+ annotation signal)
//     80     transducer type
//      8     physical dimension, the unit ("uV")
//      8     physical minimum, a decimal number
//      8     physical maximum, a decimal number, != the minimum (below it for a negative gain)
//      8     digital minimum, an integer in -32768..32767
//      8     digital maximum, an integer in -32768..32767, > the digital minimum
//     80     prefiltering ("HP:0.1Hz LP:75Hz")
//      8     n_i, the number of samples of signal i in each data record, > 0
//     32     reserved
//
//   data record (every record alike): for i = 0..ns-1, n_i samples of signal i as 16-bit
//   little-endian two's-complement integers. Record size = sum_i 2 n_i bytes; the file holds
//   exactly header bytes + records * record size bytes.
//
// ---- scaling -------------------------------------------------------------------------------
//   physical = pmin + (digital - dmin) * (pmax - pmin) / (dmax - dmin)
// maps dmin to pmin and dmax to pmax. Signal i's sampling rate is n_i / (record duration).
//
// ---- EDF+ annotations ----------------------------------------------------------------------
// A signal labelled "EDF Annotations" holds bytes, not samples: its 2 n_i bytes of each record
// are Time-stamped Annotation Lists (TALs), one after the other, each
//     onset [ \x15 duration ] \x14 ( text \x14 )* \x00
// onset: '+' or '-' and a decimal number of seconds after the header's start date and time;
// duration: an unsigned decimal number of seconds; text: UTF-8 without control bytes (0..31).
// The bytes after the last TAL are \x00. The first TAL of each record in the first annotation
// signal is the record's time-keeping TAL "+t\x14\x14...": its first text is empty, and record
// k starts t seconds after the start time; further texts in it are annotations at t.
//
// What this reader does with them:
// - Annotation onsets are returned relative to the first sample: onset_s = onset - t_0, where
//   t_0 is the first record's stamp (usually +0; +0.2 says the recording began 0.2 s after the
//   whole-second start time). They are sorted by onset (stably: annotations at one onset keep
//   their order in the file), since EDF+ lets TALs come in any order.
// - EDF+C: record k must be stamped t_0 + k * duration (within kStampTolerance_s); a record
//   stamped otherwise means a gap, which EDF+C cannot have, and is an error that says so.
// - EDF+D (discontinuous) is rejected: an eeg::Recording holds one contiguous vector per
//   channel, and filling the gaps would invent samples. Convert such a file to EDF+C first
//   (EDFbrowser's "EDF+D to EDF+C converter" splits it into contiguous files).
// - A record duration of 0 (which EDF+ allows for annotation-only files) and a record count of
//   -1 (a file that its recording software never closed) are rejected.
// - An EDF+C file without an annotation signal is read (its records are contiguous by
//   declaration); an "EDF Annotations" signal in a plain EDF file (no "EDF+C" in the reserved
//   field) is rejected rather than read as samples.
// Every header byte, number and TAL byte is validated, and the file size checked, before
// anything is trusted; an error names the file, the field (its bytes, and the signal's number
// and label) and the value found. Signals and data records are numbered from 1 in messages.
//
// ---- writer --------------------------------------------------------------------------------
// Always EDF+C, with one "EDF Annotations" signal after the channels.
// - Record duration: 1 s when every rate is an integer and every channel fills whole 1-s
//   records; otherwise the first of 2, 3, ..., 60 s, then 0.5, 0.25, 0.2, 0.1, 0.05, 0.04,
//   0.02, 0.01 s that gives every channel a whole number of samples per record and the same
//   whole number of records; when none does, an error naming the rates and lengths.
// - Physical range: the channel's physical_min/max, widened to the data's own minimum and
//   maximum when the data go beyond it by more than 1e-3 of a step (so that nothing is clipped
//   by more than that; the widening is not reported), then rounded outwards to fit the
//   8-character fields. Digital range: the
//   channel's. Each sample is quantised with the range as written,
//       digital = round(dmin + (x - pmin) (dmax - dmin) / (pmax - pmin)), clipped to [dmin, dmax],
//   so reading the file gives x back within half a step, (pmax - pmin) / (dmax - dmin) / 2.
// - Annotations go into the record that contains their onset (clamped to the first and last
//   record) when it has room, else into the nearest record with room (onsets are absolute, so
//   this changes nothing for a reader; see serialize()); onsets and durations are written with
//   9 digits after the point (trailing zeros dropped).
// - A recording without channels (annotations only) is written as one record as long as
//   duration_s (rounded up to fit the 8-character field; 1 s when duration_s is 0).
// - An empty patient or recording field is written as EDF+'s "unknown" form, "X X X X" and
//   "Startdate X X X X"; reading the file gives those strings back.
#include "data/edf.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "data/atomic_file.h"

namespace ssm::eeg {
namespace {

constexpr size_t kMainHeaderBytes = 256;
constexpr size_t kSignalHeaderBytes = 256; // per signal
constexpr const char* kAnnotationLabel = "EDF Annotations";
constexpr int32_t kDigitalLowest = -32768, kDigitalHighest = 32767;
// Two EDF+C record stamps count as consecutive when they differ from t_0 + k * duration by at
// most this: stamps are decimal text, and 1 us is far below any EEG sampling period.
constexpr double kStampTolerance_s = 1e-6;
// The writer widens a channel's physical range only for data more than this many quantisation
// steps beyond it; closer values are clipped to the range's end, an error below half a step.
constexpr double kWidenSlack = 1e-3;
// TAL bytes (EDF+ section 2.2.2).
constexpr uint8_t kTalDuration = 0x15, kTalSeparator = 0x14, kTalEnd = 0x00;

// ---- text ----------------------------------------------------------------------------------

// Bytes as a quoted string for an error message: printable ASCII as is, anything else \xNN.
std::string quoted(const uint8_t* bytes, size_t size) {
  std::string text = "'";
  for (size_t i = 0; i < size; ++i) {
    if (bytes[i] >= 32 && bytes[i] < 127 && bytes[i] != '\\') {
      text += static_cast<char>(bytes[i]);
    } else {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", bytes[i]);
      text += escaped;
    }
  }
  return text + "'";
}

std::string quoted(const std::string& text) {
  return quoted(reinterpret_cast<const uint8_t*>(text.data()), text.size());
}

std::string trim_spaces(const std::string& text) {
  const size_t first = text.find_first_not_of(' ');
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(' ') - first + 1);
}

std::string number_text(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.10g", value);
  return text;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// An EDF integer field's text (spaces trimmed): [+-]digits. EDF fields are at most 8 characters,
// so the value always fits; longer text is refused rather than risking overflow.
bool parse_integer(const std::string& text, int64_t* value) {
  size_t pos = 0;
  const bool negative = !text.empty() && text[0] == '-';
  if (!text.empty() && (text[0] == '-' || text[0] == '+')) pos = 1;
  if (pos == text.size() || text.size() - pos > 18) return false;
  int64_t magnitude = 0;
  for (; pos < text.size(); ++pos) {
    if (!is_digit(text[pos])) return false;
    magnitude = magnitude * 10 + (text[pos] - '0');
  }
  *value = negative ? -magnitude : magnitude;
  return true;
}

// A decimal number without exponent: [+-]digits[.digits], or [+-].digits. Exponents are not
// EDF (and would let an 8-character field hold 1e99, whose differences overflow).
bool parse_decimal(const std::string& text, double* value) {
  size_t pos = 0;
  if (!text.empty() && (text[0] == '-' || text[0] == '+')) pos = 1;
  const size_t number_start = pos;
  size_t digits = 0;
  while (pos < text.size() && is_digit(text[pos])) ++pos, ++digits;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    while (pos < text.size() && is_digit(text[pos])) ++pos, ++digits;
  }
  if (digits == 0 || pos != text.size()) return false;
  // from_chars takes no leading '+'; it is locale-independent, unlike strtod.
  double magnitude = 0;
  const auto result =
      std::from_chars(text.data() + number_start, text.data() + text.size(), magnitude);
  if (result.ec != std::errc() || result.ptr != text.data() + text.size()) return false;
  *value = !text.empty() && text[0] == '-' ? -magnitude : magnitude;
  return std::isfinite(*value);
}

// "dd.mm.yy" with a day 1..31 and month 1..12, or "hh.mm.ss" with 0..23, 0..59, 0..59. Returns
// what is wrong, or "" when the text is valid.
std::string check_date_or_time(const std::string& text, bool is_date) {
  const char* form = is_date ? "dd.mm.yy" : "hh.mm.ss";
  if (text.size() != 8 || text[2] != '.' || text[5] != '.')
    return std::string("expected ") + form + " (two digits each, separated by dots)";
  int parts[3];
  for (int part = 0; part < 3; ++part) {
    const char high = text[3 * part], low = text[3 * part + 1];
    if (!is_digit(high) || !is_digit(low))
      return std::string("expected ") + form + " (two digits each, separated by dots)";
    parts[part] = (high - '0') * 10 + (low - '0');
  }
  if (is_date && (parts[0] < 1 || parts[0] > 31)) return "day is not in 01..31";
  if (is_date && (parts[1] < 1 || parts[1] > 12)) return "month is not in 01..12";
  if (!is_date && parts[0] > 23) return "hour is not in 00..23";
  if (!is_date && (parts[1] > 59 || parts[2] > 59)) return "minutes or seconds not in 00..59";
  return "";
}

// Well-formed UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF) without control
// bytes 0..31 or 127, as EDF+ asks of annotation texts. Returns the offset of the first bad
// byte, or npos.
size_t find_bad_annotation_byte(const uint8_t* text, size_t size) {
  size_t pos = 0;
  while (pos < size) {
    const uint8_t lead = text[pos];
    if (lead < 32 || lead == 127) return pos;
    if (lead < 0x80) {
      ++pos;
      continue;
    }
    size_t length;
    uint32_t code;
    if (lead >= 0xc2 && lead <= 0xdf) {
      length = 2, code = lead & 0x1f;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      length = 3, code = lead & 0x0f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      length = 4, code = lead & 0x07;
    } else {
      return pos;
    }
    if (pos + length > size) return pos;
    for (size_t k = 1; k < length; ++k) {
      if ((text[pos + k] & 0xc0) != 0x80) return pos;
      code = (code << 6) | (text[pos + k] & 0x3f);
    }
    const uint32_t lowest = length == 2 ? 0x80 : length == 3 ? 0x800 : 0x10000;
    if (code < lowest || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return pos;
    pos += length;
  }
  return std::string::npos;
}

// ---- header fields -------------------------------------------------------------------------

// One field of the header: where it is and how to name it in a message.
struct Field {
  std::string what; // "header field 'version'", "signal 3 of 20 ('EEG Fp1'), field 'label'"
  size_t offset, width;
};

class HeaderReader {
 public:
  HeaderReader(const uint8_t* bytes, const std::string& file) : bytes_(bytes), file_(file) {}

  [[noreturn]] void fail(const Field& field, const std::string& problem) const {
    throw std::invalid_argument(file_ + ": " + field.what + " (bytes " +
                                std::to_string(field.offset) + ".." +
                                std::to_string(field.offset + field.width - 1) + ") is " +
                                quoted(bytes_ + field.offset, field.width) + ": " + problem);
  }

  // The field's text with the padding spaces trimmed; every byte must be printable ASCII.
  std::string text(const Field& field) const {
    for (size_t k = 0; k < field.width; ++k) {
      const uint8_t byte = bytes_[field.offset + k];
      if (byte < 32 || byte > 126) {
        char problem[96];
        std::snprintf(problem, sizeof problem,
                      "byte %zu of the field is 0x%02x, not printable ASCII (32..126)", k, byte);
        fail(field, problem);
      }
    }
    return trim_spaces(
        std::string(reinterpret_cast<const char*>(bytes_ + field.offset), field.width));
  }

  int64_t integer(const Field& field) const {
    int64_t value = 0;
    if (!parse_integer(text(field), &value)) fail(field, "expected an integer");
    return value;
  }

  double decimal(const Field& field) const {
    double value = 0;
    if (!parse_decimal(text(field), &value))
      fail(field, "expected a decimal number (such as -3200 or 0.5)");
    return value;
  }

 private:
  const uint8_t* bytes_;
  const std::string& file_;
};

struct MainHeader {
  std::string patient, recording_id, start_date, start_time;
  bool edf_plus = false;
  int64_t records = 0, ns = 0, header_bytes = 0;
  double record_duration_s = 0;
};

MainHeader read_main_header(const uint8_t* bytes, size_t size, const std::string& file) {
  if (size < kMainHeaderBytes)
    throw std::invalid_argument(file + ": truncated EDF header: the file has " +
                                std::to_string(size) + " bytes, but the fixed part of the " +
                                "header alone is 256 bytes");
  // BDF (BioSemi's 24-bit variant) starts with 0xFF "BIOSEMI"; say so rather than "not ASCII".
  if (bytes[0] == 0xff && std::memcmp(bytes + 1, "BIOSEMI", 7) == 0)
    throw std::invalid_argument(file + ": this is a BDF file (BioSemi, 24-bit samples: version " +
                                "field 0xFF 'BIOSEMI'), not EDF; BDF is not supported");
  const HeaderReader reader(bytes, file);
  MainHeader header;
  const Field version{"header field 'version'", 0, 8};
  if (reader.text(version) != "0")
    reader.fail(version, "expected '0' (the only EDF version); this is not an EDF file");
  header.patient = reader.text({"header field 'patient identification'", 8, 80});
  header.recording_id = reader.text({"header field 'recording identification'", 88, 80});
  const Field date{"header field 'start date'", 168, 8};
  header.start_date = reader.text(date);
  if (const std::string problem = check_date_or_time(header.start_date, true); !problem.empty())
    reader.fail(date, problem);
  const Field time{"header field 'start time'", 176, 8};
  header.start_time = reader.text(time);
  if (const std::string problem = check_date_or_time(header.start_time, false); !problem.empty())
    reader.fail(time, problem);

  const Field reserved{"header field 'reserved' (EDF+: EDF+C or EDF+D)", 192, 44};
  const std::string variant = reader.text(reserved);
  if (variant.rfind("EDF+D", 0) == 0)
    reader.fail(reserved,
                "EDF+D (discontinuous: records with gaps between them) is not supported; "
                "convert the file to EDF+C first, e.g. with EDFbrowser's EDF+D to EDF+C "
                "converter");
  if (variant.rfind("EDF+", 0) == 0 && variant.rfind("EDF+C", 0) != 0)
    reader.fail(reserved, "unknown EDF+ variant: expected EDF+C or EDF+D");
  header.edf_plus = variant.rfind("EDF+C", 0) == 0;

  const Field records{"header field 'number of data records'", 236, 8};
  header.records = reader.integer(records);
  if (header.records == -1)
    reader.fail(records,
                "-1 means the recording was still in progress (the software never closed the "
                "file and wrote the count); the file cannot be read reliably");
  if (header.records < 0) reader.fail(records, "expected a count >= 0");
  const Field duration{"header field 'duration of a data record'", 244, 8};
  header.record_duration_s = reader.decimal(duration);
  if (!(header.record_duration_s > 0))
    reader.fail(duration,
                "expected a duration > 0 seconds (0 is allowed by EDF+ only for files holding "
                "annotations alone, which this reader does not support)");
  const Field signals{"header field 'number of signals'", 252, 4};
  header.ns = reader.integer(signals);
  if (header.ns < 1) reader.fail(signals, "expected at least 1 signal");

  const Field header_bytes{"header field 'number of bytes in header'", 184, 8};
  header.header_bytes = reader.integer(header_bytes);
  const int64_t expected_header_bytes = static_cast<int64_t>(kSignalHeaderBytes) * (header.ns + 1);
  if (header.header_bytes != expected_header_bytes)
    reader.fail(header_bytes, "expected 256 * (ns + 1) = " + std::to_string(expected_header_bytes) +
                                  " for ns = " + std::to_string(header.ns) + " signals");
  if (size < static_cast<size_t>(expected_header_bytes))
    throw std::invalid_argument(file + ": truncated EDF header: " + std::to_string(header.ns) +
                                " signals need a header of " +
                                std::to_string(expected_header_bytes) + " bytes, but the file " +
                                "has only " + std::to_string(size) + " bytes");
  return header;
}

struct SignalHeader {
  std::string label, transducer, unit, prefilter;
  double physical_min = 0, physical_max = 0;
  int64_t digital_min = 0, digital_max = 0, samples_per_record = 0;
  bool is_annotations = false;
};

// The widths of the per-signal fields, in file order.
constexpr size_t kSignalFieldWidths[] = {16, 80, 8, 8, 8, 8, 8, 80, 8, 32};
enum SignalFieldIndex {
  kLabel,
  kTransducer,
  kUnit,
  kPhysicalMin,
  kPhysicalMax,
  kDigitalMin,
  kDigitalMax,
  kPrefilter,
  kSamplesPerRecord,
  kSignalReserved,
};
const char* const kSignalFieldNames[] = {"label",
                                         "transducer type",
                                         "physical dimension",
                                         "physical minimum",
                                         "physical maximum",
                                         "digital minimum",
                                         "digital maximum",
                                         "prefiltering",
                                         "samples per data record",
                                         "reserved"};

std::vector<SignalHeader> read_signal_headers(const uint8_t* bytes, const MainHeader& main,
                                              const std::string& file) {
  const HeaderReader reader(bytes, file);
  const size_t ns = static_cast<size_t>(main.ns);
  std::vector<SignalHeader> signals(ns);
  const std::string of_ns = " of " + std::to_string(ns);
  auto field = [&](size_t signal, int index) {
    size_t offset = kMainHeaderBytes;
    for (int f = 0; f < index; ++f) offset += ns * kSignalFieldWidths[f];
    offset += signal * kSignalFieldWidths[index];
    std::string what = "signal " + std::to_string(signal + 1) + of_ns;
    if (index != kLabel) what += " (" + quoted(signals[signal].label) + ")";
    return Field{what + ", field '" + kSignalFieldNames[index] + "'", offset,
                 kSignalFieldWidths[index]};
  };

  for (size_t i = 0; i < ns; ++i) signals[i].label = reader.text(field(i, kLabel));
  for (size_t i = 0; i < ns; ++i) {
    SignalHeader& s = signals[i];
    s.is_annotations = s.label == kAnnotationLabel;
    if (s.is_annotations && !main.edf_plus)
      reader.fail(field(i, kLabel),
                  "an EDF+ annotation signal in a file whose reserved field does not start with "
                  "EDF+C (a plain EDF file has no annotation signals)");
    s.transducer = reader.text(field(i, kTransducer));
    s.unit = reader.text(field(i, kUnit));
    s.physical_min = reader.decimal(field(i, kPhysicalMin));
    s.physical_max = reader.decimal(field(i, kPhysicalMax));
    if (s.physical_min == s.physical_max)
      reader.fail(field(i, kPhysicalMax), "equals the physical minimum " +
                                              number_text(s.physical_min) +
                                              " (the scale would divide by zero)");
    for (const int index : {kDigitalMin, kDigitalMax}) {
      const int64_t value = reader.integer(field(i, index));
      if (value < kDigitalLowest || value > kDigitalHighest)
        reader.fail(field(i, index), "outside the 16-bit range -32768..32767");
      (index == kDigitalMin ? s.digital_min : s.digital_max) = value;
    }
    if (s.digital_min >= s.digital_max)
      reader.fail(field(i, kDigitalMax),
                  "digital minimum " + std::to_string(s.digital_min) + " >= digital maximum " +
                      std::to_string(s.digital_max) + " (the maximum must be the larger)");
    s.prefilter = reader.text(field(i, kPrefilter));
    s.samples_per_record = reader.integer(field(i, kSamplesPerRecord));
    if (s.samples_per_record < 1)
      reader.fail(field(i, kSamplesPerRecord), "expected at least 1 sample per data record");
    reader.text(field(i, kSignalReserved));
  }
  return signals;
}

// "123" for a count that may exceed 64 bits (records * record size of a corrupt header).
std::string u128_text(unsigned __int128 value) {
  std::string digits;
  do {
    digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(value % 10)));
    value /= 10;
  } while (value != 0);
  return digits;
}

// ---- TALs ----------------------------------------------------------------------------------

struct Tal {
  double onset_s = 0, duration_s = 0;
  bool has_duration = false;
  std::vector<std::string> texts;
};

// Parses one annotation signal's bytes in one data record. `where` names the record and
// signal; `file_offset` is the file offset of bytes[0], for messages.
std::vector<Tal> parse_tals(const uint8_t* bytes, size_t size, const std::string& where,
                            size_t file_offset) {
  std::vector<Tal> tals;
  auto fail = [&](size_t tal_start, size_t pos, const std::string& problem) {
    // The bytes from the TAL's start to the first \x00 after its first byte, at most 40.
    size_t end = tal_start + 1;
    while (end < size && end - tal_start < 40 && bytes[end] != kTalEnd) ++end;
    const bool cut = end - tal_start == 40 && end < size;
    if (end < size && !cut) ++end;
    throw std::invalid_argument(
        where + ": bad TAL at byte " + std::to_string(file_offset + tal_start) + " (" +
        quoted(bytes + tal_start, end - tal_start) + (cut ? "..." : "") + "): " + problem +
        " (at byte " + std::to_string(file_offset + pos) + ")");
  };
  // A number's text from `pos` up to the first TAL control byte (or the end).
  auto number_until_control = [&](size_t& pos) {
    const size_t begin = pos;
    while (pos < size && bytes[pos] != kTalDuration && bytes[pos] != kTalSeparator &&
           bytes[pos] != kTalEnd)
      ++pos;
    return std::string(reinterpret_cast<const char*>(bytes + begin), pos - begin);
  };

  size_t pos = 0;
  while (pos < size && bytes[pos] != kTalEnd) {
    const size_t start = pos;
    Tal tal;
    if (bytes[pos] != '+' && bytes[pos] != '-')
      fail(start, pos, "an onset must start with '+' or '-'");
    const std::string onset = number_until_control(pos);
    if (onset.size() < 2 || !parse_decimal(onset, &tal.onset_s))
      fail(start, start, "onset " + quoted(onset) + " is not a signed decimal number of seconds");
    if (pos < size && bytes[pos] == kTalDuration) {
      const size_t duration_start = ++pos;
      const std::string duration = number_until_control(pos);
      if (duration.empty() || duration[0] == '+' || duration[0] == '-' ||
          !parse_decimal(duration, &tal.duration_s))
        fail(start, duration_start,
             "duration " + quoted(duration) + " is not an unsigned decimal number of seconds");
      tal.has_duration = true;
    }
    if (pos >= size || bytes[pos] != kTalSeparator)
      fail(start, pos, "the onset (and duration) must be followed by \\x14");
    ++pos;
    while (true) {
      if (pos >= size) fail(start, pos, "the TAL runs to the end of the record without \\x00");
      if (bytes[pos] == kTalEnd) {
        ++pos;
        break;
      }
      const size_t text_start = pos;
      while (pos < size && bytes[pos] != kTalSeparator && bytes[pos] != kTalEnd) ++pos;
      if (pos >= size || bytes[pos] != kTalSeparator)
        fail(start, pos, "an annotation text must end with \\x14");
      const size_t bad = find_bad_annotation_byte(bytes + text_start, pos - text_start);
      if (bad != std::string::npos)
        fail(start, text_start + bad, "annotation text has a control byte or is not valid UTF-8");
      tal.texts.emplace_back(reinterpret_cast<const char*>(bytes + text_start), pos - text_start);
      ++pos;
    }
    tals.push_back(std::move(tal));
  }
  for (size_t rest = pos; rest < size; ++rest)
    if (bytes[rest] != 0)
      fail(pos, rest, "the bytes after the last TAL of a record must all be \\x00");
  return tals;
}

// ---- number formatting for the writer -------------------------------------------------------

enum class Rounding { Nearest, Down, Up };

// The decimal text of m * 10^-decimals, trailing zeros (and a bare point) dropped.
std::string scaled_integer_text(int64_t m, int decimals) {
  std::string digits = std::to_string(m < 0 ? -m : m);
  if (decimals > 0) {
    if (digits.size() <= static_cast<size_t>(decimals))
      digits.insert(0, static_cast<size_t>(decimals) + 1 - digits.size(), '0');
    digits.insert(digits.size() - static_cast<size_t>(decimals), ".");
    while (digits.back() == '0') digits.pop_back();
    if (digits.back() == '.') digits.pop_back();
  }
  return (m < 0 ? "-" : "") + digits;
}

// `value` as decimal text of at most `width` characters with as many digits after the point as
// fit (at most `max_decimals`), rounded to nearest, down or up. Down/Up guarantee that the text
// parses to a number <= / >= value. Throws (naming `what`) when even the integer part does not
// fit.
std::string fit_decimal(double value, size_t width, int max_decimals, Rounding rounding,
                        const std::string& what) {
  if (std::fabs(value) < 1e15) {
    for (int decimals = max_decimals; decimals >= 0; --decimals) {
      const double scaled = value * std::pow(10.0, decimals);
      if (std::fabs(scaled) >= 9e15) continue;
      // The nearest m * 10^-decimals, then one step outwards when it lies on the wrong side
      // (value * 10^decimals is itself rounded, so floor/ceil of it could step needlessly).
      int64_t m = static_cast<int64_t>(std::nearbyint(scaled));
      std::string text = scaled_integer_text(m, decimals);
      double parsed = 0;
      parse_decimal(text, &parsed);
      if (rounding == Rounding::Down && parsed > value) text = scaled_integer_text(--m, decimals);
      if (rounding == Rounding::Up && parsed < value) text = scaled_integer_text(++m, decimals);
      if (text.size() <= width) return text;
    }
  }
  throw std::invalid_argument(what + " " + number_text(value) + " does not fit EDF's " +
                              std::to_string(width) + "-character field");
}

// `text` padded with spaces to `width` characters; it must be printable ASCII of at most
// `width` characters.
void append_field(std::string& header, const std::string& text, size_t width,
                  const std::string& what) {
  for (const char c : text)
    if (static_cast<unsigned char>(c) < 32 || static_cast<unsigned char>(c) > 126)
      throw std::invalid_argument(what + " " + quoted(text) +
                                  " has a byte that is not printable ASCII (32..126)");
  if (text.size() > width)
    throw std::invalid_argument(what + " " + quoted(text) + " is " + std::to_string(text.size()) +
                                " characters; the EDF field holds " + std::to_string(width));
  header += text;
  header.append(width - text.size(), ' ');
}

// The onset or duration of a TAL: decimal seconds, 9 digits after the point at most.
std::string tal_seconds(double seconds, const std::string& what) {
  return fit_decimal(seconds, 64, 9, Rounding::Nearest, what);
}

// The data-record duration: the first candidate that gives every channel a whole number of
// samples per record and all channels the same whole number of records.
constexpr double kRecordDurationCandidates_s[] = {
    1,  2,  3,  4,  5,  6,  7,  8,  9,  10,  11,   12,  13,  14,   15,   16,   17,
    18, 19, 20, 21, 22, 23, 24, 25, 26, 27,  28,   29,  30,  31,   32,   33,   34,
    35, 36, 37, 38, 39, 40, 41, 42, 43, 44,  45,   46,  47,  48,   49,   50,   51,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 0.5, 0.25, 0.2, 0.1, 0.05, 0.04, 0.02, 0.01};

// Samples per record of a channel at `rate_hz` for a record of `duration_s`, or 0 when that is
// not a whole number (within 1e-9 relative: a rate read from a file is n / duration in doubles).
int64_t whole_samples_per_record(double rate_hz, double duration_s) {
  const double samples = rate_hz * duration_s;
  const double rounded = std::nearbyint(samples);
  if (rounded < 1 || rounded > 99999999 || std::fabs(samples - rounded) > 1e-9 * samples) return 0;
  return static_cast<int64_t>(rounded);
}

std::vector<uint8_t> serialize(const Recording& recording, const std::string& op) {
  // ---- header text fields
  std::string header;
  append_field(header, "0", 8, op + ": version");
  append_field(header, recording.patient.empty() ? "X X X X" : recording.patient, 80,
               op + ": patient identification");
  append_field(header,
               recording.recording_id.empty() ? "Startdate X X X X" : recording.recording_id, 80,
               op + ": recording identification");
  for (const bool is_date : {true, false}) {
    const std::string& text = is_date ? recording.start_date : recording.start_time;
    const std::string what = op + (is_date ? ": start date" : ": start time");
    if (const std::string problem = check_date_or_time(text, is_date); !problem.empty())
      throw std::invalid_argument(what + " " + quoted(text) + ": " + problem);
    append_field(header, text, 8, what);
  }

  // ---- channels: rates, lengths, the record duration
  const std::vector<Channel>& channels = recording.channels;
  auto channel_name = [&](size_t i) {
    return op + ": channel " + std::to_string(i) + " (" + quoted(channels[i].label) + ")";
  };
  for (size_t i = 0; i < channels.size(); ++i) {
    const Channel& c = channels[i];
    if (!(c.rate_hz > 0) || !std::isfinite(c.rate_hz))
      throw std::invalid_argument(channel_name(i) + ": rate_hz " + number_text(c.rate_hz) +
                                  " is not a positive number");
    if (c.label == kAnnotationLabel)
      throw std::invalid_argument(channel_name(i) +
                                  ": the label 'EDF Annotations' is reserved for the annotation "
                                  "signal");
    const double length_s = static_cast<double>(c.samples.size()) / c.rate_hz;
    const double first_length_s =
        static_cast<double>(channels[0].samples.size()) / channels[0].rate_hz;
    if (std::fabs(length_s - first_length_s) > 1e-9 * std::max(length_s, first_length_s))
      throw std::invalid_argument(
          channel_name(i) + " lasts " + number_text(length_s) + " s (" +
          std::to_string(c.samples.size()) + " samples at " + number_text(c.rate_hz) +
          " Hz) but channel 0 lasts " + number_text(first_length_s) + " s (" +
          std::to_string(channels[0].samples.size()) + " samples at " +
          number_text(channels[0].rate_hz) + " Hz); EDF channels share one length");
  }
  double record_duration_s = 1;
  int64_t records = 0;
  std::vector<int64_t> samples_per_record(channels.size());
  if (channels.empty()) {
    if (!(recording.duration_s >= 0) || recording.duration_s > 99999999)
      throw std::invalid_argument(op + ": duration_s " + number_text(recording.duration_s) +
                                  " is not a length in seconds");
    // No samples to divide: one record as long as the recording (1 s when it has no length).
    records = recording.duration_s > 0 || !recording.annotations.empty() ? 1 : 0;
    if (recording.duration_s > 0) {
      const std::string text =
          fit_decimal(recording.duration_s, 8, 7, Rounding::Up, op + ": duration_s");
      parse_decimal(text, &record_duration_s);
    }
  } else {
    bool found = false;
    for (const double candidate : kRecordDurationCandidates_s) {
      int64_t candidate_records = -1;
      bool fits = true;
      for (size_t i = 0; i < channels.size() && fits; ++i) {
        const int64_t n = whole_samples_per_record(channels[i].rate_hz, candidate);
        const int64_t length = static_cast<int64_t>(channels[i].samples.size());
        fits =
            n > 0 && length % n == 0 && (candidate_records < 0 || length / n == candidate_records);
        if (fits) candidate_records = length / n, samples_per_record[i] = n;
      }
      if (fits) {
        record_duration_s = candidate, records = candidate_records, found = true;
        break;
      }
    }
    if (!found) {
      std::string rates;
      for (size_t i = 0; i < channels.size(); ++i)
        rates += (i ? ", " : "") + number_text(channels[i].rate_hz) + " Hz x " +
                 std::to_string(channels[i].samples.size());
      throw std::invalid_argument(
          op +
          ": no data-record duration (1..60 s, 0.5..0.01 s) gives every channel a whole "
          "number of samples per record and of records; rates x samples: " +
          rates);
    }
  }
  if (records > 99999999)
    throw std::invalid_argument(op + ": " + std::to_string(records) +
                                " data records do not fit EDF's 8-character field");

  // ---- annotations: TAL bytes of each record
  // Each record starts with its time-keeping TAL. An annotation goes into the record holding
  // its onset when there is room, else into the nearest record after it (then before it) that
  // has room: EDF+ onsets are absolute, so any record will do, and spreading them keeps a
  // cluster of annotations from enlarging every record of the file. Room per record:
  //     bytes = longest stamp + longest TAL + ceil(all TAL bytes / records)
  // suffices, because some record always holds at most the average, leaving the longest TAL
  // room there.
  std::vector<std::string> tals(static_cast<size_t>(records));
  size_t longest_stamp = 0;
  for (int64_t k = 0; k < records; ++k) {
    std::string& stamp = tals[static_cast<size_t>(k)];
    stamp = "+" + tal_seconds(static_cast<double>(k) * record_duration_s, op + ": record stamp") +
            "\x14\x14" + std::string(1, '\0');
    longest_stamp = std::max(longest_stamp, stamp.size());
  }
  std::vector<std::string> annotation_tals(recording.annotations.size());
  size_t longest_tal = 0, all_tal_bytes = 0;
  for (size_t a = 0; a < recording.annotations.size(); ++a) {
    const Annotation& annotation = recording.annotations[a];
    const std::string what =
        op + ": annotation " + std::to_string(a) + " (" + quoted(annotation.text) + ")";
    if (!std::isfinite(annotation.onset_s) || std::fabs(annotation.onset_s) >= 1e9)
      throw std::invalid_argument(what + ": onset " + number_text(annotation.onset_s) +
                                  " s is not a time within 1e9 s");
    if (!(annotation.duration_s >= 0) || annotation.duration_s >= 1e9)
      throw std::invalid_argument(what + ": duration " + number_text(annotation.duration_s) +
                                  " s is not a length in [0, 1e9) s");
    const size_t bad = find_bad_annotation_byte(
        reinterpret_cast<const uint8_t*>(annotation.text.data()), annotation.text.size());
    if (bad != std::string::npos)
      throw std::invalid_argument(what + ": byte " + std::to_string(bad) +
                                  " of the text is a control byte or not valid UTF-8");
    if (records == 0)
      throw std::invalid_argument(what +
                                  ": a recording without samples has no data record "
                                  "to hold annotations");
    std::string& tal = annotation_tals[a];
    tal = (annotation.onset_s < 0 ? "-" : "+") +
          tal_seconds(std::fabs(annotation.onset_s), what + ": onset");
    if (annotation.duration_s > 0)
      tal += "\x15" + tal_seconds(annotation.duration_s, what + ": duration");
    tal += "\x14" + annotation.text + "\x14" + std::string(1, '\0');
    longest_tal = std::max(longest_tal, tal.size());
    all_tal_bytes += tal.size();
  }
  const size_t annotation_bytes =
      records == 0
          ? 2
          : longest_stamp + longest_tal +
                (all_tal_bytes + static_cast<size_t>(records) - 1) / static_cast<size_t>(records);
  const int64_t annotation_samples = static_cast<int64_t>((annotation_bytes + 1) / 2);
  if (annotation_samples > 99999999)
    throw std::invalid_argument(op + ": the annotations need " + std::to_string(annotation_bytes) +
                                " bytes per data record, more than EDF allows");
  for (size_t a = 0; a < annotation_tals.size(); ++a) {
    const double onset_record = std::floor(recording.annotations[a].onset_s / record_duration_s);
    const int64_t home = onset_record <= 0 ? 0
                         : onset_record >= static_cast<double>(records - 1)
                             ? records - 1
                             : static_cast<int64_t>(onset_record);
    int64_t chosen = -1;
    for (int64_t k = home; k < records && chosen < 0; ++k)
      if (tals[static_cast<size_t>(k)].size() + annotation_tals[a].size() <= annotation_bytes)
        chosen = k;
    for (int64_t k = home - 1; k >= 0 && chosen < 0; --k)
      if (tals[static_cast<size_t>(k)].size() + annotation_tals[a].size() <= annotation_bytes)
        chosen = k;
    if (chosen < 0) throw std::logic_error(op + ": no record has room for an annotation");
    tals[static_cast<size_t>(chosen)] += annotation_tals[a];
  }

  // ---- physical and digital ranges
  struct Range {
    std::string physical_min, physical_max;
    double pmin, pmax;
    int32_t dmin, dmax;
  };
  std::vector<Range> ranges(channels.size());
  for (size_t i = 0; i < channels.size(); ++i) {
    const Channel& c = channels[i];
    Range& r = ranges[i];
    if (c.digital_min < kDigitalLowest || c.digital_max > kDigitalHighest ||
        c.digital_min >= c.digital_max)
      throw std::invalid_argument(
          channel_name(i) + ": digital range " + std::to_string(c.digital_min) + ".." +
          std::to_string(c.digital_max) + " is not an increasing range within -32768..32767");
    if (!std::isfinite(c.physical_min) || !std::isfinite(c.physical_max) ||
        c.physical_min == c.physical_max)
      throw std::invalid_argument(channel_name(i) + ": physical range " +
                                  number_text(c.physical_min) + ".." + number_text(c.physical_max) +
                                  " is empty or not finite");
    double low = std::min(c.physical_min, c.physical_max);
    double high = std::max(c.physical_min, c.physical_max);
    double data_low = low, data_high = high;
    for (size_t s = 0; s < c.samples.size(); ++s) {
      if (!std::isfinite(c.samples[s]))
        throw std::invalid_argument(channel_name(i) + ": sample " + std::to_string(s) + " is " +
                                    number_text(c.samples[s]) + "; EDF stores finite values");
      data_low = std::min(data_low, c.samples[s]);
      data_high = std::max(data_high, c.samples[s]);
    }
    // Data beyond the range by float rounding only (a range's end computed from a digital
    // value, such as -204.8 + 4095 * 0.1 = 204.70000000000002 > 204.7) would widen the range
    // and change every sample's step; up to kWidenSlack steps beyond it are clipped instead.
    const double slack = kWidenSlack * (high - low) / (c.digital_max - c.digital_min);
    if (data_low < low - slack) low = data_low;
    if (data_high > high + slack) high = data_high;
    std::string low_text =
        fit_decimal(low, 8, 7, Rounding::Down, channel_name(i) + ": physical minimum");
    std::string high_text =
        fit_decimal(high, 8, 7, Rounding::Up, channel_name(i) + ": physical maximum");
    // A negative gain (physical_min > physical_max) keeps its orientation.
    if (c.physical_min > c.physical_max) std::swap(low_text, high_text);
    r.physical_min = low_text, r.physical_max = high_text;
    parse_decimal(r.physical_min, &r.pmin);
    parse_decimal(r.physical_max, &r.pmax);
    r.dmin = c.digital_min, r.dmax = c.digital_max;
  }

  // ---- rest of the main header
  const size_t ns = channels.size() + 1;
  append_field(header, std::to_string(kSignalHeaderBytes * (ns + 1)), 8, op + ": header bytes");
  append_field(header, "EDF+C", 44, op + ": reserved");
  append_field(header, std::to_string(records), 8, op + ": number of data records");
  append_field(header,
               fit_decimal(record_duration_s, 8, 7, Rounding::Nearest, op + ": record duration"), 8,
               op + ": record duration");
  if (ns > 9999)
    throw std::invalid_argument(op + ": " + std::to_string(channels.size()) +
                                " channels; EDF holds at most 9998 besides the annotations");
  append_field(header, std::to_string(ns), 4, op + ": number of signals");

  // ---- signal headers, field by field; the annotation signal last
  auto for_each_signal = [&](size_t width, auto text_of_channel, const std::string& annotation,
                             const char* field_name) {
    for (size_t i = 0; i < channels.size(); ++i)
      append_field(header, text_of_channel(i), width, channel_name(i) + ": " + field_name);
    append_field(header, annotation, width, op + ": annotation signal " + field_name);
  };
  for_each_signal(
      16, [&](size_t i) { return channels[i].label; }, kAnnotationLabel, "label");
  for_each_signal(
      80, [&](size_t i) { return channels[i].transducer; }, "", "transducer");
  for_each_signal(
      8, [&](size_t i) { return channels[i].unit; }, "", "unit");
  for_each_signal(
      8, [&](size_t i) { return ranges[i].physical_min; }, "-1", "physical minimum");
  for_each_signal(
      8, [&](size_t i) { return ranges[i].physical_max; }, "1", "physical maximum");
  for_each_signal(
      8, [&](size_t i) { return std::to_string(ranges[i].dmin); }, "-32768", "digital minimum");
  for_each_signal(
      8, [&](size_t i) { return std::to_string(ranges[i].dmax); }, "32767", "digital maximum");
  for_each_signal(
      80, [&](size_t i) { return channels[i].prefilter; }, "", "prefiltering");
  for_each_signal(
      8, [&](size_t i) { return std::to_string(samples_per_record[i]); },
      std::to_string(annotation_samples), "samples per record");
  for_each_signal(
      32, [](size_t) { return std::string(); }, "", "reserved");

  // ---- data records
  size_t record_bytes = 2 * static_cast<size_t>(annotation_samples);
  for (const int64_t n : samples_per_record) record_bytes += 2 * static_cast<size_t>(n);
  std::vector<uint8_t> bytes(header.size() + static_cast<size_t>(records) * record_bytes, 0);
  std::memcpy(bytes.data(), header.data(), header.size());
  uint8_t* out = bytes.data() + header.size();
  for (int64_t k = 0; k < records; ++k) {
    for (size_t i = 0; i < channels.size(); ++i) {
      const Range& r = ranges[i];
      const double digital_per_physical = (r.dmax - r.dmin) / (r.pmax - r.pmin);
      const int64_t n = samples_per_record[i];
      const double* x = channels[i].samples.data() + k * n;
      for (int64_t s = 0; s < n; ++s) {
        const double digital =
            std::clamp(std::nearbyint(r.dmin + (x[s] - r.pmin) * digital_per_physical),
                       static_cast<double>(r.dmin), static_cast<double>(r.dmax));
        const uint16_t bits = static_cast<uint16_t>(static_cast<int32_t>(digital));
        *out++ = static_cast<uint8_t>(bits & 0xff);
        *out++ = static_cast<uint8_t>(bits >> 8);
      }
    }
    const std::string& tal = tals[static_cast<size_t>(k)];
    std::memcpy(out, tal.data(), tal.size());
    out += 2 * static_cast<size_t>(annotation_samples);
  }
  return bytes;
}

} // namespace

// ---- reader --------------------------------------------------------------------------------

Recording parse_edf(const uint8_t* bytes, size_t size, const std::string& name) {
  const MainHeader main = read_main_header(bytes, size, name);
  const std::vector<SignalHeader> signals = read_signal_headers(bytes, main, name);

  // ---- the file size
  std::vector<size_t> signal_offset(signals.size()); // within a record, bytes
  uint64_t record_bytes = 0;
  for (size_t i = 0; i < signals.size(); ++i) {
    signal_offset[i] = record_bytes;
    record_bytes += 2 * static_cast<uint64_t>(signals[i].samples_per_record);
  }
  const uint64_t header_bytes = static_cast<uint64_t>(main.header_bytes);
  const uint64_t data_bytes = size - header_bytes;
  const unsigned __int128 expected_data_bytes =
      static_cast<unsigned __int128>(main.records) * record_bytes;
  if (expected_data_bytes != data_bytes) {
    const std::string announced = "the header announces " + std::to_string(main.records) +
                                  " data records of " + std::to_string(record_bytes) + " bytes (" +
                                  u128_text(expected_data_bytes) + " bytes after the " +
                                  std::to_string(header_bytes) + "-byte header)";
    if (data_bytes < expected_data_bytes)
      throw std::invalid_argument(name + ": file is truncated: " + announced +
                                  ", but it has only " + std::to_string(data_bytes) + " (" +
                                  std::to_string(data_bytes / record_bytes) +
                                  " whole data records)");
    throw std::invalid_argument(name + ": file is longer than its header says: " + announced +
                                ", but it has " + std::to_string(data_bytes) + " (" +
                                u128_text(data_bytes - expected_data_bytes) + " extra bytes)");
  }

  // ---- the recording
  Recording recording;
  recording.patient = main.patient;
  recording.recording_id = main.recording_id;
  recording.start_date = main.start_date;
  recording.start_time = main.start_time;
  recording.source_format = main.edf_plus ? "EDF+C" : "EDF";
  recording.duration_s = static_cast<double>(main.records) * main.record_duration_s;
  const size_t records = static_cast<size_t>(main.records);
  std::vector<size_t> channel_of_signal(signals.size(), 0);
  size_t timekeeping_signal = signals.size(); // the first annotation signal, if any
  for (size_t i = 0; i < signals.size(); ++i) {
    const SignalHeader& s = signals[i];
    if (s.is_annotations) {
      timekeeping_signal = std::min(timekeeping_signal, i);
      continue;
    }
    channel_of_signal[i] = recording.channels.size();
    Channel c;
    c.label = s.label;
    c.unit = s.unit;
    c.rate_hz = static_cast<double>(s.samples_per_record) / main.record_duration_s;
    c.physical_min = s.physical_min;
    c.physical_max = s.physical_max;
    c.digital_min = static_cast<int32_t>(s.digital_min);
    c.digital_max = static_cast<int32_t>(s.digital_max);
    c.transducer = s.transducer;
    c.prefilter = s.prefilter;
    c.samples.resize(records * static_cast<size_t>(s.samples_per_record));
    recording.channels.push_back(std::move(c));
  }

  double first_stamp_s = 0;
  for (size_t k = 0; k < records; ++k) {
    const size_t record_start = header_bytes + k * record_bytes;
    for (size_t i = 0; i < signals.size(); ++i) {
      const SignalHeader& s = signals[i];
      const uint8_t* p = bytes + record_start + signal_offset[i];
      const size_t n = static_cast<size_t>(s.samples_per_record);
      if (!s.is_annotations) {
        // physical = pmin + (digital - dmin) * (pmax - pmin) / (dmax - dmin)
        const double physical_per_digital =
            (s.physical_max - s.physical_min) / static_cast<double>(s.digital_max - s.digital_min);
        double* out = recording.channels[channel_of_signal[i]].samples.data() + k * n;
        for (size_t j = 0; j < n; ++j) {
          int32_t digital = p[2 * j] | (p[2 * j + 1] << 8);
          if (digital >= 32768) digital -= 65536;
          out[j] = s.physical_min + (digital - s.digital_min) * physical_per_digital;
        }
        continue;
      }
      const std::string where = name + ": data record " + std::to_string(k + 1) + " of " +
                                std::to_string(records) + ", signal " + std::to_string(i + 1) +
                                " ('EDF Annotations')";
      const std::vector<Tal> tals = parse_tals(p, 2 * n, where, record_start + signal_offset[i]);
      size_t first_text = 0; // of the first TAL
      if (i == timekeeping_signal) {
        if (tals.empty() || tals[0].texts.empty() || !tals[0].texts[0].empty())
          throw std::invalid_argument(
              where +
              ": the record does not start with a time-keeping TAL ('+t\\x14\\x14', "
              "the record's start time t and an empty text), which EDF+ requires in "
              "every data record of the first annotation signal");
        if (tals[0].has_duration)
          throw std::invalid_argument(where + ": the time-keeping TAL has a duration (" +
                                      number_text(tals[0].duration_s) + " s); it must have none");
        const double stamp_s = tals[0].onset_s;
        if (k == 0) first_stamp_s = stamp_s;
        const double expected_s = first_stamp_s + static_cast<double>(k) * main.record_duration_s;
        if (std::fabs(stamp_s - expected_s) > kStampTolerance_s)
          throw std::invalid_argument(
              where + ": the record is stamped " + number_text(stamp_s) +
              " s, but in an EDF+C (contiguous) file it starts at the first record's stamp + " +
              std::to_string(k) + " records x " + number_text(main.record_duration_s) + " s = " +
              number_text(expected_s) + " s; a file with gaps is EDF+D, which is not supported");
        first_text = 1; // texts after the empty one are annotations at the stamp
      }
      for (size_t t = 0; t < tals.size(); ++t)
        for (size_t j = t == 0 ? first_text : 0; j < tals[t].texts.size(); ++j)
          recording.annotations.push_back(
              {tals[t].onset_s, tals[t].has_duration ? tals[t].duration_s : 0, tals[t].texts[j]});
    }
  }
  for (Annotation& annotation : recording.annotations) annotation.onset_s -= first_stamp_s;
  std::stable_sort(recording.annotations.begin(), recording.annotations.end(),
                   [](const Annotation& a, const Annotation& b) { return a.onset_s < b.onset_s; });
  return recording;
}

Recording read_edf(const std::string& path) {
  const std::string bytes = read_file(path);
  return parse_edf(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path);
}

// ---- writer --------------------------------------------------------------------------------

std::vector<uint8_t> serialize_edf(const Recording& recording) {
  return serialize(recording, "serialize_edf");
}

void write_edf(const std::string& path, const Recording& recording) {
  const std::vector<uint8_t> bytes = serialize(recording, "write_edf " + path);
  write_file_atomic(path, bytes.data(), bytes.size());
}

} // namespace ssm::eeg
