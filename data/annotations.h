// annotations.h: event annotations kept in a text file beside a recording (for recordings whose
// own format has no annotations, such as the HDF5 files of data/hdf5.h).
//
// The file is a table with a header row, comma- or tab-separated (tab when the header has a
// tab); blank lines and lines starting with '#' are skipped. Columns are found by name, in any
// order and case, and other columns are ignored:
//   start   onset | start_time | start            seconds from the start of the recording
//   end     duration | stop_time | end | stop     a duration, or the end time (not before start)
//   text    description | label | trial_type | event | annotation | text | value
// That covers a plain "onset,duration,description" file, BIDS events.tsv files (onset,
// duration, trial_type) and the TUH EEG Seizure Corpus's .csv_bi files (channel, start_time,
// stop_time, label, confidence, after '#' comment lines). A duration of "n/a" (BIDS) is 0.
// Errors name the file, the line and what was expected.
#pragma once

#include <string>
#include <vector>

#include "data/eeg.h"

namespace ssm::eeg {

// The annotations of the file, sorted by onset.
std::vector<Annotation> parse_annotation_table(const std::string& text, const std::string& name);
std::vector<Annotation> read_annotation_file(const std::string& path);
// Adds the table's events to the recording's annotations, which stay sorted by onset (events
// with equal onsets keep their order, the recording's first).
void add_annotation_file(Recording& recording, const std::string& path);

} // namespace ssm::eeg
