#include "train/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "data/atomic_file.h"

namespace ssm::train {

// Escapes the characters that are special in SVG text.
static std::string xml_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// Tick positions covering [lo, hi] with a step of 1, 2 or 5 times a power of ten, about
// `target` ticks in all.
static std::vector<double> nice_ticks(double lo, double hi, int target) {
  const double raw = (hi - lo) / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * magnitude;
    if (step >= raw) break;
  }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
    ticks.push_back(std::fabs(t) < step * 1e-9 ? 0.0 : t);
  return ticks;
}

static std::string number_label(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string render_line_plot(const std::vector<Series>& series, const PlotOptions& options) {
  const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};
  // Data range over every drawable point.
  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo, y_lo = x_lo, y_hi = -x_lo;
  auto usable = [&](double x, double y) {
    return std::isfinite(x) && std::isfinite(y) && (!options.log_y || y > 0);
  };
  auto y_of = [&](double y) { return options.log_y ? std::log10(y) : y; };
  for (const Series& s : series) {
    if (s.x.size() != s.y.size())
      throw std::invalid_argument("plot: series '" + s.name + "' has " +
                                  std::to_string(s.x.size()) + " x values and " +
                                  std::to_string(s.y.size()) + " y values");
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!usable(s.x[i], s.y[i])) continue;
      x_lo = std::min(x_lo, s.x[i]);
      x_hi = std::max(x_hi, s.x[i]);
      y_lo = std::min(y_lo, y_of(s.y[i]));
      y_hi = std::max(y_hi, y_of(s.y[i]));
    }
  }
  if (!(x_lo <= x_hi)) x_lo = 0, x_hi = 1, y_lo = 0, y_hi = 1; // nothing to draw
  if (x_hi == x_lo) x_lo -= 0.5, x_hi += 0.5;
  if (y_hi == y_lo) y_lo -= 0.5, y_hi += 0.5;
  const double pad = 0.05 * (y_hi - y_lo);
  y_lo -= pad;
  y_hi += pad;

  const double left = 70, right = 20, top = 40, bottom = 55;
  const double w = options.width - left - right, h = options.height - top - bottom;
  auto px = [&](double x) { return left + (x - x_lo) / (x_hi - x_lo) * w; };
  auto py = [&](double y) { return top + (1 - (y - y_lo) / (y_hi - y_lo)) * h; };

  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << options.width << "\" height=\""
      << options.height << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << options.width / 2 << "\" y=\"22\" text-anchor=\"middle\" "
      << "font-size=\"15\">" << xml_escape(options.title) << "</text>\n";
  for (double t : nice_ticks(x_lo, x_hi, 8)) {
    svg << "<line x1=\"" << px(t) << "\" y1=\"" << top << "\" x2=\"" << px(t) << "\" y2=\""
        << top + h << "\" stroke=\"#e5e5e5\"/>\n"
        << "<text x=\"" << px(t) << "\" y=\"" << top + h + 16 << "\" text-anchor=\"middle\">"
        << number_label(t) << "</text>\n";
  }
  for (double t : nice_ticks(y_lo, y_hi, 6)) {
    const std::string label = options.log_y ? number_label(std::pow(10.0, t)) : number_label(t);
    svg << "<line x1=\"" << left << "\" y1=\"" << py(t) << "\" x2=\"" << left + w << "\" y2=\""
        << py(t) << "\" stroke=\"#e5e5e5\"/>\n"
        << "<text x=\"" << left - 6 << "\" y=\"" << py(t) + 4 << "\" text-anchor=\"end\">" << label
        << "</text>\n";
  }
  svg << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << w << "\" height=\"" << h
      << "\" fill=\"none\" stroke=\"black\"/>\n"
      << "<text x=\"" << left + w / 2 << "\" y=\"" << options.height - 12
      << "\" text-anchor=\"middle\">" << xml_escape(options.x_label) << "</text>\n"
      << "<text transform=\"translate(16," << top + h / 2 << ") rotate(-90)\" "
      << "text-anchor=\"middle\">" << xml_escape(options.y_label)
      << (options.log_y ? " (log scale)" : "") << "</text>\n";
  // The legend sits in the top right corner, as wide as its longest name (about 7 px a
  // character at this font size).
  size_t longest = 0;
  for (const Series& s : series) longest = std::max(longest, s.name.size());
  const double legend_x = left + w - 40 - 7.0 * static_cast<double>(longest);
  for (size_t k = 0; k < series.size(); ++k) {
    const Series& s = series[k];
    const char* color = colors[k % 6];
    svg << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.5\" points=\"";
    for (size_t i = 0; i < s.x.size(); ++i)
      if (usable(s.x[i], s.y[i])) svg << px(s.x[i]) << "," << py(y_of(s.y[i])) << " ";
    svg << "\"/>\n";
    const double ly = top + 16 + 18 * static_cast<double>(k);
    svg << "<line x1=\"" << legend_x << "\" y1=\"" << ly - 4 << "\" x2=\"" << legend_x + 25
        << "\" y2=\"" << ly - 4 << "\" stroke=\"" << color << "\" stroke-width=\"2\"/>\n"
        << "<text x=\"" << legend_x + 32 << "\" y=\"" << ly << "\">" << xml_escape(s.name)
        << "</text>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

void write_line_plot(const std::string& path, const std::vector<Series>& series,
                     const PlotOptions& options) {
  write_file_atomic(path, render_line_plot(series, options));
}

std::string render_trace_plot(const TracePlot& plot) {
  const size_t n_traces = plot.traces.size();
  if (plot.names.size() != n_traces)
    throw std::invalid_argument("trace plot: " + std::to_string(plot.names.size()) + " names for " +
                                std::to_string(n_traces) + " traces");
  if (plot.curve_x.size() != plot.curve_y.size())
    throw std::invalid_argument("trace plot: the curve has " + std::to_string(plot.curve_x.size()) +
                                " x values and " + std::to_string(plot.curve_y.size()) +
                                " y values");
  if (!(plot.rate_hz > 0)) throw std::invalid_argument("trace plot: rate_hz must be positive");
  size_t samples = 0;
  double scale = plot.trace_scale;
  for (const std::vector<double>& trace : plot.traces) {
    samples = std::max(samples, trace.size());
    double sq = 0;
    for (double v : trace) sq += v * v;
    if (plot.trace_scale <= 0 && !trace.empty())
      scale = std::max(scale, 4 * std::sqrt(sq / static_cast<double>(trace.size())));
  }
  if (!(scale > 0)) scale = 1;
  const double t0 = plot.start_s,
               t1 = plot.start_s +
                    static_cast<double>(std::max<size_t>(samples, 2) - 1) / plot.rate_hz;

  const double left = 90, right = 20, top = 40, gap = 30, bottom = 45;
  const double w = plot.width - left - right;
  const double traces_h = plot.trace_height * static_cast<double>(n_traces);
  const double curve_top = top + traces_h + gap;
  const double height = curve_top + plot.curve_height + bottom;
  auto px = [&](double t) { return left + (t - t0) / (t1 - t0) * w; };
  auto py_curve = [&](double p) { return curve_top + (1 - p) * plot.curve_height; };

  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << plot.width << "\" height=\""
      << height << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << plot.width / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">"
      << xml_escape(plot.title) << "</text>\n";
  // Shaded intervals across both panels, clipped to the page.
  for (const auto& [a, b] : plot.marked) {
    const double x0 = px(std::max(a, t0)), x1 = px(std::min(b, t1));
    if (x1 <= x0) continue;
    svg << "<rect x=\"" << x0 << "\" y=\"" << top << "\" width=\"" << x1 - x0 << "\" height=\""
        << curve_top + plot.curve_height - top << "\" fill=\"#d62728\" fill-opacity=\"0.12\"/>\n";
  }
  // Time grid and labels.
  for (double t : nice_ticks(t0, t1, 10)) {
    svg << "<line x1=\"" << px(t) << "\" y1=\"" << top << "\" x2=\"" << px(t) << "\" y2=\""
        << curve_top + plot.curve_height << "\" stroke=\"#ececec\"/>\n"
        << "<text x=\"" << px(t) << "\" y=\"" << curve_top + plot.curve_height + 16
        << "\" text-anchor=\"middle\">" << number_label(t) << "</text>\n";
  }
  svg << "<text x=\"" << left + w / 2 << "\" y=\"" << height - 10
      << "\" text-anchor=\"middle\">time (s)</text>\n";
  // Traces, one band each. With more samples than pixel columns, each column is drawn as the
  // vertical span between the smallest and largest sample that falls in it (an envelope), so
  // no peak is lost and no false rhythm appears, as keeping every k-th sample would cause.
  const size_t columns = static_cast<size_t>(w);
  for (size_t k = 0; k < n_traces; ++k) {
    const double mid = top + plot.trace_height * (static_cast<double>(k) + 0.5);
    auto y_of = [&](double v) { // clipped to the trace's band
      return mid - std::clamp(v / scale, -1.0, 1.0) * plot.trace_height;
    };
    svg << "<text x=\"" << left - 6 << "\" y=\"" << mid + 4 << "\" text-anchor=\"end\">"
        << xml_escape(plot.names[k]) << "</text>\n"
        << "<polyline fill=\"none\" stroke=\"#222\" stroke-width=\"0.7\" points=\"";
    const std::vector<double>& trace = plot.traces[k];
    if (trace.size() <= 2 * columns) {
      for (size_t i = 0; i < trace.size(); ++i)
        svg << px(t0 + static_cast<double>(i) / plot.rate_hz) << "," << y_of(trace[i]) << " ";
    } else {
      for (size_t c = 0; c < columns; ++c) {
        const size_t a = c * trace.size() / columns, b = (c + 1) * trace.size() / columns;
        const auto [lo, hi] = std::minmax_element(trace.begin() + static_cast<std::ptrdiff_t>(a),
                                                  trace.begin() + static_cast<std::ptrdiff_t>(b));
        const double x = px(t0 + 0.5 * static_cast<double>(a + b) / plot.rate_hz);
        svg << x << "," << y_of(*lo) << " " << x << "," << y_of(*hi) << " ";
      }
    }
    svg << "\"/>\n";
  }
  // The probability panel.
  svg << "<rect x=\"" << left << "\" y=\"" << curve_top << "\" width=\"" << w << "\" height=\""
      << plot.curve_height << "\" fill=\"none\" stroke=\"black\"/>\n";
  for (double p : {0.0, 0.5, 1.0})
    svg << "<text x=\"" << left - 6 << "\" y=\"" << py_curve(p) + 4 << "\" text-anchor=\"end\">"
        << number_label(p) << "</text>\n";
  svg << "<text transform=\"translate(16," << curve_top + plot.curve_height / 2
      << ") rotate(-90)\" text-anchor=\"middle\">" << xml_escape(plot.curve_name) << "</text>\n";
  if (plot.threshold >= 0 && plot.threshold <= 1)
    svg << "<line x1=\"" << left << "\" y1=\"" << py_curve(plot.threshold) << "\" x2=\"" << left + w
        << "\" y2=\"" << py_curve(plot.threshold)
        << "\" stroke=\"#888\" stroke-dasharray=\"5,4\"/>\n";
  svg << "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.8\" points=\"";
  for (size_t i = 0; i < plot.curve_x.size(); ++i) {
    if (!std::isfinite(plot.curve_y[i]) || plot.curve_x[i] < t0 || plot.curve_x[i] > t1) continue;
    svg << px(plot.curve_x[i]) << "," << py_curve(std::clamp(plot.curve_y[i], 0.0, 1.0)) << " ";
  }
  svg << "\"/>\n";
  // Legend, above the probability panel.
  const double ly = curve_top - 10;
  svg << "<line x1=\"" << left << "\" y1=\"" << ly - 4 << "\" x2=\"" << left + 25 << "\" y2=\""
      << ly - 4 << "\" stroke=\"#1f77b4\" stroke-width=\"2\"/>\n"
      << "<text x=\"" << left + 30 << "\" y=\"" << ly << "\">" << xml_escape(plot.curve_name)
      << (plot.threshold >= 0 && plot.threshold <= 1
              ? " (dashed: threshold " + number_label(std::round(plot.threshold * 1000) / 1000) +
                    ")"
              : std::string())
      << "</text>\n"
      << "<rect x=\"" << left + 330 << "\" y=\"" << ly - 10 << "\" width=\"25\" height=\"10\" "
      << "fill=\"#d62728\" fill-opacity=\"0.25\"/>\n"
      << "<text x=\"" << left + 360 << "\" y=\"" << ly << "\">" << xml_escape(plot.marked_name)
      << "</text>\n";
  svg << "</svg>\n";
  return svg.str();
}

void write_trace_plot(const std::string& path, const TracePlot& plot) {
  write_file_atomic(path, render_trace_plot(plot));
}

} // namespace ssm::train
