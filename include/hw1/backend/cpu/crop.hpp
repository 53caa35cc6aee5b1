// Crop of every [h, w] plane to [out_h, out_w] at offset (oy, ox), and its adjoint (the crop written back into a
// zero plane). FCN32s uses it to cut the upsampled score map back to the input size.
#pragma once
#include <algorithm>
#include <cstddef>
#include <string>

#include "hw1/backend/cpu/shapes.hpp"
#include "hw1/core/error.hpp"

namespace hw1::cpu {

// x: planes of [h, w]; y: planes of [out_h, out_w].
template <class T>
void crop2d_forward(int planes, int h, int w, int oy, int ox, int out_h, int out_w, const T* x, T* y) {
  detail::check_crop(h, w, oy, ox, out_h, out_w);
#pragma omp parallel for schedule(static)
  for (int p = 0; p < planes; ++p)
    for (int i = 0; i < out_h; ++i)
      std::copy_n(x + (std::ptrdiff_t(p) * h + oy + i) * w + ox, out_w, y + (std::ptrdiff_t(p) * out_h + i) * out_w);
}

// dx is overwritten: dy inside the window, 0 outside.
template <class T>
void crop2d_backward(int planes, int h, int w, int oy, int ox, int out_h, int out_w, const T* dy, T* dx) {
  detail::check_crop(h, w, oy, ox, out_h, out_w);
#pragma omp parallel for schedule(static)
  for (int p = 0; p < planes; ++p) {
    T* d = dx + std::ptrdiff_t(p) * h * w;
    std::fill_n(d, std::ptrdiff_t(h) * w, T(0));
    for (int i = 0; i < out_h; ++i)
      std::copy_n(dy + (std::ptrdiff_t(p) * out_h + i) * out_w, out_w, d + std::ptrdiff_t(oy + i) * w + ox);
  }
}

}  // namespace hw1::cpu
