// plot.h: line plots written as standalone SVG files (no plotting library needed; open the
// file in any browser).
//
// A plot has one or more series of (x, y) points drawn as polylines on shared axes with
// "nice" tick values (1, 2 or 5 times a power of ten), a title, axis labels and a legend.
// log_y plots log10(y) (for losses spanning decades); non-positive or non-finite points are
// then skipped.
#pragma once

#include <string>
#include <vector>

namespace ssm::train {

struct Series {
  std::string name;
  std::vector<double> x, y;
};

struct PlotOptions {
  std::string title, x_label, y_label;
  bool log_y = false;
  int width = 720, height = 420;
};

// Renders the plot as SVG text.
std::string render_line_plot(const std::vector<Series>& series, const PlotOptions& options);
// Renders and writes it atomically to `path`.
void write_line_plot(const std::string& path, const std::vector<Series>& series,
                     const PlotOptions& options);

} // namespace ssm::train
