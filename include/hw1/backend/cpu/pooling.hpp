// Max pooling (torch.nn.MaxPool2d, dilation 1) and global average pooling (AdaptiveAvgPool2d(1)).
// One (image, channel) plane per thread; argmax indices are flat within the plane, as PyTorch's.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

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

// Max of a window with PyTorch's rules: padding counts as -inf, so only in-bounds cells compete; strict '>' keeps
// the first maximum; NaN wins. With argmax: the flat index of the winner within the plane.
template <class T>
inline T window_max(const T* xp, int w, int r0, int r1, int q0, int q1, std::int64_t* at) {
  T best = -std::numeric_limits<T>::infinity();
  std::int64_t where = std::int64_t(r0) * w + q0;
  for (int r = r0; r < r1; ++r)
    for (int q = q0; q < q1; ++q) {
      const T v = xp[std::ptrdiff_t(r) * w + q];
      if (v > best || std::isnan(v)) {
        best = v;
        where = std::int64_t(r) * w + q;
      }
    }
  if (at) *at = where;
  return best;
}

// The same rule without the index: the max, or NaN if any value is NaN, whatever the order the values come in.
template <class T>
inline T max_or_nan(T m, T v) {
  return (v > m || v != v) ? v : m;
}
}  // namespace detail

// argmax (flat index within the plane, as PyTorch's) may be nullptr when no backward follows.
template <class T>
void maxpool2d_forward(const Pool2dShape& s, const T* x, T* y, std::int64_t* argmax) {
  detail::check_pool(s);
  const int oh = s.out_h(), ow = s.out_w();
  const std::ptrdiff_t planes = std::ptrdiff_t(s.n) * s.c, in_plane = std::ptrdiff_t(s.h) * s.w,
                       out_plane = std::ptrdiff_t(oh) * ow;
  // Output columns [jlo, jhi) have their whole window inside the row span of the image.
  const int jlo = std::min(ow, (s.pad_w + s.stride_w - 1) / s.stride_w);
  const int jhi = std::max(jlo, std::min(ow, s.w + s.pad_w - s.kw >= 0 ? (s.w + s.pad_w - s.kw) / s.stride_w + 1 : 0));
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t pl = 0; pl < planes; ++pl) {
    const T* xp = x + pl * in_plane;
    T* yp = y + pl * out_plane;
    std::int64_t* ap = argmax ? argmax + pl * out_plane : nullptr;
    for (int i = 0; i < oh; ++i) {
      const int h0 = i * s.stride_h - s.pad_h, r0 = std::max(h0, 0), r1 = std::min(h0 + s.kh, s.h);
      T* yr = yp + std::ptrdiff_t(i) * ow;
      std::int64_t* ar = ap ? ap + std::ptrdiff_t(i) * ow : nullptr;
      auto edge = [&](int j) {
        const int w0 = j * s.stride_w - s.pad_w;
        yr[j] = detail::window_max(xp, s.w, r0, r1, std::max(w0, 0), std::min(w0 + s.kw, s.w), ar ? ar + j : nullptr);
      };
      for (int j = 0; j < jlo; ++j) edge(j);
      if (!ar && r1 - r0 == s.kh && jlo < jhi) {
        // Inference, window rows all inside: the max over the window's rows for every column (a contiguous,
        // vectorising loop), then over each window's columns; max_or_nan makes the order irrelevant, so this
        // equals the argmax path's values.
        thread_local std::vector<T> colmax;
        if (colmax.size() < std::size_t(s.w)) colmax.resize(std::size_t(s.w));
        T* cm = colmax.data();
        std::fill_n(cm, s.w, -std::numeric_limits<T>::infinity());
        for (int r = r0; r < r1; ++r) {
          const T* row = xp + std::ptrdiff_t(r) * s.w;
          for (int q = 0; q < s.w; ++q) cm[q] = detail::max_or_nan(cm[q], row[q]);
        }
        for (int j = jlo; j < jhi; ++j) {
          const T* c = cm + (j * s.stride_w - s.pad_w);
          T m = -std::numeric_limits<T>::infinity();
          for (int q = 0; q < s.kw; ++q) m = detail::max_or_nan(m, c[q]);
          yr[j] = m;
        }
      } else {
        for (int j = jlo; j < jhi; ++j) edge(j);
      }
      for (int j = jhi; j < ow; ++j) edge(j);
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
