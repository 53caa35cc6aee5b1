// Deterministic built-in data in the two HW1 layouts, so examples and tests exercise the real readers without the
// course data. Randomness comes from splitmix64 and hashed value noise (not <random>, whose distributions differ
// between standard libraries): the same seed gives the same bytes.
//
// Classification: class k draws shape family k % 10 (horizontal / vertical / diagonal stripes, concentric rings,
// checkerboard, wobbly disc, annulus, triangle, cross, dot grid) at scale bin k / 10, in random foreground and
// background colours, with random position, scale, tilt, background gradient and texture, and noise. Colours carry
// no class information, so a model has to learn shapes.
// (This generator uses double-precision libm calls, so its bytes may differ between machines by a rounding.)
// Segmentation, in integer arithmetic only (the masks and the pixels before JPEG encoding are the same on every
// machine, compiler and standard library): 2-5 large regions per tile (a Voronoi map with noise-warped borders),
// classes 0..5 equally likely and Unknown only where asked for; each class has its own colour and texture (urban
// grey blocks and streets, agriculture fields with furrows, blotchy brown rangeland, grainy dark forest, smooth
// blue water, pale rippled barren land, near-black unknown), with per-tile colour jitter, noise and a slight blur,
// saved as JPEG quality 90 like the course's tiles. Regions are larger and classes easier to tell apart than in
// the course data, so that a segmenter trained from scratch for minutes on 2 cores visibly learns (scripts/demo.sh).
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <string>
#include <vector>

#include "hw1/core/error.hpp"
#include "hw1/data/image.hpp"
#include "hw1/data/image_io.hpp"
#include "hw1/data/layout.hpp"

namespace hw1 {

namespace detail {

inline std::uint64_t splitmix64(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

inline std::uint64_t mix_seed(std::uint64_t a, std::uint64_t b) {
  std::uint64_t s = a ^ (b * 0xD1B54A32D192ED03ull + 0x632BE59BD9B4E019ull);
  return splitmix64(s);
}

struct Rng {
  std::uint64_t state;
  double uniform() { return double(splitmix64(state) >> 11) * 0x1.0p-53; }
  double uniform(double a, double b) { return a + (b - a) * uniform(); }
  int below(int n) { return int(uniform() * n); }
  double spare = 0;
  bool has_spare = false;
  double normal() {  // Box-Muller, both values used
    if (has_spare) return has_spare = false, spare;
    const double rad = std::sqrt(-2.0 * std::log(1.0 - uniform())), ang = 2.0 * std::numbers::pi * uniform();
    spare = rad * std::sin(ang);
    has_spare = true;
    return rad * std::cos(ang);
  }
};

inline double lattice(std::int64_t ix, std::int64_t iy, std::uint64_t seed) {
  std::uint64_t s = seed ^ (std::uint64_t(ix) * 0x9E3779B97F4A7C15ull) ^ (std::uint64_t(iy) * 0xC2B2AE3D27D4EB4Full);
  return double(splitmix64(s) >> 11) * 0x1.0p-53;
}

// Smooth value noise in [0,1) with unit lattice spacing.
inline double value_noise(double x, double y, std::uint64_t seed) {
  const double fx = std::floor(x), fy = std::floor(y);
  const auto ix = std::int64_t(fx), iy = std::int64_t(fy);
  double tx = x - fx, ty = y - fy;
  tx = tx * tx * (3 - 2 * tx);
  ty = ty * ty * (3 - 2 * ty);
  const double a = lattice(ix, iy, seed), b = lattice(ix + 1, iy, seed);
  const double c = lattice(ix, iy + 1, seed), d = lattice(ix + 1, iy + 1, seed);
  return (a + (b - a) * tx) * (1 - ty) + (c + (d - c) * tx) * ty;
}

// Fractal sum of octaves, normalised to [0,1).
inline double fbm(double x, double y, std::uint64_t seed, int octaves) {
  double sum = 0, amp = 1, norm = 0;
  for (int o = 0; o < octaves; ++o, x *= 2, y *= 2, amp *= 0.5) {
    sum += amp * value_noise(x, y, seed + std::uint64_t(o) * 0x9E37ull);
    norm += amp;
  }
  return sum / norm;
}

inline std::uint8_t to_u8(double v) { return std::uint8_t(std::clamp(v, 0.0, 255.0) + 0.5); }

// Signed distance (pixels, < 0 inside) to bands of width duty*period repeating along u.
inline double band_sd(double u, double period, double duty) {
  const double t = (u / period - std::floor(u / period)) * period, w = duty * period;
  return t < w ? -std::min(t, w - t) : std::min(t - w, period - t);
}

inline double class_shape_sd(int family, double a, double b, double scale, const std::array<double, 4>& wob) {
  const double rho = std::hypot(a, b);
  switch (family) {
    case 0: return band_sd(b, 6 * scale, 0.5);                  // horizontal stripes
    case 1: return band_sd(a, 6 * scale, 0.5);                  // vertical stripes
    case 2: return band_sd((a + b) * std::numbers::sqrt2 / 2, 6 * scale, 0.5);  // diagonal stripes
    case 3: return band_sd(rho, 5.5 * scale, 0.5);              // concentric rings
    case 4: {                                                   // checkerboard
      const double c = 5 * scale;
      const bool in = (int(std::floor(a / c)) + int(std::floor(b / c))) % 2 == 0;
      const double da = std::abs(a / c - std::round(a / c)) * c, db = std::abs(b / c - std::round(b / c)) * c;
      return in ? -std::min(da, db) : std::min(da, db);
    }
    case 5: {                                                   // wobbly disc
      const double phi = std::atan2(b, a);
      return rho - 6 * scale * (1 + 0.15 * std::sin(3 * phi + wob[0]) + 0.1 * std::sin(5 * phi + wob[1]));
    }
    case 6: return std::abs(rho - 6.5 * scale) - 1.5 * scale;   // annulus
    case 7: {                                                   // triangle, inradius 4*scale, any orientation
      double d = -1e9;
      for (int i = 0; i < 3; ++i) {
        const double t = wob[2] + i * 2 * std::numbers::pi / 3;
        d = std::max(d, a * std::cos(t) + b * std::sin(t) - 4 * scale);
      }
      return d;
    }
    case 8: {                                                   // cross
      const double l = 8 * scale, w = 1.4 * scale;
      return std::min(std::max(std::abs(a) - l, std::abs(b) - w), std::max(std::abs(b) - l, std::abs(a) - w));
    }
    default: {                                                  // dot grid
      const double p = 7 * scale;
      const double da = a - p * std::round(a / p), db = b - p * std::round(b / p);
      return std::hypot(da, db) - 1.8 * scale;
    }
  }
}

}  // namespace detail

inline constexpr int kSyntheticMaxClasses = 50;

// One classification image of class `label` (size x size RGB, 32 like the course's).
inline Image synth_class_image(int label, int num_classes, std::uint64_t seed, int size = 32) {
  if (num_classes < 2 || num_classes > kSyntheticMaxClasses)
    throw Error("synthetic classification: num_classes must be in 2.." + std::to_string(kSyntheticMaxClasses) +
                ", got " + std::to_string(num_classes));
  if (label < 0 || label >= num_classes)
    throw Error("synthetic classification: label " + std::to_string(label) + " is outside 0.." +
                std::to_string(num_classes - 1));
  if (size < 8) throw Error("synthetic classification: image size must be at least 8, got " + std::to_string(size));
  detail::Rng r{seed, 0, false};
  const int family = label % 10, variant = label / 10;
  // Up to 10 classes the scale is free; beyond, disjoint scale bins tell classes of one family apart.
  double scale = num_classes > 10 ? (0.7 + 0.3 * variant) * r.uniform(0.92, 1.08) : r.uniform(1.0, 1.5);
  scale *= size / 32.0;
  std::array<double, 3> bg, bg2, fg;
  for (auto& c : bg) c = r.uniform(0, 255);
  double dist = 0;
  do {  // enough contrast for the shape to be visible
    for (auto& c : fg) c = r.uniform(0, 255);
    dist = std::hypot(fg[0] - bg[0], fg[1] - bg[1], fg[2] - bg[2]);
  } while (dist < 90);
  for (int c = 0; c < 3; ++c) bg2[c] = bg[c] + r.uniform(-40, 40);
  const double cx = size * (0.5 + r.uniform(-0.15, 0.15)), cy = size * (0.5 + r.uniform(-0.15, 0.15));
  const double tilt = r.uniform(-10, 10) * std::numbers::pi / 180, ct = std::cos(tilt), st = std::sin(tilt);
  const double grad = r.uniform(0, 2 * std::numbers::pi), gx = std::cos(grad), gy = std::sin(grad);
  const std::array<double, 4> wob{r.uniform(0, 6.3), r.uniform(0, 6.3), r.uniform(0, 6.3), 0};
  const double sigma = r.uniform(2, 9), fg_var = r.uniform(0, 30), bg_var = r.uniform(0, 35);
  const std::uint64_t tex_seed = r.state;
  Image img(size, size, 3);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      const double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
      const double a = ct * dx + st * dy, b = -st * dx + ct * dy;
      const double cover = std::clamp(0.5 - detail::class_shape_sd(family, a, b, scale, wob), 0.0, 1.0);
      const double t = std::clamp(0.5 + (gx * (x - size / 2.0) + gy * (y - size / 2.0)) / size, 0.0, 1.0);
      const double shade = fg_var * (detail::value_noise(x / 6.0, y / 6.0, tex_seed) - 0.5);
      const double clutter = bg_var * (detail::fbm(x / 4.0, y / 4.0, tex_seed + 1, 2) - 0.5);  // textured background
      for (int c = 0; c < 3; ++c) {
        const double back = bg[c] + (bg2[c] - bg[c]) * t + clutter;
        img.at(y, x, c) = detail::to_u8(back + (fg[c] + shade - back) * cover + sigma * r.normal());
      }
    }
  return img;
}

struct SegTile {
  Image image;  // RGB satellite-like tile
  Image mask;   // RGB mask in the course colours
};

namespace detail {

// Integer-only helpers of the segmentation tiles: every pixel's class and every image byte is a function of the
// seed through integer arithmetic alone, so no libm or floating-point contraction can change a byte between
// machines or standard libraries.
struct IRng {
  std::uint64_t state;
  std::uint64_t next() { return splitmix64(state); }
  int below(int n) { return int(((next() >> 32) * std::uint64_t(n)) >> 32); }  // 0..n-1
  int range(int lo, int hi) { return lo + below(hi - lo + 1); }                 // lo..hi
};

inline std::uint64_t ihash(std::int64_t ix, std::int64_t iy, std::uint64_t seed) {
  std::uint64_t s = seed ^ (std::uint64_t(ix) * 0x9E3779B97F4A7C15ull) ^ (std::uint64_t(iy) * 0xC2B2AE3D27D4EB4Full);
  return splitmix64(s);
}

inline std::int64_t floor_div(std::int64_t a, std::int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// Smooth value noise in 0..1023 on a lattice of spacing g pixels (bilinear with an integer smoothstep).
inline std::int64_t inoise(std::int64_t x, std::int64_t y, std::int64_t g, std::uint64_t seed) {
  const std::int64_t ix = floor_div(x, g), iy = floor_div(y, g), tx = x - ix * g, ty = y - iy * g;
  const std::int64_t sx = tx * tx * (3 * g - 2 * tx) / (g * g), sy = ty * ty * (3 * g - 2 * ty) / (g * g);  // 0..g-1
  auto v = [&](std::int64_t a, std::int64_t b) { return std::int64_t(ihash(a, b, seed) >> 54); };
  const std::int64_t top = v(ix, iy) * (g - sx) + v(ix + 1, iy) * sx;
  const std::int64_t bot = v(ix, iy + 1) * (g - sx) + v(ix + 1, iy + 1) * sx;
  return (top * (g - sy) + bot * sy) / (g * g);
}

// -a..a, triangular (the sum of two uniforms), from the pixel's own hash.
inline int inoise_px(std::int64_t x, std::int64_t y, std::uint64_t seed, int a) {
  if (a <= 0) return 0;
  const std::uint64_t h = ihash(x, y, seed);
  const int m = 2 * a + 1;
  return (int((h & 0xFFFFFFFFu) % unsigned(m)) + int((h >> 32) % unsigned(m))) / 2 - a;
}

}  // namespace detail

// One segmentation tile. must_have_class (0..6, or -1) is guaranteed to cover part of the tile.
// Regions: 2-5 large cells (a Voronoi map whose borders a two-octave noise warps), classes 0..5 equally likely,
// Unknown (6) only where must_have_class asks for it. Each class has its own colour *and* texture: urban grey
// building blocks cut by streets, agriculture fields with furrows, blotchy rangeland, grainy dark forest, smooth
// water, pale rippled barren land, flat near-black unknown; per tile the colours, gain, tint and noise vary, and a
// [1 2 1] blur softens the borders.
inline SegTile synth_seg_tile(int size, std::uint64_t seed, int must_have_class = -1) {
  if (size < 16) throw Error("synthetic segmentation: tile size must be at least 16, got " + std::to_string(size));
  if (must_have_class < -1 || must_have_class >= kSegClasses)
    throw Error("synthetic segmentation: must_have_class must be -1 or 0..6, got " + std::to_string(must_have_class));
  using detail::inoise;
  using detail::inoise_px;
  detail::IRng r{seed};
  struct Cell { std::int64_t x, y; int cls; };
  std::vector<Cell> cells(std::size_t(r.range(2, 5)));
  for (std::size_t i = 0; i < cells.size(); ++i)
    cells[i] = {r.below(size), r.below(size), i == 0 && must_have_class >= 0 ? must_have_class : r.below(6)};
  const std::int64_t n = size, g1 = std::max<std::int64_t>(4, n / 3), g2 = std::max<std::int64_t>(2, n / 7);
  const std::int64_t a1 = n / 6, a2 = n / 14;  // warp amplitudes (pixels)
  std::array<std::uint64_t, 8> sd{};
  for (auto& v : sd) v = r.next();

  Image cls(size, size, 1);
  bool seen = false;
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      const std::int64_t wx = x + ((inoise(x, y, g1, sd[0]) - 512) * a1 + (inoise(x, y, g2, sd[1]) - 512) * a2) / 512;
      const std::int64_t wy = y + ((inoise(x, y, g1, sd[2]) - 512) * a1 + (inoise(x, y, g2, sd[3]) - 512) * a2) / 512;
      std::int64_t best = INT64_MAX;
      int k = 0;
      for (const auto& c : cells) {
        const std::int64_t d = (wx - c.x) * (wx - c.x) + (wy - c.y) * (wy - c.y);
        if (d < best) best = d, k = c.cls;
      }
      cls.at(y, x) = std::uint8_t(k);
      seen |= k == must_have_class;
    }
  if (must_have_class >= 0 && !seen) {  // cell 0 was swallowed by the warp: give it a patch round its seed
    const std::int64_t rad = std::max<std::int64_t>(2, n / 8);
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x)
        if ((x - cells[0].x) * (x - cells[0].x) + (y - cells[0].y) * (y - cells[0].y) < rad * rad)
          cls.at(y, x) = std::uint8_t(must_have_class);
  }

  // Per-tile look: base colours jittered, gain (in 1/256), tint, pixel-noise amplitude.
  std::array<std::array<int, 3>, 7> base{{{128, 128, 134},   // urban: grey
                                          {184, 176, 72},    // agriculture: yellow-green
                                          {158, 118, 74},    // rangeland: brown
                                          {40, 92, 42},      // forest: dark green
                                          {44, 74, 166},     // water: blue
                                          {216, 202, 172},   // barren: pale sand
                                          {10, 10, 10}}};    // unknown: near black
  for (auto& b : base)
    for (auto& c : b) c += r.range(-10, 10);
  const int gain = r.range(232, 280), sigma = r.range(3, 7);
  const std::array<int, 3> tint{r.range(-12, 12), r.range(-12, 12), r.range(-12, 12)};
  const std::int64_t u = std::max<std::int64_t>(1, n / 128);  // texture unit: 1 px up to 255, 4 px at 512
  const std::int64_t blk = 4 * u, field = std::max<std::int64_t>(8, n / 4);

  std::vector<int> rgb(std::size_t(size) * size * 3);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      const int k = cls.at(y, x);
      std::array<int, 3> v = base[k];
      int lum = 0;  // added to every channel
      switch (k) {
        case 0: {  // urban: buildings on a block grid, a street every 3 blocks, some red roofs
          if ((x % (3 * blk)) < u || (y % (3 * blk)) < u) {
            v = {78, 78, 84};
          } else {
            const std::uint64_t h = detail::ihash(x / blk, y / blk, sd[4]);
            lum = int(h & 63) - 32;
            if (((h >> 8) & 7) < 2) v = {150, 88, 74};
          }
          break;
        }
        case 1: {  // agriculture: fields of three crops, furrows along x or y
          const std::uint64_t h = detail::ihash(x / field, y / field, sd[5]);
          if (h % 3 == 0) v = {v[0] - 50, v[1] - 5, v[2] - 25};
          else if (h % 3 == 1) v = {v[0] + 15, v[1] + 5, v[2] + 25};
          const std::int64_t along = (h >> 8) & 1 ? x : y;
          lum = (along / u) % 3 == 0 ? -28 : 10;
          break;
        }
        case 2:  // rangeland: blotches at a few pixels' scale
          lum = int((inoise(x, y, 4 * u, sd[6]) - 512) * 44 / 512) + inoise_px(x, y, sd[7], 6);
          break;
        case 3:  // forest: grainy crowns
          lum = inoise_px(x, y, sd[6] + 1, 34) + int((inoise(x, y, 2 * u, sd[7] + 1) - 512) * 24 / 512);
          break;
        case 4:  // water: smooth, a faint large-scale swell
          lum = int((inoise(x, y, std::max<std::int64_t>(4, n / 2), sd[6] + 2) - 512) * 10 / 512);
          break;
        case 5:  // barren: faint diagonal ripples and speckle
          lum = ((x + y) / u) % 5 < 2 ? 12 : -6;
          lum += inoise_px(x, y, sd[7] + 2, 10);
          break;
        default: break;
      }
      const int noise_a = k == 4 ? sigma / 2 : sigma;
      for (int c = 0; c < 3; ++c)
        rgb[(std::size_t(y) * size + x) * 3 + c] = std::clamp(
            ((v[c] + lum) * gain) / 256 + tint[c] + inoise_px(x, y, sd[c] ^ 0x5eedull, 2 * noise_a), 0, 255);
    }
  // [1 2 1]/4 blur along x, then along y, softens region borders as a real sensor would.
  for (const std::size_t step : {std::size_t(3), std::size_t(size) * 3}) {
    std::vector<int> out(rgb.size());
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x) {
        const std::size_t i = (std::size_t(y) * size + x) * 3;
        const int p = step == 3 ? x : y;
        const std::size_t lo = p > 0 ? i - step : i, hi = p + 1 < size ? i + step : i;
        for (int c = 0; c < 3; ++c) out[i + c] = (rgb[lo + c] + 2 * rgb[i + c] + rgb[hi + c] + 2) / 4;
      }
    rgb.swap(out);
  }
  SegTile t{Image(size, size, 3), classes_to_mask(cls)};
  std::transform(rgb.begin(), rgb.end(), t.image.pixels.begin(), [](int v) { return std::uint8_t(v); });
  return t;
}

namespace detail {

// Creates root/a and root/b. A non-empty one is only reused when root carries the marker this code writes, and
// then only its *.png / *.jpg files are removed, so user data is never deleted.
inline std::array<std::filesystem::path, 2> prepare_synthetic_dirs(const std::string& root, const char* a,
                                                                   const char* b) {
  namespace fs = std::filesystem;
  const fs::path marker = fs::path(root) / ".hw1-synthetic";
  const std::array<fs::path, 2> dirs{fs::path(root) / a, fs::path(root) / b};
  std::error_code ec;
  const bool ours = fs::exists(marker, ec);
  for (const auto& d : dirs)
    if (fs::exists(d, ec) && (!fs::is_directory(d, ec) || (!fs::is_empty(d, ec) && !ours)))
      throw Error(d.string() + " already exists and is not an empty folder, and " + root +
                  " was not made by hw1's synthetic-data writer; pass an empty or new root folder");
  for (const auto& d : dirs) {
    fs::create_directories(d, ec);
    if (ec) throw Error(d.string() + ": cannot create directory: " + ec.message());
    for (const auto& e : fs::directory_iterator(d, ec)) {
      const std::string ext = lower_ext(e.path().string());
      if (e.is_regular_file() && (ext == ".png" || ext == ".jpg")) fs::remove(e.path(), ec);
    }
  }
  if (!(std::ofstream(marker) << "Synthetic HW1 data written by hw1 (include/hw1/data/synthetic.hpp).\n"))
    throw Error(marker.string() + ": cannot write");
  return dirs;
}

// f(0..n-1) on all cores (each item has its own seed, so the bytes do not depend on the schedule); the first
// exception is rethrown after the loop, since none may leave an OpenMP region.
template <class F>
void parallel_items(int n, F f) {
  std::exception_ptr err;
#pragma omp parallel for schedule(dynamic)
  for (int i = 0; i < n; ++i) {
    try {
      f(i);
    } catch (...) {
#pragma omp critical(hw1_synthetic_error)
      if (!err) err = std::current_exception();
    }
  }
  if (err) std::rethrow_exception(err);
}

}  // namespace detail

// root/train_50/{label}_{id}.png and root/val_50/{label}_{id}.png, 32x32 RGB. As in the course data, ids run on
// across the split: train ids are 0..train_per_class-1, val ids continue from train_per_class.
inline void make_classification_set(const std::string& root, int num_classes, int train_per_class, int val_per_class,
                                    std::uint64_t seed) {
  if (train_per_class < 1 || val_per_class < 0)
    throw Error("make_classification_set: need train_per_class >= 1 and val_per_class >= 0, got " +
                std::to_string(train_per_class) + " and " + std::to_string(val_per_class));
  synth_class_image(0, num_classes, 0);  // validates num_classes before touching the disk
  const auto dirs = detail::prepare_synthetic_dirs(root, "train_50", "val_50");
  for (int split = 0; split < 2; ++split) {
    const auto& dir = dirs[split];
    const int first = split == 0 ? 0 : train_per_class, count = split == 0 ? train_per_class : val_per_class;
    detail::parallel_items(num_classes * count, [&](int item) {
      const int label = item / count, id = first + item % count;
      const std::uint64_t s = detail::mix_seed(detail::mix_seed(seed, std::uint64_t(label)), std::uint64_t(id));
      char name[32];
      std::snprintf(name, sizeof name, "%d_%d.png", label, id);
      write_png((dir / name).string(), synth_class_image(label, num_classes, s));
    });
  }
}

// root/train/xxxx_sat.jpg + xxxx_mask.png and root/validation/..., size x size. Tile i is guaranteed to contain
// class i % 7, so every class (Unknown included) occurs in any split of 7 or more tiles.
inline void make_segmentation_set(const std::string& root, int train_count, int val_count, int size, std::uint64_t seed) {
  if (train_count < 1 || val_count < 0)
    throw Error("make_segmentation_set: need train_count >= 1 and val_count >= 0, got " + std::to_string(train_count) +
                " and " + std::to_string(val_count));
  if (size < 16) throw Error("make_segmentation_set: tile size must be at least 16, got " + std::to_string(size));
  const auto dirs = detail::prepare_synthetic_dirs(root, "train", "validation");
  for (int split = 0; split < 2; ++split) {
    const auto& dir = dirs[split];
    const int count = split == 0 ? train_count : val_count;
    detail::parallel_items(count, [&](int i) {
      char id[16];
      std::snprintf(id, sizeof id, "%04d", i);
      const auto t = synth_seg_tile(size, detail::mix_seed(detail::mix_seed(seed, 1000 + split), std::uint64_t(i)), i % 7);
      write_jpeg((dir / (std::string(id) + "_sat.jpg")).string(), t.image, 90);
      write_png((dir / (std::string(id) + "_mask.png")).string(), t.mask);
    });
  }
}

}  // namespace hw1
