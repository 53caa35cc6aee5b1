#define BOOST_TEST_MODULE metrics
#include <boost/test/unit_test.hpp>

#include "common/testing.hpp"

#include <cmath>
#include <filesystem>
#include <string>
#include <unistd.h>

#include "hw1/data/metrics.hpp"

namespace fs = std::filesystem;
using hw1::Image;

namespace {

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name)
      : path(fs::temp_directory_path() / ("hw1-test-metrics-" + name + "-" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string& n) const { return (path / n).string(); }
};

Image row(std::initializer_list<int> v) {
  Image img(1, int(v.size()), 1);
  std::size_t i = 0;
  for (int x : v) img.pixels[i++] = std::uint8_t(x);
  return img;
}

using hw1::test::error_of;
using hw1::test::contains;

}  // namespace

BOOST_AUTO_TEST_CASE(hand_computed_single_image_with_unknown_pixels) {
  hw1::MeanIoU m;
  //                 0  1  2  3  4  5  6  7  8
  const Image gt = row({0, 0, 1, 1, 6, 6, 2, 5, 5});
  const Image pr = row({0, 1, 1, 1, 0, 6, 3, 5, 6});
  m.update(pr, gt);
  const auto iou = m.per_class();
  BOOST_TEST(iou[0] == 1.0 / 3, boost::test_tools::tolerance(1e-12));  // pred 0 on an Unknown pixel is a FP
  BOOST_TEST(iou[1] == 2.0 / 3, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(iou[2] == 0.0);
  BOOST_TEST(iou[3] == 0.0);
  BOOST_TEST(std::isnan(iou[4]));                                      // absent from both: skipped
  BOOST_TEST(iou[5] == 0.5, boost::test_tools::tolerance(1e-12));      // pred Unknown on a Barren pixel is a FN
  BOOST_TEST(m.mean() == (1.0 / 3 + 2.0 / 3 + 0 + 0 + 0.5) / 5, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(m.predicted()[1] == 3u);
  BOOST_TEST(m.actual()[5] == 2u);
  BOOST_TEST(m.true_positive()[0] == 1u);
}

BOOST_AUTO_TEST_CASE(accumulates_over_the_data_set_not_per_image) {
  hw1::MeanIoU m;
  m.update(row({0, 0}), row({0, 0}));  // alone: IoU_0 = 1
  m.update(row({1, 1}), row({0, 1}));  // alone: IoU_0 = 0, IoU_1 = 1/2
  // totals: class 0 tp_fp 2, tp_fn 3, tp 2 -> 2/3; class 1 tp_fp 2, tp_fn 1, tp 1 -> 1/2
  BOOST_TEST(m.per_class()[0] == 2.0 / 3, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(m.per_class()[1] == 0.5, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(m.mean() == 7.0 / 12, boost::test_tools::tolerance(1e-12));
  const double per_image_mean = (1.0 + (0.0 + 0.5) / 2) / 2;  // 0.625
  BOOST_TEST(std::abs(m.mean() - per_image_mean) > 0.04);

  // raw pointer update == image update; reset empties
  hw1::MeanIoU p;
  const std::uint8_t pr[4] = {0, 0, 1, 1}, gt[4] = {0, 0, 0, 1};
  p.update(pr, gt, 4);
  BOOST_TEST(p.mean() == m.mean(), boost::test_tools::tolerance(1e-15));
  p.reset();
  BOOST_TEST(std::isnan(p.mean()));
  p.update(row({6, 6}), row({6, 6}));  // Unknown only: still nothing to average
  BOOST_TEST(std::isnan(p.mean()));
  p.update(row({3}), row({3}));
  BOOST_TEST(p.mean() == 1.0);
}

BOOST_AUTO_TEST_CASE(update_rejects_mismatched_inputs) {
  hw1::MeanIoU m;
  BOOST_TEST(contains(error_of([&] { m.update(row({0, 1}), row({0, 1, 2})); }), "prediction is 1x2 but ground truth is 1x3"));
  BOOST_TEST(contains(error_of([&] { m.update(Image(1, 2, 3), row({0, 1})); }), "1-channel"));
}

BOOST_AUTO_TEST_CASE(evaluate_mask_dirs_like_the_course_script) {
  TempDir gt("gt"), pred("pred");
  // Same two images as above, as RGB mask files; the gt folder also holds the satellite JPEGs.
  hw1::write_png(gt / "0000_mask.png", hw1::classes_to_mask(row({0, 0})));
  hw1::write_png(gt / "0001_mask.png", hw1::classes_to_mask(row({0, 1})));
  hw1::write_jpeg(gt / "0000_sat.jpg", Image(1, 2, 3));
  hw1::write_png(pred / "0000.png", hw1::classes_to_mask(row({0, 0})));
  hw1::write_png(pred / "0001.png", hw1::classes_to_mask(row({1, 1})));
  auto r = hw1::evaluate_mask_dirs(gt.path.string(), pred.path.string());
  BOOST_TEST(r.files == 2u);
  BOOST_TEST(r.miou == 7.0 / 12, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(r.iou[0] == 2.0 / 3, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(std::isnan(r.iou[2]));

  // Predictions may also be named xxxx_mask.png (e.g. the ground truth scored against itself).
  TempDir same("same");
  hw1::write_png(same / "0000_mask.png", hw1::classes_to_mask(row({0, 0})));
  hw1::write_png(same / "0001_mask.png", hw1::classes_to_mask(row({0, 1})));
  BOOST_TEST(hw1::evaluate_mask_dirs(gt.path.string(), same.path.string()).miou == 1.0);

  hw1::write_png(pred / "0002.png", hw1::classes_to_mask(row({1, 1})));
  BOOST_TEST(contains(error_of([&] { hw1::evaluate_mask_dirs(gt.path.string(), pred.path.string()); }),
                      "holds 2 masks but"));
  fs::remove(pred / "0001.png");
  const auto msg = error_of([&] { hw1::evaluate_mask_dirs(gt.path.string(), pred.path.string()); });
  BOOST_TEST(contains(msg, "0001_mask.png with " + pred / "0002.png"), msg);
  fs::rename(pred / "0002.png", pred / "0001.png");
  hw1::write_png(pred / "0001.png", hw1::classes_to_mask(row({1, 1, 1})));
  BOOST_TEST(contains(error_of([&] { hw1::evaluate_mask_dirs(gt.path.string(), pred.path.string()); }),
                      "0001.png is 1x3 but"));
  TempDir empty("empty");
  BOOST_TEST(contains(error_of([&] { hw1::evaluate_mask_dirs(gt.path.string(), empty.path.string()); }),
                      "holds no *.png masks"));
}
