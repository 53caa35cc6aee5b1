// hw1-train-classifier: HW1 problem 1, ResNet101 (or ResNet50) on a folder of "{label}_{id}.png" images (hw1/train/fit.hpp
// does the epoch loop, checkpoints and resume; train_classifier.hpp the rest, for any backend).
#include "train_classifier.hpp"

namespace {

int run(int argc, char** argv) {
  using namespace classifier;
  const std::set<std::string> options{"--model", "--train",     "--val",          "--out",      "--resume",     "--epochs",
                                      "--batch-size", "--lr",          "--optimizer", "--input-size", "--seed",
                                      "--weight-decay", "--momentum",  "--schedule", "--warmup-steps", "--step-epochs",
                                      "--gamma",     "--rotate",       "--num-classes", "--init-weights", "--workers",
                                      "--device",    "--precision", "--keep-epochs", "--pth-key"};
  const std::set<std::string> flags{"--hflip", "--nesterov", "--skip-bad", "--force", "--sync-bn"};
  const hw1::RunArgs ra = hw1::parse_run_args(kProgram, argc, argv, options, flags, kUsage,
                                              {"--epochs", "--workers", "--device", "--precision", "--keep-epochs"});
  const hw1::Cli& cli = ra.cli;

  const hw1::DeviceOption dev = hw1::parse_device_option(cli);
  const std::vector<std::string> classifiers = hw1::model_names_of(hw1::Task::classification);
  const std::string model = cli.choice("--model", "resnet101", classifiers);
  if (dev.cuda) {
#ifdef HW1_WITH_CUDA
    return train_classifier_cuda(model, ra, dev);
#endif
  }
  return train_model<hw1::backend::cpu>(model, ra, dev);
}

}  // namespace

int main(int argc, char** argv) {
  auto& ranks = hw1::examples::Ranks::get();  // MPI_Init when mpirun started this process (a build with MPI)
  return ranks.finish(hw1::run_main(ranks.program(classifier::kProgram), classifier::kUsage, [&] { return run(argc, argv); }));
}
