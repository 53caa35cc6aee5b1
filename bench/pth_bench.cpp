// hw1-pth-bench FILE [REPEATS]: how long hw1::read_weights takes to read a .pth (or .safetensors) whole into
// memory, every tensor contiguous in its own dtype, as Model::load gets it. Prints each run and the median
// (bench/pth_load.sh runs it beside torch.load on the same file; docs/pth.md has the figures).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "hw1/core/pth.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: hw1-pth-bench FILE [REPEATS]\n");
    return 2;
  }
  const int reps = argc > 2 ? std::max(1, std::atoi(argv[2])) : 5;
  std::vector<double> t;
  std::size_t tensors = 0, bytes = 0;
  try {
    for (int r = 0; r < reps; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      const hw1::SafeTensors f = hw1::read_weights(argv[1]);
      t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      tensors = f.names().size();
      bytes = 0;
      for (const auto& n : f.names()) bytes += f.info(n).end - f.info(n).begin;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hw1-pth-bench: %s\n", e.what());
    return 1;
  }
  std::printf("hw1 read_weights %s: %zu tensors, %.1f MB; runs", argv[1], tensors, bytes / 1e6);
  for (double s : t) std::printf(" %.3f", s);
  std::sort(t.begin(), t.end());
  std::printf(" s; median %.3f s\n", t[t.size() / 2]);
  return 0;
}
