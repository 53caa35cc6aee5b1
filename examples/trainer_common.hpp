// What both trainers share beyond fit.hpp: their common --help lines, the run configuration every run starts
// from, and the last steps (fit, Ctrl-C, the best epoch's line).
#pragma once
#include <iostream>
#include <string>

#include "hw1/train/backend_ops.hpp"
#include "hw1/train/fit.hpp"

namespace hw1::examples {

// `what`: what an unreadable item is ("images", "pairs").
inline std::string common_trainer_options(const std::string& what) {
  return R"(  --seed N                 weights, data order, augmentation and dropout: 0..2^63-1 (default 0)
  --workers N              loading threads, 0..256 (default 2; results do not depend on it)
  --skip-bad               skip unreadable )" +
         what + R"( (and report how many) instead of stopping
  --keep-epochs N          0..100000: keep only the newest N epoch-NNN.safetensors (best.safetensors always stays);
                           default 0 = keep every epoch (the ensemble of hw1-predict picks among them)
  --force                  reuse a RUN_DIR that holds files (removes the previous run's files only)
  --device D               cpu (default) | cuda | cuda:N (a build with the CUDA backend); checkpoints are the
                           same files on either device, and --resume may change the device
  --precision P            cuda only: float32 (default; TF32 off) | tf32 (TF32 tensor cores) | fp16 | bf16
                           (mixed precision: convolutions in 16 bits with float32 accumulation, the rest float32,
                           float32 master weights; fp16 with dynamic loss scaling)
)";
}

// --lr, --weight-decay, --momentum (after --optimizer is in oc.name): finite, in their meaningful ranges.
inline void read_optimizer_numbers(const Cli& cli, OptimizerConfig& oc, double default_lr) {
  oc.lr = cli.real("--lr", default_lr, 0, kNoBound, true);
  oc.weight_decay = cli.real("--weight-decay", oc.name == "adamw" ? 0.01 : 0.0, 0);
  oc.momentum = cli.real("--momentum", 0.9, 0, 1, false, true);
  oc.nesterov = cli.flag("--nesterov");
}

// The options every run has; the caller adds the model's CheckpointInfo fields. Reads --keep-epochs, so it is
// called before start_run (nothing is written before every option passed).
inline FitConfig base_fit_config(const RunArgs& ra, int epochs, std::uint64_t seed, const OptimizerConfig& oc,
                                 const ScheduleConfig& sc, double chance, const DeviceOption& dev,
                                 const std::string& metric_name) {
  FitConfig fc;
  fc.run_dir = ra.run_dir;
  fc.epochs = epochs;
  fc.seed = seed;
  fc.resume = ra.resume;
  fc.optimizer = oc;
  fc.schedule = sc;
  fc.info.metric_name = metric_name;
  fc.chance = chance;
  fc.loss_scaling = dev.cuda && dev.precision == "fp16";
  fc.keep_epochs = int(ra.cli.integer("--keep-epochs", 0, 0, kMaxEpochs));
  return fc;
}

// "cpu" or "cuda:N (precision)", for the start-up line.
inline std::string device_label(const DeviceOption& dev) {
  return dev.cuda ? "cuda:" + std::to_string(dev.index) + " (" + dev.precision + ")" : std::string("cpu");
}

// Trains, then prints the resume hint (exit 130) after Ctrl-C or the best epoch's line (exit 0).
template <class Net, class Train, class Val, class Task>
int fit_and_report(Net& net, Train& train, Val& val, Task& task, const FitConfig& fc) {
  install_interrupt_handler();
  const FitResult r = fit(net, train, val, task, fc);
  if (r.interrupted) {
    std::cout << "interrupted: resume with --resume " << fc.run_dir << std::endl;
    return 130;
  }
  print_best(std::cout, fc.info.metric_name, r, fc.chance);
  return 0;
}

}  // namespace hw1::examples
