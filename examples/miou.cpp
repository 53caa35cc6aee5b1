// hw1-miou: the course's mean_iou_evaluate.py as a program. Ground-truth and predicted masks are paired by sorted
// file name, counts are accumulated over the whole folder, IoU is reported for classes 0..5 (Unknown excluded)
// in the course's print format. See hw1/data/metrics.hpp for the one difference (a class absent from both
// folders is skipped instead of turning the mean into nan).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "hw1/data/metrics.hpp"
#include "hw1/train/cli.hpp"

namespace {

const char* kUsage =
    "usage: hw1-miou --gt DIR --pred DIR [--chance]\n"
    "  DIR --gt holds xxxx_mask.png (xxxx_sat.jpg beside them are ignored), --pred holds xxxx.png or\n"
    "  xxxx_mask.png; both RGB in the course colours, paired by sorted name (ids must match).\n"
    "  Prints 'class #i : IoU' for i = 0..5 and 'mean_iou: m' as the course script does.\n"
    "  --chance  also prints the mIoU of the best constant prediction (every pixel one class) on --gt,\n"
    "            the level a model must beat to have learnt anything.\n";

struct Chance {
  double constant;  // best mIoU of predicting one class c in 0..5 everywhere (same evaluator)
  int constant_class;
  double uniform;   // mIoU of labels drawn uniformly from the 7 classes, counts at their expectations
};

// The levels a model must beat to have learnt anything, from the ground truth alone.
Chance chance_miou(const std::string& gt_dir) {
  namespace d = hw1::detail;
  const auto names = d::list_names(gt_dir, [](const std::string& n) { return d::ends_with(n, ".png"); });
  std::vector<hw1::Image> gt;
  std::array<double, hw1::kSegClasses> count{};
  double total = 0;
  for (const auto& n : names) {
    gt.push_back(hw1::mask_to_classes(hw1::read_png(d::join_path(gt_dir, n), 3)));
    for (auto v : gt.back().pixels) ++count[v];
    total += double(gt.back().pixels.size());
  }
  Chance c{-1, 0, 0};
  for (int k = 0; k < hw1::MeanIoU::kClasses; ++k) {
    hw1::MeanIoU m;
    for (const auto& g : gt) {
      const std::vector<std::uint8_t> pred(g.pixels.size(), std::uint8_t(k));
      m.update(pred.data(), g.pixels.data(), pred.size());
    }
    if (m.mean() > c.constant) c.constant = m.mean(), c.constant_class = k;
    // Uniform labels: E[tp] = n/7, E[tp_fp] = N/7, tp_fn = n, so IoU = n / (N + 6n).
    c.uniform += count[k] / (total + 6 * count[k]) / hw1::MeanIoU::kClasses;
  }
  return c;
}

int run(int argc, char** argv) {
  const hw1::Cli cli(argc, argv, {"--gt", "--pred"}, {"--chance"}, kUsage);
  const std::string gt = cli.required("--gt"), pred = cli.required("--pred");
  const hw1::MiouResult r = hw1::evaluate_mask_dirs(gt, pred);
  int absent = 0;
  for (int i = 0; i < 6; ++i) {
    std::printf("class #%d : %1.5f\n", i, r.iou[i]);
    absent += std::isnan(r.iou[i]);
  }
  std::printf("\nmean_iou: %f\n\n", r.miou);
  std::fflush(stdout);
  if (absent)
    std::fprintf(stderr, "hw1-miou: %d class(es) occur in neither folder (nan above); the mean is over the other %d\n",
                 absent, 6 - absent);
  if (cli.flag("--chance")) {
    const Chance c = chance_miou(gt);
    std::printf("chance_miou: %f (the better of: every pixel %s %f, uniformly random labels %f)\n",
                std::max(c.constant, c.uniform), hw1::seg_class_names()[c.constant_class], c.constant, c.uniform);
  }
  std::fflush(stdout);
  std::fprintf(stderr, "hw1-miou: %zu mask pairs\n", r.files);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return hw1::run_main("hw1-miou", kUsage, [&] { return run(argc, argv); });
}
