// The column matrix of a convolution and its adjoint: im2col / col2im row by row for large images, and through
// an index table for batched groups of small ones. Shared by the GEMM algorithms of conv2d and conv_transpose2d.
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "hw1/backend/cpu/conv2d_shape.hpp"
#include "hw1/backend/cpu/gemm.hpp"
#include "hw1/backend/cpu/pgemm.hpp"

namespace hw1::cpu::detail {

// An image [c, h, w] read through a kh x kw window (stride, padding, dilation) at oh x ow positions is the column
// matrix [c*kh*kw, oh*ow]. ConvTranspose2d uses the same view with its input and output swapped.
struct ColGeom {
  int c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow;
  Index rows() const { return Index(c) * kh * kw; }
  Index cols() const { return Index(oh) * ow; }
  Index plane() const { return Index(h) * w; }
  // The window then reads the image itself: [c, h*w] already is the column matrix.
  bool pointwise() const {
    return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0 && oh == h && ow == w;
  }
};

inline ColGeom geom(const Conv2dShape& s) {
  return {s.cin, s.h, s.w, s.kh, s.kw, s.stride_h, s.stride_w, s.pad_h, s.pad_w, s.dil_h, s.dil_w,
          s.out_h(), s.out_w()};
}

// Output columns [lo, hi) at which kernel column kj reads inside the image (input column ox*sw + off).
struct Span {
  int lo, hi, off;
};
inline Span valid_span(const ColGeom& g, int kj) {
  const int off = kj * g.dw - g.pw;
  const int lo = off >= 0 ? 0 : (-off + g.sw - 1) / g.sw;
  const int hi = off <= g.w - 1 ? std::min(g.ow, (g.w - 1 - off) / g.sw + 1) : 0;
  return {std::min(lo, hi), hi, off};
}

// Visits positions [p0, p1) one output row at a time: f(oy, ox0, ox1, index of (oy, ox0) within the block).
template <class F>
void for_out_rows(const ColGeom& g, Index p0, Index p1, F&& f) {
  for (Index p = p0; p < p1;) {
    const int oy = int(p / g.ow), ox0 = int(p % g.ow);
    const int ox1 = int(std::min<Index>(g.ow, ox0 + (p1 - p)));
    f(oy, ox0, ox1, p - p0);
    p += ox1 - ox0;
  }
}

// Where im2col writes column-matrix row r: into a row-major matrix whose first row is r0 (rows ld apart), or into
// the B panels of the packed GEMM (pgemm.hpp) of the k x n block of rows [r0, r0 + k). Whole rows go through
// row(r), filled, then done(r, row): for panels a one-row buffer that done() copies to the row's place in each
// panel.
// Both also take a row in pieces: run(r, at, len, f) calls f(d, i, n) for each stretch of columns
// [at + i, at + i + n) that lies contiguous at d (one for rows, one per panel crossed), and finish(r) completes
// row r (the zero columns past n in the last panel).
template <class T>
struct RowsOut {
  T* col;
  Index r0, ld;
  T* row(Index r) const { return col + (r - r0) * ld; }
  void done(Index, const T*) const {}
  template <class F>
  void run(Index r, Index at, Index len, F&& f) const {
    f(row(r) + at, Index(0), len);
  }
  void finish(Index) const {}
};
template <class T>
struct PanelsOut {
  T* bp;
  Index k, n;
  T* buf;  // n values, the calling thread's
  Index r0 = 0;
  T* row(Index) const { return buf; }
  void done(Index r, const T* d) const { pgemm::put_row_padded(bp, k, r - r0, d, n); }
  template <class F>
  void run(Index r, Index at, Index len, F&& f) const {
    for (Index i = 0; i < len;) {
      const Index q = at + i, within = q % pgemm::kNR, take = std::min(len - i, pgemm::kNR - within);
      f(bp + ((q / pgemm::kNR) * k + (r - r0)) * pgemm::kNR + within, i, take);
      i += take;
    }
  }
  void finish(Index r) const {
    if (n % pgemm::kNR == 0) return;
    T* last = bp + ((n / pgemm::kNR) * k + (r - r0)) * pgemm::kNR;
    std::fill(last + n % pgemm::kNR, last + pgemm::kNR, T(0));
  }
};

// Rows r in [r0, r1) of the column matrix at positions [p0, p1), written through out, one output row's stretch
// at a time (no intermediate row buffer).
template <class T, class Out>
void im2col(const ColGeom& g, const T* img, Index p0, Index p1, Index r0, Index r1, const Out& out) {
  for (Index r = r0; r < r1; ++r) {
    const int kj = int(r % g.kw), ki = int(r / g.kw % g.kh);
    const T* src = img + r / (Index(g.kh) * g.kw) * g.plane();
    const Span s = valid_span(g, kj);
    for_out_rows(g, p0, p1, [&](int oy, int ox0, int ox1, Index at) {
      const int iy = oy * g.sh - g.ph + ki * g.dh;
      const T* row = iy < 0 || iy >= g.h ? nullptr : src + Index(iy) * g.w;
      out.run(r, at, ox1 - ox0, [&](T* d, Index i, Index n) {  // d[ox - a] is position (oy, ox), ox in [a, b)
        const int a = ox0 + int(i), b = a + int(n);
        if (!row) return std::fill(d, d + n, T(0));
        const int lo = std::clamp(s.lo, a, b), hi = std::clamp(s.hi, a, b);
        std::fill(d, d + (lo - a), T(0));
        if (g.sw == 1)
          copy_short(row + lo + s.off, hi - lo, d + (lo - a));
        else if (hi > lo)
          copy_strided(row + Index(lo) * g.sw + s.off, g.sw, hi - lo, d + (lo - a));
        std::fill(d + (hi - a), d + n, T(0));
      });
    });
    out.finish(r);
  }
}
// col[r - r0][p - p0] (rows p1 - p0 long).
template <class T>
void im2col(const ColGeom& g, const T* img, Index p0, Index p1, Index r0, Index r1, T* col) {
  im2col(g, img, p0, p1, r0, r1, RowsOut<T>{col, r0, p1 - p0});
}

// The adjoint of im2col: img[c] += every column entry that reads it, for channels [c0, c1), whose rows start at
// col. Different channels touch different planes, so channel ranges may run in parallel.
template <class T>
void col2im(const ColGeom& g, const T* col, Index p0, Index p1, Index c0, Index c1, T* img) {
  const Index m = p1 - p0, kk = Index(g.kh) * g.kw;
  for (Index r = c0 * kk; r < c1 * kk; ++r) {
    const int kj = int(r % g.kw), ki = int(r / g.kw % g.kh);
    T* dst = img + r / kk * g.plane();
    const T* src = col + (r - c0 * kk) * m;
    const Span s = valid_span(g, kj);
    for_out_rows(g, p0, p1, [&](int oy, int ox0, int ox1, Index at) {
      const int iy = oy * g.sh - g.ph + ki * g.dh;
      if (iy < 0 || iy >= g.h) return;
      const T* c = src + at;  // c[ox - ox0]
      T* row = dst + Index(iy) * g.w;
      const int lo = std::clamp(s.lo, ox0, ox1), hi = std::clamp(s.hi, ox0, ox1);
      if (g.sw == 1) {  // contiguous: vectorises
        T* __restrict d = row + s.off;
        const T* __restrict src = c - ox0;
        for (int ox = lo; ox < hi; ++ox) d[ox] += src[ox];
      } else if (hi > lo) {
        add_strided(c + (lo - ox0), g.sw, hi - lo, row + Index(lo) * g.sw + s.off);
      }
    });
  }
}

// Small images (the batched groups of conv/work_split.hpp) go through an index table instead: tab[t * m + q] is the offset, from
// the group's first image, of the input pixel that kernel tap t (= ki * kw + kj) reads at column q (image q / P,
// position q % P) of a channel's plane, or -1 where the window reads padding. One table per call serves every
// channel, so im2col and col2im become flat gathers and scatters with no per-row bookkeeping (at 2x2 or 4x4
// images the row-by-row copies above spent more time in their loop control than in moving data).
using TabIndex = std::int32_t;  // offsets within a group (image_groups keeps a group's input below 2^31 values)

inline const TabIndex* group_table(const ColGeom& g, Index ni, Index xs) {
  const Index P = g.cols(), m = ni * P, kk = Index(g.kh) * g.kw;
  TabIndex* tab = scratch<TabIndex, Slot::group_table>(std::size_t(kk * m));
  for (Index t = 0; t < kk; ++t) {
    const int ki = int(t / g.kw), kj = int(t % g.kw);
    TabIndex* row = tab + t * m;
    for (Index p = 0; p < P; ++p) {
      const int oy = int(p / g.ow), ox = int(p % g.ow);
      const int iy = oy * g.sh - g.ph + ki * g.dh, ix = ox * g.sw - g.pw + kj * g.dw;
      row[p] = iy >= 0 && iy < g.h && ix >= 0 && ix < g.w ? TabIndex(Index(iy) * g.w + ix) : -1;
    }
    for (Index j = 1; j < ni; ++j)
      for (Index p = 0; p < P; ++p) row[j * P + p] = row[p] < 0 ? -1 : TabIndex(row[p] + j * xs);
  }
  return tab;
}

// dst[q] = src[t[q]] (0 where t[q] < 0), q < m; with AVX-512, 16 lanes per masked gather.
template <class T>
inline void gather_row(const T* src, const TabIndex* t, Index m, T* dst) {
  Index q = 0;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    const __m512i zero = _mm512_setzero_si512();
    for (; q + 16 <= m; q += 16) {
      const __m512i idx = _mm512_loadu_si512(t + q);
      const __mmask16 valid = _mm512_cmpge_epi32_mask(idx, zero);
      _mm512_storeu_ps(dst + q, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), valid, idx, src, 4));
    }
  }
#endif
  for (; q < m; ++q) dst[q] = t[q] >= 0 ? src[t[q]] : T(0);
}

// dst[t[q]] += src[q] where t[q] >= 0. Within one row the targets are distinct (one kernel tap maps different
// positions to different pixels), so 16 lanes can gather, add and scatter at once.
template <class T>
inline void scatter_add_row(const T* src, const TabIndex* t, Index m, T* dst) {
  Index q = 0;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    const __m512i zero = _mm512_setzero_si512();
    for (; q + 16 <= m; q += 16) {
      const __m512i idx = _mm512_loadu_si512(t + q);
      const __mmask16 valid = _mm512_cmpge_epi32_mask(idx, zero);
      const __m512 cur = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), valid, idx, dst, 4);
      _mm512_mask_i32scatter_ps(dst, valid, idx, _mm512_add_ps(cur, _mm512_loadu_ps(src + q)), 4);
    }
  }
#endif
  for (; q < m; ++q)
    if (t[q] >= 0) dst[t[q]] += src[q];
}

// Column-matrix rows [r0, r1) of the group whose first image is at x (images xs apart), written through out.
template <class T, class Out>
void im2col_table(const ColGeom& g, const TabIndex* tab, Index m, const T* x, Index xs, Index r0, Index r1,
                  const Out& out) {
  const Index kk = Index(g.kh) * g.kw, plane = g.plane(), P = g.cols();
  for (Index r = r0; r < r1; ++r) {
    if (g.pointwise()) {  // column q = (image j, position p) reads x[j][r][p]: plain copies to their places
      for (Index j = 0; j * P < m; ++j)
        out.run(r, j * P, P, [&](T* d, Index i, Index n) { copy_short(x + j * xs + r * plane + i, n, d); });
      out.finish(r);
      continue;
    }
    T* d = out.row(r);
    gather_row(x + r / kk * plane, tab + r % kk * m, m, d);
    out.done(r, d);
  }
}

// col[r - r0][q] (rows ld apart).
template <class T>
void im2col_table(const ColGeom& g, const TabIndex* tab, Index m, const T* x, Index xs, Index r0, Index r1, T* col,
                  Index ld) {
  im2col_table(g, tab, m, x, xs, r0, r1, RowsOut<T>{col, r0, ld});
}

// The adjoint: dx[...] += col entries, for the rows of channels [c0, c1) (col rows ld apart, starting at c0's).
template <class T>
void col2im_table(const ColGeom& g, const TabIndex* tab, Index m, const T* col, Index c0, Index c1, T* dx,
                  Index ld) {
  const Index kk = Index(g.kh) * g.kw, plane = g.plane();
  for (Index r = c0 * kk; r < c1 * kk; ++r)
    scatter_add_row(col + (r - c0 * kk) * ld, tab + r % kk * m, m, dx + r / kk * plane);
}

}  // namespace hw1::cpu::detail
