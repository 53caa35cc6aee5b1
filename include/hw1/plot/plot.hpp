// Report figures drawn with cairo: line plots and training curves, class-coloured scatter plots (t-SNE) and image
// grids. Every function writes a PNG atomically ("<path>.tmp", then rename), so a crash never leaves half a file.
// Users link cairo (pkg-config module "cairo").
#pragma once
#include <cairo.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <numbers>
#include <numeric>
#include <string>
#include <vector>

#include "hw1/core/error.hpp"
#include "hw1/data/image.hpp"

namespace hw1 {

struct Series {
  std::string name;
  std::vector<double> x, y;  // x may be empty: then y is plotted against 0, 1, 2, ...
};

namespace detail::plot {

struct Rgb {
  double r, g, b;
};
struct Rect {
  double x, y, w, h;
};

// Matplotlib's tab10: hand-tuned to stay apart from each other and on white.
inline Rgb hex(std::uint32_t v) { return {(v >> 16 & 255) / 255.0, (v >> 8 & 255) / 255.0, (v & 255) / 255.0}; }
inline constexpr std::array<std::uint32_t, 10> kTab10 = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                                         0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};

inline Rgb hsl(double h, double s, double l) {
  auto f = [&](double n) {
    const double k = std::fmod(n + h / 30, 12), a = s * std::min(l, 1 - l);
    return l - a * std::max(-1.0, std::min({k - 3, 9 - k, 1.0}));
  };
  return {f(0), f(8), f(4)};
}

// i-th of n colours: tab10 while it suffices, then a hue wheel alternating two lightness levels so that
// neighbouring hues also differ in brightness (for up to 20 colours it keeps CIELAB distances above 20, where
// tab20's light blue / light cyan pair is at 17).
inline Rgb palette(int i, int n) {
  if (n <= 10) return hex(kTab10[i]);
  return hsl(360.0 * (i / 2) / ((n + 1) / 2), 0.75, i % 2 ? 0.68 : 0.40);
}

enum class Marker { circle, square, triangle, diamond };

// Class k of n: distinct (colour, marker) pairs; beyond 20 classes the marker shape multiplies the colours.
struct Style {
  Rgb colour;
  Marker marker;
};
inline Style class_style(int k, int n) {
  const int shapes = std::clamp((n + 19) / 20, 1, 4), colours = (n + shapes - 1) / shapes;
  return {palette(k % colours, colours), Marker(k / colours)};
}

// Ticks at 1, 2 or 5 x 10^e, at most about `target` of them, inside [lo, hi].
struct Ticks {
  std::vector<double> values;
  double step;
};
inline Ticks nice_ticks(double lo, double hi, int target = 6) {
  const double raw = (hi - lo) / std::max(target - 1, 1), mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double frac = raw / mag, step = (frac <= 1 ? 1 : frac <= 2 ? 2 : frac <= 5 ? 5 : 10) * mag;
  Ticks t{{}, step};
  for (double k = std::ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; ++k)
    t.values.push_back(std::abs(k) < 0.5 ? 0.0 : k * step);  // k * step, never "-0"
  return t;
}

// Enough decimals to tell ticks `step` apart; %g beyond the range where fixed notation reads well.
inline std::string format_tick(double v, double step) {
  char buf[64];
  const double big = std::max(std::abs(v), step);
  if (big >= 1e6 || step < 1e-4)
    std::snprintf(buf, sizeof buf, "%.3g", v);
  else
    std::snprintf(buf, sizeof buf, "%.*f", std::max(0, int(-std::floor(std::log10(step) + 1e-9))), v);
  return buf;
}

// Padded, never empty data range of the finite values in v.
inline std::array<double, 2> data_range(const std::vector<const std::vector<double>*>& vs, double pad = 0.04) {
  double lo = INFINITY, hi = -INFINITY;
  for (auto* v : vs)
    for (double a : *v)
      if (std::isfinite(a)) lo = std::min(lo, a), hi = std::max(hi, a);
  if (!(lo <= hi)) return {0, 1};
  if (hi - lo <= 1e-12 * std::max(std::abs(lo), std::abs(hi))) {
    const double half = lo != 0 ? std::abs(lo) * 0.1 : 1;
    return {lo - half, hi + half};
  }
  const double p = (hi - lo) * pad;
  return {lo - p, hi + p};
}

struct SurfaceDeleter {
  void operator()(cairo_surface_t* s) const { cairo_surface_destroy(s); }
};
struct ContextDeleter {
  void operator()(cairo_t* c) const { cairo_destroy(c); }
};

// A white RGB canvas bound to the file it will be saved to (named in every error).
class Canvas {
 public:
  Canvas(const std::string& path, int width, int height) : path_(path) {
    if (width < 16 || height < 16 || width > 32767 || height > 32767)
      throw Error("plot " + path + ": size " + std::to_string(width) + " x " + std::to_string(height) +
                  " is outside 16..32767 pixels");
    surface_.reset(cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height));
    cr_.reset(cairo_create(surface_.get()));
    check();
    cairo_set_source_rgb(cr_.get(), 1, 1, 1);
    cairo_paint(cr_.get());
    cairo_select_font_face(cr_.get(), "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  }
  cairo_t* cr() const { return cr_.get(); }

  void save() {
    check();
    cairo_surface_flush(surface_.get());
    const std::string tmp = path_ + ".tmp";
    const cairo_status_t st = cairo_surface_write_to_png(surface_.get(), tmp.c_str());
    std::error_code ec;
    if (st != CAIRO_STATUS_SUCCESS) {
      std::filesystem::remove(tmp, ec);
      throw Error("cannot write plot " + path_ + ": " + cairo_status_to_string(st) +
                  " (does the directory exist and is it writable?)");
    }
    std::filesystem::rename(tmp, path_, ec);
    if (ec) {
      std::error_code ignored;
      std::filesystem::remove(tmp, ignored);
      throw Error("cannot write plot " + path_ + ": " + ec.message());
    }
  }

 private:
  void check() const {
    const cairo_status_t st = cr_ ? cairo_status(cr_.get()) : cairo_surface_status(surface_.get());
    if (st != CAIRO_STATUS_SUCCESS) throw Error("plot " + path_ + ": cairo failed: " + cairo_status_to_string(st));
  }
  std::string path_;
  std::unique_ptr<cairo_surface_t, SurfaceDeleter> surface_;
  std::unique_ptr<cairo_t, ContextDeleter> cr_;
};

inline void set(cairo_t* cr, Rgb c, double alpha = 1) { cairo_set_source_rgba(cr, c.r, c.g, c.b, alpha); }

inline double text_width(cairo_t* cr, const std::string& s, double size, bool bold = false) {
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
  cairo_text_extents_t e;
  cairo_text_extents(cr, s.c_str(), &e);
  return e.x_advance;
}

// Text anchored at (x, y): ax/ay = 0 left/top, 0.5 centre, 1 right/bottom; `angle` rotates about the anchor.
inline void text(cairo_t* cr, const std::string& s, double x, double y, double size, double ax = 0, double ay = 0,
                 bool bold = false, double angle = 0, Rgb colour = {0.1, 0.1, 0.1}) {
  if (s.empty()) return;
  const double w = text_width(cr, s, size, bold);
  cairo_font_extents_t fe;
  cairo_font_extents(cr, &fe);
  cairo_save(cr);
  cairo_translate(cr, x, y);
  cairo_rotate(cr, angle);
  cairo_move_to(cr, -ax * w, fe.ascent - ay * (fe.ascent + fe.descent));
  set(cr, colour);
  cairo_show_text(cr, s.c_str());
  cairo_restore(cr);
}

inline void marker_path(cairo_t* cr, double x, double y, double r, Marker m) {
  switch (m) {
    case Marker::circle: cairo_new_sub_path(cr), cairo_arc(cr, x, y, r, 0, 2 * std::numbers::pi); break;
    case Marker::square: cairo_rectangle(cr, x - 0.85 * r, y - 0.85 * r, 1.7 * r, 1.7 * r); break;
    case Marker::triangle:
      cairo_move_to(cr, x, y - 1.2 * r), cairo_line_to(cr, x + 1.05 * r, y + 0.65 * r);
      cairo_line_to(cr, x - 1.05 * r, y + 0.65 * r), cairo_close_path(cr);
      break;
    case Marker::diamond:
      cairo_move_to(cr, x, y - 1.2 * r), cairo_line_to(cr, x + 1.2 * r, y), cairo_line_to(cr, x, y + 1.2 * r);
      cairo_line_to(cr, x - 1.2 * r, y), cairo_close_path(cr);
      break;
  }
}

// A filled marker with a darker rim, which keeps light colours visible on white.
inline void marker(cairo_t* cr, double x, double y, double r, const Style& s, double alpha = 1) {
  marker_path(cr, x, y, r, s.marker);
  set(cr, s.colour, alpha);
  cairo_fill_preserve(cr);
  set(cr, {s.colour.r * 0.6, s.colour.g * 0.6, s.colour.b * 0.6}, alpha);
  cairo_set_line_width(cr, 0.6);
  cairo_stroke(cr);
}

// Data-to-pixel mapping of one set of axes.
struct Axes {
  Rect area;
  double x0, x1, y0, y1;
  double px(double x) const { return area.x + (x - x0) / (x1 - x0) * area.w; }
  double py(double y) const { return area.y + area.h - (y - y0) / (y1 - y0) * area.h; }
};

// Title, frame, grid, ticks with numbers and axis labels inside `r`; returns the mapping of the inner area.
inline Axes draw_axes(cairo_t* cr, Rect r, std::array<double, 2> xr, std::array<double, 2> yr, const std::string& title,
                      const std::string& xlabel, const std::string& ylabel) {
  const double fs = 12, pad = 8;
  const Ticks xt = nice_ticks(xr[0], xr[1], std::max(3, int(r.w / 90))), yt = nice_ticks(yr[0], yr[1], std::max(3, int(r.h / 60)));
  double ytw = 0;
  for (double v : yt.values) ytw = std::max(ytw, text_width(cr, format_tick(v, yt.step), fs));
  const double top = pad + (title.empty() ? 0 : 28), left = pad + (ylabel.empty() ? 0 : 22) + ytw + 8;
  const double bottom = pad + 20 + (xlabel.empty() ? 0 : 22), right = pad + 8;
  Axes ax{{r.x + left, r.y + top, std::max(1.0, r.w - left - right), std::max(1.0, r.h - top - bottom)},
          xr[0], xr[1], yr[0], yr[1]};
  const Rect& a = ax.area;
  text(cr, title, r.x + r.w / 2, r.y + pad, 16, 0.5, 0, true);
  text(cr, xlabel, a.x + a.w / 2, r.y + r.h - pad, 13, 0.5, 1);
  text(cr, ylabel, r.x + pad, a.y + a.h / 2, 13, 0.5, 0, false, -std::numbers::pi / 2);
  cairo_set_line_width(cr, 1);
  for (double v : xt.values) {
    const double x = std::round(ax.px(v)) + 0.5;
    set(cr, {0.9, 0.9, 0.9});
    cairo_move_to(cr, x, a.y), cairo_line_to(cr, x, a.y + a.h), cairo_stroke(cr);
    set(cr, {0.3, 0.3, 0.3});
    cairo_move_to(cr, x, a.y + a.h), cairo_line_to(cr, x, a.y + a.h + 5), cairo_stroke(cr);
    text(cr, format_tick(v, xt.step), x, a.y + a.h + 7, fs, 0.5, 0);
  }
  for (double v : yt.values) {
    const double y = std::round(ax.py(v)) + 0.5;
    set(cr, {0.9, 0.9, 0.9});
    cairo_move_to(cr, a.x, y), cairo_line_to(cr, a.x + a.w, y), cairo_stroke(cr);
    set(cr, {0.3, 0.3, 0.3});
    cairo_move_to(cr, a.x - 5, y), cairo_line_to(cr, a.x, y), cairo_stroke(cr);
    text(cr, format_tick(v, yt.step), a.x - 7, y, fs, 1, 0.5);
  }
  set(cr, {0.3, 0.3, 0.3});
  cairo_rectangle(cr, std::round(a.x) + 0.5, std::round(a.y) + 0.5, std::round(a.w), std::round(a.h));
  cairo_stroke(cr);
  return ax;
}

// Legend box in whichever corner of the axes covers the fewest data points (top right on a tie).
inline void line_legend(cairo_t* cr, const Axes& ax, const std::vector<Series>& s,
                        const std::vector<std::vector<double>>& xs) {
  double w = 0;
  for (const auto& e : s) w = std::max(w, text_width(cr, e.name, 12));
  if (w == 0) return;
  const double row = 18, bw = w + 44, bh = row * s.size() + 8, m = 8;
  const Rect& a = ax.area;
  const std::array<std::array<double, 2>, 4> corners = {{{a.x + a.w - bw - m, a.y + m}, {a.x + m, a.y + m},
                                                         {a.x + a.w - bw - m, a.y + a.h - bh - m}, {a.x + m, a.y + a.h - bh - m}}};
  std::size_t best = 0, fewest = SIZE_MAX;
  for (std::size_t c = 0; c < corners.size(); ++c) {
    std::size_t inside = 0;
    for (std::size_t i = 0; i < s.size(); ++i)
      for (std::size_t k = 0; k < s[i].y.size(); ++k) {
        const double px = ax.px(xs[i][k]), py = ax.py(s[i].y[k]);
        inside += px >= corners[c][0] - 4 && px <= corners[c][0] + bw + 4 && py >= corners[c][1] - 4 && py <= corners[c][1] + bh + 4;
      }
    if (inside < fewest) fewest = inside, best = c;
  }
  const double x = corners[best][0], y = corners[best][1];
  cairo_rectangle(cr, x, y, bw, bh);
  set(cr, {1, 1, 1}, 0.85);
  cairo_fill_preserve(cr);
  set(cr, {0.75, 0.75, 0.75});
  cairo_set_line_width(cr, 1);
  cairo_stroke(cr);
  for (std::size_t i = 0; i < s.size(); ++i) {
    const double cy = y + 4 + row * (i + 0.5);
    set(cr, palette(int(i), int(s.size())));
    cairo_set_line_width(cr, 2.5);
    cairo_move_to(cr, x + 8, cy), cairo_line_to(cr, x + 32, cy), cairo_stroke(cr);
    text(cr, s[i].name, x + 38, cy, 12, 0, 0.5);
  }
}

// One line-plot panel: lines broken at non-finite values, markers where a run has a single point or when the
// series is short enough for its points to matter (epochs).
inline void line_panel(cairo_t* cr, Rect r, const std::vector<Series>& series, const std::string& title,
                       const std::string& xlabel, const std::string& ylabel) {
  std::vector<std::vector<double>> xs(series.size());
  std::vector<const std::vector<double>*> xp, yp;
  for (std::size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    if (!s.x.empty() && s.x.size() != s.y.size())
      throw Error("line plot \"" + title + "\": series \"" + s.name + "\" has " + std::to_string(s.x.size()) +
                  " x values but " + std::to_string(s.y.size()) + " y values");
    xs[i] = s.x;
    if (xs[i].empty())
      for (std::size_t k = 0; k < s.y.size(); ++k) xs[i].push_back(double(k));
    xp.push_back(&xs[i]);
    yp.push_back(&s.y);
  }
  const Axes ax = draw_axes(cr, r, data_range(xp), data_range(yp), title, xlabel, ylabel);
  cairo_save(cr);
  cairo_rectangle(cr, ax.area.x, ax.area.y, ax.area.w, ax.area.h);
  cairo_clip(cr);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  for (std::size_t i = 0; i < series.size(); ++i) {
    const Style st{palette(int(i), int(series.size())), Marker::circle};
    const auto& x = xs[i];
    const auto& y = series[i].y;
    auto ok = [&](std::size_t k) { return k < y.size() && std::isfinite(x[k]) && std::isfinite(y[k]); };
    set(cr, st.colour);
    cairo_set_line_width(cr, 2);
    for (std::size_t k = 0; k < y.size(); ++k)
      if (ok(k)) (k > 0 && ok(k - 1) ? cairo_line_to : cairo_move_to)(cr, ax.px(x[k]), ax.py(y[k]));
    cairo_stroke(cr);
    for (std::size_t k = 0; k < y.size(); ++k)
      if (ok(k) && (y.size() <= 60 || !((k > 0 && ok(k - 1)) || ok(k + 1)))) marker(cr, ax.px(x[k]), ax.py(y[k]), 3, st);
  }
  cairo_restore(cr);
  line_legend(cr, ax, series, xs);
}

}  // namespace detail::plot

// Lines with axes, nice ticks, grid and legend. Non-finite points break a line; lone points get a marker.
inline void line_plot(const std::string& png, const std::vector<Series>& series, const std::string& title,
                      const std::string& xlabel, const std::string& ylabel, int width = 900, int height = 560) {
  detail::plot::Canvas c(png, width, height);
  detail::plot::line_panel(c.cr(), {0, 0, double(width), double(height)}, series, title, xlabel, ylabel);
  c.save();
}

// A metrics table (one row per epoch) as two panels side by side: every column whose name contains "loss", and
// every other column, both against x_column. A panel with nothing to show is left out.
inline void plot_training_curves(const std::string& png, const std::vector<std::string>& columns,
                                 const std::vector<std::vector<double>>& rows, const std::string& x_column) {
  const auto xi = std::find(columns.begin(), columns.end(), x_column) - columns.begin();
  if (xi == std::ptrdiff_t(columns.size())) {
    std::string have;
    for (const auto& c : columns) have += (have.empty() ? "" : ", ") + c;
    throw Error("training curves " + png + ": no column \"" + x_column + "\" among {" + have + "}");
  }
  for (std::size_t r = 0; r < rows.size(); ++r)
    if (rows[r].size() != columns.size())
      throw Error("training curves " + png + ": row " + std::to_string(r) + " has " + std::to_string(rows[r].size()) +
                  " values for " + std::to_string(columns.size()) + " columns");
  std::vector<Series> losses, others;
  for (std::size_t c = 0; c < columns.size(); ++c) {
    if (std::ptrdiff_t(c) == xi) continue;
    Series s{columns[c], {}, {}};
    for (const auto& row : rows) s.x.push_back(row[xi]), s.y.push_back(row[c]);
    std::string lower = columns[c];
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
    (lower.find("loss") != std::string::npos ? losses : others).push_back(std::move(s));
  }
  const int panels = int(!losses.empty()) + int(!others.empty());
  const double pw = 800, h = 560;
  detail::plot::Canvas c(png, int(pw) * std::max(panels, 1), int(h));
  double x = 0;
  if (!losses.empty() || panels == 0) detail::plot::line_panel(c.cr(), {x, 0, pw, h}, losses, "Loss", x_column, "loss"), x += pw;
  if (!others.empty()) detail::plot::line_panel(c.cr(), {x, 0, pw, h}, others, "Metrics", x_column, "value");
  c.save();
}

// Points xy (n x 2, row-major) coloured and shaped by class, with the legend in columns to the right.
inline void scatter_plot(const std::string& png, const std::vector<float>& xy, const std::vector<int>& labels,
                         const std::vector<std::string>& class_names, const std::string& title, int width = 1000,
                         int height = 800) {
  using namespace detail::plot;
  if (xy.size() != 2 * labels.size())
    throw Error("scatter plot " + png + ": " + std::to_string(xy.size()) + " coordinates for " +
                std::to_string(labels.size()) + " labels; expected 2 per point");
  int classes = int(class_names.size());
  for (int l : labels) {
    if (l < 0 || (!class_names.empty() && l >= int(class_names.size())))
      throw Error("scatter plot " + png + ": label " + std::to_string(l) + " is outside the " +
                  std::to_string(class_names.size()) + " class names");
    classes = std::max(classes, l + 1);
  }
  Canvas c(png, width, height);
  cairo_t* cr = c.cr();
  auto name = [&](int k) {
    std::string s = class_names.empty() ? "class " + std::to_string(k) : class_names[k];
    return s.size() > 28 ? s.substr(0, 27) + "..." : s;
  };
  // Legend: as many columns as the height needs, entries top to bottom, then left to right.
  const double row = 17, fs = 12, top = 44;
  const int per_col = std::max(1, int((height - top - 16) / row)), cols = classes ? (classes + per_col - 1) / per_col : 0;
  const int rows_used = cols ? (classes + cols - 1) / cols : 0;
  double nw = 0;
  for (int k = 0; k < classes; ++k) nw = std::max(nw, text_width(cr, name(k), fs));
  const double colw = nw + 30, legend_w = std::min(cols * colw, 0.6 * width);
  std::vector<double> xs, ys;
  for (std::size_t i = 0; i < labels.size(); ++i) xs.push_back(xy[2 * i]), ys.push_back(xy[2 * i + 1]);
  const Axes ax = draw_axes(cr, {0, 0, width - legend_w, double(height)}, data_range({&xs}), data_range({&ys}), title, "", "");
  cairo_save(cr);
  cairo_rectangle(cr, ax.area.x, ax.area.y, ax.area.w, ax.area.h);
  cairo_clip(cr);
  const double r = std::clamp(5.0 / std::sqrt(std::max<double>(labels.size(), 1) / 500.0), 2.0, 5.0);
  // Multiplicative-hash order, so that no class is always drawn on top of the others.
  std::vector<std::size_t> order(labels.size());
  std::iota(order.begin(), order.end(), 0);
  auto key = [](std::size_t i) { return std::uint32_t(i * 2654435761u); };
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return key(a) < key(b); });
  for (std::size_t i : order)
    if (std::isfinite(xs[i]) && std::isfinite(ys[i]))
      marker(cr, ax.px(xs[i]), ax.py(ys[i]), r, class_style(labels[i], classes), 0.85);
  cairo_restore(cr);
  const double lx = width - legend_w, ly = top + std::max(0.0, (height - top - 16 - rows_used * row) / 2);
  cairo_save(cr);
  cairo_rectangle(cr, lx, 0, legend_w, height);
  cairo_clip(cr);
  for (int k = 0; k < classes; ++k) {
    const double x = lx + (k / rows_used) * colw, y = ly + (k % rows_used + 0.5) * row;
    marker(cr, x + 10, y, 4.5, class_style(k, classes));
    text(cr, name(k), x + 20, y, fs, 0, 0.5);
  }
  cairo_restore(cr);
  c.save();
}

// Grid of images ("image | ground truth | prediction"): each scaled to fit a cell x cell square, column titles
// above, row titles to the left. Images are 1-channel (grey) or 3-channel (RGB); an empty Image leaves a grey cell.
inline void image_grid(const std::string& png, const std::vector<std::vector<Image>>& rows,
                       const std::vector<std::string>& column_titles, const std::vector<std::string>& row_titles,
                       int cell = 256) {
  using namespace detail::plot;
  if (cell < 8) throw Error("image grid " + png + ": cell size " + std::to_string(cell) + " is below 8 pixels");
  std::size_t cols = column_titles.size();
  for (std::size_t r = 0; r < rows.size(); ++r) {
    cols = std::max(cols, rows[r].size());
    for (std::size_t k = 0; k < rows[r].size(); ++k) {
      const Image& im = rows[r][k];
      if (im.empty()) continue;
      if ((im.channels != 1 && im.channels != 3) || im.height < 1 || im.width < 1 ||
          im.pixels.size() != std::size_t(im.height) * im.width * im.channels)
        throw Error("image grid " + png + ": image at row " + std::to_string(r) + ", column " + std::to_string(k) +
                    " is " + std::to_string(im.height) + " x " + std::to_string(im.width) + " x " +
                    std::to_string(im.channels) + " with " + std::to_string(im.pixels.size()) +
                    " bytes; expected 1 or 3 channels and height * width * channels bytes");
    }
  }
  const std::size_t nrows = std::max(rows.size(), row_titles.size());
  if (cols == 0 || nrows == 0) throw Error("image grid " + png + ": nothing to draw (no images and no titles)");
  // Measure the titles on a scratch surface before the canvas size is known.
  std::unique_ptr<cairo_surface_t, SurfaceDeleter> scratch(cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1));
  std::unique_ptr<cairo_t, ContextDeleter> mcr(cairo_create(scratch.get()));
  const double fs = 15, gap = 6, margin = 10;
  double tw = 0;
  for (const auto& t : row_titles) tw = std::min(std::max(tw, text_width(mcr.get(), t, fs, true)), 2.0 * cell);
  const double left = margin + (tw > 0 ? tw + 12 : 0), top = margin + (column_titles.empty() ? 0 : 28);
  const int width = int(std::ceil(left + cols * (cell + gap) - gap + margin));
  const int height = int(std::ceil(top + nrows * (cell + gap) - gap + margin));
  Canvas c(png, width, height);
  cairo_t* cr = c.cr();
  for (std::size_t k = 0; k < column_titles.size(); ++k)
    text(cr, column_titles[k], left + k * (cell + gap) + cell / 2.0, margin, fs, 0.5, 0, true);
  for (std::size_t r = 0; r < nrows; ++r) {
    const double y = top + r * (cell + gap);
    if (r < row_titles.size()) {
      cairo_save(cr);
      cairo_rectangle(cr, 0, y, left - 6, cell);
      cairo_clip(cr);
      text(cr, row_titles[r], left - 12, y + cell / 2.0, fs, 1, 0.5, true);
      cairo_restore(cr);
    }
    for (std::size_t k = 0; k < cols; ++k) {
      const double x = left + k * (cell + gap);
      const Image* im = r < rows.size() && k < rows[r].size() && !rows[r][k].empty() ? &rows[r][k] : nullptr;
      if (!im) {
        cairo_rectangle(cr, x, y, cell, cell);
        set(cr, {0.93, 0.93, 0.93});
        cairo_fill(cr);
        continue;
      }
      std::unique_ptr<cairo_surface_t, SurfaceDeleter> src(
          cairo_image_surface_create(CAIRO_FORMAT_RGB24, im->width, im->height));
      const int stride = cairo_image_surface_get_stride(src.get());
      unsigned char* data = cairo_image_surface_get_data(src.get());
      if (!data) throw Error("image grid " + png + ": cairo could not allocate a " + std::to_string(im->width) + " x " +
                             std::to_string(im->height) + " image");
      for (int yy = 0; yy < im->height; ++yy) {
        auto* out = reinterpret_cast<std::uint32_t*>(data + std::size_t(yy) * stride);
        for (int xx = 0; xx < im->width; ++xx) {
          const std::uint32_t red = im->at(yy, xx, 0), g = im->at(yy, xx, im->channels == 3 ? 1 : 0),
                              b = im->at(yy, xx, im->channels == 3 ? 2 : 0);
          out[xx] = 0xff000000u | red << 16 | g << 8 | b;
        }
      }
      cairo_surface_mark_dirty(src.get());
      const double s = std::min(double(cell) / im->width, double(cell) / im->height);
      const double ox = x + (cell - s * im->width) / 2, oy = y + (cell - s * im->height) / 2;
      cairo_save(cr);
      cairo_rectangle(cr, std::round(ox), std::round(oy), std::round(s * im->width), std::round(s * im->height));
      cairo_clip(cr);
      cairo_translate(cr, ox, oy);
      cairo_scale(cr, s, s);
      cairo_set_source_surface(cr, src.get(), 0, 0);
      // Enlarging keeps hard pixel edges (masks stay crisp); shrinking filters properly instead of aliasing.
      cairo_pattern_set_filter(cairo_get_source(cr), s >= 1 ? CAIRO_FILTER_NEAREST : CAIRO_FILTER_GOOD);
      cairo_pattern_set_extend(cairo_get_source(cr), CAIRO_EXTEND_PAD);
      cairo_paint(cr);
      cairo_restore(cr);
    }
  }
  c.save();
}

}  // namespace hw1
