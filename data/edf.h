// edf.h: EDF and EDF+ files (European Data Format; Kemp et al. 1992, EDF+ Kemp & Olivan 2003),
// read into and written from an eeg::Recording (data/eeg.h). Implementation and the format's
// field table: data/edf.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/eeg.h"

namespace ssm::eeg {

// Reads an EDF or EDF+C file. EDF+D (discontinuous) is rejected with a clear error. Every
// header field is validated; a truncated or inconsistent file throws std::invalid_argument
// naming the file, the field and the values found. The "EDF Annotations" signals become
// Recording::annotations (not channels).
Recording read_edf(const std::string& path);
// The same from bytes in memory (`name` starts the error messages): the fuzzing entry point.
Recording parse_edf(const uint8_t* bytes, size_t size, const std::string& name);

// Writes an EDF+C file (with an "EDF Annotations" signal holding the annotations), atomically.
// Each channel's samples are quantised to 16 bits with its physical/digital range (values
// outside the physical range are clipped). Channel rates must make whole samples per data
// record (record duration 1 s unless another duration makes them whole).
void write_edf(const std::string& path, const Recording& recording);
std::vector<uint8_t> serialize_edf(const Recording& recording);

} // namespace ssm::eeg
