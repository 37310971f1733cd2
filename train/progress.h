// progress.h: a one-line progress bar for training loops.
//
//   [##########..........]  500/1000  loss 0.4123  acc 0.912 | 812.4 samples/s | ETA 0:07
//
// On a terminal the line is redrawn in place; otherwise (a log file, CI) a full line is
// printed every `every` steps and at the end, so logs stay readable.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ssm::train {

class Progress {
 public:
  Progress(int64_t total_steps, std::string unit = "samples", int64_t every = 50);
  // step is 1-based (steps done so far); items counts samples (or tokens) processed so far.
  void update(int64_t step, const std::vector<std::pair<std::string, double>>& values,
              int64_t items);
  void finish(); // ends the line on a terminal
  double elapsed_seconds() const;

 private:
  int64_t total_, every_;
  std::string unit_;
  bool tty_;
  std::chrono::steady_clock::time_point start_;
};

std::string format_duration(double seconds); // "1:02:03" or "2:03"

} // namespace ssm::train
