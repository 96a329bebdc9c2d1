// A small hand-written SVG line plot (no plotting library on the cluster images we target).
#include <algorithm>
#include <cmath>
#include <limits>

#include "common/error.h"
#include "launch/line_plot_svg.h"

namespace cg::sweep {
namespace {

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
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

// About six round tick values covering [lo, hi].
std::vector<double> nice_ticks(double lo, double hi) {
  const double span = hi - lo;
  const double raw = span / 6;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + 1e-9 * span; v += step) t.push_back(v);
  return t;
}

}  // namespace

std::string line_plot_svg(const std::vector<PlotSeries>& series, const std::string& title, const std::string& x_label,
                          const std::string& y_label) {
  constexpr double W = 720, H = 440, L = 70, R = 200, T = 40, B = 55;  // size and margins (legend on the right)
  static const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  std::vector<double> xs;
  for (const auto& s : series)
    for (const auto& [x, y] : s.xy) {
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
      xs.push_back(x);
    }
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n",
      W, H, W, H, (L + W - R) / 2, xml_escape(title));
  if (xs.empty()) {
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">no run has a val loss yet</text>\n</svg>\n",
                       (L + W - R) / 2, H / 2);
    return svg;
  }
  const bool log_x = x0 > 0;
  const auto fx = [&](double x) { return log_x ? std::log2(x) : x; };
  double ax0 = fx(x0), ax1 = fx(x1);
  if (ax1 - ax0 < 1e-12) ax0 -= 1, ax1 += 1;
  const double pad_x = 0.05 * (ax1 - ax0);
  ax0 -= pad_x, ax1 += pad_x;
  if (y1 - y0 < 1e-12) y0 -= 0.5, y1 += 0.5;
  const double pad_y = 0.08 * (y1 - y0);
  y0 -= pad_y, y1 += pad_y;
  const auto px = [&](double x) { return L + (fx(x) - ax0) / (ax1 - ax0) * (W - L - R); };
  const auto py = [&](double y) { return H - B - (y - y0) / (y1 - y0) * (H - T - B); };

  // Axes, grid and ticks: x ticks at the ranks present, y ticks at round values.
  svg += fmt::format("<g stroke=\"black\"><line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\"/>"
                     "<line x1=\"{0}\" y1=\"{3}\" x2=\"{0}\" y2=\"{1}\"/></g>\n",
                     L, H - B, W - R, T);
  std::sort(xs.begin(), xs.end());
  xs.erase(std::unique(xs.begin(), xs.end()), xs.end());
  for (double x : xs)
    svg += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"black\"/>"
                       "<text x=\"{0:.1f}\" y=\"{3}\" text-anchor=\"middle\">{4:g}</text>\n",
                       px(x), H - B, H - B + 5, H - B + 18, x);
  for (double y : nice_ticks(y0, y1))
    svg += fmt::format("<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" stroke=\"#e0e0e0\"/>"
                       "<text x=\"{3}\" y=\"{4:.1f}\" text-anchor=\"end\">{5:g}</text>\n",
                       L, py(y), W - R, L - 6, py(y) + 4, y);
  svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}{}</text>\n", (L + W - R) / 2, H - 15,
                     xml_escape(x_label), log_x ? " (log scale)" : "");
  svg += fmt::format("<text x=\"18\" y=\"{0}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {0})\">{1}</text>\n",
                     (T + H - B) / 2, xml_escape(y_label));

  // One polyline + circles per series, and its legend entry.
  for (size_t i = 0; i < series.size(); ++i) {
    const char* color = kColors[i % (sizeof(kColors) / sizeof(kColors[0]))];
    std::string pts;
    for (const auto& [x, y] : series[i].xy) pts += fmt::format("{:.1f},{:.1f} ", px(x), py(y));
    svg += fmt::format("<g class=\"series\" data-label=\"{}\">\n<polyline fill=\"none\" stroke=\"{}\" "
                       "stroke-width=\"2\" points=\"{}\"/>\n",
                       xml_escape(series[i].label), color, pts);
    for (const auto& [x, y] : series[i].xy)
      svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3.5\" fill=\"{}\" data-x=\"{:g}\" "
                         "data-y=\"{:.6g}\"/>\n",
                         px(x), py(y), color, x, y);
    const double ly = T + 10 + 20.0 * double(i);
    svg += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"2\"/>"
                       "<text x=\"{}\" y=\"{}\">{}</text>\n</g>\n",
                       W - R + 15, ly, W - R + 40, ly, color, W - R + 46, ly + 4, xml_escape(series[i].label));
  }
  return svg + "</svg>\n";
}

}  // namespace cg::sweep
