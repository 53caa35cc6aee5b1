// Algorithms fwd_dense2x2, dx_dense2x2, dw_dense2x2: a 3x3, stride-1, padding-1 convolution of 2x2 planes as one
// GEMM over whole images (float, AVX-512).
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "hw1/backend/cpu/conv2d_shape.hpp"
#include "hw1/backend/cpu/gemm.hpp"
#include "hw1/backend/cpu/pgemm.hpp"

namespace hw1::cpu::detail {

// Whether a convolution is one conv3x3_dense_2x2 computes (below): 3x3, stride 1, padding 1, dilation 1, on 2x2
// planes, with the packed GEMM available.
inline bool dense_2x2(const Conv2dShape& s) {
#if defined(__AVX512F__)
  return s.kh == 3 && s.kw == 3 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 1 && s.pad_w == 1 &&
         s.dil_h == 1 && s.dil_w == 1 && s.h == 2 && s.w == 2 && pgemm::enabled();
#else
  (void)s;
  return false;
#endif
}

#if defined(__AVX512F__)
// A 3x3, stride-1, padding-1 convolution of 2x2 planes (ResNet's layer3 at 32x32 input) reads every input pixel
// q at every output position p, through tap (qy - py + 1, qx - px + 1): 16 multiply-adds per channel pair and
// image, none of them wasted on padding. So one GEMM does it with no column matrix: with each image's input a row
// of C * 4 values and its output a row of O * 4, Y[n, (o, p)] = X[n, (c, q)] * Wd[(c, q), (o, p)], Wd holding
// scale[o] * w[o][c][tap(p, q)]. X is read in place, Y written in place (shift, residual and ReLU in the GEMM's
// epilogue); Wd, 16 * C * O values like Winograd's transformed weights, is packed per call, each thread its own
// columns. Winograd computes the same 16 products per tile but also transforms inputs and outputs (measured
// against it and the batched direct path: docs/performance.md).
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
      float* bp = scratch<float, Slot::dense_panels>(std::size_t(pgemm::packed_size(K, (j1 - j0) * pgemm::kNR)));
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
      float* bp = scratch<float, Slot::dense_panels>(std::size_t(pgemm::packed_size(s.n, N)));
      pgemm::pack_rows(dy, N, s.n, N, 0, s.n, bp);
      float* d = scratch<float, Slot::dense_products>(std::size_t((c1 - c0) * 4 * N));
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

}  // namespace hw1::cpu::detail
