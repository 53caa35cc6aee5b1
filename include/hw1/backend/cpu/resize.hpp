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

// Rows referenced by any tap: only those are interpolated horizontally.
template <class T>
std::vector<int> used_rows(int h, const std::vector<Tap<T>>& th) {
  std::vector<char> used(h, 0);
  for (const auto& a : th) used[a.i0] = used[a.i1] = 1;
  std::vector<int> rows;
  for (int r = 0; r < h; ++r)
    if (used[r]) rows.push_back(r);
  return rows;
}
}  // namespace detail

// Separable: interpolate the used input rows along w into a [h, out_w] buffer, then blend pairs of buffer rows.
// The products and sums are those of the direct 2x2 formula (w first, then h, as PyTorch), so results are equal.
template <class T>
void bilinear_resize_forward(int n, int c, int h, int w, int out_h, int out_w, const T* x, T* y) {
  const auto th = detail::bilinear_taps<T>(h, out_h), tw = detail::bilinear_taps<T>(w, out_w);
  const auto rows = detail::used_rows(h, th);
  const std::ptrdiff_t planes = std::ptrdiff_t(n) * c, ip = std::ptrdiff_t(h) * w, op = std::ptrdiff_t(out_h) * out_w;
#pragma omp parallel
  {
    std::vector<T> hbuf(std::size_t(h) * out_w);
#pragma omp for schedule(static)
    for (std::ptrdiff_t pl = 0; pl < planes; ++pl) {
      const T* xp = x + pl * ip;
      T* yp = y + pl * op;
      for (int r : rows) {
        const T* xr = xp + std::ptrdiff_t(r) * w;
        T* hr = hbuf.data() + std::ptrdiff_t(r) * out_w;
        for (int j = 0; j < out_w; ++j) hr[j] = tw[j].l0 * xr[tw[j].i0] + tw[j].l1 * xr[tw[j].i1];
      }
      for (int i = 0; i < out_h; ++i) {
        const auto& a = th[i];
        const T* h0 = hbuf.data() + std::ptrdiff_t(a.i0) * out_w;
        const T* h1 = hbuf.data() + std::ptrdiff_t(a.i1) * out_w;
        T* yr = yp + std::ptrdiff_t(i) * out_w;
        for (int j = 0; j < out_w; ++j) yr[j] = a.l0 * h0[j] + a.l1 * h1[j];
      }
    }
  }
}

// The adjoint of the forward, in the reverse order: spread each output row over two buffer rows, then scatter
// each buffer row to its input columns.
template <class T>
void bilinear_resize_backward(int n, int c, int h, int w, int out_h, int out_w, const T* dy, T* dx) {
  const auto th = detail::bilinear_taps<T>(h, out_h), tw = detail::bilinear_taps<T>(w, out_w);
  const auto rows = detail::used_rows(h, th);
  const std::ptrdiff_t planes = std::ptrdiff_t(n) * c, ip = std::ptrdiff_t(h) * w, op = std::ptrdiff_t(out_h) * out_w;
#pragma omp parallel
  {
    std::vector<T> gbuf(std::size_t(h) * out_w);
#pragma omp for schedule(static)
    for (std::ptrdiff_t pl = 0; pl < planes; ++pl) {
      const T* gp = dy + pl * op;
      T* xp = dx + pl * ip;
      for (int r : rows) std::fill_n(gbuf.data() + std::ptrdiff_t(r) * out_w, out_w, T(0));
      for (int i = 0; i < out_h; ++i) {
        const auto& a = th[i];
        T* g0 = gbuf.data() + std::ptrdiff_t(a.i0) * out_w;
        T* g1 = gbuf.data() + std::ptrdiff_t(a.i1) * out_w;
        const T* gr = gp + std::ptrdiff_t(i) * out_w;
        for (int j = 0; j < out_w; ++j) g0[j] += a.l0 * gr[j];
        for (int j = 0; j < out_w; ++j) g1[j] += a.l1 * gr[j];
      }
      std::fill(xp, xp + ip, T(0));
      for (int r : rows) {
        const T* gr = gbuf.data() + std::ptrdiff_t(r) * out_w;
        T* xr = xp + std::ptrdiff_t(r) * w;
        for (int j = 0; j < out_w; ++j) {
          xr[tw[j].i0] += tw[j].l0 * gr[j];
          xr[tw[j].i1] += tw[j].l1 * gr[j];
        }
      }
    }
  }
}

}  // namespace hw1::cpu
