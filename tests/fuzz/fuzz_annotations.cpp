// fuzz_annotations.cpp: libFuzzer target for the annotation-table parser (data/annotations.h),
// which reads text files that arrive beside recordings (CSV, BIDS TSV, TUH csv_bi).
//
// Every input is parsed as a table. Rejections (std::invalid_argument) are the expected answer
// to most inputs and are ignored. For a table that parses, every annotation has a finite onset
// >= 0 and a finite duration >= 0, and the list is sorted by onset. A crash, a sanitizer
// report, an uncaught exception of another type or a failed check (__builtin_trap) is a bug.
// (build: make fuzz; docs/fuzzing.md)
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "data/annotations.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const auto annotations = ssm::eeg::parse_annotation_table(text, "fuzz.csv");
    for (size_t i = 0; i < annotations.size(); ++i) {
      const auto& a = annotations[i];
      if (!std::isfinite(a.onset_s) || a.onset_s < 0) __builtin_trap();
      if (!std::isfinite(a.duration_s) || a.duration_s < 0) __builtin_trap();
      if (i > 0 && annotations[i - 1].onset_s > a.onset_s) __builtin_trap();
    }
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
