// Loader throughput on HW1-sized segmentation pairs: 512x512 JPEG images + RGB PNG masks, written to a temporary
// folder, read back through SegmentationDataset with the "random 448 crop, flips, quarter turns" augmentation.
// Prints images/s (wall clock) and images per CPU-second (the process's CPU time, which stays meaningful on a
// shared machine) for each worker count, and checks that every worker count yields the same batches.
//
//   g++ -std=c++20 -O2 -march=native -Iinclude -I/usr/include/eigen3 bench/loader_bench.cpp -o loader_bench -lpng -ljpeg -pthread
//   ./loader_bench [pairs=48] [epochs=3] [batch=8] [workers=1,2]
#include <chrono>
#include <cstdio>
#include <ctime>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "hw1/data/image_io.hpp"
#include "hw1/data/layout.hpp"
#include "hw1/data/loader.hpp"

namespace fs = std::filesystem;

// A satellite-like pair: blocky class regions (mask in the course colours) and a noisy texture per class, so the
// JPEG has realistic entropy (a flat image would decode unrealistically fast).
static void write_pair(const fs::path& dir, int k, int size) {
  const auto pal = hw1::seg_palette();
  std::mt19937_64 rng(1000 + k);
  hw1::Image img(size, size, 3), mask(size, size, 3);
  const int cell = 32;
  std::vector<int> cls((size / cell + 1) * (size / cell + 1));
  for (auto& c : cls) c = int(hw1::rand_below(rng, 7));
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      const int c = cls[(y / cell) * (size / cell + 1) + x / cell];
      const int noise = int(rng() % 61) - 30;
      for (int ch = 0; ch < 3; ++ch) {
        mask.at(y, x, ch) = pal[c][ch];
        img.at(y, x, ch) = std::uint8_t(std::clamp(40 + 25 * c + 20 * ch + noise, 0, 255));
      }
    }
  char id[16];
  std::snprintf(id, sizeof id, "%04d", k);
  hw1::write_jpeg((dir / (std::string(id) + "_sat.jpg")).string(), img, 90);
  hw1::write_png((dir / (std::string(id) + "_mask.png")).string(), mask);
}

int main(int argc, char** argv) {
  const int pairs = argc > 1 ? std::atoi(argv[1]) : 48;
  const int epochs = argc > 2 ? std::atoi(argv[2]) : 3;
  const std::size_t batch = argc > 3 ? std::size_t(std::atoi(argv[3])) : 8;
  std::vector<int> worker_counts;
  {
    std::stringstream ss(argc > 4 ? argv[4] : "1,2");
    for (std::string w; std::getline(ss, w, ',');) worker_counts.push_back(std::atoi(w.c_str()));
  }

  const fs::path dir = fs::temp_directory_path() / ("hw1_loader_bench_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (int k = 0; k < pairs; ++k) write_pair(dir, k, 512);

  hw1::AugmentConfig aug;
  aug.crop_h = aug.crop_w = 448;
  aug.hflip = aug.vflip = aug.rot90 = true;
  const auto list = hw1::list_segmentation_dir(dir.string());
  std::printf("%d pairs of 512x512 JPEG + PNG, crop 448 + flips + rot90, batch %zu, %d epochs, %u hardware threads\n",
              pairs, batch, epochs, std::thread::hardware_concurrency());

  double reference = 0;  // checksum of all batches: must not depend on the worker count
  for (const int workers : worker_counts) {
    hw1::LoaderOptions opt;
    opt.batch_size = batch, opt.shuffle = true, opt.num_workers = workers, opt.prefetch = std::size_t(2 * workers + 2);
    opt.seed = 1;
    hw1::Loader loader(hw1::SegmentationDataset(list, aug), opt);
    double best = 0, checksum = 0;
    for (int e = 0; e < epochs; ++e) {
      const auto t0 = std::chrono::steady_clock::now();
      const std::clock_t c0 = std::clock();
      std::size_t images = 0;
      loader.start_epoch(std::uint64_t(e));
      while (auto b = loader.next()) {
        images += b->names.size();
        checksum += double(b->images(0, 0, 7, 9)) + double(b->targets[b->targets.size() / 3]);
      }
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double cpu = double(std::clock() - c0) / CLOCKS_PER_SEC;
      best = std::max(best, images / s);
      std::printf("  workers %d  epoch %d  %6.1f images/s  %6.1f images/CPU-s\n", workers, e, images / s, images / cpu);
    }
    std::printf("workers %d: best %.1f images/s\n", workers, best);
    if (reference == 0) reference = checksum;
    if (checksum != reference) {
      std::printf("ERROR: batches differ between worker counts\n");
      fs::remove_all(dir);
      return 1;
    }
  }
  fs::remove_all(dir);
  return 0;
}
