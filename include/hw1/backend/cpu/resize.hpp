// Bilinear resize to a given size, as F.interpolate(mode="bilinear", align_corners=False): each output pixel reads
// the 2x2 input cell around src = max(0, (dst + 0.5) * in/out - 0.5). As in PyTorch's CPU kernel, in/out is
// rounded to T but src and the weight are formed in double, so float weights are bit-identical to torch's.
// One (image, channel) plane per thread.
#pragma once
#include <algorithm>
#include <cstddef>
#include <vector>

namespace hw1::cpu {

namespace detail {
template <class T>
struct Tap {
  int i0, i1;
  T l0, l1;  // weights of i0 and i1
};

template <class T>
std::vector<Tap<T>> bilinear_taps(int in, int out) {
  std::vector<Tap<T>> taps(out);
  const T scale = T(in) / T(out);
  for (int d = 0; d < out; ++d) {
    const double src = std::max(double(scale) * (d + 0.5) - 0.5, 0.0);
    const int i0 = std::min(int(src), in - 1);  // src >= 0, so int() is floor
    const T l1 = T(src - i0);
    taps[d] = {i0, std::min(i0 + 1, in - 1), T(1) - l1, l1};
  }
  return taps;
}
}  // namespace detail

template <class T>
void bilinear_resize_forward(int n, int c, int h, int w, int out_h, int out_w, const T* x, T* y) {
  const auto th = detail::bilinear_taps<T>(h, out_h), tw = detail::bilinear_taps<T>(w, out_w);
  const std::ptrdiff_t planes = std::ptrdiff_t(n) * c, ip = std::ptrdiff_t(h) * w, op = std::ptrdiff_t(out_h) * out_w;
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t pl = 0; pl < planes; ++pl) {
    const T* xp = x + pl * ip;
    T* yp = y + pl * op;
    for (int i = 0; i < out_h; ++i) {
      const auto& a = th[i];
      const T* r0 = xp + std::ptrdiff_t(a.i0) * w;
      const T* r1 = xp + std::ptrdiff_t(a.i1) * w;
      for (int j = 0; j < out_w; ++j) {
        const auto& b = tw[j];
        yp[std::ptrdiff_t(i) * out_w + j] =
            a.l0 * (b.l0 * r0[b.i0] + b.l1 * r0[b.i1]) + a.l1 * (b.l0 * r1[b.i0] + b.l1 * r1[b.i1]);
      }
    }
  }
}

// The adjoint of the forward: scatter each output gradient to its four taps.
template <class T>
void bilinear_resize_backward(int n, int c, int h, int w, int out_h, int out_w, const T* dy, T* dx) {
  const auto th = detail::bilinear_taps<T>(h, out_h), tw = detail::bilinear_taps<T>(w, out_w);
  const std::ptrdiff_t planes = std::ptrdiff_t(n) * c, ip = std::ptrdiff_t(h) * w, op = std::ptrdiff_t(out_h) * out_w;
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t pl = 0; pl < planes; ++pl) {
    T* xp = dx + pl * ip;
    std::fill(xp, xp + ip, T(0));
    const T* gp = dy + pl * op;
    for (int i = 0; i < out_h; ++i) {
      const auto& a = th[i];
      T* r0 = xp + std::ptrdiff_t(a.i0) * w;
      T* r1 = xp + std::ptrdiff_t(a.i1) * w;
      for (int j = 0; j < out_w; ++j) {
        const auto& b = tw[j];
        const T g = gp[std::ptrdiff_t(i) * out_w + j];
        r0[b.i0] += a.l0 * b.l0 * g;
        r0[b.i1] += a.l0 * b.l1 * g;
        r1[b.i0] += a.l1 * b.l0 * g;
        r1[b.i1] += a.l1 * b.l1 * g;
      }
    }
  }
}

}  // namespace hw1::cpu
