// The descriptors of the backends' operations (convolution, transposed convolution and pooling shapes, what a
// batch norm's output pass applies) and their validation, shared by the CPU kernels, the CUDA backend and the
// layers: plain structs and checks, no kernels (so including it costs neither AVX-512 nor Eigen).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "hw1/backend/cpu/conv2d_shape.hpp"
#include "hw1/core/error.hpp"

namespace hw1::cpu {

struct ConvTranspose2dShape {  // PyTorch ConvTranspose2d semantics, groups = 1
  int n, cin, h, w;            // input
  int cout, kh, kw;
  int stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, out_pad_h = 0, out_pad_w = 0, dil_h = 1, dil_w = 1;
  int out_h() const { return (h - 1) * stride_h - 2 * pad_h + dil_h * (kh - 1) + out_pad_h + 1; }
  int out_w() const { return (w - 1) * stride_w - 2 * pad_w + dil_w * (kw - 1) + out_pad_w + 1; }
};

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

// What a training batch norm's output pass applies after normalising: y = bn(x) + residual (when not null), then
// ReLU when relu; mask (when not null) receives 1 where the ReLU's output is positive, else 0 (its backward).
template <class T>
struct BnAfter {
  const T* residual = nullptr;
  bool relu = false;
  std::uint8_t* mask = nullptr;
};

namespace detail {

inline void check_conv(const char* op, const std::string& geometry, bool ok_params, int n, int cin, int h, int w,
                       int cout, int oh, int ow) {
  if (n <= 0 || cin <= 0 || h <= 0 || w <= 0 || cout <= 0)
    throw Error(std::string(op) + ": batch, channels and spatial sizes must be positive (input [" +
                std::to_string(n) + "," + std::to_string(cin) + "," + std::to_string(h) + "," + std::to_string(w) +
                "], " + std::to_string(cout) + " output channels).");
  if (!ok_params)
    throw Error(std::string(op) + ": " + geometry +
                " is invalid: kernel, stride and dilation must be positive and padding non-negative.");
  if (oh <= 0 || ow <= 0)
    throw Error(std::string(op) + ": input " + std::to_string(h) + "x" + std::to_string(w) + " with " + geometry +
                " gives an empty " + std::to_string(oh) + "x" + std::to_string(ow) +
                " output; use a larger input, more padding or a smaller kernel / dilation.");
}

inline std::string pair_str(int a, int b) { return std::to_string(a) + "x" + std::to_string(b); }

inline void check(const Conv2dShape& s) {
  const bool ok = s.kh > 0 && s.kw > 0 && s.stride_h > 0 && s.stride_w > 0 && s.pad_h >= 0 && s.pad_w >= 0 &&
                  s.dil_h > 0 && s.dil_w > 0;
  const std::string geometry = "kernel " + pair_str(s.kh, s.kw) + ", stride " + pair_str(s.stride_h, s.stride_w) +
                               ", padding " + pair_str(s.pad_h, s.pad_w) + ", dilation " +
                               pair_str(s.dil_h, s.dil_w);
  // out_h() truncates towards zero, so a window larger than the padded input would still count one row there.
  const bool fits_h = s.h + 2 * s.pad_h >= s.dil_h * (s.kh - 1) + 1;
  const bool fits_w = s.w + 2 * s.pad_w >= s.dil_w * (s.kw - 1) + 1;
  check_conv("conv2d", geometry, ok, s.n, s.cin, s.h, s.w, s.cout, !ok ? 1 : fits_h ? s.out_h() : 0,
             !ok ? 1 : fits_w ? s.out_w() : 0);
}

inline void check(const ConvTranspose2dShape& s) {
  const bool ok = s.kh > 0 && s.kw > 0 && s.stride_h > 0 && s.stride_w > 0 && s.pad_h >= 0 && s.pad_w >= 0 &&
                  s.dil_h > 0 && s.dil_w > 0 && s.out_pad_h >= 0 && s.out_pad_w >= 0;
  const std::string geometry = "kernel " + pair_str(s.kh, s.kw) + ", stride " + pair_str(s.stride_h, s.stride_w) +
                               ", padding " + pair_str(s.pad_h, s.pad_w) + ", output padding " +
                               pair_str(s.out_pad_h, s.out_pad_w) + ", dilation " + pair_str(s.dil_h, s.dil_w);
  check_conv("conv_transpose2d", geometry, ok, s.n, s.cin, s.h, s.w, s.cout, ok ? s.out_h() : 1,
             ok ? s.out_w() : 1);
  // PyTorch's rule: beyond it, output rows would exist that no input position reaches.
  if ((s.out_pad_h >= s.stride_h && s.out_pad_h >= s.dil_h) || (s.out_pad_w >= s.stride_w && s.out_pad_w >= s.dil_w))
    throw Error("conv_transpose2d: " + geometry +
                " is invalid: output padding must be smaller than either the stride or the dilation.");
}

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

inline void check_crop(int h, int w, int oy, int ox, int out_h, int out_w) {
  if (oy < 0 || ox < 0 || out_h < 0 || out_w < 0 || oy + out_h > h || ox + out_w > w)
    throw Error("crop: window " + std::to_string(out_h) + "x" + std::to_string(out_w) + " at (" +
                std::to_string(oy) + "," + std::to_string(ox) + ") does not fit in a " + std::to_string(h) + "x" +
                std::to_string(w) + " plane");
}

inline int check_concat(std::size_t parts, const std::vector<int>& channels) {
  if (parts != channels.size())
    throw Error("concat: " + std::to_string(parts) + " tensors but " + std::to_string(channels.size()) +
                " channel counts; pass one channel count per tensor");
  int total = 0;
  for (int ch : channels) {
    if (ch < 0) throw Error("concat: channel count " + std::to_string(ch) + " is negative");
    total += ch;
  }
  return total;
}

template <class T>
void check_dropout_p(T p) {
  if (!(p >= T(0) && p < T(1)))
    throw Error("dropout: probability " + std::to_string(double(p)) + " must be in [0, 1)");
}

}  // namespace detail

}  // namespace hw1::cpu

namespace hw1 {
using ConvTranspose2dShape = cpu::ConvTranspose2dShape;
using Pool2dShape = cpu::Pool2dShape;
}  // namespace hw1
