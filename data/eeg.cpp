// eeg.cpp: the small methods of eeg::Recording (data/eeg.h). The readers and writers live in
// data/edf.cpp (EDF/EDF+) and data/hdf5.cpp (HDF5).
#include "data/eeg.h"

namespace ssm::eeg {

int64_t Recording::find_channel(const std::string& label) const {
  for (size_t i = 0; i < channels.size(); ++i)
    if (channels[i].label == label) return static_cast<int64_t>(i);
  return -1;
}

} // namespace ssm::eeg
