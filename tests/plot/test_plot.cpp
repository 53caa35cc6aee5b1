#define BOOST_TEST_MODULE plot
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "hw1/plot/plot.hpp"

namespace fs = std::filesystem;
using namespace hw1::detail::plot;

namespace {

// A fresh directory per test program run, removed at exit.
struct TempDir {
  fs::path dir = fs::temp_directory_path() / ("hw1_plot_test_" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(dir); }
  ~TempDir() { fs::remove_all(dir); }
  std::string operator/(const std::string& name) const { return (dir / name).string(); }
};
const TempDir tmp;

// The PNG read back through cairo, as 0xRRGGBB pixels.
struct Png {
  int width = 0, height = 0;
  std::vector<std::uint32_t> px;
  std::uint32_t at(int x, int y) const { return px[std::size_t(y) * width + x]; }
  std::size_t distinct(int x0 = 0, int x1 = -1) const {
    std::set<std::uint32_t> s;
    for (int y = 0; y < height; ++y)
      for (int x = x0; x < (x1 < 0 ? width : x1); ++x) s.insert(at(x, y));
    return s.size();
  }
  std::size_t count(std::uint32_t c) const { return std::size_t(std::count(px.begin(), px.end(), c)); }
};

Png read_png(const std::string& path) {
  BOOST_REQUIRE_MESSAGE(fs::exists(path), path << " was not written");
  BOOST_TEST(!fs::exists(path + ".tmp"));
  cairo_surface_t* s = cairo_image_surface_create_from_png(path.c_str());
  BOOST_REQUIRE_MESSAGE(cairo_surface_status(s) == CAIRO_STATUS_SUCCESS, path << " is not a valid PNG");
  Png p{cairo_image_surface_get_width(s), cairo_image_surface_get_height(s), {}};
  const int stride = cairo_image_surface_get_stride(s);
  const unsigned char* d = cairo_image_surface_get_data(s);
  for (int y = 0; y < p.height; ++y)
    for (int x = 0; x < p.width; ++x)
      p.px.push_back(reinterpret_cast<const std::uint32_t*>(d + std::size_t(y) * stride)[x] & 0xffffff);
  cairo_surface_destroy(s);
  return p;
}

std::uint32_t packed(Rgb c) {
  auto q = [](double v) { return std::uint32_t(std::lround(v * 255)); };
  return q(c.r) << 16 | q(c.g) << 8 | q(c.b);
}

}  // namespace

BOOST_AUTO_TEST_CASE(nice_ticks_are_round_and_inside_the_range) {
  for (auto [lo, hi] : std::vector<std::pair<double, double>>{{0, 1}, {-3.7, 12.2}, {0.0012, 0.0047}, {1, 30}, {-1e7, 3e7}, {0.98, 1.02}}) {
    const Ticks t = nice_ticks(lo, hi, 6);
    BOOST_TEST(t.values.size() >= 2u);
    BOOST_TEST(t.values.size() <= 11u);
    const double mant = t.step / std::pow(10.0, std::floor(std::log10(t.step) + 1e-9));
    BOOST_TEST((std::abs(mant - 1) < 1e-9 || std::abs(mant - 2) < 1e-9 || std::abs(mant - 5) < 1e-9), "step " << t.step);
    for (double v : t.values) {
      BOOST_TEST(v >= lo - 1e-9 * t.step);
      BOOST_TEST(v <= hi + 1e-9 * t.step);
      BOOST_TEST(std::abs(v / t.step - std::round(v / t.step)) < 1e-6);
    }
  }
  BOOST_TEST(format_tick(0.5, 0.5) == "0.5");
  BOOST_TEST(format_tick(20, 5) == "20");
  BOOST_TEST(format_tick(0.0025, 0.0005) == "0.0025");
  BOOST_TEST(format_tick(3e7, 1e7) == "3e+07");
  const Ticks z = nice_ticks(-1, 1, 5);
  BOOST_TEST(std::count(z.values.begin(), z.values.end(), 0.0) == 1);
  BOOST_TEST(!std::signbit(*std::find(z.values.begin(), z.values.end(), 0.0)));  // "0", never "-0"
}

BOOST_AUTO_TEST_CASE(line_plot_draws_every_series) {
  std::vector<hw1::Series> s(3);
  for (int i = 0; i < 40; ++i) {
    s[0].x.push_back(i), s[0].y.push_back(std::exp(-i / 10.0));
    s[1].x.push_back(i), s[1].y.push_back(0.5 + 0.3 * std::sin(i / 5.0));
  }
  s[0].name = "train loss", s[1].name = "val loss", s[2].name = "no data";
  const auto path = tmp / "lines.png";
  hw1::line_plot(path, s, "Loss", "epoch", "loss");
  const Png p = read_png(path);
  BOOST_TEST(p.width == 900);
  BOOST_TEST(p.height == 560);
  BOOST_TEST(p.distinct() > 20u);
  for (int i = 0; i < 2; ++i) BOOST_TEST(p.count(packed(palette(i, 3))) > 200u, "series " << i << " not drawn");
}

BOOST_AUTO_TEST_CASE(line_plot_handles_one_point_nans_and_constants) {
  const double nan = std::nan("");
  const std::vector<hw1::Series> s = {{"single", {3}, {0.7}},
                                      {"gappy", {}, {1, 2, nan, 3, 4, nan, nan, 2}},
                                      {"constant", {0, 1, 2, 3}, {5, 5, 5, 5}}};
  const auto path = tmp / "edge.png";
  hw1::line_plot(path, s, "edge cases", "x", "y", 640, 400);
  const Png p = read_png(path);
  BOOST_TEST(p.width == 640);
  BOOST_TEST(p.height == 400);
  for (int i = 0; i < 3; ++i) BOOST_TEST(p.count(packed(palette(i, 3))) > 10u, "series " << i << " not drawn");
  // Constant and single-point data alone still get a non-degenerate axis.
  hw1::line_plot(tmp / "one.png", {{"one", {1}, {1}}}, "one point", "x", "y");
  BOOST_TEST(read_png(tmp / "one.png").count(packed(palette(0, 1))) > 10u);
  hw1::line_plot(tmp / "empty.png", {}, "nothing", "x", "y");
  BOOST_TEST(read_png(tmp / "empty.png").distinct() > 5u);
  BOOST_CHECK_THROW(hw1::line_plot(tmp / "bad.png", {{"bad", {1, 2}, {1}}}, "t", "x", "y"), hw1::Error);
  BOOST_TEST(!fs::exists(tmp / "bad.png"));
}

BOOST_AUTO_TEST_CASE(training_curves_put_losses_and_metrics_side_by_side) {
  const std::vector<std::string> cols = {"epoch", "train_loss", "val_loss", "val_accuracy", "lr"};
  std::vector<std::vector<double>> rows;
  for (int e = 1; e <= 30; ++e) rows.push_back({double(e), 2.0 / e, 2.2 / e + 0.1, 1 - 0.8 / e, 0.01 * std::pow(0.9, e)});
  const auto path = tmp / "curves.png";
  hw1::plot_training_curves(path, cols, rows, "epoch");
  const Png p = read_png(path);
  BOOST_TEST(p.width == 1600);
  BOOST_TEST(p.height == 560);
  // Left panel: two loss lines (colours 0, 1 of 2); right panel: two metrics lines.
  auto in_half = [&](std::uint32_t c, int half) {
    std::size_t n = 0;
    for (int y = 0; y < p.height; ++y)
      for (int x = half * 800; x < (half + 1) * 800; ++x) n += p.at(x, y) == c;
    return n;
  };
  for (int half : {0, 1})
    for (int i : {0, 1}) BOOST_TEST(in_half(packed(palette(i, 2)), half) > 100u, "panel " << half << " line " << i);
  // Only losses: a single panel.
  hw1::plot_training_curves(path, {"step", "loss"}, {{1, 3}, {2, 2}, {3, 1.5}}, "step");
  BOOST_TEST(read_png(path).width == 800);
  BOOST_CHECK_THROW(hw1::plot_training_curves(path, cols, rows, "iteration"), hw1::Error);
  rows[3].pop_back();
  BOOST_CHECK_THROW(hw1::plot_training_curves(path, cols, rows, "epoch"), hw1::Error);
}

// CIELAB (D65) coordinates, where Euclidean distance approximates perceived colour difference (Delta E 1976).
std::array<double, 3> lab(Rgb c) {
  auto lin = [](double v) { return v <= 0.04045 ? v / 12.92 : std::pow((v + 0.055) / 1.055, 2.4); };
  const double r = lin(c.r), g = lin(c.g), b = lin(c.b);
  const double x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047, y = 0.2126 * r + 0.7152 * g + 0.0722 * b,
               z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883;
  auto f = [](double t) { return t > 0.008856 ? std::cbrt(t) : 7.787 * t + 16.0 / 116; };
  return {116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))};
}

BOOST_AUTO_TEST_CASE(class_styles_stay_distinct_for_many_classes) {
  for (int n : {5, 10, 11, 20, 50, 80, 120}) {
    std::set<std::pair<std::uint32_t, int>> seen;
    double closest = 1e9;
    for (int a = 0; a < n; ++a) {
      const Style sa = class_style(a, n);
      seen.insert({packed(sa.colour), int(sa.marker)});
      for (int b = a + 1; b < n; ++b) {
        const Style sb = class_style(b, n);
        if (sa.marker == sb.marker) {
          const auto la = lab(sa.colour), lb = lab(sb.colour);
          closest = std::min(closest, std::hypot(la[0] - lb[0], la[1] - lb[1], la[2] - lb[2]));
        }
      }
    }
    BOOST_TEST(seen.size() == std::size_t(n), n << " classes");
    // Two classes drawn with the same marker differ clearly in colour while the four markers last (80 classes).
    BOOST_TEST(closest > (n <= 80 ? 18.0 : 10.0), n << " classes: closest Delta E " << closest);
  }
}

BOOST_AUTO_TEST_CASE(scatter_plot_shows_all_classes) {
  std::mt19937 g(3);
  std::normal_distribution<float> nd;
  const int n = 2000, classes = 50;
  std::vector<float> xy;
  std::vector<int> labels;
  for (int i = 0; i < n; ++i) {
    const int c = i % classes;
    labels.push_back(c);
    xy.push_back(float(10 * std::cos(c * 0.4) * (1 + c / 10)) + nd(g));
    xy.push_back(float(10 * std::sin(c * 0.4) * (1 + c / 10)) + nd(g));
  }
  const auto path = tmp / "scatter.png";
  hw1::scatter_plot(path, xy, labels, {}, "t-SNE of 50 classes");
  const Png p = read_png(path);
  BOOST_TEST(p.width == 1000);
  BOOST_TEST(p.height == 800);
  BOOST_TEST(p.distinct() > 200u);
  for (int k = 0; k < classes; ++k)  // every legend marker carries its exact colour
    BOOST_TEST(p.count(packed(class_style(k, classes).colour)) > 5u, "class " << k);
  std::vector<std::string> names(classes);
  for (int k = 0; k < classes; ++k) names[k] = "n0" + std::to_string(1440000 + k);
  hw1::scatter_plot(path, xy, labels, names, "named", 700, 500);
  BOOST_TEST(read_png(path).width == 700);
  BOOST_CHECK_THROW(hw1::scatter_plot(path, xy, std::vector<int>(n - 1, 0), {}, "t"), hw1::Error);
  names.pop_back();  // label 49 now has no name
  BOOST_CHECK_THROW(hw1::scatter_plot(path, xy, labels, names, "t"), hw1::Error);
}

BOOST_AUTO_TEST_CASE(image_grid_scales_cells_and_keeps_colours) {
  hw1::Image red(48, 64, 3), grey(30, 30, 1), mask(8, 8, 1), photo(300, 200, 3);
  for (int y = 0; y < 48; ++y)
    for (int x = 0; x < 64; ++x) red.at(y, x, 0) = 255;
  std::fill(grey.pixels.begin(), grey.pixels.end(), 128);
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 8; ++x) mask.at(y, x) = (x < 4) ? 0 : 255;
  for (std::size_t i = 0; i < photo.pixels.size(); ++i) photo.pixels[i] = std::uint8_t(i * 7);
  const auto path = tmp / "grid.png";
  hw1::image_grid(path, {{red, grey, mask}, {photo, {}, red}}, {"image", "ground truth", "prediction"},
                  {"tile 1", "tile 2"}, 128);
  const Png p = read_png(path);
  BOOST_TEST(p.width >= 3 * 128);
  BOOST_TEST(p.height >= 2 * 128 + 20);  // room for the column titles
  // Two red cells scaled to 128 x 96, a 128 x 128 grey cell, and a crisp half-black / half-white mask.
  BOOST_TEST(p.count(0xff0000) >= 2u * 120 * 90);
  BOOST_TEST(p.count(0x808080) >= 120u * 120);
  BOOST_TEST(p.count(0x000000) >= 60u * 120);
  BOOST_TEST(p.distinct() > 50u);
  hw1::Image two(4, 4, 2);
  BOOST_CHECK_THROW(hw1::image_grid(path, {{two}}, {}, {}), hw1::Error);
  BOOST_CHECK_THROW(hw1::image_grid(path, {}, {}, {}), hw1::Error);
}

BOOST_AUTO_TEST_CASE(errors_name_the_file_and_leave_nothing_behind) {
  const std::string missing = "/nonexistent-hw1-dir/plot.png";
  try {
    hw1::line_plot(missing, {{"a", {1, 2}, {1, 2}}}, "t", "x", "y");
    BOOST_FAIL("writing into a missing directory must throw");
  } catch (const hw1::Error& e) {
    BOOST_TEST(std::string(e.what()).find(missing) != std::string::npos, e.what());
  }
  // The target is a non-empty directory: the .tmp file is written, the rename fails, and the .tmp must go.
  const auto dir = tmp / "occupied.png";
  fs::create_directories(dir);
  std::ofstream(dir + "/keep") << "x";
  try {
    hw1::scatter_plot(dir, {0, 0, 1, 1}, {0, 1}, {}, "t");
    BOOST_FAIL("renaming onto a directory must throw");
  } catch (const hw1::Error& e) {
    BOOST_TEST(std::string(e.what()).find(dir) != std::string::npos, e.what());
  }
  BOOST_TEST(!fs::exists(dir + ".tmp"));
  BOOST_TEST(fs::is_directory(dir));
  // An existing file is replaced whole.
  const auto path = tmp / "replace.png";
  hw1::line_plot(path, {{"a", {1, 2}, {1, 2}}}, "t", "x", "y", 300, 200);
  hw1::line_plot(path, {{"a", {1, 2}, {1, 2}}}, "t", "x", "y", 400, 250);
  BOOST_TEST(read_png(path).width == 400);
  BOOST_CHECK_THROW(hw1::line_plot(path, {}, "t", "x", "y", 0, 100), hw1::Error);
}
