// The --help lines both trainers share (seed, workers, unreadable files, run directory reuse, device, precision).
#pragma once
#include <string>

namespace hw1::examples {

// `what`: what an unreadable item is ("images", "pairs").
inline std::string common_trainer_options(const std::string& what) {
  return R"(  --seed N                 weights, data order, augmentation and dropout (default 0)
  --workers N              loading threads (default 2; results do not depend on it)
  --skip-bad               skip unreadable )" +
         what + R"( (and report how many) instead of stopping
  --force                  reuse a RUN_DIR that holds files (removes the previous run's files only)
  --device D               cpu (default) | cuda | cuda:N (a build with the CUDA backend); checkpoints are the
                           same files on either device, and --resume may change the device
  --precision P            cuda only: float32 (default; TF32 off) | tf32 (TF32 tensor cores) | fp16 | bf16
                           (mixed precision: convolutions in 16 bits with float32 accumulation, the rest float32,
                           float32 master weights; fp16 with dynamic loss scaling)
)";
}

}  // namespace hw1::examples
