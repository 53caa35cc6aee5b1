// Two faster builders of a batched group's column matrix on AVX-512 (float): the masked-load runs of a 1x1,
// stride-1 convolution (PointwiseRuns) and the shifted rows of a stride-1 "same" convolution (im2col_shifted /
// col2im_shifted). Where each is taken: conv/gemm_forward.hpp and conv/gemm_backward.hpp.
#pragma once
#include <algorithm>
#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "hw1/backend/cpu/conv/im2col.hpp"
#include "hw1/backend/cpu/gemm.hpp"
#include "hw1/backend/cpu/pgemm.hpp"

namespace hw1::cpu::detail {

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
  float* cn = scratch<float, Slot::shifted_planes>(std::size_t((c1 - c0) * m));
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
  float* dcn = scratch<float, Slot::shifted_planes>(std::size_t(m));
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

}  // namespace hw1::cpu::detail
