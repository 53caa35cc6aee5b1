// Seeded image augmentation for the data pipeline, on hw1::Image (HWC uint8).
//
// Deterministic transforms are pure (const Image& -> Image); the random ones (random_crop, color_jitter,
// augment_pair) change their arguments in place and draw only from the std::mt19937_64 they are given.
// Geometric transforms move an image and its mask together: the image is sampled bilinearly, the mask with
// nearest neighbour so that it only ever holds labels it held before (or the fill label, e.g. 6 = Unknown).
// Resampling uses half-pixel centres (PyTorch align_corners=False; PIL for upsampling).
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "hw1/core/error.hpp"
#include "hw1/data/image.hpp"

namespace hw1 {

// ---- portable random draws -------------------------------------------------------------------------------
// std::mt19937_64's output is fixed by the standard, the std:: distributions are not: these keep every
// augmentation bit-identical across standard libraries.

// Uniform in [lo, hi), 53 random bits.
inline double rand_uniform(std::mt19937_64& rng, double lo, double hi) {
  return lo + (hi - lo) * (double(rng() >> 11) * 0x1.0p-53);
}
// Uniform in [0, n), n > 0, without modulo bias: the lowest 2^64 mod n outputs are rejected.
inline std::uint64_t rand_below(std::mt19937_64& rng, std::uint64_t n) {
  const std::uint64_t rem = (0 - n) % n;
  for (;;)
    if (const std::uint64_t r = rng(); r >= rem) return r % n;
}
inline bool rand_bool(std::mt19937_64& rng) { return (rng() >> 63) != 0; }

// splitmix64 finaliser over two words: nearby inputs (seed, epoch, index) give unrelated outputs.
inline std::uint64_t mix_seed(std::uint64_t a, std::uint64_t b) {
  auto fin = [](std::uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  return fin(fin(a) ^ b);
}

// ---- resampling -------------------------------------------------------------------------------------------
enum class Interp { Nearest, Bilinear };

namespace detail {

inline void check_resample(const Image& img, int h, int w, const char* who) {
  if (img.empty() || img.height <= 0 || img.width <= 0 || img.channels <= 0)
    throw Error(std::string(who) + ": the input image is empty");
  if (h <= 0 || w <= 0)
    throw Error(std::string(who) + ": output size " + std::to_string(h) + "x" + std::to_string(w) +
                " must be positive");
}

inline std::uint8_t round_u8(float v) { return std::uint8_t(std::clamp(v, 0.0f, 255.0f) + 0.5f); }

// Source taps of one output coordinate for a linear resize of `in` samples to `out`.
struct LinearTap {
  int i0, i1;
  float w1;  // weight of i1; i0 gets 1 - w1
};
inline std::vector<LinearTap> linear_taps(int in, int out) {
  std::vector<LinearTap> taps(out);
  const double scale = double(in) / out;
  for (int o = 0; o < out; ++o) {
    const double s = std::max(0.0, (o + 0.5) * scale - 0.5);  // half-pixel centres, clamped at the start
    const int i0 = std::min(int(s), in - 1);
    taps[o] = {i0, std::min(i0 + 1, in - 1), float(s - i0)};
  }
  return taps;
}

}  // namespace detail

inline Image resize_bilinear(const Image& src, int h, int w) {
  detail::check_resample(src, h, w, "resize_bilinear");
  const auto ty = detail::linear_taps(src.height, h), tx = detail::linear_taps(src.width, w);
  const int C = src.channels;
  const std::size_t in_row = std::size_t(src.width) * C, out_row = std::size_t(w) * C;
  Image out(h, w, C);
  // Rows are interpolated horizontally once into float buffers, then blended vertically.
  std::vector<float> top(out_row), bot(out_row);
  int have_top = -1, have_bot = -1;
  auto hrow = [&](int sy, std::vector<float>& dst) {
    const std::uint8_t* r = &src.pixels[sy * in_row];
    float* d = dst.data();
    for (int x = 0; x < w; ++x) {
      const auto [x0, x1, wx] = tx[x];
      for (int c = 0; c < C; ++c) {
        const float a = r[x0 * C + c], b = r[x1 * C + c];
        *d++ = a + wx * (b - a);
      }
    }
  };
  for (int y = 0; y < h; ++y) {
    const auto [y0, y1, wy] = ty[y];
    if (have_top != y0) {
      if (have_bot == y0) std::swap(top, bot), have_bot = -1;
      else hrow(y0, top);
      have_top = y0;
    }
    if (have_bot != y1) hrow(y1, bot), have_bot = y1;
    std::uint8_t* o = &out.pixels[y * out_row];
    for (std::size_t i = 0; i < out_row; ++i) o[i] = detail::round_u8(top[i] + wy * (bot[i] - top[i]));
  }
  return out;
}

// Output pixel o takes source pixel floor((o + 0.5) * in / out): the centre convention of PIL's NEAREST and
// PyTorch's 'nearest-exact', so a mask stays aligned with its bilinearly resized image.
inline Image resize_nearest(const Image& src, int h, int w) {
  detail::check_resample(src, h, w, "resize_nearest");
  auto index = [](int in, int out) {
    std::vector<int> idx(out);
    for (int o = 0; o < out; ++o) idx[o] = int((2LL * o + 1) * in / (2LL * out));
    return idx;
  };
  const auto iy = index(src.height, h), ix = index(src.width, w);
  const int C = src.channels;
  Image out(h, w, C);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < C; ++c) out.at(y, x, c) = src.at(iy[y], ix[x], c);
  return out;
}

inline Image resize(const Image& src, int h, int w, Interp interp) {
  return interp == Interp::Bilinear ? resize_bilinear(src, h, w) : resize_nearest(src, h, w);
}

// ---- crops, flips, rotations -----------------------------------------------------------------------------

// The h x w window whose top-left corner is (y0, x0); pixels outside the source take `fill`.
inline Image crop(const Image& src, int y0, int x0, int h, int w, std::uint8_t fill = 0) {
  detail::check_resample(src, h, w, "crop");
  const int C = src.channels;
  Image out(h, w, C);
  std::fill(out.pixels.begin(), out.pixels.end(), fill);
  const int ya = std::max(0, -y0), yb = std::min(h, src.height - y0);
  const int xa = std::max(0, -x0), xb = std::min(w, src.width - x0);
  for (int y = ya; y < yb; ++y)
    if (xa < xb)
      std::copy_n(&src.pixels[(std::size_t(y + y0) * src.width + xa + x0) * C], std::size_t(xb - xa) * C,
                  &out.pixels[(std::size_t(y) * w + xa) * C]);
  return out;
}

// A uniformly placed h x w crop of img and (when given) of the same window of *mask. Where the image is
// smaller than the crop, the window reaches past it and the missing pixels are padded: image with 0, mask with
// mask_fill; the image then lands at a uniformly random place in the padded window.
inline void random_crop(Image& img, Image* mask, int h, int w, std::mt19937_64& rng, std::uint8_t mask_fill = 6) {
  detail::check_resample(img, h, w, "random_crop");
  if (mask && (mask->height != img.height || mask->width != img.width))
    throw Error("random_crop: the mask is " + std::to_string(mask->height) + "x" + std::to_string(mask->width) +
                " but the image is " + std::to_string(img.height) + "x" + std::to_string(img.width));
  auto offset = [&](int have, int want) {
    return have >= want ? int(rand_below(rng, std::uint64_t(have - want) + 1))
                        : -int(rand_below(rng, std::uint64_t(want - have) + 1));
  };
  const int y0 = offset(img.height, h), x0 = offset(img.width, w);
  img = crop(img, y0, x0, h, w, 0);
  if (mask) *mask = crop(*mask, y0, x0, h, w, mask_fill);
}

inline Image hflip(const Image& src) {
  Image out(src.height, src.width, src.channels);
  for (int y = 0; y < src.height; ++y)
    for (int x = 0; x < src.width; ++x)
      for (int c = 0; c < src.channels; ++c) out.at(y, src.width - 1 - x, c) = src.at(y, x, c);
  return out;
}

inline Image vflip(const Image& src) {
  Image out(src.height, src.width, src.channels);
  const std::size_t row = std::size_t(src.width) * src.channels;
  for (int y = 0; y < src.height; ++y)
    std::copy_n(&src.pixels[y * row], row, &out.pixels[(src.height - 1 - y) * row]);
  return out;
}

// k quarter turns counter-clockwise (as numpy.rot90); k may be negative.
inline Image rot90(const Image& src, int k) {
  k = ((k % 4) + 4) % 4;
  const int H = src.height, W = src.width, C = src.channels;
  if (k == 0) return src;
  if (k == 2) return vflip(hflip(src));
  Image out(W, H, C);
  for (int i = 0; i < W; ++i)
    for (int j = 0; j < H; ++j)
      for (int c = 0; c < C; ++c)
        out.at(i, j, c) = k == 1 ? src.at(j, W - 1 - i, c) : src.at(H - 1 - j, i, c);
  return out;
}

// Rotation by `degrees` counter-clockwise about the image centre ((W-1)/2, (H-1)/2), same size. Samples that
// fall outside take `fill` (bilinear blends fill in at the border, as grid_sample with constant padding).
inline Image rotate(const Image& src, double degrees, std::uint8_t fill = 0, Interp interp = Interp::Bilinear) {
  detail::check_resample(src, src.height, src.width, "rotate");
  const int H = src.height, W = src.width, C = src.channels;
  const double th = degrees * std::numbers::pi / 180.0, co = std::cos(th), si = std::sin(th);
  const double cx = (W - 1) / 2.0, cy = (H - 1) / 2.0;
  Image out(H, W, C);
  auto px = [&](int y, int x, int c) -> float {
    return (y >= 0 && y < H && x >= 0 && x < W) ? float(src.at(y, x, c)) : float(fill);
  };
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      // inverse map: the output pixel looks up the source point rotated back by -degrees
      const double dx = x - cx, dy = y - cy;
      const double sx = cx + dx * co - dy * si, sy = cy + dx * si + dy * co;
      if (interp == Interp::Nearest) {
        const int xi = int(std::floor(sx + 0.5)), yi = int(std::floor(sy + 0.5));
        for (int c = 0; c < C; ++c) out.at(y, x, c) = std::uint8_t(px(yi, xi, c));
        continue;
      }
      const int x0 = int(std::floor(sx)), y0 = int(std::floor(sy));
      const float fx = float(sx - x0), fy = float(sy - y0);
      std::uint8_t* o = &out.pixels[(std::size_t(y) * W + x) * C];
      if (x0 >= 0 && y0 >= 0 && x0 + 1 < W && y0 + 1 < H) {  // all four neighbours inside: no fill
        const std::uint8_t* p00 = &src.pixels[(std::size_t(y0) * W + x0) * C];
        const std::uint8_t *p01 = p00 + C, *p10 = p00 + std::size_t(W) * C, *p11 = p10 + C;
        for (int c = 0; c < C; ++c) {
          const float top = p00[c] + fx * (p01[c] - p00[c]), bot = p10[c] + fx * (p11[c] - p10[c]);
          o[c] = detail::round_u8(top + fy * (bot - top));
        }
        continue;
      }
      for (int c = 0; c < C; ++c) {
        const float top = px(y0, x0, c) + fx * (px(y0, x0 + 1, c) - px(y0, x0, c));
        const float bot = px(y0 + 1, x0, c) + fx * (px(y0 + 1, x0 + 1, c) - px(y0 + 1, x0, c));
        o[c] = detail::round_u8(top + fy * (bot - top));
      }
    }
  return out;
}

// ---- colour (torchvision's definitions; rounded to 8 bits after each step, as its PIL path) ---------------
namespace detail {
inline float luma(const Image& img, std::size_t p) {  // ITU-R 601-2, as PIL's convert("L")
  const std::uint8_t* q = &img.pixels[p * img.channels];
  return img.channels >= 3 ? 0.299f * q[0] + 0.587f * q[1] + 0.114f * q[2] : float(q[0]);
}
}  // namespace detail

inline Image adjust_brightness(const Image& src, float factor) {
  Image out = src;
  for (auto& v : out.pixels) v = detail::round_u8(v * factor);
  return out;
}

// Blend with the mean grey level of the whole image.
inline Image adjust_contrast(const Image& src, float factor) {
  const std::size_t n = std::size_t(src.height) * src.width;
  double sum = 0;
  for (std::size_t p = 0; p < n; ++p) sum += detail::luma(src, p);
  const float mean = n ? float(sum / n) : 0.0f;
  Image out = src;
  for (auto& v : out.pixels) v = detail::round_u8(factor * v + (1 - factor) * mean);
  return out;
}

// Blend each pixel with its own grey level (no-op on 1-channel images).
inline Image adjust_saturation(const Image& src, float factor) {
  Image out = src;
  if (src.channels < 3) return out;
  const std::size_t n = std::size_t(src.height) * src.width;
  for (std::size_t p = 0; p < n; ++p) {
    const float g = detail::luma(src, p);
    for (int c = 0; c < 3; ++c) {
      auto& v = out.pixels[p * src.channels + c];
      v = detail::round_u8(factor * v + (1 - factor) * g);
    }
  }
  return out;
}

// Factors drawn uniformly from [max(0, 1 - a), 1 + a] for each amount a > 0; applied in the fixed order
// brightness, contrast, saturation (torchvision shuffles the order; a fixed one keeps the draws simple).
inline void color_jitter(Image& img, float brightness, float contrast, float saturation, std::mt19937_64& rng) {
  auto factor = [&](float a) { return float(rand_uniform(rng, std::max(0.0f, 1 - a), 1 + a)); };
  if (brightness > 0) img = adjust_brightness(img, factor(brightness));
  if (contrast > 0) img = adjust_contrast(img, factor(contrast));
  if (saturation > 0) img = adjust_saturation(img, factor(saturation));
}

// ---- to network input -------------------------------------------------------------------------------------
inline constexpr std::array<float, 3> kImageNetMean = {0.485f, 0.456f, 0.406f};
inline constexpr std::array<float, 3> kImageNetStd = {0.229f, 0.224f, 0.225f};

// out[c][y][x] = (pixel / 255 - mean[c]) / std[c]; out holds 3 * H * W floats. A 1-channel image is
// repeated into the three channels (as PIL's convert("RGB")).
inline void to_tensor_normalized(const Image& img, std::span<const float, 3> mean, std::span<const float, 3> std,
                                 float* out) {
  if (img.channels != 1 && img.channels != 3)
    throw Error("to_tensor_normalized: expected a 1- or 3-channel image, got " + std::to_string(img.channels) +
                " channels");
  const std::size_t n = std::size_t(img.height) * img.width;
  for (int c = 0; c < 3; ++c) {
    const float scale = 1.0f / (255.0f * std[c]), shift = mean[c] / std[c];
    const int from = img.channels == 3 ? c : 0;
    float* plane = out + c * n;
    for (std::size_t p = 0; p < n; ++p) plane[p] = img.pixels[p * img.channels + from] * scale - shift;
  }
}

// ---- a composable pipeline --------------------------------------------------------------------------------
struct AugmentConfig {
  int out_h = 0, out_w = 0;    // resize to this size first (0 = keep that side)
  int crop_h = 0, crop_w = 0;  // then a random crop (0 = keep that side); pads when the image is smaller
  bool hflip = false, vflip = false;  // each with probability 1/2
  bool rot90 = false;                 // 0, 1, 2 or 3 quarter turns, each with probability 1/4
  float rotate_degrees = 0;           // a rotation drawn uniformly from [-d, d]
  float brightness = 0, contrast = 0, saturation = 0;  // colour jitter (image only)
  std::uint8_t mask_fill = 6;  // label for mask pixels that come from outside (padding, rotation); 6 = Unknown
};

// Applies cfg in the fixed order resize, crop, hflip, vflip, rot90, rotate, colour; only enabled steps draw
// from rng. *mask (if given) must have the image's size and follows every geometric step.
inline void augment_pair(Image& img, Image* mask, const AugmentConfig& cfg, std::mt19937_64& rng) {
  if (mask && (mask->height != img.height || mask->width != img.width))
    throw Error("augment_pair: the mask is " + std::to_string(mask->height) + "x" + std::to_string(mask->width) +
                " but the image is " + std::to_string(img.height) + "x" + std::to_string(img.width));
  if (cfg.out_h > 0 || cfg.out_w > 0) {
    const int h = cfg.out_h > 0 ? cfg.out_h : img.height, w = cfg.out_w > 0 ? cfg.out_w : img.width;
    if (h != img.height || w != img.width) {
      img = resize_bilinear(img, h, w);
      if (mask) *mask = resize_nearest(*mask, h, w);
    }
  }
  if (cfg.crop_h > 0 || cfg.crop_w > 0)
    random_crop(img, mask, cfg.crop_h > 0 ? cfg.crop_h : img.height, cfg.crop_w > 0 ? cfg.crop_w : img.width, rng,
                cfg.mask_fill);
  if (cfg.hflip && rand_bool(rng)) {
    img = hflip(img);
    if (mask) *mask = hflip(*mask);
  }
  if (cfg.vflip && rand_bool(rng)) {
    img = vflip(img);
    if (mask) *mask = vflip(*mask);
  }
  if (cfg.rot90)
    if (const int k = int(rand_below(rng, 4)); k != 0) {
      img = rot90(img, k);
      if (mask) *mask = rot90(*mask, k);
    }
  if (cfg.rotate_degrees > 0) {
    const double deg = rand_uniform(rng, -cfg.rotate_degrees, cfg.rotate_degrees);
    img = rotate(img, deg, 0, Interp::Bilinear);
    if (mask) *mask = rotate(*mask, deg, cfg.mask_fill, Interp::Nearest);
  }
  color_jitter(img, cfg.brightness, cfg.contrast, cfg.saturation, rng);
}

}  // namespace hw1
