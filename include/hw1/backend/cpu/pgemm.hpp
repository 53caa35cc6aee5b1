// hw1's own single-precision GEMM for the convolutions: C[M,N] = A[M,K] * B[K,N] (or += C, then optionally a
// per-row affine map and ReLU: a convolution's bias, and batch norm in inference, fused into its output), with
// B in "panels" (below) and A read in place, row-major or transposed, with no packing of A at all.
//
// Why not OpenBLAS here: a convolution's B is the column matrix that im2col writes anyway, so im2col writes it
// straight into the panel layout that the micro-kernel streams, where a BLAS would copy it once more into its own
// layout on every call; and A is the weight matrix, which a BLAS also copies on every call although the narrow
// GEMMs of small images (ResNet at 32x32: 64-256 columns) cannot amortise that copy. The micro-kernel broadcasts
// A's entries straight from its rows (14 rows, each read sequentially) against two AVX-512 vectors of a B panel,
// into 28 accumulators. Measured single-threaded on this project's machine (2048-wide and conv-shaped GEMMs), it
// runs at or above OpenBLAS 0.3.21's SkylakeX sgemm, and well above it on narrow ones.
//
// Available for float on CPUs compiled for AVX-512F (enabled() says whether the kernels use it; HW1_PGEMM=0 in
// the environment turns it off, which is how the tests also cover the fallback path). Single-threaded: callers
// split the work (conv2d.hpp does, per thread).
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "hw1/backend/cpu/gemm.hpp"

namespace hw1::cpu::pgemm {

// B panels: a K x N matrix is stored as ceil(N / kNR) panels, panel j holding columns [j*kNR, j*kNR + kNR) as K
// rows of kNR values (row r of panel j at p + (j*K + r) * kNR). Columns past N in the last panel are zero.
constexpr Index kNR = 32;
constexpr Index kMR = 14;   // rows of A per micro-kernel call
constexpr Index kKC = 256;  // K block: a panel's kKC x kNR block (32 KiB) stays in L1 while the rows of an M block use it
constexpr Index kMC = 112;  // M block: kMC x kKC of A (168 KiB) stays in L2 across the panels

inline Index panel_count(Index n) { return (n + kNR - 1) / kNR; }
inline Index packed_size(Index k, Index n) { return panel_count(n) * k * kNR; }

// Whether the packed kernels exist in this build and are not turned off (HW1_PGEMM=0 / off).
inline bool enabled() {
#if defined(__AVX512F__)
  static const bool on = !env_off("HW1_PGEMM");
  return on;
#else
  return false;
#endif
}

// Row r of a packed k x n matrix gets src[0, n); the last panel's columns past n get zeros.
template <class T>
inline void put_row_padded(T* bp, Index k, Index r, const T* src, Index n) {
  for (Index q = 0, j = 0; q < n; q += kNR, ++j) {
    T* d = bp + (j * k + r) * kNR;
    const Index len = std::min(kNR, n - q);
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>) {  // masked loads read zeros past len
      _mm512_storeu_ps(d, _mm512_maskz_loadu_ps(lane_mask(len), src + q));
      _mm512_storeu_ps(d + 16, _mm512_maskz_loadu_ps(lane_mask(len - 16), src + q + 16));
      continue;
    }
#endif
    std::copy_n(src + q, len, d);
    std::fill(d + len, d + kNR, T(0));
  }
}
// Packs rows [r0, r1) of the row-major k x n matrix b (rows ldb apart) into bp.
template <class T>
inline void pack_rows(const T* b, Index ldb, Index k, Index n, Index r0, Index r1, T* bp) {
  for (Index r = r0; r < r1; ++r) put_row_padded(bp, k, r, b + r * ldb, n);
}

#if defined(__AVX512F__)
namespace detail {
// r[i] = row i of a 16 x 16 block, transposed in place (r[i] becomes column i).
inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {  // per 128-bit lane: a0 b0 a1 b1 / a2 b2 a3 b3 of rows 2i, 2i + 1
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // r[4i + q], lane L: rows 4i..4i+3 of column 4L + q
    r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int q = 0; q < 4; ++q) {  // column 4L + q gathers lane L of r[q], r[4 + q], r[8 + q], r[12 + q]
    const __m512 s0 = _mm512_shuffle_f32x4(r[q], r[4 + q], 0x88), s1 = _mm512_shuffle_f32x4(r[q], r[4 + q], 0xDD);
    const __m512 s2 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0x88);
    const __m512 s3 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0xDD);
    t[q] = _mm512_shuffle_f32x4(s0, s2, 0x88);
    t[8 + q] = _mm512_shuffle_f32x4(s0, s2, 0xDD);
    t[4 + q] = _mm512_shuffle_f32x4(s1, s3, 0x88);
    t[12 + q] = _mm512_shuffle_f32x4(s1, s3, 0xDD);
  }
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}
}  // namespace detail

// Packs the transpose of the row-major n x k matrix b (rows ldb apart): the k x n matrix whose row r holds column
// r of b (a 1x1 convolution's X^T, for its weight gradient), in panels, 16 x 16 blocks at a time.
inline void pack_transposed(const float* b, Index ldb, Index n, Index k, float* bp) {
  for (Index c0 = 0; c0 < n; c0 += 16) {
    const Index nc = std::min<Index>(16, n - c0);
    float* d = bp + (c0 / kNR * k) * kNR + c0 % kNR;
    for (Index r0 = 0; r0 < k; r0 += 16) {
      const Index nr = std::min<Index>(16, k - r0);
      const __mmask16 m = lane_mask(nr);
      __m512 v[16];
      for (Index i = 0; i < 16; ++i)
        v[i] = i < nc ? _mm512_maskz_loadu_ps(m, b + (c0 + i) * ldb + r0) : _mm512_setzero_ps();
      detail::transpose16(v);
      for (Index i = 0; i < nr; ++i) _mm512_storeu_ps(d + (r0 + i) * kNR, v[i]);
    }
  }
  if (const Index half = (n + 15) / 16; half % 2)  // the last panel's second half, past n: zeros
    for (Index r = 0; r < k; ++r) _mm512_storeu_ps(bp + ((half / 2) * k + r) * kNR + 16, _mm512_setzero_ps());
}
#endif

// What happens to row i of C once its sum is complete: v -> v * scale[i] + shift[i], + col_shift[j] in column j,
// then + the matching entry of a residual array laid out like C (a ResNet block's shortcut: C's entry at
// c_base + d reads residual[d]), then max(v, 0) with relu. Null scale / shift / col_shift / residual leave that
// step out.
struct Epilogue {
  const float* scale = nullptr;
  const float* shift = nullptr;
  bool relu = false;
  const float* residual = nullptr;
  const float* c_base = nullptr;
  const float* col_shift = nullptr;
};

#if defined(__AVX512F__)
namespace detail {

// c[mr x nc] (rows ldc apart; nc <= 32 valid columns) = or += A[mr x kc] * Bpanel[kc x 32], then, with an
// epilogue, row i mapped to max(0, row * scale[i] + shift[i]) (scale, shift, the ReLU each optional). A's entry
// (i, k) is at a[i * lda + k], or a[k * lda + i] when ATrans.
template <int MR, bool ATrans>
__attribute__((noinline)) void kernel(Index kc, const float* __restrict a, Index lda, const float* __restrict b,
                                      float* c, Index ldc, Index nc, bool add, const Epilogue* ep, Index row0) {
  __m512 c0[MR], c1[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) c0[i] = c1[i] = _mm512_setzero_ps();
  for (Index k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(ATrans ? a[k * lda + i] : a[i * lda + k]);
      c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
    }
    b += kNR;
  }
  const __mmask16 m0 = lane_mask(nc), m1 = lane_mask(nc - 16);
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
    if (add) {
      c0[i] = _mm512_add_ps(c0[i], _mm512_maskz_loadu_ps(m0, ci));
      c1[i] = _mm512_add_ps(c1[i], _mm512_maskz_loadu_ps(m1, ci + 16));
    }
    if (ep) {
      if (ep->scale) {
        const __m512 si = _mm512_set1_ps(ep->scale[row0 + i]);
        c0[i] = _mm512_mul_ps(c0[i], si);
        c1[i] = _mm512_mul_ps(c1[i], si);
      }
      if (ep->shift) {
        const __m512 hi = _mm512_set1_ps(ep->shift[row0 + i]);
        c0[i] = _mm512_add_ps(c0[i], hi);
        c1[i] = _mm512_add_ps(c1[i], hi);
      }
      if (ep->col_shift) {  // this panel's columns (gemm() moves the pointer along)
        c0[i] = _mm512_add_ps(c0[i], _mm512_maskz_loadu_ps(m0, ep->col_shift));
        c1[i] = _mm512_add_ps(c1[i], _mm512_maskz_loadu_ps(m1, ep->col_shift + 16));
      }
      if (ep->residual) {
        const float* ri = ep->residual + (ci - ep->c_base);
        c0[i] = _mm512_add_ps(c0[i], _mm512_maskz_loadu_ps(m0, ri));
        c1[i] = _mm512_add_ps(c1[i], _mm512_maskz_loadu_ps(m1, ri + 16));
      }
      if (ep->relu) {
        c0[i] = _mm512_max_ps(c0[i], _mm512_setzero_ps());
        c1[i] = _mm512_max_ps(c1[i], _mm512_setzero_ps());
      }
    }
    _mm512_mask_storeu_ps(ci, m0, c0[i]);
    _mm512_mask_storeu_ps(ci + 16, m1, c1[i]);
  }
}

// Rows [i, i + mr) of one (M block, panel, K block) tile in micro-kernel calls; row 0 of the tile is row row0 of
// C (the epilogue's index). Calls of 14 rows, then the rest in one call of 4-14 rows, or two of 7-9: never one of
// 1-3 rows where there are more (those keep only 2-6 accumulators, too few to cover the FMA latency; measured in
// docs/performance.md).
template <bool ATrans>
void rows(Index mr, Index kc, const float* a, Index lda, const float* b, float* c, Index ldc, Index nc, bool add,
          const Epilogue* ep, Index row0) {
  Index i = 0;
  auto call = [&]<int R>(std::integral_constant<int, R>) {
    kernel<R, ATrans>(kc, ATrans ? a + i : a + i * lda, lda, b, c + i * ldc, ldc, nc, add, ep, row0 + i);
    i += R;
  };
  auto tail = [&]<int... R>(Index r, std::integer_sequence<int, R...>) {  // one call of r = 1..14 rows
    ((r == R + 1 ? call(std::integral_constant<int, R + 1>{}) : void()), ...);
  };
  while (mr - i >= kMR && (mr - i == kMR || mr - i - kMR >= 4)) call(std::integral_constant<int, int(kMR)>{});
  const Index r = mr - i;  // 0, 1-3 (mr itself), 4-13, or 15-17
  if (r > kMR) {
    tail(r - 8, std::make_integer_sequence<int, int(kMR)>{});
    call(std::integral_constant<int, 8>{});
  } else if (r > 0) {
    tail(r, std::make_integer_sequence<int, int(kMR)>{});
  }
}

}  // namespace detail
#endif

// C[M,N] (rows ldc apart) = A[M,K] * B, or C += A * B when accumulate; then the epilogue (ep may be null) on every
// row of the result. B is packed (K x N panels, above). A's entry (i, k) is at a[i * lda + k], or at a[k * lda + i]
// when a_trans. Call only where enabled().
inline void gemm(Index M, Index N, Index K, const float* a, Index lda, bool a_trans, const float* bp, float* c,
                 Index ldc, bool accumulate, const Epilogue* ep = nullptr) {
#if defined(__AVX512F__)
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    for (Index i = 0; i < M; ++i)
      for (Index j = 0; j < N; ++j) {
        float v = accumulate ? c[i * ldc + j] : 0.f;
        if (ep) {
          v = v * (ep->scale ? ep->scale[i] : 1.f) + (ep->shift ? ep->shift[i] : 0.f) +
              (ep->col_shift ? ep->col_shift[j] : 0.f);
          if (ep->residual) v += ep->residual[c + i * ldc + j - ep->c_base];
          if (ep->relu) v = std::max(v, 0.f);
        }
        c[i * ldc + j] = v;
      }
    return;
  }
  const Index np = panel_count(N);
  // Rows of A a multiple of 2 KiB apart (K = 512, 1024, 2048... floats: ResNet's 1x1 convolutions) fall in the
  // same few L1 sets, and the 14 rows a micro-kernel streams then evict each other: such blocks are first copied
  // to rows kKC + 16 apart.
  constexpr Index kCopyLd = kKC + 16;
  const bool copy = !a_trans && lda % 512 == 0;
  float* acopy = copy ? scratch<float, Slot::pgemm_a_copy>(std::size_t(kMC * kCopyLd)) : nullptr;
  for (Index pc = 0; pc < K; pc += kKC) {
    const Index kc = std::min(kKC, K - pc);
    const bool add = accumulate || pc > 0;
    const Epilogue* e = pc + kc >= K ? ep : nullptr;  // once the sums are complete
    for (Index ic = 0; ic < M; ic += kMC) {
      const Index mc = std::min(kMC, M - ic);
      const float* ab = a_trans ? a + pc * lda + ic : a + ic * lda + pc;
      Index ld = lda;
      if (copy) {
        for (Index i = 0; i < mc; ++i) std::memcpy(acopy + i * kCopyLd, ab + i * lda, sizeof(float) * std::size_t(kc));
        ab = acopy, ld = kCopyLd;
      }
      for (Index j = 0; j < np; ++j) {
        const float* bj = bp + (j * K + pc) * kNR;
        float* cj = c + ic * ldc + j * kNR;
        const Index nc = std::min(kNR, N - j * kNR);
        Epilogue panel_ep;  // with a column shift: the panel's part of it
        if (e && e->col_shift) {
          panel_ep = *e;
          panel_ep.col_shift += j * kNR;
        }
        const Epilogue* ej = e && e->col_shift ? &panel_ep : e;
        if (a_trans)
          detail::rows<true>(mc, kc, ab, ld, bj, cj, ldc, nc, add, ej, ic);
        else
          detail::rows<false>(mc, kc, ab, ld, bj, cj, ldc, nc, add, ej, ic);
      }
    }
  }
#else
  (void)M, (void)N, (void)K, (void)a, (void)lda, (void)a_trans, (void)bp, (void)c, (void)ldc, (void)accumulate,
      (void)ep;
#endif
}

}  // namespace hw1::cpu::pgemm
