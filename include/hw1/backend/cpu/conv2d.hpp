// Conv2d on the CPU as GEMMs: per image, Y[cout, P] = W[cout, cin*kh*kw] * im2col(X)[cin*kh*kw, P] (P = output
// pixels). The column matrix is built one block of positions at a time, so that it stays in cache between im2col
// and GEMM and its size is bounded at any image size; a 1x1, stride 1, unpadded conv reads X directly. Images
// with few positions are batched instead: one GEMM covers a group of images' columns side by side.
// Parallelism: with enough (image, block) pieces each thread takes whole pieces; otherwise each thread takes a
// share of the channels of every piece. Either way the GEMMs run single-threaded. Threads wait on each other only
// when a few batched groups are shared by the team (two barriers per group, for the shared column matrix).
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "hw1/backend/cpu/conv2d_shape.hpp"
#include "hw1/backend/cpu/gemm.hpp"
#include "hw1/backend/cpu/pgemm.hpp"
#include "hw1/backend/cpu/trace.hpp"
#include "hw1/backend/cpu/winograd.hpp"
#include "hw1/backend/cpu/winograd4.hpp"
#include "hw1/core/error.hpp"

namespace hw1::cpu {

namespace detail {

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

// Small images (the batched groups below) go through an index table instead: tab[t * m + q] is the offset, from
// the group's first image, of the input pixel that kernel tap t (= ki * kw + kj) reads at column q (image q / P,
// position q % P) of a channel's plane, or -1 where the window reads padding. One table per call serves every
// channel, so im2col and col2im become flat gathers and scatters with no per-row bookkeeping (at 2x2 or 4x4
// images the row-by-row copies above spent more time in their loop control than in moving data).
using TabIndex = std::int32_t;  // offsets within a group (image_groups keeps a group's input below 2^31 values)

inline const TabIndex* group_table(const ColGeom& g, Index ni, Index xs) {
  const Index P = g.cols(), m = ni * P, kk = Index(g.kh) * g.kw;
  TabIndex* tab = scratch<TabIndex, 3>(std::size_t(kk * m));
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
// y[i] = a[i] + r[i], then max(y[i], 0) when relu, for i < n; a may be y, r overlaps neither.
template <class T>
void add_relu(T* y, const T* a, const T* __restrict r, Index n, bool relu) {
  if (relu)
    for (Index i = 0; i < n; ++i) y[i] = std::max(a[i] + r[i], T(0));
  else
    for (Index i = 0; i < n; ++i) y[i] = a[i] + r[i];
}

#if defined(__AVX512F__)
// The batched column matrix of a 1x1, stride-1 convolution: column q = (image j, position p) of channel r's row is
// x[j][r][p], so each 16-lane vector of a B panel's row is a few contiguous runs (one per image it crosses) that
// masked loads merge. Run i of vector v (of the m columns rounded up to whole panels): lanes `mask`, lane l read
// at d + l (from the channel's plane in the group's first image). Masked lanes are not read, so d + l may fall
// outside x for them.
struct LaneRun {
  Index d;
  __mmask16 mask;
};
struct PointwiseRuns {
  std::vector<LaneRun> runs;
  std::vector<Index> first;  // vector v's runs: [first[v], first[v + 1])
  PointwiseRuns(Index P, Index m, Index xs) : first(1, 0) {
    for (Index q0 = 0; q0 < pgemm::panel_count(m) * pgemm::kNR; q0 += 16) {
      for (Index q = q0; q < std::min(m, q0 + 16);) {
        const Index j = q / P, end = std::min({m, q0 + 16, (j + 1) * P});
        runs.push_back({j * xs + q % P - (q - q0), __mmask16(lane_mask(end - q0) & ~lane_mask(q - q0))});
        q = end;
      }
      first.push_back(Index(runs.size()));
    }
  }
};
// Rows [r0, r1) of the k x m column matrix of such a convolution over a group of images, into B panels.
inline void pack_pointwise(const float* x, Index plane, Index k, Index m, const PointwiseRuns& pr, Index r0,
                           Index r1, float* bp) {
  for (Index v = 0; v * 16 < pgemm::panel_count(m) * pgemm::kNR; ++v) {
    const LaneRun *begin = pr.runs.data() + pr.first[v], *end = pr.runs.data() + pr.first[v + 1];
    float* d = bp + (v / 2 * k + r0) * pgemm::kNR + v % 2 * 16;
    for (Index r = r0; r < r1; ++r, d += pgemm::kNR) {
      const float* src = x + r * plane;
      __m512 a = _mm512_setzero_ps();
      for (const LaneRun* q = begin; q < end; ++q) a = _mm512_mask_loadu_ps(a, q->mask, src + q->d);
      _mm512_storeu_ps(d, a);
    }
  }
}
#endif

#if defined(__AVX512F__)
// A 3x3, stride-1, padding-1 convolution of 2x2 planes (ResNet's layer3 at 32x32 input) reads every input pixel
// q at every output position p, through tap (qy - py + 1, qx - px + 1): 16 multiply-adds per channel pair and
// image, none of them wasted on padding. So one GEMM does it with no column matrix: with each image's input a row
// of C * 4 values and its output a row of O * 4, Y[n, (o, p)] = X[n, (c, q)] * Wd[(c, q), (o, p)], Wd holding
// scale[o] * w[o][c][tap(p, q)]. X is read in place, Y written in place (shift, residual and ReLU in the GEMM's
// epilogue); Wd, 16 * C * O values like Winograd's transformed weights, is packed per call, each thread its own
// columns. Winograd computes the same 16 products per tile but also transforms inputs and outputs (measured
// against it and the batched direct path: docs/performance.md).
inline bool dense_2x2(const Conv2dShape& s) {
  return s.kh == 3 && s.kw == 3 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 1 && s.pad_w == 1 &&
         s.dil_h == 1 && s.dil_w == 1 && s.h == 2 && s.w == 2 && pgemm::enabled();
}
// tap(p, q) of conv3x3_dense_2x2 at index q * 4 + p (positions row-major in the 2x2 plane).
constexpr int kDenseTap[16] = {4, 3, 1, 0, 5, 4, 2, 1, 7, 6, 4, 3, 8, 7, 5, 4};
// With flip, the convolution with the flipped, transposed kernel (dX = conv(dY, W'), W'[c][o][i][j] =
// w[o][c][2 - i][2 - j], w being [cin][cout][3][3] for s then).
inline void conv3x3_dense_2x2(const Conv2dShape& s, const float* x, const float* w, const float* scale,
                              const float* shift, bool relu, float* y, const float* res, bool flip = false) {
  const Index C = s.cin, O = s.cout, K = 4 * C, N = 4 * O, np = pgemm::panel_count(N);
  const __m512i tap = flip ? _mm512_sub_epi32(_mm512_set1_epi32(8), _mm512_loadu_si512(kDenseTap))
                           : _mm512_loadu_si512(kDenseTap);
  std::vector<float> col_shift(shift ? std::size_t(N) : 0);
  for (Index j = 0; shift && j < N; ++j) col_shift[std::size_t(j)] = shift[j / 4];
#pragma omp parallel
  {
    const Index t = thread_id(), nt = team_size(), j0 = np * t / nt, j1 = np * (t + 1) / nt;
    if (j0 < j1) {
      float* bp = scratch<float, 9>(std::size_t(pgemm::packed_size(K, (j1 - j0) * pgemm::kNR)));
      // Panel j (8 output channels x 4 positions), row (c, q): the 4 positions' taps of w[o][c] for each o.
      for (Index j = j0; j < j1; ++j)
        for (Index ol = 0; ol < 8; ++ol) {
          const Index o = j * 8 + ol;
          float* panel = bp + (j - j0) * K * pgemm::kNR + ol * 4;
          if (o >= O) {
            for (Index k = 0; k < K; ++k) _mm_storeu_ps(panel + k * pgemm::kNR, _mm_setzero_ps());
            continue;
          }
          const __m512 a = _mm512_set1_ps(scale ? scale[o] : 1.f);
          for (Index c = 0; c < C; ++c) {
            const float* taps = w + (flip ? c * O + o : o * C + c) * 9;
            const __m512 v = _mm512_mul_ps(a, _mm512_permutexvar_ps(tap, _mm512_maskz_loadu_ps(0x1FF, taps)));
            float* row = panel + c * 4 * pgemm::kNR;
            _mm_storeu_ps(row, _mm512_castps512_ps128(v));
            _mm_storeu_ps(row + pgemm::kNR, _mm512_extractf32x4_ps(v, 1));
            _mm_storeu_ps(row + 2 * pgemm::kNR, _mm512_extractf32x4_ps(v, 2));
            _mm_storeu_ps(row + 3 * pgemm::kNR, _mm512_extractf32x4_ps(v, 3));
          }
        }
      const Index c0 = j0 * pgemm::kNR, cols = std::min(N, j1 * pgemm::kNR) - c0;
      const pgemm::Epilogue ep{nullptr, nullptr, relu, res, y, shift ? col_shift.data() + c0 : nullptr};
      const bool epilogue = relu || res || shift;
      pgemm::gemm(s.n, cols, K, x, K, false, bp, y + c0, N, false, epilogue ? &ep : nullptr);
    }
  }
}

// dw += dL/dw of that convolution: the same GEMM transposed, dWd[(c, q), (o, p)] = sum over images of
// x[n][c][q] * dy[n][o][p] (x read in place as the transposed A, dy packed as B), then each tap of dw[o][c] gets
// the dWd entries that read through it (4 for the centre, 2 for an edge, 1 for a corner). Each thread takes whole
// input channels (4 rows each).
inline void conv3x3_dense_2x2_weight_grad(const Conv2dShape& s, const float* x, const float* dy, float* dw) {
  const Index C = s.cin, O = s.cout, K = 4 * C, N = 4 * O;
  // The fold: lane t of sum over q of maskz_permutexvar(fold_mask[q], fold_idx[q], v) is the sum of v's entries
  // (index q * 4 + p) with tap t.
  alignas(64) std::int32_t fold_idx[4][16] = {};
  __mmask16 fold_mask[4] = {0, 0, 0, 0};
  for (int q = 0; q < 4; ++q)
    for (int p = 0; p < 4; ++p) {
      fold_idx[q][kDenseTap[q * 4 + p]] = q * 4 + p;
      fold_mask[q] = __mmask16(fold_mask[q] | (1u << kDenseTap[q * 4 + p]));
    }
#pragma omp parallel
  {
    const Index t = thread_id(), nt = team_size(), c0 = C * t / nt, c1 = C * (t + 1) / nt;
    if (c0 < c1) {
      float* bp = scratch<float, 9>(std::size_t(pgemm::packed_size(s.n, N)));
      pgemm::pack_rows(dy, N, s.n, N, 0, s.n, bp);
      float* d = scratch<float, 13>(std::size_t((c1 - c0) * 4 * N));
      pgemm::gemm((c1 - c0) * 4, N, s.n, x + c0 * 4, K, true, bp, d, N, false);
      __m512i idx[4];
      for (int q = 0; q < 4; ++q) idx[q] = _mm512_load_si512(fold_idx[q]);
      for (Index c = c0; c < c1; ++c)
        for (Index o = 0; o < O; ++o) {
          const float* at = d + ((c - c0) * 4 * N) + o * 4;  // row (c, q) at + q * N
          const __m512 v = _mm512_insertf32x4(
              _mm512_insertf32x4(_mm512_insertf32x4(_mm512_castps128_ps512(_mm_loadu_ps(at)), _mm_loadu_ps(at + N), 1),
                                 _mm_loadu_ps(at + 2 * N), 2),
              _mm_loadu_ps(at + 3 * N), 3);
          __m512 sum = _mm512_maskz_permutexvar_ps(fold_mask[0], idx[0], v);
          for (int q = 1; q < 4; ++q) sum = _mm512_add_ps(sum, _mm512_maskz_permutexvar_ps(fold_mask[q], idx[q], v));
          float* out = dw + (o * C + c) * 9;
          _mm512_mask_storeu_ps(out, 0x1FF, _mm512_add_ps(_mm512_maskz_loadu_ps(0x1FF, out), sum));
        }
    }
  }
}
#endif

// A stride-1 convolution whose output plane has the input's size (ResNet's 3x3, padding 1) reads, at kernel tap t,
// the input pixel p + shift(t) for output pixel p, or padding. With a channel's planes of the group's images laid
// side by side (cn), its column-matrix row for tap t is then cn shifted by shift(t), masked where the table says
// padding: one masked load per 16 columns instead of a 16-lane gather (which costs several times more).
inline bool shifted_rows(const ColGeom& g) {
  return g.sh == 1 && g.sw == 1 && g.oh == g.h && g.ow == g.w && !g.pointwise();
}
#if defined(__AVX512F__)
namespace shifted {
// The offset from output pixel p to the input pixel that kernel tap t reads (shifted_rows geometries).
inline Index tap_shift(const ColGeom& g, Index t) {
  return (t / g.kw * g.dh - g.ph) * g.w + (t % g.kw * g.dw - g.pw);
}
// Lanes [q, q + 16) below m whose table entry (tap row `valid`) reads inside the image.
inline __mmask16 inside(const TabIndex* valid, Index q, Index m) {
  const __mmask16 tail = lane_mask(m - q);
  return _mm512_mask_cmpge_epi32_mask(tail, _mm512_maskz_loadu_epi32(tail, valid + q), _mm512_setzero_si512());
}
}  // namespace shifted

template <class Out>
void im2col_shifted(const ColGeom& g, const TabIndex* tab, Index m, const float* x, Index xs, Index r0, Index r1,
                    const Out& out) {
  if (r0 >= r1) return;
  const Index kk = Index(g.kh) * g.kw, P = g.plane(), c0 = r0 / kk, c1 = (r1 - 1) / kk + 1;
  float* cn = scratch<float, 8>(std::size_t((c1 - c0) * m));
  for (Index c = c0; c < c1; ++c)
    for (Index j = 0; j * P < m; ++j) copy_short(x + j * xs + c * P, P, cn + (c - c0) * m + j * P);
  for (Index r = r0; r < r1; ++r) {
    const Index t = r % kk;
    const float* src = cn + (r / kk - c0) * m + shifted::tap_shift(g, t);  // lanes leaving the row are masked off
    const TabIndex* valid = tab + t * m;
    float* d = out.row(r);
    for (Index q = 0; q < m; q += 16)
      _mm512_mask_storeu_ps(d + q, lane_mask(m - q), _mm512_maskz_loadu_ps(shifted::inside(valid, q, m), src + q));
    out.done(r, d);
  }
}

// The adjoint of im2col_shifted: dx[j][c] = sum over taps of the column rows of channels [c0, c1) (col rows ld
// apart, starting at c0's), shifted back; dx is overwritten for those channels of the group's images.
inline void col2im_shifted(const ColGeom& g, const TabIndex* tab, Index m, const float* col, Index ld, Index c0,
                           Index c1, float* dx, Index xs) {
  const Index kk = Index(g.kh) * g.kw, P = g.plane();
  float* dcn = scratch<float, 8>(std::size_t(m));
  for (Index c = c0; c < c1; ++c) {
    std::fill_n(dcn, m, 0.f);
    for (Index t = 0; t < kk; ++t) {
      const float* src = col + ((c - c0) * kk + t) * ld;
      const TabIndex* valid = tab + t * m;
      float* d = dcn + shifted::tap_shift(g, t);  // lane q adds to dcn[q + shift] wherever the table says inside
      for (Index q = 0; q < m; q += 16) {
        const __mmask16 in = shifted::inside(valid, q, m);
        const __m512 sum = _mm512_add_ps(_mm512_maskz_loadu_ps(in, d + q), _mm512_maskz_loadu_ps(in, src + q));
        _mm512_mask_storeu_ps(d + q, in, sum);
      }
    }
    for (Index j = 0; j * P < m; ++j) copy_short(dcn + j * P, P, dx + j * xs + c * P);
  }
}
#endif

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

// Positions per block: about kBlockElems column-matrix entries (2 MiB of float) stay in a core's L2 between
// im2col and the GEMM that reads them; at least kMinCols so that W's repacking per GEMM stays cheap. Measured
// best of 2^18..2^21 x 128..512 on ResNet, VGG and DeepLab shapes.
inline Index block_cols(Index rows, Index cols) {
  constexpr Index kBlockElems = Index(1) << 19, kMinCols = 512;
  return std::clamp(kBlockElems / std::max<Index>(rows, 1), std::min(kMinCols, cols), cols);
}

// The packed GEMM's blocks instead (conv2d_forward on float): at most kPackedCols positions, a multiple of the panel
// width where the image is split, by kPackedRows column-matrix rows at a time.
constexpr Index kPackedCols = 512, kPackedRows = pgemm::kKC;
inline Index packed_block_cols(Index cols) {
  if (cols <= kPackedCols) return cols;
  const Index blocks = (cols + kPackedCols - 1) / kPackedCols, per = (cols + blocks - 1) / blocks;
  return (per + pgemm::kNR - 1) / pgemm::kNR * pgemm::kNR;
}

// Images with few output positions are batched: a piece covers a group of consecutive images whose column
// matrices sit side by side, so that its GEMM has about block_cols columns (ResNet's last stages at 32x32 have
// 1-4 positions per image, and GEMMs that narrow spent their time repacking W). Groups split the batch evenly.
struct Groups {
  Index n, count, most;  // images, groups, most images in one group (1: no grouping)
  Index begin(Index i) const { return n * i / count; }
};
// xs: values per input image; a group's input stays addressable by TabIndex.
inline Groups image_groups(Index n, Index rows, Index cols, Index xs) {
  constexpr Index kGroupBelow = 256;  // positions per image from which one image fills a GEMM by itself
  if (n == 1 || cols >= kGroupBelow) return {n, n, 1};
  const Index per = std::min(n, (block_cols(rows, n * cols) + cols - 1) / cols);
  const Index count = (n + per - 1) / per, most = (n + count - 1) / count;
  if (most * xs > Index(std::numeric_limits<TabIndex>::max())) return {n, n, 1};
  return {n, count, most};
}

// Whether `items` independent pieces keep all threads evenly busy with one piece per thread at a time.
inline bool split_items(Index items, int threads) {
  return threads > 1 && items >= threads && (items % threads == 0 || items >= 4 * Index(threads));
}

// The calling thread's share [first, second) of n things split evenly over the team.
inline std::pair<Index, Index> my_share(Index n) {
  const Index t = thread_id(), nt = team_size();
  return {n * t / nt, n * (t + 1) / nt};
}

// Runs piece(i, o0, o1) for items i over channels [o0, o1) of `channels`: whole pieces per thread when there are
// enough, else each thread takes its share of the channels of every piece.
template <class F>
void for_pieces(Index items, Index channels, F&& piece) {
  if (split_items(items, max_threads())) {
#pragma omp parallel for schedule(static)
    for (Index i = 0; i < items; ++i) piece(i, Index(0), channels);
  } else {
#pragma omp parallel
    {
      const auto [o0, o1] = my_share(channels);
      for (Index i = 0; i < items; ++i) piece(i, o0, o1);
    }
  }
}

// The backward counterpart: piece(i, c0, c1, dW) over input channels [c0, c1), dW being `dw` itself (channel
// split: threads own disjoint columns of it) or the thread's zeroed partial sum (whole pieces per thread), the
// partials then added in thread order so that a given thread count always gives the same bits.
template <class T, class F>
void for_backward_pieces(Index items, Index channels, T* dw, Index dw_size, F&& piece) {
  // Per-thread partial sums cost a zero fill, a second copy and a reduction of dW: worth it for ordinary layers,
  // not for huge weights (FCN32s' fc6 is 4096 x 512 x 7 x 7, 411 MB), which split their channels instead.
  constexpr Index kMaxPartial = Index(1) << 20;
  if (split_items(items, max_threads()) && (!dw || dw_size <= kMaxPartial)) {
    std::vector<T*> partial(std::size_t(max_threads()), nullptr);
#pragma omp parallel
    {
      T* mine = nullptr;
      if (dw) {
        mine = scratch<T, 1>(std::size_t(dw_size));
        std::fill_n(mine, dw_size, T(0));
        partial[std::size_t(thread_id())] = mine;
      }
#pragma omp for schedule(static)
      for (Index i = 0; i < items; ++i) piece(i, Index(0), channels, mine);
      if (dw) reduce_partials(partial, dw, dw_size);
    }
  } else {
#pragma omp parallel
    {
      const auto [c0, c1] = my_share(channels);
      for (Index i = 0; i < items; ++i) piece(i, c0, c1, dw);
    }
  }
}

// out[ch] += sum of t[img, ch, :] over images (the bias gradient), split over channels.
template <class T>
void add_channel_sums(const T* t, Index n, Index c, Index plane, T* out) {
#pragma omp parallel for schedule(static) if (n * c * plane > (Index(1) << 15))
  for (Index ch = 0; ch < c; ++ch) {
    // A plain loop in a fixed order: Eigen's vectorised sum() depends on the buffer's alignment, which would make
    // two identical runs (e.g. a resumed and an uninterrupted training) differ in the last bits.
    double s = 0;
    for (Index i = 0; i < n; ++i) {
      const T* p = t + (i * c + ch) * plane;
      for (Index j = 0; j < plane; ++j) s += double(p[j]);
    }
    out[ch] += T(s);
  }
}

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

}  // namespace detail

namespace detail {
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
  const Index kh = t.s.kh, kw = t.s.kw;
  for (Index oc = 0; oc < Index(s.cout) * s.cin; ++oc)
    for (Index i = 0; i < kh; ++i)
      for (Index j = 0; j < kw; ++j) f((oc * s.kh + t.r0 + i) * s.kw + t.c0 + j, (oc * kh + i) * kw + j);
}

// Whether conv2d_forward multiplies through the packed GEMM (pgemm.hpp): float on AVX-512, unless HW1_PGEMM=0.
template <class T>
bool packed_forward() {
  if constexpr (std::is_same_v<T, float>)
    return pgemm::enabled();
  else
    return false;
}
}  // namespace detail

// x [n,cin,h,w]; w [cout,cin,kh,kw]; y [n,cout,out_h,out_w] is overwritten with, per output channel o,
// act(scale[o] * (conv(x, w) + bias[o]) + shift[o] + res), act = ReLU when relu, else identity; bias, scale,
// shift and res (shaped like y, not aliasing it) may each be null (0, 1, 0, 0). A convolution followed by batch
// norm in inference (scale = gamma / sqrt(var + eps), shift = beta - mean * scale), a residual add and ReLU, in
// one pass over y.
template <class T>
void conv2d_forward_fused(const Conv2dShape& s, const T* x, const T* w, const T* bias, const T* scale,
                          const T* shift, bool relu, T* y, const T* res = nullptr);

namespace detail {
// conv2d_forward_fused with W's rows ldw apart (0: the kernel's K = cin * kh * kw values, i.e. contiguous);
// ldw > K only for 1x1, stride-1 convolutions on the packed path (conv2d_backward's dX through W^T).
template <class T>
void forward(const Conv2dShape& s, const T* x, const T* w, Index ldw, const T* bias, const T* scale,
             const T* shift, bool relu, T* y, const T* res) {
  detail::check(s);
  if (detail::Trim t; detail::trim(s, t)) {
    T* w2 = scratch<T, 14>(std::size_t(s.cout) * s.cin * t.s.kh * t.s.kw);
    detail::for_trimmed(s, t, [&](Index full, Index part) { w2[part] = w[full]; });
    return forward(t.s, x, static_cast<const T*>(w2), Index(0), bias, scale, shift, relu, y, res);
  }
  const detail::ColGeom g = detail::geom(s);
  const Index K = g.rows(), P = g.cols(), xs = Index(s.cin) * g.plane();
  const bool packed = detail::packed_forward<T>();
  Index ld = ldw ? ldw : K;
  // The bias goes into the shift: act(scale * acc + (shift + scale * bias)).
  std::vector<T> folded;
  if (bias) {
    folded.resize(std::size_t(s.cout));
    for (int o = 0; o < s.cout; ++o) folded[o] = (shift ? shift[o] : T(0)) + (scale ? scale[o] : T(1)) * bias[o];
    shift = folded.data();
  }
  if constexpr (std::is_same_v<T, float>) {
#if defined(__AVX512F__)
    if (detail::dense_2x2(s)) return count(Algo::fwd_dense2x2), detail::conv3x3_dense_2x2(s, x, w, scale, shift, relu, y, res);
#endif
    if (winograd::worthwhile4_forward(s)) return count(Algo::fwd_f4), winograd::forward4(s, x, w, scale, shift, relu, y, res);
    if (winograd::worthwhile(s)) return count(Algo::fwd_f2), winograd::forward(s, x, w, scale, shift, relu, y, res);
  }
  count(Algo::fwd_gemm);
  const detail::Groups gr = detail::image_groups(s.n, K, P, xs);
  // Rows of W a multiple of 512 floats apart make pgemm copy W's blocks on every call (its aliasing note): with
  // more than one call here, W is copied once instead, to rows 16 floats longer (ResNet's 1x1 convolutions of
  // 512-2048 channels: 8 images at 14x14 copied the 1 MiB W per image).
  if (packed && ld % 512 == 0 && (gr.count > 1 || P > detail::kPackedCols)) {
    const Index ld2 = ld + 16;
    T* w2 = scratch<T, 17>(std::size_t(s.cout * ld2));
#pragma omp parallel for schedule(static)
    for (Index o = 0; o < s.cout; ++o) std::copy_n(w + o * ld, K, w2 + o * ld2);
    w = w2, ld = ld2;
  }
  // On the batched path the GEMM writes a scratch matrix that is then copied into y: the residual, and so the
  // ReLU after it, wait for that copy.
  const bool late = res && gr.most > 1, gemm_relu = relu && !late;
  const bool epilogue = scale || shift || gemm_relu || (res && !late);
  // C's rows are output channels o0, o0 + 1, ...: the epilogue on them (fallback path; pgemm does it in its
  // kernel). C lies in y unless late.
  const auto finish_rows = [&](Index o0, Index rows, Index m, T* c, Index ldc) {
    if (!epilogue) return;
    for (Index o = 0; o < rows; ++o) {
      const T a = scale ? scale[o0 + o] : T(1), b = shift ? shift[o0 + o] : T(0);
      T* r = c + o * ldc;
      const T* add = res && !late ? res + (r - y) : nullptr;
      for (Index p = 0; p < m; ++p) {
        const T v = r[p] * a + b + (add ? add[p] : T(0));
        r[p] = gemm_relu ? std::max(v, T(0)) : v;
      }
    }
  };
  [[maybe_unused]] const auto epilogue_at = [&](Index o0) {
    return pgemm::Epilogue{scale ? reinterpret_cast<const float*>(scale + o0) : nullptr,
                           shift ? reinterpret_cast<const float*>(shift + o0) : nullptr, gemm_relu,
                           res && !late ? reinterpret_cast<const float*>(res) : nullptr,
                           reinterpret_cast<const float*>(y)};
  };
  // The column matrix of m columns: row-major K x m, or B panels (im2col writes them directly).
  const auto col_size = [&](Index m) { return std::size_t(packed ? pgemm::packed_size(K, m) : K * m); };
  // C[rows, m] (rows ldc apart) = epilogue(W[o0 : o0 + rows] * col); a row-major col has rows ldb apart.
  const auto multiply_col = [&](Index o0, Index rows, Index m, const T* col, Index ldb, T* c, Index ldc) {
    if constexpr (std::is_same_v<T, float>) {
      if (packed) {
        const pgemm::Epilogue ep = epilogue_at(o0);
        return pgemm::gemm(rows, m, K, w + o0 * ld, ld, false, col, c, ldc, false, epilogue ? &ep : nullptr);
      }
    }
    gemm(mat(c, rows, m, ldc), mat(w + o0 * ld, rows, K, ld), mat(col, K, m, ldb), false);
    finish_rows(o0, rows, m, c, ldc);
  };
#if defined(__AVX512F__)
  // A 1x1, stride-1 convolution's batched column matrix through masked loads (PointwiseRuns), for groups of
  // `most` and `most - 1` images, where the images have 4 to 64 positions (the range where it beat the copies of
  // im2col_table per layer: docs/performance.md).
  std::optional<detail::PointwiseRuns> pw[2];
  if constexpr (std::is_same_v<T, float>) {
    if (packed && g.pointwise() && gr.most > 1 && P >= 4 && P <= 64) {
      pw[0].emplace(P, gr.most * P, xs);
      pw[1].emplace(P, (gr.most - 1) * P, xs);
    }
  }
#endif
  // Column-matrix rows [r0, r1) of group i's m columns (batched path), written to col.
  const auto build_group = [&](const detail::TabIndex* tab, Index m, const T* xg, Index r0, Index r1, T* col) {
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>) {
      if (pw[0]) return detail::pack_pointwise(xg, P, K, m, *pw[m == gr.most * P ? 0 : 1], r0, r1, col);
      if (packed && detail::shifted_rows(g))
        return detail::im2col_shifted(g, tab, m, xg, xs, r0, r1,
                                      detail::PanelsOut<T>{col, K, m, scratch<T, 6>(std::size_t(m))});
    }
#endif
    if (packed)
      detail::im2col_table(g, tab, m, xg, xs, r0, r1, detail::PanelsOut<T>{col, K, m, scratch<T, 6>(std::size_t(m))});
    else
      detail::im2col_table(g, tab, m, xg, xs, r0, r1, detail::RowsOut<T>{col, 0, m});
  };
  if (gr.most > 1) {
    // Group i (images [n0, n0 + ni)), output channels [o0, o1): Yg = W[o0:o1] * [col(X[n0]) ... col(X[n0+ni-1])],
    // then each image's P columns (+ bias) go to its place in y.
    auto multiply = [&](Index i, Index o0, Index o1, const T* col) {
      const Index n0 = gr.begin(i), ni = gr.begin(i + 1) - n0, m = ni * P, no = o1 - o0;
      T* yg = scratch<T, 1>(std::size_t(no * m));
      multiply_col(o0, no, m, col, m, yg, m);
      for (Index j = 0; j < ni; ++j) {
        // Image n0 + j's output channels [o0, o1) are one stretch of y. Late: with planes of 16 positions and more
        // each plane gets its + res and ReLU as it is copied; smaller ones are copied, then the whole stretch gets
        // them in one pass (ResNet's 2x2 planes at 32x32: measured in docs/performance.md).
        const Index at = ((n0 + j) * s.cout + o0) * P;
        for (Index o = 0; o < no; ++o) {
          T* dst = y + at + o * P;
          if (late && P >= 16)
            detail::add_relu(dst, yg + o * m + j * P, res + at + o * P, P, relu);
          else
            copy_short(yg + o * m + j * P, P, dst);
        }
        if (late && P < 16) detail::add_relu(y + at, y + at, res + at, no * P, relu);
      }
    };
    if (detail::split_items(gr.count, max_threads())) {  // whole groups per thread
#pragma omp parallel for schedule(static)
      for (Index i = 0; i < gr.count; ++i) {
        const Index n0 = gr.begin(i), ni = gr.begin(i + 1) - n0, m = ni * P;
        T* col = scratch<T, 0>(col_size(m));
        build_group(detail::group_table(g, ni, xs), m, x + n0 * xs, 0, K, col);
        multiply(i, 0, s.cout, col);
      }
    } else {
      // Too few groups: the team builds each group's column matrix together (a share of its rows each), then
      // each thread multiplies its share of the output channels; the barriers keep the shared buffer consistent.
      T* col = scratch<T, 4>(col_size(gr.most * P));
#pragma omp parallel
      {
        const auto [o0, o1] = detail::my_share(s.cout);
        const auto [r0, r1] = detail::my_share(K);
        for (Index i = 0; i < gr.count; ++i) {
          const Index n0 = gr.begin(i), ni = gr.begin(i + 1) - n0, m = ni * P;
          if (r0 < r1) build_group(detail::group_table(g, ni, xs), m, x + n0 * xs, r0, r1, col);
#pragma omp barrier
          if (o0 < o1) multiply(i, o0, o1, col);
#pragma omp barrier
        }
      }
    }
    return;
  }
  const Index bc = packed ? detail::packed_block_cols(P) : detail::block_cols(K, P), nb = (P + bc - 1) / bc;
  // Piece i = (image, block of positions), output channels [o0, o1):
  // Y[o0:o1, p0:p0+m] = W[o0:o1] * im2col(X)[:, p0:p0+m] + bias.
  detail::for_pieces(Index(s.n) * nb, s.cout, [&](Index i, Index o0, Index o1) {
    if (o0 >= o1) return;
    const Index n = i / nb, p0 = i % nb * bc, m = std::min(P, p0 + bc) - p0;
    const T* xn = x + n * xs;
    T* yp = y + (n * s.cout + o0) * P + p0;
    if (!packed) {
      if (g.pointwise()) return multiply_col(o0, o1 - o0, m, xn + p0, P, yp, P);  // X (rows P apart) is col
      T* col = scratch<T, 0>(std::size_t(K * m));
      detail::im2col(g, xn, p0, p0 + m, 0, K, col);
      return multiply_col(o0, o1 - o0, m, col, m, yp, P);
    }
    if constexpr (std::is_same_v<T, float>) {
      // The column matrix a block of kPackedRows rows at a time (so that it stays in L2 while every output
      // channel's row uses it), each written straight into panels and multiplied into Y; the epilogue with the
      // last block.
      const pgemm::Epilogue ep = epilogue_at(o0);
      for (Index r0 = 0; r0 < K; r0 += detail::kPackedRows) {
        const Index kb = std::min(detail::kPackedRows, K - r0);
        T* col = scratch<T, 0>(std::size_t(pgemm::packed_size(kb, m)));
        if (g.pointwise())
          pgemm::pack_rows(xn + r0 * P + p0, P, kb, m, 0, kb, col);
        else
          detail::im2col(g, xn, p0, p0 + m, r0, r0 + kb,
                         detail::PanelsOut<T>{col, kb, m, scratch<T, 6>(std::size_t(m)), r0});
        const bool last = r0 + kb >= K;
        pgemm::gemm(o1 - o0, m, kb, w + o0 * ld + r0, ld, false, col, yp, P, r0 > 0, last && epilogue ? &ep : nullptr);
      }
    }
  });
}
}  // namespace detail

template <class T>
void conv2d_forward_fused(const Conv2dShape& s, const T* x, const T* w, const T* bias, const T* scale,
                          const T* shift, bool relu, T* y, const T* res) {
  detail::forward(s, x, w, Index(0), bias, scale, shift, relu, y, res);
}

// Conv2d: y = conv(x, w) + bias (bias may be null).
template <class T>
void conv2d_forward(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  conv2d_forward_fused<T>(s, x, w, bias, nullptr, nullptr, false, y);
}

// dy [n,cout,out_h,out_w]. dx is overwritten (nullptr: skip). dw [cout,cin,kh,kw] and db [cout] are accumulated
// (+=); nullptr skips each.
template <class T>
void conv2d_backward(const Conv2dShape& s, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db) {
  detail::check(s);
  if (detail::Trim t; detail::trim(s, t)) {  // dead taps get no gradient
    const std::size_t n2 = std::size_t(s.cout) * s.cin * t.s.kh * t.s.kw;
    T* w2 = scratch<T, 14>(n2);
    T* dw2 = dw ? scratch<T, 15>(n2) : nullptr;
    detail::for_trimmed(s, t, [&](Index full, Index part) { w2[part] = w[full]; });
    if (dw2) std::fill_n(dw2, n2, T(0));
    conv2d_backward(t.s, x, static_cast<const T*>(w2), dy, dx, dw2, db);
    if (dw2) detail::for_trimmed(s, t, [&](Index full, Index part) { dw[full] += dw2[part]; });
    return;
  }
  const detail::ColGeom g = detail::geom(s);
  const Index K = g.rows(), P = g.cols(), kk = Index(s.kh) * s.kw, plane = g.plane();
  const Index xs = Index(s.cin) * plane, ys = Index(s.cout) * P, bc = detail::block_cols(K, P);
  if (db) detail::add_channel_sums(dy, s.n, s.cout, P, db);
  if constexpr (std::is_same_v<T, float>) {
#if defined(__AVX512F__)
    if (detail::dense_2x2(s)) {  // dX and dW as whole-image GEMMs (conv3x3_dense_2x2)
      const Conv2dShape t{s.n, s.cout, 2, 2, s.cin, 3, 3, 1, 1, 1, 1, 1, 1};
      if (dx) count(Algo::dx_dense2x2), detail::conv3x3_dense_2x2(t, dy, w, nullptr, nullptr, false, dx, nullptr, true);
      if (dw) count(Algo::dw_dense2x2), detail::conv3x3_dense_2x2_weight_grad(s, x, dy, dw);
      return;
    }
#endif
    // 1x1, stride-1 convolutions of 100+ positions per image take both gradients on the packed GEMM.
    const bool packed_1x1 = g.pointwise() && P >= 100 && detail::packed_forward<T>();
    // dX is then the forward of the 1x1 convolution from cout to cin channels with weights W^T: W transposed once
    // (rows not a multiple of 512 floats apart, see pgemm.hpp), then the forward's packed GEMMs and image groups.
    if (dx && packed_1x1) {
      const Index ld = s.cout % 512 ? s.cout : s.cout + 16;
      T* wt = scratch<T, 18>(std::size_t(s.cin * ld));
#pragma omp parallel for schedule(static)
      for (Index c0 = 0; c0 < s.cin; c0 += 16)
        for (Index o0 = 0; o0 < s.cout; o0 += 16)
          for (Index c = c0; c < std::min<Index>(s.cin, c0 + 16); ++c)
            for (Index o = o0; o < std::min<Index>(s.cout, o0 + 16); ++o) wt[c * ld + o] = w[o * s.cin + c];
      const Conv2dShape t{s.n, s.cout, s.h, s.w, s.cin, 1, 1, 1, 1, 0, 0, 1, 1};
      detail::forward<T>(t, dy, wt, ld, nullptr, nullptr, nullptr, false, dx, nullptr);
      recount(Algo::fwd_gemm, Algo::dx_packed1x1);  // a gradient, computed as a forward
      dx = nullptr;
    }
#if defined(__AVX512F__)
    // dW: dW += dY_n X_n^T per image, dY_n read in place as A and X_n^T packed by 16 x 16 transposes,
    // pgemm::kKC positions at a time. Each thread owns its share of the input channels (columns of dW) over the
    // whole batch: no partial sums to zero and add up.
    if (dw && packed_1x1) {
#pragma omp parallel
      {
        const auto [c0, c1] = detail::my_share(s.cin);
        T* col = scratch<T, 0>(std::size_t(pgemm::packed_size(std::min(P, pgemm::kKC), c1 - c0)));
        for (Index n = 0; n < s.n && c0 < c1; ++n)
          for (Index p0 = 0; p0 < P; p0 += pgemm::kKC) {
            const Index kb = std::min(pgemm::kKC, P - p0);
            pgemm::pack_transposed(x + n * xs + c0 * P + p0, P, c1 - c0, kb, col);
            pgemm::gemm(s.cout, c1 - c0, kb, dy + n * ys + p0, P, false, col, dw + c0, K, true);
          }
      }
      count(Algo::dw_packed1x1);
      dw = nullptr;
    }
#endif
    if (dw && winograd::worthwhile_weight_grad(s)) {
      winograd::weight_grad(s, x, dy, dw);
      count(Algo::dw_f2);
      dw = nullptr;
    }
    // dX of a 3x3 stride-1 convolution is itself one: dY through the flipped, transposed kernel
    // W'[c][o][2 - i][2 - j] = W[o][c][i][j] with padding 2 * dilation - padding, which Winograd computes. Not
    // on small planes (below 10x10), whose batched direct path below builds dY's and X's column matrices for dW
    // anyway: there the separate pass measured slower on a whole ResNet101 step (docs/performance.md).
    Conv2dShape t{s.n, s.cout, g.oh, g.ow, s.cin, 3, 3, 1, 1, 2 * s.dil_h - s.pad_h, 2 * s.dil_w - s.pad_w,
                  s.dil_h, s.dil_w};
    if (dx && Index(s.h) * s.w >= 100 && t.pad_h >= 0 && t.pad_w >= 0 && winograd::worthwhile(t) &&
        t.out_h() == s.h && t.out_w() == s.w) {
      // F(4x4) only on request (HW1_WINOGRAD4=train, winograd4.hpp).
      if (winograd::worthwhile4_input_grad(t))
        count(Algo::dx_f4), winograd::forward4(t, dy, w, nullptr, nullptr, false, dx, nullptr, true);  // W' in place
      else
        count(Algo::dx_f2), winograd::forward(t, dy, w, nullptr, nullptr, false, dx, nullptr, true);
      dx = nullptr;
    }
  }
  if (!dx && !dw) return;
  if (dx) count(Algo::dx_gemm);
  if (dw) count(Algo::dw_gemm);
  const detail::Groups gr = detail::image_groups(s.n, K, P, xs);
  if (gr.most > 1) {
    // Group i (images [n0, n0 + ni)), input channels [c0, c1) (column rows [r0, r0 + nr)), with dYg and colg the
    // group's dY and column matrices side by side: dW[:, rows] += dYg * colg^T, dX = col2im(W[:, rows]^T * dYg).
    auto gather_dy = [&](Index i, Index o0, Index o1, T* dyg) {  // dYg[o0:o1] of group i
      const Index n0 = gr.begin(i), ni = gr.begin(i + 1) - n0, m = ni * P;
      for (Index j = 0; j < ni; ++j)
        for (Index o = o0; o < o1; ++o) copy_short(dy + (n0 + j) * ys + o * P, P, dyg + o * m + j * P);
    };
    auto piece = [&](Index i, Index c0, Index c1, T* dW, const T* dyg) {
      const Index n0 = gr.begin(i), ni = gr.begin(i + 1) - n0, m = ni * P, r0 = c0 * kk, nr = (c1 - c0) * kk;
      const auto dY = mat(dyg, s.cout, m);
      T* col = scratch<T, 0>(std::size_t(nr * m));
      const detail::TabIndex* tab = detail::group_table(g, ni, xs);
      // Stride-1 same-size convolutions of float: shifted copies instead of gathers and scatters (im2col_shifted).
      [[maybe_unused]] bool shifted = false;
#if defined(__AVX512F__)
      if constexpr (std::is_same_v<T, float>) shifted = detail::shifted_rows(g);
#endif
      if (dW) {
#if defined(__AVX512F__)
        if constexpr (std::is_same_v<T, float>) {
          if (shifted)
            detail::im2col_shifted(g, tab, m, x + n0 * xs, xs, r0, r0 + nr, detail::RowsOut<T>{col, r0, m});
        }
#endif
        if (!shifted) detail::im2col_table(g, tab, m, x + n0 * xs, xs, r0, r0 + nr, col, m);
        gemm(mat(dW + r0, s.cout, nr, K), dY, mat(static_cast<const T*>(col), nr, m).transpose(), true);
      }
      if (dx) {
        gemm(mat(col, nr, m), mat(w + r0, s.cout, nr, K).transpose(), dY, false);
#if defined(__AVX512F__)
        if constexpr (std::is_same_v<T, float>) {
          if (shifted) return detail::col2im_shifted(g, tab, m, col, m, c0, c1, dx + n0 * xs, xs);
        }
#endif
        for (Index j = 0; j < ni; ++j) std::fill_n(dx + (n0 + j) * xs + c0 * plane, (c1 - c0) * plane, T(0));
        detail::col2im_table(g, tab, m, static_cast<const T*>(col), c0, c1, dx + n0 * xs, m);
      }
    };
    if (detail::split_items(gr.count, max_threads())) {  // whole groups per thread, dW in per-thread partials
      detail::for_backward_pieces(gr.count, s.cin, dw, s.cout * K, [&](Index i, Index c0, Index c1, T* dW) {
        T* dyg = scratch<T, 2>(std::size_t(s.cout * (gr.begin(i + 1) - gr.begin(i)) * P));
        gather_dy(i, 0, s.cout, dyg);
        piece(i, c0, c1, dW, dyg);
      });
    } else {
      // Too few groups: the team gathers each group's dY together, then each thread takes its input channels
      // (its own columns of dw, so no partial sums).
      T* dyg = scratch<T, 5>(std::size_t(s.cout * gr.most * P));
#pragma omp parallel
      {
        const auto [o0, o1] = detail::my_share(s.cout);
        const auto [c0, c1] = detail::my_share(s.cin);
        for (Index i = 0; i < gr.count; ++i) {
          gather_dy(i, o0, o1, dyg);
#pragma omp barrier
          if (c0 < c1) piece(i, c0, c1, dw, dyg);
#pragma omp barrier
        }
      }
    }
    return;
  }
  // Image n, input channels [c0, c1) (column rows [r0, r0 + nr)), block by block: dW[:, rows] += dY * cols^T and
  // dX[c0:c1] = col2im(W[:, rows]^T * dY). dW has rows K apart (dw itself, or a thread's partial sum).
  detail::for_backward_pieces(Index(s.n), s.cin, dw, s.cout * K, [&](Index n, Index c0, Index c1, T* dW) {
    if (c0 >= c1) return;
    const Index r0 = c0 * kk, nr = (c1 - c0) * kk, nc = c1 - c0;
    const T* xc = x + n * xs + c0 * plane;
    T* dxc = dx ? dx + n * xs + c0 * plane : nullptr;
    if (dxc && !g.pointwise()) std::fill_n(dxc, nc * plane, T(0));
    const auto Wr = mat(w + r0, s.cout, nr, K);
    for (Index p0 = 0; p0 < P; p0 += bc) {
      const Index m = std::min(P, p0 + bc) - p0;
      const auto dY = mat(dy + n * ys + p0, s.cout, m, P);
      if (g.pointwise()) {
        if (dW) gemm(mat(dW + r0, s.cout, nr, K), dY, mat(xc + p0, nc, m, P).transpose(), true);
        if (dxc) gemm(mat(dxc + p0, nc, m, P), Wr.transpose(), dY, false);
        continue;
      }
      T* col = scratch<T, 0>(std::size_t(nr * m));
      if (dW) {
        detail::im2col(g, x + n * xs, p0, p0 + m, r0, r0 + nr, col);
        gemm(mat(dW + r0, s.cout, nr, K), dY, mat(static_cast<const T*>(col), nr, m).transpose(), true);
      }
      if (dxc) {
        gemm(mat(col, nr, m), Wr.transpose(), dY, false);
        detail::col2im(g, static_cast<const T*>(col), p0, p0 + m, c0, c1, dx + n * xs);
      }
    }
  });
}

}  // namespace hw1::cpu
