#include "train/metrics.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace ssm::train {

MetricsLog::MetricsLog(const std::string& path, bool truncate)
    : path_(path), out_(path, truncate ? std::ios::trunc : std::ios::app) {
  if (!out_)
    throw std::runtime_error("metrics log " + path +
                             ": cannot open for writing: " + std::strerror(errno));
}

void MetricsLog::write(const Json& record) {
  out_ << record.dump() << "\n" << std::flush;
  if (!out_) throw std::runtime_error("metrics log " + path_ + ": write failed");
}

void MetricsLog::write(int64_t step, const std::vector<std::pair<std::string, double>>& values) {
  Json record = Json::object();
  record.set("step", step);
  for (const auto& [name, value] : values)
    record.set(name, std::isfinite(value) ? Json(value) : Json());
  write(record);
}

} // namespace ssm::train
