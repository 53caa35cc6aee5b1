#define BOOST_TEST_MODULE synthetic
#include <boost/test/unit_test.hpp>

#include "common/testing.hpp"

#include <array>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <unistd.h>

#include "hw1/data/synthetic.hpp"

namespace fs = std::filesystem;
using hw1::Image;

namespace {

using hw1::test::bytes_of;
using hw1::test::contains;
using hw1::test::error_of;

// a scratch root the generator creates itself
struct TempDir : hw1::test::TempDir {
  explicit TempDir(const std::string& name) : hw1::test::TempDir("synthetic-" + name, false) {}
};

// file name -> content for every file under dir
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> m;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) m[fs::relative(e.path(), dir).string()] = bytes_of(e.path());
  return m;
}


std::array<double, 3> mean_rgb(const Image& img) {
  std::array<double, 3> m{};
  for (std::size_t i = 0; i < img.pixels.size(); ++i) m[i % 3] += img.pixels[i];
  for (auto& v : m) v /= double(img.pixels.size() / 3);
  return m;
}

}  // namespace

BOOST_AUTO_TEST_CASE(classification_set_layout_balance_and_determinism) {
  TempDir a("cls-a"), b("cls-b"), c("cls-c");
  const int K = 10, train = 12, val = 4;
  hw1::make_classification_set(a.str(), K, train, val, 42);
  hw1::make_classification_set(b.str(), K, train, val, 42);
  hw1::make_classification_set(c.str(), K, train, val, 43);
  const auto sa = snapshot(a.path);
  BOOST_TEST(sa == snapshot(b.path));  // same seed, same bytes
  BOOST_TEST(sa != snapshot(c.path));

  const auto tr = hw1::list_classification_dir((a.path / "train_50").string(), K);
  const auto va = hw1::list_classification_dir((a.path / "val_50").string(), K);
  BOOST_TEST(tr.size() == std::size_t(K * train));
  BOOST_TEST(va.size() == std::size_t(K * val));
  std::array<int, K> count{};
  for (const auto& s : tr) ++count[s.label];
  for (int k = 0; k < K; ++k) BOOST_TEST(count[k] == train);
  // Course naming: validation ids continue after the training ids (train 0_0..0_11, val 0_12..0_15).
  BOOST_TEST(fs::exists(a.path / "train_50" / "3_11.png"));
  BOOST_TEST(fs::exists(a.path / "val_50" / "3_12.png"));
  BOOST_TEST(fs::exists(a.path / "val_50" / "3_15.png"));
  const Image img = hw1::read_png(tr[0].path, 0);
  BOOST_TEST((img.height == 32 && img.width == 32 && img.channels == 3));

  // Mean colour carries (almost) no class information: nearest class centroid in mean RGB stays near chance.
  std::array<std::array<double, 3>, K> centroid{};
  for (const auto& s : tr) {
    const auto m = mean_rgb(hw1::read_png(s.path));
    for (int c = 0; c < 3; ++c) centroid[s.label][c] += m[c] / train;
  }
  int correct = 0;
  for (const auto& s : va) {
    const auto m = mean_rgb(hw1::read_png(s.path));
    int best = 0;
    double bd = 1e300;
    for (int k = 0; k < K; ++k) {
      double d = 0;
      for (int c = 0; c < 3; ++c) d += (m[c] - centroid[k][c]) * (m[c] - centroid[k][c]);
      if (d < bd) bd = d, best = k;
    }
    correct += best == s.label;
  }
  BOOST_TEST(correct <= K * val / 3, correct << " of " << K * val << " right from mean colour alone");

  // Beyond 10 classes, shape families repeat at other scale bins.
  TempDir big("cls-50");
  hw1::make_classification_set(big.str(), 50, 1, 0, 1);
  BOOST_TEST(hw1::list_classification_dir((big.path / "train_50").string(), 50).size() == 50u);
  BOOST_TEST(fs::is_empty(big.path / "val_50"));
}

BOOST_AUTO_TEST_CASE(segmentation_set_layout_colours_and_determinism) {
  TempDir a("seg-a"), b("seg-b");
  hw1::make_segmentation_set(a.str(), 7, 2, 64, 5);
  hw1::make_segmentation_set(b.str(), 7, 2, 64, 5);
  BOOST_TEST(snapshot(a.path) == snapshot(b.path));

  const auto tr = hw1::list_segmentation_dir((a.path / "train").string());
  const auto va = hw1::list_segmentation_dir((a.path / "validation").string());
  BOOST_REQUIRE(tr.size() == 7u);
  BOOST_TEST(va.size() == 2u);
  BOOST_TEST(tr[0].id == "0000");
  BOOST_TEST(tr[6].id == "0006");
  std::array<std::size_t, 7> pixels{};
  std::array<std::array<double, 3>, 7> colour{};
  const auto pal = hw1::seg_palette();
  for (const auto& s : tr) {
    const Image sat = hw1::read_jpeg(s.image_path), mask = hw1::read_png(s.mask_path);
    BOOST_TEST((sat.height == 64 && sat.width == 64 && mask.height == 64 && mask.width == 64));
    const Image cls = hw1::mask_to_classes(mask);
    for (std::size_t i = 0; i < cls.pixels.size(); ++i) {
      const int k = cls.pixels[i];
      for (int c = 0; c < 3; ++c) {
        BOOST_TEST_REQUIRE(mask.pixels[3 * i + c] == pal[k][c]);  // exact course colours only
        colour[k][c] += sat.pixels[3 * i + c];
      }
      ++pixels[k];
    }
  }
  const double total = 7 * 64 * 64;
  for (int k = 0; k < 7; ++k) {
    BOOST_TEST(pixels[k] > 0u, "class " << hw1::seg_class_names()[k] << " missing");
    for (auto& v : colour[k]) v /= double(std::max<std::size_t>(pixels[k], 1));
  }
  BOOST_TEST(pixels[6] / total < 0.15);  // Unknown is rare
  // Class looks: water blue-ish, forest dark green, barren brighter than forest, unknown near black.
  BOOST_TEST(colour[4][2] > colour[4][0] + 30);
  BOOST_TEST((colour[3][1] > colour[3][0] && colour[3][1] < 120));
  BOOST_TEST(colour[5][0] > colour[3][0] + 80);
  BOOST_TEST(colour[6][0] + colour[6][1] + colour[6][2] < 3 * 40);
}

// The tiles are made in integer arithmetic only, so their pixels are the same on every machine, compiler and
// optimisation level: pinned here by an FNV-1a hash (the same at -O0, -O3 -march=native and -O2 -ffast-math on
// the machine that wrote it). A change to the generator changes this value on purpose; a change of platform must not.
BOOST_AUTO_TEST_CASE(segmentation_tiles_are_platform_independent) {
  std::uint64_t h = 1469598103934665603ull;
  for (const int s : {16, 37, 64}) {
    const auto t = hw1::synth_seg_tile(s, 12345 + s, s % 7);
    for (const auto v : t.image.pixels) h = (h ^ v) * 1099511628211ull;
    for (const auto v : t.mask.pixels) h = (h ^ v) * 1099511628211ull;
  }
  BOOST_TEST(h == 0xc35ff7fa01984703ull);
}

BOOST_AUTO_TEST_CASE(rerun_replaces_own_data_but_never_foreign_files) {
  TempDir a("rerun");
  hw1::make_classification_set(a.str(), 3, 4, 1, 7);
  hw1::make_classification_set(a.str(), 3, 2, 1, 7);  // marked root: stale files are removed
  BOOST_TEST(hw1::list_classification_dir((a.path / "train_50").string(), 3).size() == 6u);
  BOOST_TEST(hw1::list_classification_dir((a.path / "val_50").string(), 3).size() == 3u);
  BOOST_TEST(fs::exists(a.path / "val_50" / "0_2.png"));

  TempDir f("foreign");
  fs::create_directories(f.path / "validation");
  std::ofstream(f.path / "validation" / "mine.png") << "user data";
  BOOST_TEST(contains(error_of([&] { hw1::make_segmentation_set(f.str(), 1, 1, 16, 0); }), "pass an empty or new root"));
  BOOST_TEST(fs::exists(f.path / "validation" / "mine.png"));
  BOOST_TEST(!fs::exists(f.path / "train"));

  BOOST_TEST(contains(error_of([&] { hw1::make_classification_set(a.str(), 1, 4, 1, 0); }), "num_classes"));
  BOOST_TEST(contains(error_of([&] { hw1::make_classification_set(a.str(), 51, 4, 1, 0); }), "num_classes"));
  BOOST_TEST(contains(error_of([&] { hw1::make_segmentation_set(a.str(), 1, 0, 8, 0); }), "at least 16"));
  BOOST_TEST(contains(error_of([&] { hw1::make_segmentation_set(a.str(), 0, 1, 32, 0); }), "train_count"));
}
