// Dead kernel taps: a convolution whose kernel taps read only padding is computed as the smaller one without
// them (before any algorithm is chosen).
#pragma once
#include <cstddef>
#include <utility>

#include "hw1/backend/cpu/conv2d_shape.hpp"

namespace hw1::cpu::detail {

// Kernel taps that read only padding at every output position contribute nothing: a 3x3 "same" convolution of a
// 1x1 image (ResNet's last stage at 32x32 input) is its centre tap alone, a 1x1 convolution. The live taps
// [k0, k1) along one axis (k0 == k1: none).
inline std::pair<int, int> live_taps(int k, int in, int out, int stride, int pad, int dil) {
  const auto live = [&](int t) {
    const int off = t * dil - pad, first = off >= 0 ? 0 : (-off + stride - 1) / stride;  // first oy with iy >= 0
    return first < out && off + first * stride < in;
  };
  int k0 = 0, k1 = k;
  while (k0 < k1 && !live(k0)) ++k0;
  while (k1 > k0 && !live(k1 - 1)) --k1;
  return {k0, k1};
}
// The same convolution with its dead taps dropped (kernel rows [r0, r0 + kh), columns [c0, c0 + kw) of the
// original), where that is smaller and expressible as a Conv2dShape with the same output; else false.
struct Trim {
  Conv2dShape s;
  int r0, c0;
};
inline bool trim(const Conv2dShape& s, Trim& t) {
  const auto [r0, r1] = live_taps(s.kh, s.h, s.out_h(), s.stride_h, s.pad_h, s.dil_h);
  const auto [c0, c1] = live_taps(s.kw, s.w, s.out_w(), s.stride_w, s.pad_w, s.dil_w);
  if (r0 == r1 || c0 == c1 || (r1 - r0 == s.kh && c1 - c0 == s.kw)) return false;
  t = {s, r0, c0};
  t.s.kh = r1 - r0, t.s.kw = c1 - c0, t.s.pad_h = s.pad_h - r0 * s.dil_h, t.s.pad_w = s.pad_w - c0 * s.dil_w;
  return t.s.pad_h >= 0 && t.s.pad_w >= 0 && t.s.out_h() == s.out_h() && t.s.out_w() == s.out_w();
}
// f(original weight index, trimmed weight index) over the trimmed kernel's [cout, cin, t.kh, t.kw] entries.
template <class F>
void for_trimmed(const Conv2dShape& s, const Trim& t, F&& f) {
  const std::ptrdiff_t kh = t.s.kh, kw = t.s.kw;
  for (std::ptrdiff_t oc = 0; oc < std::ptrdiff_t(s.cout) * s.cin; ++oc)
    for (std::ptrdiff_t i = 0; i < kh; ++i)
      for (std::ptrdiff_t j = 0; j < kw; ++j) f((oc * s.kh + t.r0 + i) * s.kw + t.c0 + j, (oc * kh + i) * kw + j);
}

}  // namespace hw1::cpu::detail
