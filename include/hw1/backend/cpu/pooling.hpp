// Max pooling (torch.nn.MaxPool2d, dilation 1) and global average pooling (AdaptiveAvgPool2d(1)).
// One (image, channel) plane per thread; argmax indices are flat within the plane, as PyTorch's.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "hw1/backend/cpu/shapes.hpp"
#include "hw1/core/error.hpp"

namespace hw1::cpu {


namespace detail {

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

#if defined(__AVX512F__)
// window_max for output columns [j0, j0 + n) (n <= 16) of one output row at once, float, column stride 1 or 2,
// their windows' columns all inside the image: the same comparisons in the same order per lane, so the same
// values and argmax.
inline void window_max16(const float* xp, int w, int r0, int r1, int c0, int kw, int sw, int n, float* y,
                         std::int64_t* at) {
  const __mmask16 lanes = __mmask16((1u << n) - 1);
  const __m512i step = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                          _mm512_set1_epi32(sw));
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  // Lane l reads column c0 + sw * l + q: for stride 2 two loads of 16, masked to stop at the last lane's column,
  // and their even values.
  const __mmask16 lo = sw == 1 ? lanes : __mmask16((1u << std::min(16, 2 * n - 1)) - 1),
                  hi = __mmask16((1u << std::max(0, 2 * n - 17)) - 1);
  __m512 best = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512i where = _mm512_add_epi32(_mm512_set1_epi32(r0 * w + c0), step);
  for (int r = r0; r < r1; ++r)
    for (int q = 0; q < kw; ++q) {
      const float* p = xp + std::ptrdiff_t(r) * w + c0 + q;
      const __m512 v = sw == 1 ? _mm512_maskz_loadu_ps(lanes, p)
                               : _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(lo, p), even,
                                                        _mm512_maskz_loadu_ps(hi, p + 16));
      const __mmask16 gt = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
      best = _mm512_mask_mov_ps(best, gt, v);
      where = _mm512_mask_mov_epi32(where, gt, _mm512_add_epi32(_mm512_set1_epi32(r * w + c0 + q), step));
    }
  _mm512_mask_storeu_ps(y, lanes, best);
  _mm512_mask_storeu_epi64(at, __mmask8(lanes), _mm512_cvtepi32_epi64(_mm512_castsi512_si256(where)));
  _mm512_mask_storeu_epi64(at + 8, __mmask8(lanes >> 8), _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(where, 1)));
}
#endif
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
        int j = jlo;
#if defined(__AVX512F__)
        // Training (argmax), float, column stride 1 or 2: 16 windows at a time; planes whose flat indices fit in
        // 32 bits.
        if constexpr (std::is_same_v<T, float>) {
          if (ar && (s.stride_w == 1 || s.stride_w == 2) && in_plane < (std::ptrdiff_t(1) << 31))
            for (; j < jhi; j += 16)
              detail::window_max16(xp, s.w, r0, r1, j * s.stride_w - s.pad_w, s.kw, s.stride_w,
                                   std::min(16, jhi - j), yr + j, ar + j);
        }
#endif
        for (; j < jhi; ++j) edge(j);
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
