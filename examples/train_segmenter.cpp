// hw1-train-segmenter: HW1 problem 2, VGG16-FCN32s or DeepLabv3 (ResNet101 / ResNet50) on xxxx_sat.jpg / xxxx_mask.png pairs
// (hw1/train/fit.hpp does the epoch loop, checkpoints and resume; train_segmenter.hpp the rest, for any backend).
// Validation mIoU is the course's: counts over the whole validation set at full resolution, classes 0..5.
#include "train_segmenter.hpp"

namespace {

int run(int argc, char** argv) {
  using namespace segmenter;
  const std::set<std::string> options{
      "--model",      "--train",      "--val",        "--out",           "--resume",          "--epochs",
      "--batch-size", "--lr",         "--optimizer",  "--input-size",    "--seed",            "--weight-decay",
      "--momentum",   "--schedule",   "--warmup-steps", "--step-epochs", "--gamma",           "--crop",
      "--class-weights", "--aux-loss", "--init-weights", "--workers",    "--snapshot-images", "--snapshot-epochs",
      "--device",     "--precision",   "--keep-epochs", "--pth-key"};
  const std::set<std::string> flags{"--hflip", "--vflip", "--rot90", "--nesterov", "--skip-bad", "--force", "--sync-bn"};
  const hw1::RunArgs ra = hw1::parse_run_args(kProgram, argc, argv, options, flags, kUsage,
                                              {"--epochs", "--workers", "--device", "--precision", "--keep-epochs"});
  const hw1::Cli& cli = ra.cli;
  const hw1::DeviceOption dev = hw1::parse_device_option(cli);
  const std::vector<std::string> segmenters = hw1::model_names_of(hw1::Task::segmentation);
  const std::string model = cli.choice("--model", "fcn32s", segmenters);
  const double aux = cli.real("--aux-loss", 0, 0);
  if (!hw1::find_model(model)->has_aux_head && aux > 0)
    throw hw1::UsageError("--aux-loss needs a DeepLabv3 model (" + model + " has no auxiliary head)");
  if (dev.cuda) {
#ifdef HW1_WITH_CUDA
    return model == "fcn32s" ? train_fcn32s_cuda(ra, dev) : train_deeplab_cuda(model, ra, dev);
#endif
  }
  return train_model<hw1::backend::cpu>(model, ra, dev);
}

}  // namespace

int main(int argc, char** argv) {
  auto& ranks = hw1::examples::Ranks::get();  // MPI_Init when mpirun started this process (a build with MPI)
  return ranks.finish(hw1::run_main(ranks.program(segmenter::kProgram), segmenter::kUsage, [&] { return run(argc, argv); }));
}
