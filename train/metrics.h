// metrics.h: a JSONL metrics log, one JSON object per line, appended as training goes.
//
//   {"step":100,"loss":0.4123,"lr":0.001,"samples_per_s":812.4}
//
// Each line is flushed when written, so a crashed or interrupted run keeps every line it
// logged; a resumed run appends to the same file. Read it back with parse_json_lines
// (data/json.h) or any JSONL reader (pandas.read_json(path, lines=True)).
#pragma once

#include <cmath>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "data/json.h"

namespace ssm::train {

// A number for a JSON record: null when it is NaN or infinite (which JSON cannot hold), e.g. an
// AUROC of a set with one class.
inline Json finite_or_null(double value) { return std::isfinite(value) ? Json(value) : Json(); }

class MetricsLog {
 public:
  // Opens `path` for appending (creating it); truncate = true starts a new file.
  explicit MetricsLog(const std::string& path, bool truncate = false);
  void write(const Json& record);
  void write(int64_t step, const std::vector<std::pair<std::string, double>>& values);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ofstream out_;
};

} // namespace ssm::train
