// 8-bit images as decoded from PNG/JPEG: height x width x channels, interleaved (HWC), row-major.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace hw1 {

struct Image {
  int height = 0, width = 0, channels = 0;  // channels: 1 (gray / class-index mask) or 3 (RGB)
  std::vector<std::uint8_t> pixels;         // height * width * channels bytes

  Image() = default;
  Image(int h, int w, int c) : height(h), width(w), channels(c), pixels(std::size_t(h) * w * c, 0) {}
  std::uint8_t& at(int y, int x, int ch = 0) { return pixels[(std::size_t(y) * width + x) * channels + ch]; }
  std::uint8_t at(int y, int x, int ch = 0) const { return pixels[(std::size_t(y) * width + x) * channels + ch]; }
  bool empty() const { return pixels.empty(); }
};

}  // namespace hw1
