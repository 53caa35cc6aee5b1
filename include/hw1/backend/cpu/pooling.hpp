// Max pooling (torch.nn.MaxPool2d, dilation 1) and global average pooling (AdaptiveAvgPool2d(1)).
// One (image, channel) plane per thread; argmax indices are flat within the plane, as PyTorch's.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include "hw1/core/error.hpp"

namespace hw1::cpu {

struct Pool2dShape {
  int n, c, h, w, kh, kw, stride_h, stride_w, pad_h, pad_w;
  bool ceil_mode = false;

  // PyTorch's pooling_output_shape: with ceil_mode the last window must still start inside input + left pad.
  static int out_size(int in, int k, int s, int p, bool ceil) {
    const int num = in + 2 * p - k + (ceil ? s - 1 : 0);
    int o = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;  // floor division, also for num < 0
    if (ceil && (o - 1) * s >= in + p) --o;
    return o;
  }
  int out_h() const { return out_size(h, kh, stride_h, pad_h, ceil_mode); }
  int out_w() const { return out_size(w, kw, stride_w, pad_w, ceil_mode); }
};

namespace detail {
inline void check_pool(const Pool2dShape& s) {
  if (s.kh <= 0 || s.kw <= 0 || s.stride_h <= 0 || s.stride_w <= 0 || s.pad_h < 0 || s.pad_w < 0)
    throw Error("max pool: kernel " + std::to_string(s.kh) + "x" + std::to_string(s.kw) + ", stride " +
                std::to_string(s.stride_h) + "x" + std::to_string(s.stride_w) +
                " must be positive and padding non-negative");
  if (2 * s.pad_h > s.kh || 2 * s.pad_w > s.kw)
    throw Error("max pool: padding " + std::to_string(s.pad_h) + "x" + std::to_string(s.pad_w) +
                " must be at most half the kernel " + std::to_string(s.kh) + "x" + std::to_string(s.kw) +
                " (as in PyTorch)");
  if (s.out_h() <= 0 || s.out_w() <= 0)
    throw Error("max pool: input " + std::to_string(s.h) + "x" + std::to_string(s.w) + " is too small for kernel " +
                std::to_string(s.kh) + "x" + std::to_string(s.kw) + " with padding " + std::to_string(s.pad_h) +
                "x" + std::to_string(s.pad_w));
}
}  // namespace detail

template <class T>
void maxpool2d_forward(const Pool2dShape& s, const T* x, T* y, std::int64_t* argmax) {
  detail::check_pool(s);
  const int oh = s.out_h(), ow = s.out_w();
  const std::ptrdiff_t planes = std::ptrdiff_t(s.n) * s.c, in_plane = std::ptrdiff_t(s.h) * s.w,
                       out_plane = std::ptrdiff_t(oh) * ow;
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t pl = 0; pl < planes; ++pl) {
    const T* xp = x + pl * in_plane;
    T* yp = y + pl * out_plane;
    std::int64_t* ap = argmax + pl * out_plane;
    for (int i = 0; i < oh; ++i) {
      const int h0 = i * s.stride_h - s.pad_h, h1 = std::min(h0 + s.kh, s.h);
      for (int j = 0; j < ow; ++j) {
        const int w0 = j * s.stride_w - s.pad_w, w1 = std::min(w0 + s.kw, s.w);
        // Padding counts as -inf, so only in-bounds cells compete; strict '>' keeps the first max; NaN wins (as PyTorch).
        T best = -std::numeric_limits<T>::infinity();
        std::int64_t at = std::int64_t(std::max(h0, 0)) * s.w + std::max(w0, 0);
        for (int r = std::max(h0, 0); r < h1; ++r)
          for (int q = std::max(w0, 0); q < w1; ++q) {
            const T v = xp[std::ptrdiff_t(r) * s.w + q];
            if (v > best || std::isnan(v)) {
              best = v;
              at = std::int64_t(r) * s.w + q;
            }
          }
        yp[std::ptrdiff_t(i) * ow + j] = best;
        ap[std::ptrdiff_t(i) * ow + j] = at;
      }
    }
  }
}

template <class T>
void maxpool2d_backward(const Pool2dShape& s, const std::int64_t* argmax, const T* dy, T* dx) {
  const std::ptrdiff_t planes = std::ptrdiff_t(s.n) * s.c, in_plane = std::ptrdiff_t(s.h) * s.w,
                       out_plane = std::ptrdiff_t(s.out_h()) * s.out_w();
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t pl = 0; pl < planes; ++pl) {
    T* dp = dx + pl * in_plane;
    std::fill(dp, dp + in_plane, T(0));
    const T* g = dy + pl * out_plane;
    const std::int64_t* ap = argmax + pl * out_plane;
    for (std::ptrdiff_t o = 0; o < out_plane; ++o) dp[ap[o]] += g[o];  // overlapping windows may share a source
  }
}

template <class T>
void global_avgpool_forward(int n, int c, int hw, const T* x, T* y) {
  const std::ptrdiff_t planes = std::ptrdiff_t(n) * c;
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t pl = 0; pl < planes; ++pl) {
    const T* p = x + pl * hw;
    double sum = 0;
    for (int i = 0; i < hw; ++i) sum += p[i];
    y[pl] = T(sum / hw);
  }
}

template <class T>
void global_avgpool_backward(int n, int c, int hw, const T* dy, T* dx) {
  const std::ptrdiff_t planes = std::ptrdiff_t(n) * c;
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t pl = 0; pl < planes; ++pl) std::fill(dx + pl * hw, dx + (pl + 1) * hw, T(dy[pl] / T(hw)));
}

}  // namespace hw1::cpu
