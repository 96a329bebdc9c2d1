// line_plot_svg: a self-contained SVG line plot written by hand (no plotting library needed on cluster images).
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace cg::sweep {

struct PlotSeries {
  std::string label;                           // legend text
  std::vector<std::pair<double, double>> xy;   // (x, y) points, drawn in this order
};

// A self-contained SVG line plot (log2 x axis when every x > 0), hand-written: axes, ticks, one polyline + circles
// per series, a legend. Circles carry data-x / data-y attributes with the plotted values.
std::string line_plot_svg(const std::vector<PlotSeries>& series, const std::string& title, const std::string& x_label,
                          const std::string& y_label);


}  // namespace cg::sweep
