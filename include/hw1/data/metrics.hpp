// Mean IoU exactly as the course's mean_iou_evaluate.py computes it: counts accumulated over the WHOLE data set
// (not averaged per image), for classes 0..5 only; iou_i = tp / (tp_fp + tp_fn - tp). Unknown (6) is left out of
// the mean, but its pixels still count: a prediction of class i on an Unknown pixel is a false positive of i, an
// Unknown prediction on a class-i pixel a false negative of i. Any value >= 6 in pred or gt behaves like Unknown.
//
// A class absent from both pred and gt has IoU 0/0 (the course script would print nan and its mean would be
// nan). Here such a class is SKIPPED: per_class() reports it as NaN and mean() averages the classes that occur;
// with no pixels of classes 0..5 at all, mean() is NaN too.
#pragma once
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include "hw1/core/error.hpp"
#include "hw1/data/image.hpp"
#include "hw1/data/image_io.hpp"
#include "hw1/data/layout.hpp"

namespace hw1 {

class MeanIoU {
 public:
  static constexpr int kClasses = 6;

  // pred and gt: count class indices each.
  void update(const std::uint8_t* pred, const std::uint8_t* gt, std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) {
      const unsigned p = pred[i], g = gt[i];
      if (p < kClasses) ++tp_fp_[p];
      if (g < kClasses) ++tp_fn_[g];
      if (p == g && p < kClasses) ++tp_[p];
    }
  }

  // Both 1-channel class-index images (see mask_to_classes) of the same size.
  void update(const Image& pred_classes, const Image& gt_classes) {
    if (pred_classes.channels != 1 || gt_classes.channels != 1)
      throw Error("MeanIoU::update: expects 1-channel class-index images, got " +
                  std::to_string(pred_classes.channels) + " (pred) and " + std::to_string(gt_classes.channels) +
                  " (gt) channels; convert RGB masks with mask_to_classes");
    if (pred_classes.height != gt_classes.height || pred_classes.width != gt_classes.width)
      throw Error("MeanIoU::update: prediction is " + std::to_string(pred_classes.height) + "x" +
                  std::to_string(pred_classes.width) + " but ground truth is " + std::to_string(gt_classes.height) +
                  "x" + std::to_string(gt_classes.width));
    update(pred_classes.pixels.data(), gt_classes.pixels.data(), gt_classes.pixels.size());
  }

  std::array<double, kClasses> per_class() const {
    std::array<double, kClasses> iou{};
    for (int i = 0; i < kClasses; ++i) {
      const std::uint64_t uni = tp_fp_[i] + tp_fn_[i] - tp_[i];
      iou[i] = uni == 0 ? std::numeric_limits<double>::quiet_NaN() : double(tp_[i]) / double(uni);
    }
    return iou;
  }

  double mean() const {
    double sum = 0;
    int n = 0;
    for (double v : per_class())
      if (!std::isnan(v)) sum += v, ++n;
    return n == 0 ? std::numeric_limits<double>::quiet_NaN() : sum / n;
  }

  void reset() { tp_fp_ = tp_fn_ = tp_ = {}; }

  // Adds counts gathered elsewhere (e.g. on the GPU): #pred==c, #gt==c and #both, for c in 0..5.
  void add_counts(const std::array<std::uint64_t, kClasses>& predicted, const std::array<std::uint64_t, kClasses>& actual,
                  const std::array<std::uint64_t, kClasses>& true_positive) {
    for (int i = 0; i < kClasses; ++i) tp_fp_[i] += predicted[i], tp_fn_[i] += actual[i], tp_[i] += true_positive[i];
  }

  // Raw counts, for logging and for merging evaluators.
  const std::array<std::uint64_t, kClasses>& predicted() const { return tp_fp_; }
  const std::array<std::uint64_t, kClasses>& actual() const { return tp_fn_; }
  const std::array<std::uint64_t, kClasses>& true_positive() const { return tp_; }

 private:
  std::array<std::uint64_t, kClasses> tp_fp_{}, tp_fn_{}, tp_{};
};

struct MiouResult {
  std::array<double, 6> iou;  // NaN for a class absent from both folders
  double miou;
  std::size_t files;
};

// The course's evaluation of two folders: every *.png of each, sorted by file name and paired by position, read
// as RGB and mapped by mask_to_classes. gt_dir holds xxxx_mask.png (the xxxx_sat.jpg beside them are ignored);
// pred_dir holds xxxx.png or xxxx_mask.png. Unlike the course script, paired files must share the id xxxx, so a
// missing prediction cannot silently shift every pair.
inline MiouResult evaluate_mask_dirs(const std::string& gt_dir, const std::string& pred_dir) {
  auto pngs = [](const std::string& dir, const char* what) {
    detail::require_dir(dir, what);
    auto names = detail::list_names(dir, [](const std::string& n) { return detail::ends_with(n, ".png"); });
    if (names.empty()) throw Error(std::string(what) + " " + dir + ": holds no *.png masks");
    return names;
  };
  const auto gt = pngs(gt_dir, "ground-truth folder"), pred = pngs(pred_dir, "prediction folder");
  if (gt.size() != pred.size())
    throw Error("evaluate_mask_dirs: " + gt_dir + " holds " + std::to_string(gt.size()) + " masks but " + pred_dir +
                " holds " + std::to_string(pred.size()) + " predictions");
  auto id_of = [](std::string n) {
    n.resize(n.size() - 4);
    if (detail::ends_with(n, "_mask")) n.resize(n.size() - 5);
    return n;
  };
  MeanIoU m;
  for (std::size_t i = 0; i < gt.size(); ++i) {
    const std::string gp = detail::join_path(gt_dir, gt[i]), pp = detail::join_path(pred_dir, pred[i]);
    if (id_of(gt[i]) != id_of(pred[i]))
      throw Error("evaluate_mask_dirs: sorted file " + std::to_string(i) + " pairs " + gp + " with " + pp +
                  "; their ids differ (a prediction is missing or misnamed)");
    const Image g = mask_to_classes(read_png(gp, 3)), p = mask_to_classes(read_png(pp, 3));
    if (g.height != p.height || g.width != p.width)
      throw Error("evaluate_mask_dirs: " + pp + " is " + std::to_string(p.height) + "x" + std::to_string(p.width) +
                  " but " + gp + " is " + std::to_string(g.height) + "x" + std::to_string(g.width));
    m.update(p, g);
  }
  return {m.per_class(), m.mean(), gt.size()};
}

}  // namespace hw1
