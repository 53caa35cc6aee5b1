// hw1-miou: the course's mean_iou_evaluate.py as a program. Ground-truth and predicted masks are paired by sorted
// file name, counts are accumulated over the whole folder, IoU is reported for classes 0..5 (Unknown excluded)
// in the course's print format. See hw1/data/metrics.hpp for the one difference (a class absent from both
// folders is skipped instead of turning the mean into nan).
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

// mIoU of predicting class c everywhere, maximised over c in 0..5, computed by the same evaluator.
std::pair<double, int> chance_miou(const std::string& gt_dir) {
  namespace d = hw1::detail;
  const auto names = d::list_names(gt_dir, [](const std::string& n) { return d::ends_with(n, ".png"); });
  std::vector<hw1::Image> gt;
  for (const auto& n : names) gt.push_back(hw1::mask_to_classes(hw1::read_png(d::join_path(gt_dir, n), 3)));
  std::pair<double, int> best{-1, 0};
  for (int c = 0; c < hw1::MeanIoU::kClasses; ++c) {
    hw1::MeanIoU m;
    for (const auto& g : gt) {
      const std::vector<std::uint8_t> pred(g.pixels.size(), std::uint8_t(c));
      m.update(pred.data(), g.pixels.data(), pred.size());
    }
    if (m.mean() > best.first) best = {m.mean(), c};
  }
  return best;
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
  if (absent)
    std::fprintf(stderr, "hw1-miou: %d class(es) occur in neither folder (nan above); the mean is over the other %d\n",
                 absent, 6 - absent);
  if (cli.flag("--chance")) {
    const auto [m, c] = chance_miou(gt);
    std::printf("chance_miou: %f (every pixel %s)\n", m, hw1::seg_class_names()[c]);
  }
  std::fprintf(stderr, "hw1-miou: %zu mask pairs\n", r.files);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return hw1::run_main("hw1-miou", kUsage, [&] { return run(argc, argv); });
}
