// test_edf.cpp: the EDF/EDF+ reader and writer (data/edf.h): hand-built files read byte for
// byte (plain EDF and EDF+C with annotations), malformed files and the error each gives, the
// writer's round trip (values within half a quantisation step, labels, rates, annotations), the
// record duration and physical range it chooses, its errors, and Recording::find_channel.
//
// The hand-built files are assembled field by field here, not by the writer, so that the reader
// is checked against the format's definition rather than against its own writer.
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/atomic_file.h"
#include "data/edf.h"

namespace ssm::eeg {
namespace {

namespace fs = std::filesystem;

// ---- building files by hand ----------------------------------------------------------------

// Every field as the text that goes into the file, so that a test can put anything there.
struct HandSignal {
  std::string label = "EEG Fp1", transducer = "AgAgCl electrode", unit = "uV";
  std::string physical_min = "-204.8", physical_max = "204.7";
  std::string digital_min = "-2048", digital_max = "2047";
  std::string prefilter = "HP:0.1Hz LP:70Hz", samples_per_record = "4", reserved;
};

struct HandFile {
  std::string version = "0", patient = "MCH-0234567 F 02-MAY-1951 Haagse_Harry";
  std::string recording = "Startdate 02-MAR-2002 EMG561 BK/JOP Sony. MNC R Median Nerve.";
  std::string start_date = "02.03.02", start_time = "14.27.00";
  std::string header_bytes; // empty: 256 * (ns + 1)
  std::string reserved;     // "" (EDF), "EDF+C", ...
  std::string records = "3", record_duration = "0.5";
  std::string ns; // empty: the number of signals
  std::vector<HandSignal> signals;
  std::string data; // the data records, bytes
};

// `text` left-aligned in a field of `width` characters, padded with spaces.
std::string field(const std::string& text, size_t width) {
  REQUIRE(text.size() <= width);
  return text + std::string(width - text.size(), ' ');
}

std::string header_of(const HandFile& f) {
  const size_t ns = f.signals.size();
  std::string h;
  h += field(f.version, 8);
  h += field(f.patient, 80);
  h += field(f.recording, 80);
  h += field(f.start_date, 8);
  h += field(f.start_time, 8);
  h += field(f.header_bytes.empty() ? std::to_string(256 * (ns + 1)) : f.header_bytes, 8);
  h += field(f.reserved, 44);
  h += field(f.records, 8);
  h += field(f.record_duration, 8);
  h += field(f.ns.empty() ? std::to_string(ns) : f.ns, 4);
  for (const HandSignal& s : f.signals) h += field(s.label, 16);
  for (const HandSignal& s : f.signals) h += field(s.transducer, 80);
  for (const HandSignal& s : f.signals) h += field(s.unit, 8);
  for (const HandSignal& s : f.signals) h += field(s.physical_min, 8);
  for (const HandSignal& s : f.signals) h += field(s.physical_max, 8);
  for (const HandSignal& s : f.signals) h += field(s.digital_min, 8);
  for (const HandSignal& s : f.signals) h += field(s.digital_max, 8);
  for (const HandSignal& s : f.signals) h += field(s.prefilter, 80);
  for (const HandSignal& s : f.signals) h += field(s.samples_per_record, 8);
  for (const HandSignal& s : f.signals) h += field(s.reserved, 32);
  return h;
}

std::string bytes_of(const HandFile& f) { return header_of(f) + f.data; }

// A 16-bit little-endian two's-complement sample.
void append_sample(std::string& data, int value) {
  REQUIRE(value >= -32768);
  REQUIRE(value <= 32767);
  const unsigned bits = static_cast<unsigned>(value) & 0xffff;
  data += static_cast<char>(bits & 0xff);
  data += static_cast<char>(bits >> 8);
}

// TAL text padded with \0 to an annotation signal's `size` bytes in one record.
void append_tals(std::string& data, const std::string& tals, size_t size) {
  REQUIRE(tals.size() <= size);
  data += tals + std::string(size - tals.size(), '\0');
}

Recording parse(const std::string& bytes, const std::string& name = "hand.edf") {
  return parse_edf(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), name);
}

// A plain EDF file: "EEG Fp1" (4 samples per 0.5-s record, physical = 0.1 * digital) and "Resp"
// (2 samples per record, mV, physical = 0.001 * digital), 3 records.
//   Fp1 record k: -2048, 2047, 0, 123 + k  ->  -204.8, 204.7, 0, 12.3 + 0.1 k
//   Resp record k: 250, 1000 - k           ->  0.25, 1 - 0.001 k
HandFile plain_edf() {
  HandFile f;
  HandSignal resp;
  resp.label = "Resp";
  resp.transducer = "thermistor";
  resp.unit = "mV";
  resp.physical_min = "0";
  resp.physical_max = "1";
  resp.digital_min = "0";
  resp.digital_max = "1000";
  resp.prefilter = "";
  resp.samples_per_record = "2";
  f.signals = {HandSignal(), resp};
  for (int k = 0; k < 3; ++k) {
    for (const int d : {-2048, 2047, 0, 123 + k}) append_sample(f.data, d);
    for (const int d : {250, 1000 - k}) append_sample(f.data, d);
  }
  return f;
}

// An EDF+C file: "EEG Cz" (4 samples per 1-s record, physical = digital, digital = 10 k + j),
// a first annotation signal of 64 bytes per record and a second one of 16, 3 records. The
// first record is stamped +0.2: the recording starts 0.2 s after the start time, and onsets
// come back relative to that.
constexpr size_t kTalBytes = 64, kSecondTalBytes = 16;
std::string edf_plus_tals(int record) {
  switch (record) {
    case 0:
      return std::string("+0.2\x14\x14Recording starts\x14") + '\0' +
             std::string(
                 "+1.2\x15"
                 "30\x14seizure\x14") +
             '\0';
    case 1:
      return std::string("+1.2\x14\x14") + '\0' +
             std::string(
                 "+1.7\x14"
                 "eye blink\x14muscle\x14") +
             '\0';
    default:
      return std::string("+2.2\x14\x14") + '\0' +
             std::string(
                 "-0.5\x14"
                 "Anfall \xc3\x84\x14") +
             '\0';
  }
}

HandFile edf_plus(const std::vector<std::string>& tals = {edf_plus_tals(0), edf_plus_tals(1),
                                                          edf_plus_tals(2)}) {
  HandFile f;
  f.reserved = "EDF+C";
  f.record_duration = "1";
  HandSignal cz;
  cz.label = "EEG Cz";
  cz.physical_min = "-32768";
  cz.physical_max = "32767";
  cz.digital_min = "-32768";
  cz.digital_max = "32767";
  HandSignal annotations;
  annotations.label = "EDF Annotations";
  annotations.transducer = annotations.unit = annotations.prefilter = "";
  annotations.physical_min = "-1";
  annotations.physical_max = "1";
  annotations.digital_min = "-32768";
  annotations.digital_max = "32767";
  annotations.samples_per_record = std::to_string(kTalBytes / 2);
  HandSignal second = annotations;
  second.samples_per_record = std::to_string(kSecondTalBytes / 2);
  f.signals = {cz, annotations, second};
  for (int k = 0; k < 3; ++k) {
    for (int j = 0; j < 4; ++j) append_sample(f.data, 10 * k + j);
    append_tals(f.data, tals[static_cast<size_t>(k)], kTalBytes);
    append_tals(f.data, k == 1 ? std::string("+2.7\x14second\x14") + '\0' : "", kSecondTalBytes);
  }
  return f;
}

// Parses `bytes`, expecting std::invalid_argument whose message starts with the file's name and
// contains `fragment`; the message is printed so that the test log shows every error.
void expect_error(const std::string& what, const std::string& bytes, const std::string& fragment) {
  INFO(what);
  try {
    parse(bytes, "bad.edf");
    FAIL("no error for: " << what);
  } catch (const std::invalid_argument& e) {
    const std::string message = e.what();
    MESSAGE(what << " -> " << message);
    CHECK(message.rfind("bad.edf: ", 0) == 0);
    CHECK_MESSAGE(message.find(fragment) != std::string::npos,
                  "expected '" << fragment << "' in: " << message);
  }
}

// ---- reading hand-built files ---------------------------------------------------------------

TEST_CASE("edf: a hand-built plain EDF file is read field by field") {
  const Recording r = parse(bytes_of(plain_edf()));
  CHECK(r.source_format == "EDF");
  CHECK(r.patient == "MCH-0234567 F 02-MAY-1951 Haagse_Harry");
  CHECK(r.recording_id == "Startdate 02-MAR-2002 EMG561 BK/JOP Sony. MNC R Median Nerve.");
  CHECK(r.start_date == "02.03.02");
  CHECK(r.start_time == "14.27.00");
  CHECK(r.duration_s == 1.5);
  CHECK(r.annotations.empty());
  REQUIRE(r.channels.size() == 2);

  const Channel& fp1 = r.channels[0];
  CHECK(fp1.label == "EEG Fp1");
  CHECK(fp1.unit == "uV");
  CHECK(fp1.transducer == "AgAgCl electrode");
  CHECK(fp1.prefilter == "HP:0.1Hz LP:70Hz");
  CHECK(fp1.rate_hz == 8); // 4 samples per 0.5 s
  CHECK(fp1.physical_min == -204.8);
  CHECK(fp1.physical_max == 204.7);
  CHECK(fp1.digital_min == -2048);
  CHECK(fp1.digital_max == 2047);
  REQUIRE(fp1.samples.size() == 12);
  const Channel& resp = r.channels[1];
  CHECK(resp.label == "Resp");
  CHECK(resp.unit == "mV");
  CHECK(resp.rate_hz == 4);
  REQUIRE(resp.samples.size() == 6);

  // Scaling by hand: Fp1 physical = -204.8 + (d + 2048) * 409.5 / 4095 = 0.1 d; Resp 0.001 d.
  // 1e-12: a few roundings of numbers below 205.
  double worst = 0;
  for (int k = 0; k < 3; ++k) {
    const double fp1_expected[] = {-204.8, 204.7, 0, 12.3 + 0.1 * k};
    for (int j = 0; j < 4; ++j)
      worst = std::max(worst, std::fabs(fp1.samples[4 * k + j] - fp1_expected[j]));
    worst = std::max(worst, std::fabs(resp.samples[2 * k] - 0.25));
    worst = std::max(worst, std::fabs(resp.samples[2 * k + 1] - (1 - 0.001 * k)));
  }
  MESSAGE("plain EDF: largest |read - hand-computed physical value| = " << worst);
  CHECK(worst < 1e-12);
  CHECK(r.find_channel("Resp") == 1);
  CHECK(r.find_channel("EEG Fp1") == 0);
  CHECK(r.find_channel("resp") == -1);
}

TEST_CASE("edf: a hand-built EDF+C file: time-keeping TALs, annotations, two annotation signals") {
  const Recording r = parse(bytes_of(edf_plus()));
  CHECK(r.source_format == "EDF+C");
  CHECK(r.duration_s == 3);
  REQUIRE(r.channels.size() == 1); // annotation signals are not channels
  CHECK(r.channels[0].label == "EEG Cz");
  CHECK(r.channels[0].rate_hz == 4);
  REQUIRE(r.channels[0].samples.size() == 12);
  for (int k = 0; k < 3; ++k)
    for (int j = 0; j < 4; ++j) CHECK(r.channels[0].samples[4 * k + j] == 10 * k + j);

  // Onsets relative to the first record's stamp, +0.2 s.
  struct Expected {
    double onset_s, duration_s;
    const char* text;
  };
  // Sorted by onset; the two at 1.5 s in their order in the file.
  const Expected expected[] = {{-0.7, 0, "Anfall \xc3\x84"}, {0.0, 0, "Recording starts"},
                               {1.0, 30, "seizure"},         {1.5, 0, "eye blink"},
                               {1.5, 0, "muscle"},           {2.5, 0, "second"}};
  REQUIRE(r.annotations.size() == 6);
  for (size_t a = 0; a < 6; ++a) {
    INFO("annotation " << a);
    CHECK(r.annotations[a].text == expected[a].text);
    CHECK(r.annotations[a].onset_s == doctest::Approx(expected[a].onset_s).epsilon(1e-12));
    CHECK(r.annotations[a].duration_s == expected[a].duration_s);
  }
}

TEST_CASE("edf: numbers with padding on both sides, an explicit '+' and a missing leading zero") {
  HandFile f = plain_edf();
  f.records = " +3";
  f.record_duration = ".5";
  f.signals[0].physical_min = " -204.80";
  const Recording r = parse(bytes_of(f));
  CHECK(r.duration_s == 1.5);
  CHECK(r.channels[0].rate_hz == 8);
  CHECK(r.channels[0].physical_min == -204.8);
}

// ---- malformed files ------------------------------------------------------------------------

TEST_CASE("edf: malformed main headers give errors naming the field and the value") {
  const std::string good = bytes_of(plain_edf());
  auto with = [](auto change) {
    HandFile f = plain_edf();
    change(f);
    return bytes_of(f);
  };
  expect_error("truncated header", good.substr(0, 100),
               "truncated EDF header: the file has 100 bytes, but the fixed part of the header "
               "alone is 256 bytes");
  expect_error("truncated signal headers", good.substr(0, 600),
               "truncated EDF header: 2 signals need a header of 768 bytes, but the file has only "
               "600 bytes");
  expect_error("bad version", with([](HandFile& f) { f.version = "1"; }),
               "header field 'version' (bytes 0..7) is '1       ': expected '0'");
  expect_error("BDF file",
               "\xff"
               "BIOSEMI" +
                   good.substr(8),
               "this is a BDF file");
  expect_error("ns = 0", with([](HandFile& f) { f.ns = "0"; }),
               "header field 'number of signals' (bytes 252..255) is '0   ': expected at least 1 "
               "signal");
  expect_error("ns negative", with([](HandFile& f) { f.ns = "-2"; }),
               "'number of signals' (bytes 252..255) is '-2  ': expected at least 1 signal");
  expect_error("ns not a number", with([](HandFile& f) { f.ns = "two"; }),
               "'number of signals' (bytes 252..255) is 'two ': expected an integer");
  expect_error("header bytes mismatch", with([](HandFile& f) { f.header_bytes = "512"; }),
               "'number of bytes in header' (bytes 184..191) is '512     ': expected 256 * (ns "
               "+ 1) = 768 for ns = 2 signals");
  expect_error("records not a number", with([](HandFile& f) { f.records = "3x"; }),
               "'number of data records' (bytes 236..243) is '3x      ': expected an integer");
  expect_error("record count -1", with([](HandFile& f) { f.records = "-1"; }),
               "-1 means the recording was still in progress");
  expect_error("record count -5", with([](HandFile& f) { f.records = "-5"; }),
               "expected a count >= 0");
  expect_error("record duration 0", with([](HandFile& f) { f.record_duration = "0"; }),
               "'duration of a data record' (bytes 244..251) is '0       ': expected a duration "
               "> 0 seconds");
  expect_error("record duration with exponent",
               with([](HandFile& f) { f.record_duration = "1e0"; }),
               "'duration of a data record' (bytes 244..251) is '1e0     ': expected a decimal "
               "number");
  expect_error("EDF+D", with([](HandFile& f) { f.reserved = "EDF+D"; }),
               "EDF+D (discontinuous: records with gaps between them) is not supported");
  expect_error("unknown EDF+ variant", with([](HandFile& f) { f.reserved = "EDF+X"; }),
               "unknown EDF+ variant");
  expect_error("control byte in the patient field", with([](HandFile& f) { f.patient[3] = '\a'; }),
               "header field 'patient identification' (bytes 8..87) is 'MCH\\x070234567");
  expect_error("bad start date", with([](HandFile& f) { f.start_date = "32.03.02"; }),
               "'start date' (bytes 168..175) is '32.03.02': day is not in 01..31");
  expect_error("bad start time", with([](HandFile& f) { f.start_time = "14:27:00"; }),
               "'start time' (bytes 176..183) is '14:27:00': expected hh.mm.ss");
}

TEST_CASE("edf: malformed signal headers name the signal, its label and the field") {
  auto with = [](auto change) {
    HandFile f = plain_edf();
    change(f);
    return bytes_of(f);
  };
  expect_error("physical minimum not a number",
               with([](HandFile& f) { f.signals[1].physical_min = "1.2.3"; }),
               "signal 2 of 2 ('Resp'), field 'physical minimum' (bytes 472..479) is '1.2.3   ': "
               "expected a decimal number");
  expect_error("physical minimum = maximum", with([](HandFile& f) {
                 f.signals[0].physical_min = "5";
                 f.signals[0].physical_max = "5.0";
               }),
               "signal 1 of 2 ('EEG Fp1'), field 'physical maximum' (bytes 480..487) is '5.0     "
               "': equals the physical minimum 5");
  expect_error("digital minimum = maximum",
               with([](HandFile& f) { f.signals[0].digital_min = "2047"; }),
               "field 'digital maximum' (bytes 512..519) is '2047    ': digital minimum 2047 >= "
               "digital maximum 2047");
  expect_error("digital minimum > maximum",
               with([](HandFile& f) { f.signals[1].digital_min = "2000"; }),
               "signal 2 of 2 ('Resp'), field 'digital maximum'");
  expect_error("digital maximum beyond 16 bits",
               with([](HandFile& f) { f.signals[1].digital_max = "40000"; }),
               "'digital maximum' (bytes 520..527) is '40000   ': outside the 16-bit range");
  expect_error("samples per record 0",
               with([](HandFile& f) { f.signals[0].samples_per_record = "0"; }),
               "signal 1 of 2 ('EEG Fp1'), field 'samples per data record' (bytes 688..695) is "
               "'0       ': expected at least 1 sample per data record");
  expect_error("label with a control byte",
               with([](HandFile& f) { f.signals[1].label = "Re\tsp"; }),
               "signal 2 of 2, field 'label' (bytes 272..287) is 'Re\\x09sp");
  expect_error("annotation signal in a plain EDF file",
               with([](HandFile& f) { f.signals[1].label = "EDF Annotations"; }),
               "a plain EDF file has no annotation signals");
}

TEST_CASE("edf: a file whose size disagrees with its header") {
  const std::string good = bytes_of(plain_edf()); // 768 + 3 records of 12 bytes
  expect_error("file shorter than its records", good.substr(0, good.size() - 6),
               "file is truncated: the header announces 3 data records of 12 bytes (36 bytes after "
               "the 768-byte header), but it has only 30 (2 whole data records)");
  expect_error("file longer than its records", good + "xyz",
               "file is longer than its header says: the header announces 3 data records of 12 "
               "bytes (36 bytes after the 768-byte header), but it has 39 (3 extra bytes)");
  HandFile huge = plain_edf();
  huge.records = "99999999";
  huge.signals[0].samples_per_record = "99999999";
  expect_error("a record count far beyond the file", bytes_of(huge),
               "data records of 200000002 bytes (");
}

TEST_CASE("edf: malformed EDF+ annotations") {
  auto tals = [](const std::string& first_record) {
    return bytes_of(edf_plus({first_record, edf_plus_tals(1), edf_plus_tals(2)}));
  };
  const std::string end(1, '\0');
  expect_error("onset without sign", tals(std::string("0.2\x14\x14") + end),
               "data record 1 of 3, signal 2 ('EDF Annotations'): bad TAL at byte 1032");
  expect_error("onset without sign (reason)", tals(std::string("0.2\x14\x14") + end),
               "an onset must start with '+' or '-'");
  expect_error("onset not a number", tals(std::string("+0.2s\x14\x14") + end),
               "onset '+0.2s' is not a signed decimal number of seconds");
  expect_error("duration with a sign",
               tals(std::string("+0.2\x14\x14") + end + "+1\x15-3\x14x\x14" + end),
               "duration '-3' is not an unsigned decimal number of seconds");
  expect_error("text without \\x14", tals(std::string("+0.2\x14\x14") + std::string(58, 'a')),
               "an annotation text must end with \\x14");
  expect_error("TAL without \\x00",
               tals(std::string("+0.2\x14\x14") + std::string(57, 'a') + "\x14"),
               "the TAL runs to the end of the record without \\x00");
  expect_error("onset not followed by \\x14", tals("+0.2" + end),
               "the onset (and duration) must be followed by \\x14");
  expect_error("no time-keeping TAL", tals(std::string("+0.2\x14seizure\x14") + end),
               "the record does not start with a time-keeping TAL");
  expect_error("empty first record", tals(""), "does not start with a time-keeping TAL");
  expect_error("time-keeping TAL with a duration",
               tals(std::string("+0.2\x15"
                                "1\x14\x14") +
                    end),
               "the time-keeping TAL has a duration (1 s)");
  expect_error("control byte in a text",
               tals(std::string("+0.2\x14\x14") + end +
                    std::string("+1\x14"
                                "a\nb\x14") +
                    end),
               "annotation text has a control byte or is not valid UTF-8");
  expect_error("invalid UTF-8 in a text",
               tals(std::string("+0.2\x14\x14") + end + std::string("+1\x14\xc3(\x14") + end),
               "annotation text has a control byte or is not valid UTF-8");
  expect_error("bytes after the padding", tals(std::string("+0.2\x14\x14") + end + end + "junk"),
               "the bytes after the last TAL of a record must all be \\x00");
  expect_error(
      "a gap between EDF+C records",
      bytes_of(edf_plus({edf_plus_tals(0), std::string("+5.2\x14\x14") + end, edf_plus_tals(2)})),
      "data record 2 of 3, signal 2 ('EDF Annotations'): the record is stamped 5.2 s, "
      "but in an EDF+C (contiguous) file it starts at the first record's stamp + 1 "
      "records x 1 s = 1.2 s");
}

// ---- the writer ----------------------------------------------------------------------------

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("test_edf_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// `seconds` of a channel at `rate_hz`: two sines and a slow drift, amplitude up to about
// `amplitude`.
Channel test_channel(const std::string& label, double rate_hz, double seconds, double amplitude) {
  Channel c;
  c.label = label;
  c.rate_hz = rate_hz;
  const size_t n = static_cast<size_t>(std::llround(rate_hz * seconds));
  c.samples.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(i) / rate_hz;
    c.samples[i] =
        amplitude * (0.6 * std::sin(2 * M_PI * 10.3 * t) +
                     0.3 * std::cos(2 * M_PI * 1.7 * t + label.size()) + 0.1 * t / seconds);
  }
  return c;
}

// Half a quantisation step of a channel as read: (pmax - pmin) / (dmax - dmin) / 2.
double half_step(const Channel& c) {
  return std::fabs(c.physical_max - c.physical_min) / (c.digital_max - c.digital_min) / 2;
}

// The largest |read - written| over a channel's samples, in units of its half step.
double error_in_half_steps(const Channel& written, const Channel& read) {
  REQUIRE(written.samples.size() == read.samples.size());
  double worst = 0;
  for (size_t i = 0; i < written.samples.size(); ++i)
    worst = std::max(worst, std::fabs(written.samples[i] - read.samples[i]));
  return worst / half_step(read);
}

// The record-duration field of a written file (bytes 244..251).
std::string record_duration_field(const std::vector<uint8_t>& bytes) {
  REQUIRE(bytes.size() >= 256);
  return std::string(reinterpret_cast<const char*>(bytes.data()) + 244, 8);
}

TEST_CASE("edf: write then read: values within half a step, labels, rates, annotations") {
  TempDir dir;
  Recording r;
  r.channels = {test_channel("EEG Fp1-REF", 256, 10, 150), test_channel("EEG O2-REF", 128, 10, 80),
                test_channel("ECG", 512, 10, 5000)};
  r.channels[1].unit = "mV";
  r.channels[1].physical_min = -100; // narrower than the default, still covering the data
  r.channels[1].physical_max = 100;
  r.channels[1].transducer = "AgAgCl electrode";
  r.channels[1].prefilter = "HP:0.5Hz LP:70Hz N:50Hz";
  r.annotations = {{0, 0, "Recording starts"},
                   {12.345678, 0, "past the end"},
                   {3.25, 42.5, "seizure"},
                   {7.000000001, 0.125, "Augen zu \xc3\xa4"},
                   {-1.5, 0, "before the start"}};
  r.patient = "P-17 M 01-JAN-1980 Test";
  r.recording_id = "Startdate 04-MAR-2021 X X X";
  r.start_date = "04.03.21";
  r.start_time = "10.20.30";
  const std::string path = dir.file("round_trip.edf");
  write_edf(path, r);
  const Recording back = read_edf(path);

  CHECK(back.source_format == "EDF+C");
  CHECK(back.duration_s == 10);
  CHECK(back.patient == r.patient);
  CHECK(back.recording_id == r.recording_id);
  CHECK(back.start_date == r.start_date);
  CHECK(back.start_time == r.start_time);
  REQUIRE(back.channels.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    const Channel &a = r.channels[i], &b = back.channels[i];
    INFO("channel " << a.label);
    CHECK(b.label == a.label);
    CHECK(b.unit == a.unit);
    CHECK(b.rate_hz == a.rate_hz);
    CHECK(b.transducer == a.transducer);
    CHECK(b.prefilter == a.prefilter);
    CHECK(b.digital_min == a.digital_min);
    CHECK(b.digital_max == a.digital_max);
    // Rounding to the nearest digital value: at most half a step, plus float rounding.
    const double error = error_in_half_steps(a, b);
    MESSAGE(a.label << ": largest error " << error << " half-steps (half step " << half_step(b)
                    << " " << b.unit << ")");
    CHECK(error <= 1 + 1e-9);
  }
  // The first two ranges were wide enough and are written as they are; the ECG's data go
  // beyond -3200..3200 and its range is widened to the data's minimum and maximum.
  CHECK(back.channels[0].physical_min == -3200);
  CHECK(back.channels[0].physical_max == 3200);
  CHECK(back.channels[1].physical_min == -100);
  CHECK(back.channels[1].physical_max == 100);
  double ecg_min = 0, ecg_max = 0;
  for (const double x : r.channels[2].samples)
    ecg_min = std::min(ecg_min, x), ecg_max = std::max(ecg_max, x);
  CHECK(ecg_max > 3200);
  CHECK(back.channels[2].physical_min <= ecg_min);
  CHECK(back.channels[2].physical_max >= ecg_max);
  CHECK(back.channels[2].physical_max - ecg_max < 1e-3); // rounded outwards at 3 decimals

  // The reader returns annotations sorted by onset. Onsets and durations are written with 9
  // decimals: 5e-10 s plus float rounding.
  std::vector<Annotation> sorted = r.annotations;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const Annotation& a, const Annotation& b) { return a.onset_s < b.onset_s; });
  REQUIRE(back.annotations.size() == sorted.size());
  for (size_t a = 0; a < sorted.size(); ++a) {
    INFO("annotation " << sorted[a].text);
    CHECK(back.annotations[a].text == sorted[a].text);
    CHECK(std::fabs(back.annotations[a].onset_s - sorted[a].onset_s) < 1e-9);
    CHECK(std::fabs(back.annotations[a].duration_s - sorted[a].duration_s) < 1e-9);
  }

  // The write was atomic: no temporary file is left beside the result.
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);
}

TEST_CASE("edf: the writer's record duration: 1 s, 2 s for 0.5-Hz steps, 0.5 s for half seconds") {
  Recording whole;
  whole.channels = {test_channel("a", 256, 4, 100), test_channel("b", 100, 4, 100)};
  CHECK(record_duration_field(serialize_edf(whole)) == "1       ");

  Recording half_hz;
  half_hz.channels = {test_channel("a", 12.5, 8, 100), test_channel("b", 200, 8, 100)};
  const std::vector<uint8_t> bytes = serialize_edf(half_hz);
  CHECK(record_duration_field(bytes) == "2       ");
  const Recording back = parse_edf(bytes.data(), bytes.size(), "memory");
  CHECK(back.channels[0].rate_hz == 12.5);
  CHECK(back.channels[0].samples.size() == 100);
  CHECK(error_in_half_steps(half_hz.channels[0], back.channels[0]) <= 1 + 1e-9);

  Recording half_seconds; // 10.5 s: 1 s records would not hold it whole
  half_seconds.channels = {test_channel("a", 256, 10.5, 100)};
  const std::vector<uint8_t> half = serialize_edf(half_seconds);
  CHECK(record_duration_field(half) == "0.5     ");
  CHECK(parse_edf(half.data(), half.size(), "memory").duration_s == 10.5);
}

TEST_CASE("edf: the writer spreads a cluster of annotations over records") {
  // 300 annotations at one onset in a 600-record file. Each TAL is 14 bytes
  // ("+5\x14event NNN\x14\x00"), the longest stamp 7 ("+599\x14\x14\x00"), so each record's
  // annotation signal gets 7 + 14 + ceil(300 * 14 / 600) = 28 bytes; putting all 300 into the
  // onset's record would give every record 4207.
  Recording r;
  r.channels = {test_channel("EEG Cz", 100, 600, 50)};
  for (int k = 0; k < 300; ++k) r.annotations.push_back({5, 0, "event " + std::to_string(100 + k)});
  const std::vector<uint8_t> bytes = serialize_edf(r);
  CHECK(bytes.size() == 256 * 3 + 600 * (2 * 100 + 28));
  const Recording back = parse_edf(bytes.data(), bytes.size(), "memory");
  REQUIRE(back.annotations.size() == 300);
  std::vector<std::string> texts;
  for (const Annotation& a : back.annotations) {
    CHECK(a.onset_s == 5);
    texts.push_back(a.text);
  }
  std::sort(texts.begin(), texts.end());
  for (int k = 0; k < 300; ++k)
    CHECK(texts[static_cast<size_t>(k)] == "event " + std::to_string(100 + k));
}

TEST_CASE("edf: a recording of annotations only is one record as long as the recording") {
  Recording r;
  r.duration_s = 42.5;
  r.annotations = {{1, 2, "lights off"}, {40, 0, "lights on"}};
  const std::vector<uint8_t> bytes = serialize_edf(r);
  CHECK(record_duration_field(bytes) == "42.5    ");
  const Recording back = parse_edf(bytes.data(), bytes.size(), "memory");
  CHECK(back.channels.empty());
  CHECK(back.duration_s == 42.5);
  REQUIRE(back.annotations.size() == 2);
  CHECK(back.annotations[0].text == "lights off");
  CHECK(back.annotations[0].duration_s == 2);
  CHECK(back.annotations[1].onset_s == 40);
}

TEST_CASE("edf: the writer keeps a negative gain and reads its own plain-EDF input back exactly") {
  Recording inverted;
  inverted.channels = {test_channel("inverted", 64, 2, 500)};
  inverted.channels[0].physical_min = 1000;
  inverted.channels[0].physical_max = -1000;
  const std::vector<uint8_t> bytes = serialize_edf(inverted);
  const Recording back = parse_edf(bytes.data(), bytes.size(), "memory");
  CHECK(back.channels[0].physical_min == 1000);
  CHECK(back.channels[0].physical_max == -1000);
  CHECK(error_in_half_steps(inverted.channels[0], back.channels[0]) <= 1 + 1e-9);

  // Values that came from digital samples are written back to the same digital samples, so a
  // second read gives the same physical values (to float rounding).
  const Recording plain = parse(bytes_of(plain_edf()));
  const std::vector<uint8_t> rewritten = serialize_edf(plain);
  const Recording again = parse_edf(rewritten.data(), rewritten.size(), "memory");
  REQUIRE(again.channels.size() == 2);
  for (size_t i = 0; i < 2; ++i)
    for (size_t s = 0; s < plain.channels[i].samples.size(); ++s)
      CHECK(std::fabs(again.channels[i].samples[s] - plain.channels[i].samples[s]) < 1e-12);
}

TEST_CASE("edf: the writer refuses what EDF cannot hold, naming the channel or annotation") {
  auto expect_write_error = [](const Recording& r, const std::string& fragment) {
    try {
      serialize_edf(r);
      FAIL("no error; expected " << fragment);
    } catch (const std::invalid_argument& e) {
      MESSAGE(std::string(e.what()));
      CHECK_MESSAGE(std::string(e.what()).find(fragment) != std::string::npos,
                    "expected '" << fragment << "' in: " << e.what());
    }
  };
  Recording r;
  r.channels = {test_channel("a", M_PI, 10, 100)};
  expect_write_error(r, "no data-record duration (1..60 s, 0.5..0.01 s) gives every channel");
  r.channels = {test_channel("a", 256, 10, 100), test_channel("b", 256, 9, 100)};
  expect_write_error(r,
                     "channel 1 ('b') lasts 9 s (2304 samples at 256 Hz) but channel 0 lasts "
                     "10 s");
  r.channels = {test_channel("a", 256, 1, 100)};
  r.channels[0].samples[7] = NAN;
  expect_write_error(r, "channel 0 ('a'): sample 7 is nan");
  r.channels = {test_channel(std::string(17, 'L'), 256, 1, 100)};
  expect_write_error(r, "is 17 characters; the EDF field holds 16");
  r.channels = {test_channel("EDF Annotations", 256, 1, 100)};
  expect_write_error(r, "the label 'EDF Annotations' is reserved");
  r.channels = {test_channel("a", 256, 1, 100)};
  r.channels[0].digital_min = 5;
  r.channels[0].digital_max = 5;
  expect_write_error(r, "digital range 5..5 is not an increasing range");
  r.channels = {test_channel("a", 256, 1, 1e9)};
  expect_write_error(r, "does not fit EDF's 8-character field");
  r.channels = {test_channel("a", 256, 1, 100)};
  r.annotations = {{1, 0, std::string("two\x14words")}};
  expect_write_error(r, "annotation 0 ('two\\x14words'): byte 3 of the text is a control byte");
  r.annotations = {{1, -2, "negative"}};
  expect_write_error(r, "duration -2 s is not a length");
  r.annotations = {};
  r.start_date = "2021-03-04";
  expect_write_error(r, "start date '2021-03-04': expected dd.mm.yy");
}

TEST_CASE("edf: read_edf names the file it cannot open") {
  try {
    read_edf("/nonexistent/dir/x.edf");
    FAIL("no error");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("/nonexistent/dir/x.edf") != std::string::npos);
  }
}

} // namespace
} // namespace ssm::eeg
