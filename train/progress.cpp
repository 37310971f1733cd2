#include "train/progress.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <sstream>

namespace ssm::train {

Progress::Progress(int64_t total_steps, std::string unit, int64_t every)
    : total_(total_steps),
      every_(every > 0 ? every : 1),
      unit_(std::move(unit)),
      tty_(isatty(fileno(stdout))),
      start_(std::chrono::steady_clock::now()) {}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string format_duration(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  return buf;
}

void Progress::update(int64_t step, const std::vector<std::pair<std::string, double>>& values,
                      int64_t items) {
  const bool last = step >= total_;
  if (!tty_ && !last && step % every_ != 0 && step != 1) return;
  const double elapsed = elapsed_seconds();
  const double fraction = total_ > 0 ? static_cast<double>(step) / static_cast<double>(total_) : 1;
  const int width = 20;
  const int filled = static_cast<int>(fraction * width);
  std::ostringstream line;
  line << "[" << std::string(filled, '#') << std::string(width - filled, '.') << "] ";
  std::string counter = std::to_string(step) + "/" + std::to_string(total_);
  line << std::string(counter.size() < 11 ? 11 - counter.size() : 0, ' ') << counter;
  for (const auto& [name, value] : values) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "  %s %.4g", name.c_str(), value);
    line << buf;
  }
  char rate[64];
  std::snprintf(rate, sizeof rate, " | %.1f %s/s", elapsed > 0 ? items / elapsed : 0.0,
                unit_.c_str());
  line << rate;
  const double eta = fraction > 0 ? elapsed * (1 - fraction) / fraction : 0;
  line << " | " << (last ? "took " + format_duration(elapsed) : "ETA " + format_duration(eta));
  if (tty_)
    std::cout << "\r" << line.str() << "\033[K" << std::flush;
  else
    std::cout << line.str() << "\n" << std::flush;
}

void Progress::finish() {
  if (tty_) std::cout << "\n" << std::flush;
}

} // namespace ssm::train
