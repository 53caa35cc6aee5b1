// The fixture of train.programs.segmenter_learns: segmentation tiles a segmenter trained from scratch for a
// minute on 2 cores can learn, so that "it learnt" and "it did not" are far apart. On hw1's synthetic tiles as
// they were when this fixture was written (synth_seg_tile then: 4-12 warped cells per tile, close class colours,
// textures; since issue 18 it draws 2-5 large regions with distinct colours and textures), DeepLabv3 runs of 8-10
// epochs on 8 or 32 such 64x64 tiles stayed near noise (measured best val mIoU 0.084 and 0.106 against 0.051 and
// 0.0445 for the constant prediction; uniformly random labels score 0.080 there). Here each 64x64 tile holds 2-4
// Voronoi cells (large regions, at DeepLabv3's 8x8 score map 2+ cells across), each class one well-separated colour
// with a per-tile tint and pixel noise, classes 0..5 (the scored ones) about equally often, so the constant prediction stays low.
//
// shuffle_train_masks: the train masks are permuted among the tiles (no tile keeps its own), so labels no longer
// follow the images while the class frequencies stay the same; the validation masks stay true. A segmenter test
// that passes on that data measures noise (HW1_TEST_SHUFFLE_LABELS=1 in test_fit.cpp).
#pragma once
#include <array>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "hw1/data/image_io.hpp"
#include "hw1/data/layout.hpp"
#include "hw1/data/synthetic.hpp"

namespace hw1::test {

inline SegTile learnable_seg_tile(int size, std::uint64_t seed, int first_class) {
  detail::Rng r{seed, 0, false};
  struct Cell { double x, y; int cls; };
  std::vector<Cell> cells(2 + r.below(3));
  for (std::size_t i = 0; i < cells.size(); ++i)
    cells[i] = {r.uniform(0, size), r.uniform(0, size), i == 0 ? first_class : r.below(6)};
  static constexpr std::array<std::array<double, 3>, 6> colour{{{130, 130, 135},   // urban: grey
                                                                {220, 200, 60},    // agriculture: yellow
                                                                {170, 105, 55},    // rangeland: brown
                                                                {30, 95, 30},      // forest: dark green
                                                                {40, 70, 175},     // water: blue
                                                                {240, 230, 210}}};  // barren: pale
  const std::array<double, 3> tint{r.uniform(-12, 12), r.uniform(-12, 12), r.uniform(-12, 12)};
  const double sigma = r.uniform(4, 10);
  SegTile t{Image(size, size, 3), Image(size, size, 1)};
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      double best = 1e300;
      int k = 0;
      for (const auto& c : cells) {
        const double d = (x - c.x) * (x - c.x) + (y - c.y) * (y - c.y);
        if (d < best) best = d, k = c.cls;
      }
      t.mask.at(y, x) = std::uint8_t(k);
      for (int c = 0; c < 3; ++c) t.image.at(y, x, c) = detail::to_u8(colour[k][c] + tint[c] + sigma * r.normal());
    }
  t.mask = classes_to_mask(t.mask);
  return t;
}

// root/train/xxxx_sat.jpg + xxxx_mask.png and root/validation/..., as make_segmentation_set writes them.
inline void make_learnable_segmentation_set(const std::filesystem::path& root, int train_count, int val_count,
                                            int size, std::uint64_t seed, bool shuffle_train_masks) {
  for (int split = 0; split < 2; ++split) {
    const auto dir = root / (split == 0 ? "train" : "validation");
    std::filesystem::create_directories(dir);
    const int n = split == 0 ? train_count : val_count;
    std::vector<SegTile> tiles;
    for (int i = 0; i < n; ++i)
      tiles.push_back(learnable_seg_tile(size, detail::mix_seed(detail::mix_seed(seed, 2000 + split), i), i % 6));
    // A random derangement (Sattolo's algorithm: one cycle through all tiles), not a shift by one: tile i's first
    // class is i % 6, so a shift would pair every colour with one other class, a mapping a network could learn.
    std::vector<int> perm(n);
    for (int i = 0; i < n; ++i) perm[i] = i;
    detail::Rng r{detail::mix_seed(seed, 77), 0, false};
    for (int i = n - 1; i > 0; --i) std::swap(perm[i], perm[r.below(i)]);
    for (int i = 0; i < n; ++i) {
      char id[16];
      std::snprintf(id, sizeof id, "%04d", i);
      const int m = split == 0 && shuffle_train_masks ? perm[i] : i;
      write_jpeg((dir / (std::string(id) + "_sat.jpg")).string(), tiles[i].image, 90);
      write_png((dir / (std::string(id) + "_mask.png")).string(), tiles[m].mask);
    }
  }
}

}  // namespace hw1::test
