// eeg_info.cpp: prints what an EEG file holds: its format, start, duration, the channels with
// their rates, units and value ranges, and the annotations. EDF/EDF+ (data/edf.h) and HDF5
// (data/hdf5.h) files.
//
//   build/eeg_info recording.edf
//   build/eeg_info lab.h5 --dataset /data/eeg --channels-last --rate 256
//
// The format comes from the extension (.edf; .h5, .hdf5), else from the first bytes (EDF's
// version field "0" padded with spaces; HDF5's signature \x89HDF\r\n\x1a\n at offset 0), or
// from --format. HDF5 files are read with the options of data/hdf5.h (dataset, axis order,
// rate and channel-name attributes, labels dataset), whose defaults the flags show.
//
// Exit status: 0 printed, 1 the file cannot be read (missing, malformed: the reader's message
// names the field and the values), 2 bad command line.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/annotations.h"
#include "data/edf.h"
#include "data/hdf5.h"
#include "train/eeg_task.h"
#include "train/flags.h"

using namespace ssm;

using train::UsageError;

// ---- which format --------------------------------------------------------------------------

// eegtask::detect_eeg_format (train/eeg_task.h), with this program's hint when it cannot tell.
std::string detect_format(const std::string& path) {
  try {
    return eegtask::detect_eeg_format(path);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(std::string("eeg_info: ") + e.what() +
                             "; give --format edf or --format hdf5");
  }
}

// ---- printing ------------------------------------------------------------------------------

std::string format_number(const char* format, double value) {
  char text[64];
  std::snprintf(text, sizeof text, format, value);
  return text;
}

// 3725.5 -> "1:02:05.5"
std::string clock_time(double seconds) {
  const bool negative = seconds < 0;
  if (negative) seconds = -seconds;
  const long long whole = static_cast<long long>(seconds);
  char text[64];
  std::snprintf(text, sizeof text, "%s%lld:%02lld:%02lld", negative ? "-" : "", whole / 3600,
                whole / 60 % 60, whole % 60);
  std::string result = text;
  const double fraction = seconds - static_cast<double>(whole);
  if (fraction >= 0.0005) result += format_number("%.3f", fraction).substr(1);
  return result;
}

// Columns padded to their widest cell; right-aligned where `right` says so.
void print_table(const std::vector<std::vector<std::string>>& rows,
                 const std::vector<bool>& right) {
  std::vector<size_t> width(right.size(), 0);
  for (const auto& row : rows)
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  for (const auto& row : rows) {
    std::string line = " ";
    for (size_t c = 0; c < row.size(); ++c) {
      const std::string pad(width[c] - row[c].size(), ' ');
      line += "  " + (right[c] ? pad + row[c] : row[c] + (c + 1 < row.size() ? pad : ""));
    }
    std::printf("%s\n", line.c_str());
  }
}

void print_recording(const std::string& path, const eeg::Recording& r, int64_t max_annotations) {
  const bool is_edf = r.source_format.rfind("EDF", 0) == 0;
  std::printf("file         %s\n", path.c_str());
  std::printf("format       %s\n", r.source_format.c_str());
  if (is_edf) {
    std::printf("start        %s %s (dd.mm.yy hh.mm.ss)\n", r.start_date.c_str(),
                r.start_time.c_str());
    std::printf("patient      %s\n", r.patient.c_str());
    std::printf("recording    %s\n", r.recording_id.c_str());
  }
  std::printf("duration     %s s (%s)\n", format_number("%.6g", r.duration_s).c_str(),
              clock_time(r.duration_s).c_str());

  std::map<double, int> rates;
  for (const eeg::Channel& c : r.channels) ++rates[c.rate_hz];
  std::string rate_list;
  for (const auto& [rate, count] : rates)
    rate_list += (rate_list.empty() ? "" : ", ") + format_number("%g", rate) + " Hz x " +
                 std::to_string(count);
  std::printf("channels     %zu%s\n", r.channels.size(),
              r.channels.empty() ? "" : (" (" + rate_list + ")").c_str());
  if (!r.channels.empty()) {
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> head = {"#", "label", "rate (Hz)", "samples", "unit", "min", "max"};
    if (is_edf) head.insert(head.end(), {"physical range", "digital range", "prefiltering"});
    rows.push_back(head);
    for (size_t i = 0; i < r.channels.size(); ++i) {
      const eeg::Channel& c = r.channels[i];
      double low = 0, high = 0;
      if (!c.samples.empty()) {
        const auto [min_it, max_it] = std::minmax_element(c.samples.begin(), c.samples.end());
        low = *min_it, high = *max_it;
      }
      std::vector<std::string> row = {std::to_string(i),
                                      c.label,
                                      format_number("%g", c.rate_hz),
                                      std::to_string(c.samples.size()),
                                      c.unit,
                                      c.samples.empty() ? "-" : format_number("%.4g", low),
                                      c.samples.empty() ? "-" : format_number("%.4g", high)};
      if (is_edf)
        row.insert(
            row.end(),
            {format_number("%g", c.physical_min) + ".." + format_number("%g", c.physical_max),
             std::to_string(c.digital_min) + ".." + std::to_string(c.digital_max), c.prefilter});
      rows.push_back(row);
    }
    print_table(rows, {true, false, true, true, false, true, true, false, false, false});
  }

  std::printf("annotations  %zu", r.annotations.size());
  std::map<std::string, int> texts;
  for (const eeg::Annotation& a : r.annotations) ++texts[a.text];
  std::vector<std::pair<int, std::string>> by_count;
  for (const auto& [text, count] : texts) by_count.push_back({-count, text});
  std::sort(by_count.begin(), by_count.end());
  std::string summary;
  for (size_t k = 0; k < by_count.size() && k < 8; ++k)
    summary +=
        (k ? ", " : "") + ("'" + by_count[k].second + "' x " + std::to_string(-by_count[k].first));
  if (by_count.size() > 8) summary += ", ... (" + std::to_string(by_count.size()) + " texts)";
  std::printf("%s\n", summary.empty() ? "" : (" (" + summary + ")").c_str());
  if (r.annotations.empty()) return;
  const size_t shown = max_annotations == 0
                           ? r.annotations.size()
                           : std::min(r.annotations.size(), static_cast<size_t>(max_annotations));
  std::vector<std::vector<std::string>> rows = {{"onset (s)", "at", "duration (s)", "text"}};
  for (size_t k = 0; k < shown; ++k) {
    const eeg::Annotation& a = r.annotations[k];
    rows.push_back({format_number("%.3f", a.onset_s), clock_time(a.onset_s),
                    format_number("%.3f", a.duration_s), a.text});
  }
  print_table(rows, {true, true, true, false});
  if (shown < r.annotations.size())
    std::printf("  ... %zu more (--max-annotations 0 lists all)\n", r.annotations.size() - shown);
}

// ---- main ----------------------------------------------------------------------------------

int run(int argc, char** argv) {
  std::string format = "auto";
  int64_t max_annotations = 50;
  eeg::Hdf5Options hdf5;
  std::string annotations_table;
  bool channels_last = !hdf5.channels_first;
  train::Flags flags(
      "eeg_info",
      "eeg_info FILE [flags]: prints an EEG file's format, start, duration, channels (rate,\n"
      "samples, unit, value range) and annotations. EDF/EDF+ files (.edf) and HDF5 files (.h5,\n"
      ".hdf5; the flags below say where the samples, rate, channel names and labels are).\n"
      "Exit status: 0 printed, 1 unreadable file, 2 bad command line.");
  flags.add("format", &format, "auto (from the extension or the first bytes), edf or hdf5");
  flags.add("max-annotations", &max_annotations, "list at most this many annotations (0: all)");
  flags.add("dataset", &hdf5.dataset, "HDF5: the 2-D dataset of samples");
  flags.add("channels-last", &channels_last,
            "HDF5: the dataset is (samples, channels) rather than (channels, samples)");
  flags.add("rate", &hdf5.rate_hz, "HDF5: sampling rate in Hz (0: from --rate-attribute)");
  flags.add("rate-attribute", &hdf5.rate_attribute,
            "HDF5: attribute holding the rate (on the dataset, else the file root)");
  flags.add("channel-names-attribute", &hdf5.channel_names_attribute,
            "HDF5: string-array attribute naming the channels (absent: ch0, ch1, ...)");
  flags.add("labels-dataset", &hdf5.labels_dataset,
            "HDF5: 1-D dataset of per-sample 0/1 seizure labels, shown as annotations");
  flags.add("unit", &hdf5.unit, "HDF5: physical unit of the samples");
  flags.add("annotations", &annotations_table,
            "a table of events beside the file (CSV/TSV with onset, duration or end, text; TUH "
            ".csv_bi; data/annotations.h), added to the file's own annotations");

  // The one argument that is neither a flag nor a flag's value is the file. Every flag but
  // --channels-last (and --help) takes a value, as the next argument unless written --name=value.
  std::vector<const char*> flag_args = {argv[0]};
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("-", 0) != 0) {
      files.push_back(arg);
      continue;
    }
    flag_args.push_back(argv[i]);
    const bool takes_value = arg.rfind("--", 0) == 0 && arg.find('=') == std::string::npos &&
                             arg != "--channels-last" && arg != "--no-channels-last" &&
                             arg != "--help";
    if (takes_value && i + 1 < argc) flag_args.push_back(argv[++i]);
  }
  try {
    if (!flags.parse(static_cast<int>(flag_args.size()), flag_args.data())) return 0;
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  if (files.size() != 1)
    throw UsageError("eeg_info: expected one FILE, got " + std::to_string(files.size()) +
                     " (usage: eeg_info FILE [flags]; see --help)");
  if (format != "auto" && format != "edf" && format != "hdf5")
    throw UsageError("eeg_info: --format must be auto, edf or hdf5, got '" + format + "'");
  if (max_annotations < 0) throw UsageError("eeg_info: --max-annotations must be >= 0");
  if (hdf5.rate_hz < 0) throw UsageError("eeg_info: --rate must be >= 0 (0: from the file)");
  hdf5.channels_first = !channels_last;

  const std::string& path = files[0];
  if (format == "auto") format = detect_format(path);
  const eeg::Hdf5Options defaults;
  const bool hdf5_flags_given =
      hdf5.dataset != defaults.dataset || hdf5.channels_first != defaults.channels_first ||
      hdf5.rate_hz != defaults.rate_hz || hdf5.rate_attribute != defaults.rate_attribute ||
      hdf5.channel_names_attribute != defaults.channel_names_attribute ||
      hdf5.labels_dataset != defaults.labels_dataset || hdf5.unit != defaults.unit;
  if (format == "edf" && hdf5_flags_given)
    throw UsageError("eeg_info: " + path +
                     " is read as EDF; --dataset, --channels-last, --rate, --rate-attribute, "
                     "--channel-names-attribute, --labels-dataset and --unit apply to HDF5 files");
  eeg::Recording recording = format == "edf" ? eeg::read_edf(path) : eeg::read_hdf5(path, hdf5);
  if (!annotations_table.empty()) eeg::add_annotation_file(recording, annotations_table);
  print_recording(path, recording, max_annotations);
  return 0;
}

int main(int argc, char** argv) { return train::run_program(run, argc, argv); }
