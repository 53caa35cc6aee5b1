// Learning-rate schedules as a pure function of the step (so a resumed run needs no scheduler state), and the
// inverse-frequency class weights for the weighted cross-entropy.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <vector>

#include "hw1/core/error.hpp"

namespace hw1 {

struct ScheduleConfig {
  std::string name = "constant";  // "constant" | "step" | "cosine" | "poly"
  double step_size = 10, gamma = 0.1, power = 0.9, min_lr = 0;  // step_size in optimizer steps (callers convert)
  std::int64_t warmup_steps = 0;
  double warmup_start_factor = 0.1;  // linear warm-up from base * factor to base
};

// lr at optimizer step `step` (0-based) of `total_steps`. During warm-up, lr = base * (f + (1 - f) * step / W);
// afterwards the decay runs on t = step - W over T = total_steps - W steps, as torch's SequentialLR restarts the
// second scheduler at the milestone. Steps past the end keep the final value.
inline double learning_rate(const ScheduleConfig& c, double base, std::int64_t step, std::int64_t total_steps) {
  const bool known = c.name == "constant" || c.name == "step" || c.name == "cosine" || c.name == "poly";
  if (!known)
    throw Error("unknown learning-rate schedule '" + c.name + "'; valid names are: constant, step, cosine, poly");
  if (step < 0) throw Error("learning_rate: step must be >= 0, got " + std::to_string(step));
  if (c.warmup_steps < 0) throw Error("schedule: warmup_steps must be >= 0, got " + std::to_string(c.warmup_steps));
  if (!(c.warmup_start_factor >= 0 && c.warmup_start_factor <= 1))
    throw Error("schedule: warmup_start_factor must lie in [0, 1], got " + std::to_string(c.warmup_start_factor));
  if (step < c.warmup_steps) {
    const double f = c.warmup_start_factor;
    return base * (f + (1 - f) * double(step) / double(c.warmup_steps));
  }
  const std::int64_t t = step - c.warmup_steps;
  if (c.name == "constant") return base;
  if (c.name == "step") {
    if (!(c.step_size > 0)) throw Error("step schedule: step_size must be > 0, got " + std::to_string(c.step_size));
    return base * std::pow(c.gamma, std::floor(double(t) / c.step_size));
  }
  const std::int64_t T = total_steps - c.warmup_steps;
  if (T <= 0)
    throw Error(c.name + " schedule: total_steps (" + std::to_string(total_steps) + ") must exceed warmup_steps (" +
                std::to_string(c.warmup_steps) + ")");
  const double x = double(std::min(t, T)) / double(T);
  if (c.name == "cosine") return c.min_lr + (base - c.min_lr) * (1 + std::cos(std::numbers::pi * x)) / 2;
  return base * std::pow(1 - x, c.power);  // poly, DeepLab's
}

// Cross-entropy class weights: 1 / count, normalised to mean 1 over the classes that occur (count > 0) and are
// not `ignore_class`; the others get weight 0 (an absent class cannot be weighted by its frequency).
inline std::vector<float> inverse_frequency_weights(const std::vector<std::int64_t>& counts, int ignore_class = -1) {
  double sum_inv = 0;
  int present = 0;
  for (std::size_t c = 0; c < counts.size(); ++c) {
    if (counts[c] < 0)
      throw Error("inverse_frequency_weights: class " + std::to_string(c) + " has a negative count (" +
                  std::to_string(counts[c]) + ")");
    if (counts[c] > 0 && int(c) != ignore_class) sum_inv += 1.0 / double(counts[c]), ++present;
  }
  if (present == 0)
    throw Error("inverse_frequency_weights: no class (other than the ignored one) has a pixel count > 0; "
                "check that the label maps hold the expected class ids");
  std::vector<float> w(counts.size(), 0.0f);
  for (std::size_t c = 0; c < counts.size(); ++c)
    if (counts[c] > 0 && int(c) != ignore_class) w[c] = float(present / (sum_inv * double(counts[c])));
  return w;
}

}  // namespace hw1
