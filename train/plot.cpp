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
  for (size_t k = 0; k < series.size(); ++k) {
    const Series& s = series[k];
    const char* color = colors[k % 6];
    svg << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.5\" points=\"";
    for (size_t i = 0; i < s.x.size(); ++i)
      if (usable(s.x[i], s.y[i])) svg << px(s.x[i]) << "," << py(y_of(s.y[i])) << " ";
    svg << "\"/>\n";
    const double ly = top + 16 + 18 * static_cast<double>(k);
    svg << "<line x1=\"" << left + w - 150 << "\" y1=\"" << ly - 4 << "\" x2=\"" << left + w - 125
        << "\" y2=\"" << ly - 4 << "\" stroke=\"" << color << "\" stroke-width=\"2\"/>\n"
        << "<text x=\"" << left + w - 118 << "\" y=\"" << ly << "\">" << xml_escape(s.name)
        << "</text>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

void write_line_plot(const std::string& path, const std::vector<Series>& series,
                     const PlotOptions& options) {
  write_file_atomic(path, render_line_plot(series, options));
}

} // namespace ssm::train
