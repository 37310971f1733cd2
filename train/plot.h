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

// A stack of signal traces over one time axis (an EEG page), with a probability curve in a
// panel under them and shaded time intervals (e.g. the true seizure) across both:
//
//   Fp1-F7 ~~~~~~~~~/\/\/\/\~~~~
//   T3     ~~~~~~~/\/\/\/\/\~~~
//   ...          |##########|      shaded: marked intervals
//   p(seizure) ___/""""""""\___    0..1, with a dashed threshold line
//
// Each trace is drawn around its own baseline, scaled so that `trace_scale` units span one
// trace's height (the same scale for all, as on an EEG page, so amplitudes compare).
struct TracePlot {
  std::string title;
  double start_s = 0, rate_hz = 1;         // time of sample 0, samples per second
  std::vector<std::string> names;          // (traces)
  std::vector<std::vector<double>> traces; // (traces, samples)
  double trace_scale = 0;                  // 0: 4 x the largest RMS of the traces
  std::vector<double> curve_x, curve_y;    // the probability curve (seconds, 0..1)
  std::string curve_name = "p(seizure)";
  double threshold = -1;                         // drawn when in [0, 1]
  std::vector<std::pair<double, double>> marked; // [start_s, end_s) shaded
  std::string marked_name = "seizure (annotation)";
  int width = 1000, trace_height = 46, curve_height = 120;
};
std::string render_trace_plot(const TracePlot& plot);
void write_trace_plot(const std::string& path, const TracePlot& plot);

} // namespace ssm::train
