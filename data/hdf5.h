// hdf5.h: EEG recordings stored in HDF5 files, read through libhdf5 (Debian's libhdf5-dev;
// built when the Makefile finds it, -DSSM_HDF5). Without it, read_hdf5 throws an error that
// says how to install it. Where each attribute is looked up, the label format, and every error
// (std::invalid_argument naming the file, the dataset or attribute, expected vs found): the
// header comment of data/hdf5.cpp.
#pragma once

#include <string>

#include "data/eeg.h"

namespace ssm::eeg {

struct Hdf5Options {
  std::string dataset = "/eeg";                 // 2-D numeric dataset of samples
  bool channels_first = true;                   // (channels, samples); false: (samples, channels)
  std::string rate_attribute = "sampling_rate"; // attribute of the dataset (or the file root)
  double rate_hz = 0;                           // used when > 0, or when the attribute is absent
  std::string channel_names_attribute = "channel_names"; // string array attribute; absent:
                                                         // "ch0", "ch1", ...
  std::string labels_dataset;   // optional: 1-D per-sample 0/1 seizure labels,
                                // turned into "seizure" annotations
  std::string annotations_file; // optional: a table of events beside the file
                                // (data/annotations.h), added to the annotations
  std::string unit = "uV";
};

bool hdf5_available(); // built with libhdf5
Recording read_hdf5(const std::string& path, const Hdf5Options& options = {});

} // namespace ssm::eeg
