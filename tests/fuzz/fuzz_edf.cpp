// fuzz_edf.cpp: libFuzzer target for the EDF/EDF+ reader, through the in-memory parse_edf
// (build: make fuzz; how to run it and the results so far: docs/fuzzing.md).
//
// Every input is parsed as a file. Rejections (std::invalid_argument) are the expected answer
// to most inputs and are ignored. For an input that loads:
// - the recording is consistent: positive finite rates, finite samples, each channel holding
//   rate * duration samples, finite annotation onsets and durations >= 0, sorted by onset;
// - the writer round-trips it when it can: serialize_edf may refuse (std::invalid_argument:
//   e.g. rates that no record duration of the writer's makes whole, or a range wider than 8
//   characters), but what it writes must read back with the same labels, units, rates (to 1e-9
//   relative), sample counts, values within half a quantisation step of the rewritten file
//   (plus the writer's clipping slack of 1e-3 step), and the same annotations: texts, onsets
//   and durations to 1e-6 s plus 1e-12 relative, compared as a multiset (among equal onsets
//   the order may change).
// A crash, a sanitizer report, a leak, an uncaught exception or a failed check
// (__builtin_trap) is a bug.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "data/edf.h"

using namespace ssm::eeg;

static bool close_to(double a, double b, double tolerance) { return std::fabs(a - b) <= tolerance; }

static void check_consistent(const Recording& r) {
  if (!(r.duration_s >= 0) || !std::isfinite(r.duration_s)) __builtin_trap();
  for (const Channel& c : r.channels) {
    if (!(c.rate_hz > 0) || !std::isfinite(c.rate_hz)) __builtin_trap();
    const double expected_samples = c.rate_hz * r.duration_s;
    if (!close_to(static_cast<double>(c.samples.size()), expected_samples,
                  1e-6 * (1 + expected_samples)))
      __builtin_trap();
    for (const double x : c.samples)
      if (!std::isfinite(x)) __builtin_trap();
  }
  for (size_t a = 0; a < r.annotations.size(); ++a) {
    const Annotation& annotation = r.annotations[a];
    if (!std::isfinite(annotation.onset_s) || !(annotation.duration_s >= 0) ||
        !std::isfinite(annotation.duration_s))
      __builtin_trap();
    if (a > 0 && annotation.onset_s < r.annotations[a - 1].onset_s) __builtin_trap();
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Recording recording;
  try {
    recording = parse_edf(data, size, "fuzz");
  } catch (const std::invalid_argument&) {
    return 0;
  }
  check_consistent(recording);

  std::vector<uint8_t> bytes;
  try {
    bytes = serialize_edf(recording);
  } catch (const std::invalid_argument&) {
    return 0;
  }
  const Recording again = parse_edf(bytes.data(), bytes.size(), "fuzz: rewritten");
  check_consistent(again);
  if (again.channels.size() != recording.channels.size() ||
      again.annotations.size() != recording.annotations.size() ||
      again.start_date != recording.start_date || again.start_time != recording.start_time)
    __builtin_trap();
  for (size_t i = 0; i < recording.channels.size(); ++i) {
    const Channel &a = recording.channels[i], &b = again.channels[i];
    if (a.label != b.label || a.unit != b.unit || a.transducer != b.transducer ||
        a.prefilter != b.prefilter || a.samples.size() != b.samples.size() ||
        !close_to(a.rate_hz, b.rate_hz, 2e-9 * a.rate_hz))
      __builtin_trap();
    const double step =
        std::fabs(b.physical_max - b.physical_min) / (b.digital_max - b.digital_min);
    for (size_t s = 0; s < a.samples.size(); ++s)
      if (!close_to(a.samples[s], b.samples[s],
                    (0.5 + 1e-3) * step * (1 + 1e-9) + 1e-12 * std::fabs(a.samples[s])))
        __builtin_trap();
  }
  // The same annotations, perhaps in another order among equal onsets (the writer may move an
  // annotation to another record when its own is full, and the reader keeps file order among
  // equal onsets).
  std::vector<bool> matched(again.annotations.size(), false);
  for (const Annotation& a : recording.annotations) {
    bool found = false;
    for (size_t k = 0; k < again.annotations.size() && !found; ++k) {
      const Annotation& b = again.annotations[k];
      if (!matched[k] && a.text == b.text &&
          close_to(a.onset_s, b.onset_s, 1e-6 + 1e-12 * std::fabs(a.onset_s)) &&
          close_to(a.duration_s, b.duration_s, 1e-6 + 1e-12 * a.duration_s))
        matched[k] = found = true;
    }
    if (!found) __builtin_trap();
  }
  return 0;
}
