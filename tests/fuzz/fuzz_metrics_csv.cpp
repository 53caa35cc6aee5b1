// MetricsLog::parse (RUN_DIR/metrics.csv, read back by --resume), then what fit() does with the rows it keeps:
// index them by column.
#include <cmath>

#include "fuzz_common.hpp"
#include "hw1/train/checkpoint.hpp"

void hw1_fuzz_seeds(const std::filesystem::path& dir) {
  hw1::MetricsLog log{{"epoch", "train_loss", "val_loss", "val_miou", "lr", "seconds", "images_per_s"}, {}};
  log.write((dir / "empty.csv").string());
  log.rows.push_back({1, 0.693147, 0.7, 0.25, 0.01, 12.5, 300});
  log.rows.push_back({2, 0.5, 0.55, 0.5, 0.001, 12.25, 1e-9});
  log.write((dir / "two.csv").string());
  log.rows.push_back({3, std::nan(""), -1e300, 0, 0, 0, 0});
  log.write((dir / "three.csv").string());
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return hw1::fuzz::run([&] {
    const std::string text(reinterpret_cast<const char*>(data), size);
    const hw1::MetricsLog m = hw1::MetricsLog::parse(text, "metrics.csv", 2.0);
    for (const auto& r : m.rows)
      if (r.size() != m.columns.size()) __builtin_trap();
  });
}
