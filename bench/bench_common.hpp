// What hw1-bench (CPU) and hw1-bench-gpu share: the timing loop and the row names
// <net>-<infer|train>-<size>[-b<batch>].
#pragma once
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "hw1/core/error.hpp"
#include "hw1/train/cli.hpp"

namespace hw1::bench {

// Runs f warmup times, then iters timed times; the times in seconds, sorted (median at size() / 2).
template <class F>
std::vector<double> time_it(F&& f, int warmup, int iters) {
  using clock_type = std::chrono::steady_clock;
  for (int i = 0; i < warmup; ++i) f();
  std::vector<double> t;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = clock_type::now();
    f();
    t.push_back(std::chrono::duration<double>(clock_type::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t;
}

struct Row {
  std::string net;
  bool train = false;
  std::size_t size = 0, batch = 0;  // batch 0: not given in the name
};

inline Row parse_row(const std::string& row) {
  const auto parts = hw1::Cli::split(row, '-');
  if (parts.size() < 3 || parts.size() > 4 || (parts[1] != "infer" && parts[1] != "train"))
    throw hw1::UsageError("unknown row '" + row + "' (expected <net>-<infer|train>-<size>[-b<batch>])");
  Row r;
  r.net = parts[0];
  r.train = parts[1] == "train";
  try {
    r.size = std::stoul(parts[2]);
    if (parts.size() == 4) {
      if (!parts[3].starts_with("b")) throw hw1::UsageError("");
      r.batch = std::stoul(parts[3].substr(1));
    }
  } catch (const std::exception&) {
    throw hw1::UsageError("unknown row '" + row + "' (expected <net>-<infer|train>-<size>[-b<batch>])");
  }
  return r;
}

}  // namespace hw1::bench
