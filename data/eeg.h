// eeg.h: an EEG recording in memory, whatever file it came from (EDF/EDF+, HDF5, the
// synthetic generator), and the readers and writers that produce it.
//
// Samples are physical values (microvolts for EEG channels) in double precision, one vector
// per channel, because EDF lets every channel have its own sampling rate. Annotations are
// EDF+ TALs: an onset and a duration in seconds from the start of the recording and a text
// ("seizure", "eye blink", ...).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ssm::eeg {

struct Annotation {
  double onset_s = 0;    // seconds from the start of the recording
  double duration_s = 0; // 0 when the file gives none
  std::string text;
};

struct Channel {
  std::string label;          // as in the file, e.g. "EEG FP1-REF"
  std::string unit = "uV";    // physical dimension, e.g. "uV"
  double rate_hz = 0;         // samples per second
  std::vector<double> samples; // physical values
  // EDF scaling, kept so that a written file round-trips: physical = (digital - dmin) *
  // (pmax - pmin) / (dmax - dmin) + pmin.
  double physical_min = -3200, physical_max = 3200;
  int32_t digital_min = -32768, digital_max = 32767;
  std::string transducer, prefilter;
};

struct Recording {
  std::vector<Channel> channels;
  std::vector<Annotation> annotations;
  double duration_s = 0;       // length of the recording
  std::string patient;         // EDF: local patient identification
  std::string recording_id;    // EDF: local recording identification
  std::string start_date = "01.01.00"; // dd.mm.yy
  std::string start_time = "00.00.00"; // hh.mm.ss
  std::string source_format;   // "EDF", "EDF+C", "HDF5", "synthetic"

  // The channel whose label is `label` (exact match), or -1.
  int64_t find_channel(const std::string& label) const;
};

} // namespace ssm::eeg
