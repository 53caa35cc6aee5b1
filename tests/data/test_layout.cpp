#define BOOST_TEST_MODULE layout
#include <boost/test/unit_test.hpp>

#include "common/testing.hpp"

#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "hw1/data/layout.hpp"

namespace fs = std::filesystem;
using hw1::Image;

namespace {

using hw1::test::TempDir;
using hw1::test::error_of;
using hw1::test::contains;

}  // namespace

BOOST_AUTO_TEST_CASE(classification_listing_sorted_by_name_with_labels) {
  TempDir d("cls");
  for (const char* n : {"10_3.png", "2_450.png", "0_7.png", "2_10.png", "1_0.PNG", "notes.txt", "0_1.jpg"}) d.touch(n);
  fs::create_directory(d.path / "9_9.png");  // a folder, not a file
  const auto s = hw1::list_classification_dir(d.str(), 11);
  BOOST_REQUIRE_EQUAL(s.size(), 5u);
  // plain std::string order, not natural order
  const std::vector<std::pair<std::string, int>> want{{"0_7.png", 0}, {"10_3.png", 10}, {"1_0.PNG", 1},
                                                      {"2_10.png", 2}, {"2_450.png", 2}};
  for (std::size_t i = 0; i < s.size(); ++i) {
    BOOST_TEST(s[i].file_name == want[i].first);
    BOOST_TEST(s[i].label == want[i].second);
    BOOST_TEST(s[i].path == (d.path / want[i].first).string());
  }
  // unlabelled: any *.png, label -1, num_classes unused
  d.touch("image.png");
  const auto u = hw1::list_classification_dir(d.str(), 0, false);
  BOOST_TEST(u.size() == 6u);
  for (const auto& x : u) BOOST_TEST(x.label == -1);
}

BOOST_AUTO_TEST_CASE(classification_errors) {
  TempDir d("clserr");
  BOOST_TEST(contains(error_of([&] { hw1::list_classification_dir((d.path / "nope").string(), 5); }),
                      "nope: no such directory"));
  d.touch("file.png");
  BOOST_TEST(contains(error_of([&] { hw1::list_classification_dir((d.path / "file.png").string(), 5); }),
                      "file.png: not a directory"));
  TempDir e("clsempty");
  e.touch("readme.txt");
  BOOST_TEST(contains(error_of([&] { hw1::list_classification_dir(e.str(), 5); }), "holds no *.png files"));

  for (const char* bad : {"cat.png", "_3.png", "x3_1.png", "3x_1.png", "12.png", "99999999999_1.png"}) {
    TempDir b("clsbad");
    b.touch(bad);
    const auto msg = error_of([&] { hw1::list_classification_dir(b.str(), 5); });
    BOOST_TEST(contains(msg, std::string(bad) + ": file name does not start with a numeric"), bad << " -> " << msg);
  }
  TempDir r("clsrange");
  r.touch("0_1.png");
  r.touch("5_1.png");
  BOOST_TEST(contains(error_of([&] { hw1::list_classification_dir(r.str(), 5); }),
                      "5_1.png: label 5 is outside 0..4 (num_classes = 5)"));
  BOOST_TEST(hw1::list_classification_dir(r.str(), 6).size() == 2u);
  r.touch("-1_2.png");
  BOOST_TEST(contains(error_of([&] { hw1::list_classification_dir(r.str(), 6); }), "-1_2.png: label -1 is outside 0..5"));
  BOOST_TEST(contains(error_of([&] { hw1::list_classification_dir(r.str(), 0); }), "num_classes must be positive"));
}

BOOST_AUTO_TEST_CASE(segmentation_listing_and_errors) {
  TempDir d("seg");
  for (const char* n : {"0010_sat.jpg", "0010_mask.png", "0002_sat.jpg", "0002_mask.png", "0002.png", "x.txt"})
    d.touch(n);
  const auto s = hw1::list_segmentation_dir(d.str());
  BOOST_REQUIRE_EQUAL(s.size(), 2u);
  BOOST_TEST(s[0].id == "0002");
  BOOST_TEST(s[0].image_path == (d.path / "0002_sat.jpg").string());
  BOOST_TEST(s[0].mask_path == (d.path / "0002_mask.png").string());
  BOOST_TEST(s[1].id == "0010");

  d.touch("0200_sat.jpg");  // image without a mask
  const auto msg = error_of([&] { hw1::list_segmentation_dir(d.str()); });
  BOOST_TEST(contains(msg, "image 0200_sat.jpg has no mask 0200_mask.png"), msg);
  const auto loose = hw1::list_segmentation_dir(d.str(), false);
  BOOST_REQUIRE_EQUAL(loose.size(), 3u);
  BOOST_TEST(loose[2].mask_path.empty());
  BOOST_TEST(!loose[0].mask_path.empty());

  TempDir m("segmask");
  m.touch("0001_sat.jpg");
  m.touch("0001_mask.png");
  m.touch("0003_mask.png");  // mask without an image
  BOOST_TEST(contains(error_of([&] { hw1::list_segmentation_dir(m.str()); }), "mask 0003_mask.png has no image 0003_sat.jpg"));

  TempDir e("segempty");
  e.touch("0001_mask.png");
  BOOST_TEST(contains(error_of([&] { hw1::list_segmentation_dir(e.str()); }), "holds no xxxx_sat.jpg images"));
  BOOST_TEST(contains(error_of([&] { hw1::list_segmentation_dir((e.path / "gone").string()); }), "no such directory"));
}

BOOST_AUTO_TEST_CASE(mask_colours_follow_the_course_reader) {
  // All 8 threshold codes (4R+2G+B); each channel just below (127) and at (128) the threshold.
  const int want[8] = {6, 4, 3, 0, 6, 2, 1, 5};  // code 4 (pure red) -> Unknown
  Image m(2, 8, 3);
  for (int code = 0; code < 8; ++code)
    for (int c = 0; c < 3; ++c) {
      const bool on = (code >> (2 - c)) & 1;
      m.at(0, code, c) = on ? 255 : 0;
      m.at(1, code, c) = on ? 128 : 127;
    }
  const Image k = hw1::mask_to_classes(m);
  BOOST_TEST(k.channels == 1);
  for (int code = 0; code < 8; ++code) {
    BOOST_TEST(k.at(0, code) == want[code], "code " << code);
    BOOST_TEST(k.at(1, code) == want[code], "near-threshold code " << code);
  }
  // The palette is the course's table and round-trips exactly.
  const auto pal = hw1::seg_palette();
  BOOST_TEST((pal[0] == std::array<std::uint8_t, 3>{0, 255, 255}));
  BOOST_TEST((pal[1] == std::array<std::uint8_t, 3>{255, 255, 0}));
  BOOST_TEST((pal[2] == std::array<std::uint8_t, 3>{255, 0, 255}));
  BOOST_TEST((pal[3] == std::array<std::uint8_t, 3>{0, 255, 0}));
  BOOST_TEST((pal[4] == std::array<std::uint8_t, 3>{0, 0, 255}));
  BOOST_TEST((pal[5] == std::array<std::uint8_t, 3>{255, 255, 255}));
  BOOST_TEST((pal[6] == std::array<std::uint8_t, 3>{0, 0, 0}));
  BOOST_TEST(std::string(hw1::seg_class_names()[1]) == "Agriculture");
  BOOST_TEST(std::string(hw1::seg_class_names()[6]) == "Unknown");
  Image cls(1, 7, 1);
  for (int i = 0; i < 7; ++i) cls.pixels[i] = std::uint8_t(i);
  const Image rgb = hw1::classes_to_mask(cls);
  for (int i = 0; i < 7; ++i)
    for (int c = 0; c < 3; ++c) BOOST_TEST(rgb.at(0, i, c) == pal[i][c]);
  BOOST_TEST(hw1::mask_to_classes(rgb).pixels == cls.pixels);

  cls.pixels[3] = 7;
  BOOST_TEST(contains(error_of([&] { hw1::classes_to_mask(cls); }), "holds class 7"));
  BOOST_TEST(contains(error_of([&] { hw1::mask_to_classes(cls); }), "expects an RGB mask"));
  BOOST_TEST(contains(error_of([&] { hw1::classes_to_mask(m); }), "1-channel"));
}
