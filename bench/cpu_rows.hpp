// What the CPU training benchmarks (hw1-bench, hw1-bench-ddp) share beyond bench_common.hpp: a row's default
// batch and class count, and the targets of its loss.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "bench_common.hpp"
#include "hw1/core/tensor.hpp"

namespace hw1::bench {

// The batches when the row's name gives none: classifiers 64 at 32x32, else 8; segmenters 2 in training
// up to 256x256, else 1.
inline std::size_t cpu_row_batch(const Row& r, bool classifier) {
  if (r.batch) return r.batch;
  if (classifier) return r.size == 32 ? 64 : 8;
  return r.train && r.size <= 256 ? 2 : 1;
}
inline int cpu_row_classes(bool classifier) { return classifier ? 50 : 7; }

// Cross-entropy targets for the network output y ([N, K] or [N, K, H, W]): classes 0, 1, ..., classes - 1 in turn
// from `offset`, one per image or pixel.
inline std::vector<std::int64_t> cyclic_targets(const Tensor& y, int classes, std::size_t offset = 0) {
  const std::size_t per = y.dimension() == 4 ? y.shape()[2] * y.shape()[3] : 1;
  std::vector<std::int64_t> t(y.shape()[0] * per);
  for (std::size_t i = 0; i < t.size(); ++i) t[i] = std::int64_t((i + offset) % std::size_t(classes));
  return t;
}

}  // namespace hw1::bench
