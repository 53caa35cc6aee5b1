// Winograd F(2x2, 3x3) for the 3x3, stride-1 convolutions (any padding, any dilation), float on AVX-512.
//
// A 3x3 convolution computes 9 multiply-adds per output and input channel. Winograd's minimal filtering
// algorithm (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016) computes a 2x2 tile of
// outputs from the 4x4 input patch d under it as Y = A^T [(G g G^T) . (B^T d B)] A: 16 products per tile, 4 per
// output, so 2.25x fewer multiply-adds. Over channels the elementwise product becomes 16 independent GEMMs,
// M_xi[o, tile] = sum_c U_xi[o, c] * V_xi[c, tile] (xi = one of the 16 transform points), which run on the packed
// GEMM of pgemm.hpp; the transforms around them are small and vectorised 16 tiles per AVX-512 register.
//
// Dilation d: a tile is then the outputs (oy, ox), (oy, ox + d), (oy + d, ox), (oy + d, ox + d), and its patch is
// the input at rows oy - pad + {0, d, 2d, 3d} (likewise columns): the same identity on a sub-grid. Tile origins
// along an axis are the positions t with t mod 2d < d; a tile whose second output falls past the edge computes it
// and drops it (utilization() counts that waste, and conv2d only takes this path where it is small).
//
// Accuracy: B, G and A have entries 0, +-1 and +-1/2, so the result differs from the direct sum only by float
// rounding of a few more additions (the tests bound it against a double-precision loop). HW1_WINOGRAD=0 in the
// environment turns the path off (and HW1_PGEMM=0, which it builds on).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "hw1/backend/cpu/conv/tuning.hpp"
#include "hw1/backend/cpu/conv2d_shape.hpp"
#include "hw1/backend/cpu/gemm.hpp"
#include "hw1/backend/cpu/pgemm.hpp"

namespace hw1::cpu::winograd {

// Tiles of m outputs (2 here, 4 for F(4x4) in winograd4.hpp) along an axis of `out` outputs at dilation d, and
// the first output of tile t.
inline Index tile_count(Index out, Index d, Index m = 2) { return out / (m * d) * d + std::min(out % (m * d), d); }
inline Index tile_origin(Index t, Index d, Index m = 2) { return t / d * m * d + t % d; }

// The tiles of a convolution's output, over the whole batch.
inline Index tile_total(const Conv2dShape& s, Index m = 2) {
  return Index(s.n) * tile_count(s.out_h(), s.dil_h, m) * tile_count(s.out_w(), s.dil_w, m);
}

// The share of computed outputs that are real outputs (the rest fall past the edge).
inline double utilization(const Conv2dShape& s, Index m = 2) {
  const Index oh = s.out_h(), ow = s.out_w();
  return double(oh * ow) / double(m * m * tile_count(oh, s.dil_h, m) * tile_count(ow, s.dil_w, m));
}

// The run-time switch beside HW1_WINOGRAD (set_enabled(false): conv2d takes its GEMM paths), for programs that
// compare the algorithms in one process (bench/winograd_accuracy.cpp, the kernel tests). Not for use while
// convolutions run on other threads.
inline bool& switched_on() {
  static bool on = true;
  return on;
}
inline void set_enabled(bool on) { switched_on() = on; }

// Whether this build has the path and the environment leaves it on (HW1_WINOGRAD=0 / off turns it off).
inline bool enabled() {
#if defined(__AVX512F__)
  static const bool on = !env_off("HW1_WINOGRAD");
  return on && switched_on() && pgemm::enabled();
#else
  return false;
#endif
}

// Whether forward() can compute this convolution at all: 3x3, stride 1, and a group of 16 tiles' offsets fit the
// 32-bit gather indices.
inline bool supports(const Conv2dShape& s) {
  if (s.kh != 3 || s.kw != 3 || s.stride_h != 1 || s.stride_w != 1 || s.out_h() < 1 || s.out_w() < 1) return false;
  const Index limit = std::numeric_limits<std::int32_t>::max() / 32;
  return Index(s.cin) * s.h * s.w < limit && Index(s.cout) * s.out_h() * s.out_w() < limit;
}

// Whether conv2d takes this path: supported, enabled, enough channels for the GEMMs to run at speed, few wasted
// outputs (a 1x1 or 3x3 output plane wastes 75% or 44% of a tile's work: the direct path is cheaper), and enough
// tiles to pay for transforming the weights (16 values per kernel instead of 9, written and then read by every
// thread). Where that pays depends on the CPU's FMA rate against its memory (measured on two CPUs:
// docs/performance.md). The gradients keep their own, stricter rules (conv/select.hpp, worthwhile_weight_grad).
inline bool worthwhile(const Conv2dShape& s) {
  return enabled() && supports(s) && s.cin >= tuning::kWinogradMinChannels && s.cout >= tuning::kWinogradMinChannels &&
         utilization(s) >= tuning::kWinogradMinUtilization && tile_total(s) >= tuning::kWinogradMinTiles;
}

// Whether the selector (conv/select.hpp) takes weight_grad() for dW: as worthwhile(), and enough tiles per thread to
// outweigh each thread's 16 x cin x cout partial sum (zeroed, then added up). 192 per thread: measured against the
// direct path on two CPUs in docs/performance.md (the numbers: conv/tuning.hpp).
inline bool worthwhile_weight_grad(const Conv2dShape& s) {
  return worthwhile(s) && tile_total(s) >= tuning::kWinogradWeightGradTilesPerThread * Index(max_threads());
}

#if defined(__AVX512F__)
namespace detail {

constexpr Index kMaxTiles = 256;  // tiles per block: its V and M stay in L2 / L3 while 16 GEMMs use them
constexpr Index kChannels = 256;  // input channels per V block (the GEMMs' K block)

inline Index round_up(Index v, Index m) { return (v + m - 1) / m * m; }

// U holds (G g G^T)[xi] of each 3x3 kernel g = w[o][c] as the A operands of the GEMMs: per (xi, block of
// kChannels input channels), an O x kc matrix with rows kULd apart (not a multiple of 512 floats, so that the
// micro-kernel can read it in place: see the aliasing note in pgemm.hpp).
constexpr Index kULd = kChannels + 16;
inline Index channel_blocks(Index C) { return (C + kChannels - 1) / kChannels; }
inline Index u_offset(Index O, Index C, Index xi, Index c0) {  // of the block of channel c0
  return ((xi * channel_blocks(C) + c0 / kChannels) * O) * kULd;
}
inline Index u_size(Index O, Index C, Index points = 16) { return points * channel_blocks(C) * O * kULd; }

// The 3x3 kernels from input channels [c, c + 16) (masked to C) to output channel o, as g[k] = tap k of the 16
// kernels, read from w as transform_weights (below and in winograd4.hpp) reads it.
inline void load_kernels(const float* w, Index O, Index C, Index o, Index c, bool flipped, __m512* g) {
  const __m512i taps = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                          _mm512_set1_epi32(int(flipped ? O * 9 : 9)));
  const __mmask16 m = lane_mask(C - c);
  const float* src = flipped ? w + (c * O + o) * 9 : w + (o * C + c) * 9;
  for (int k = 0; k < 9; ++k)
    g[k] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, taps, src + (flipped ? 8 - k : k), 4);
}

// Fills U (above) from w [O][C][3][3], 16 input channels per step. flipped: w is [C][O][3][3] instead, and
// kernel (o, c) is w[c][o] rotated by 180 degrees (the convolution that gives w's input gradient), read in place
// rather than transposed into a copy first.
inline void transform_weights(const float* w, Index O, Index C, float* U, bool flipped = false) {
  const __m512 half = _mm512_set1_ps(0.5f);
#pragma omp parallel for schedule(static)
  for (Index o = 0; o < O; ++o)
    for (Index c = 0; c < C; c += 16) {
      const __mmask16 m = lane_mask(C - c);
      __m512 g[9];
      load_kernels(w, O, C, o, c, flipped, g);
      __m512 t[12];  // G g: 4 rows of 3
      for (int j = 0; j < 3; ++j) {
        const __m512 g0 = g[j], g1 = g[3 + j], g2 = g[6 + j];
        t[j] = g0;
        t[3 + j] = _mm512_mul_ps(half, _mm512_add_ps(_mm512_add_ps(g0, g1), g2));
        t[6 + j] = _mm512_mul_ps(half, _mm512_add_ps(_mm512_sub_ps(g0, g1), g2));
        t[9 + j] = g2;
      }
      for (int i = 0; i < 4; ++i) {  // (G g) G^T
        const __m512 u0 = t[3 * i], u1 = t[3 * i + 1], u2 = t[3 * i + 2];
        const __m512 r[4] = {u0, _mm512_mul_ps(half, _mm512_add_ps(_mm512_add_ps(u0, u1), u2)),
                             _mm512_mul_ps(half, _mm512_add_ps(_mm512_sub_ps(u0, u1), u2)), u2};
        for (int j = 0; j < 4; ++j)
          _mm512_mask_storeu_ps(U + u_offset(O, C, i * 4 + j, c) + o * kULd + c % kChannels, m, r[j]);
      }
    }
}

// Output runs (dilation 1): the group's lanes in at most kMaxRuns stretches of consecutive tiles in one tile row
// of one image. Output row a (0, 1) of a run's tiles is then one stretch of y: with the (b = 0, b = 1) outputs of
// the 16 lanes interleaved into 32 values (lane l's at 2l + b), value i of the run lands at y + off + a * ow + i,
// for the values set in mask[a] (bits 0-15: the first 16 values, 16-31: the next; outputs past the edge left out).
// Masked stores then replace the four 16-lane scatters per channel, which cost several times more.
constexpr int kMaxRuns = 4;
struct OutRun {
  std::int32_t off;
  __mmask16 mask[2][2];  // [a][half]
};
// Where the 16 tiles of a group read and write: per tile lane, the offsets (from the group's first image, within
// one channel's plane plus whole images) of the 16 patch entries and of the 4 outputs, -1 where they fall outside.
// When the 16 tiles lie in one tile row of one image (row), lane l's patch sits rel[l] columns (< 32) right of
// lane 0's, so that a patch entry inside the image at every lane comes from two loads and a permute instead of a
// 16-lane gather.
struct Group {
  Index image;  // the first tile's image
  bool row;
  int runs;  // output runs, or 0: scatter through out
  OutRun run[kMaxRuns];
  alignas(64) std::int32_t in[16][16];
  alignas(64) std::int32_t out[4][16];
  alignas(64) std::int32_t rel[16];
};

// Per lane l < 16 of the group of tiles [t0, t0 + count) (tiles of Q x Q outputs over P x P patches, P = Q + 2):
// in[i * P + j][l], the offset of patch entry (i, j) from image `image`'s input (-1 outside the image), and
// out[a * Q + b][l], that of output (a, b) from its output (-1 past the edge); lanes past count get -1 throughout.
template <int Q>
inline void lane_offsets(const Conv2dShape& s, Index ny, Index nx, Index t0, Index count, Index image,
                         std::int32_t (*in)[16], std::int32_t (*out)[16]) {
  constexpr int P = Q + 2;
  const Index per = ny * nx, oh = s.out_h(), ow = s.out_w(), xs = Index(s.cin) * s.h * s.w,
              ys = Index(s.cout) * oh * ow;
  for (Index l = 0; l < 16; ++l) {
    const Index t = t0 + l, n = t / per, r = t % per;
    const Index oy = tile_origin(r / nx, s.dil_h, Q), ox = tile_origin(r % nx, s.dil_w, Q);
    for (Index i = 0; i < P; ++i)
      for (Index j = 0; j < P; ++j) {
        const Index iy = oy - s.pad_h + i * s.dil_h, ix = ox - s.pad_w + j * s.dil_w;
        const bool inside = l < count && iy >= 0 && iy < s.h && ix >= 0 && ix < s.w;
        in[i * P + j][l] = inside ? std::int32_t((n - image) * xs + iy * s.w + ix) : -1;
      }
    for (Index a = 0; a < Q; ++a)
      for (Index b = 0; b < Q; ++b) {
        const Index yy = oy + a * s.dil_h, xx = ox + b * s.dil_w;
        out[a * Q + b][l] = l < count && yy < oh && xx < ow ? std::int32_t((n - image) * ys + yy * ow + xx) : -1;
      }
  }
}

inline void make_group(const Conv2dShape& s, Index ny, Index nx, Index t0, Index count, Group& g) {
  const Index per = ny * nx, oh = s.out_h(), ow = s.out_w(), ys = Index(s.cout) * oh * ow;
  g.image = count > 0 ? t0 / per : 0;  // (a group past the last tile reads and writes nothing)
  g.row = count >= 16 && t0 / nx == (t0 + 15) / nx;
  lane_offsets<2>(s, ny, nx, t0, count, g.image, g.in, g.out);
  for (Index l = 0; l < std::min<Index>(count, 16); ++l)
    g.rel[l] = std::int32_t(tile_origin((t0 + l) % per % nx, s.dil_w) - tile_origin(t0 % per % nx, s.dil_w));
  // Output runs (OutRun): a new one where the image or tile row changes.
  g.runs = 0;
  if (s.dil_h != 1 || s.dil_w != 1) return;
  std::uint32_t bits[2] = {0, 0};
  Index run_key = -1;
  for (Index l = 0; l < count; ++l) {
    const Index t = t0 + l, key = t / nx, oy = 2 * (t % per / nx), ox = 2 * (t % nx);
    if (key != run_key) {
      if (g.runs == kMaxRuns) {
        g.runs = 0;
        return;
      }
      OutRun& r = g.run[g.runs++];
      r.off = std::int32_t((t / per - g.image) * ys + oy * ow + ox - 2 * l);
      bits[0] = bits[1] = 0;
      run_key = key;
    }
    for (Index a = 0; a < 2; ++a)
      for (Index b = 0; b < 2; ++b)
        if (oy + a < oh && ox + b < ow) bits[a] |= std::uint32_t(1) << (2 * l + b);
    OutRun& r = g.run[g.runs - 1];
    for (Index a = 0; a < 2; ++a) {
      r.mask[a][0] = __mmask16(bits[a] & 0xFFFF);
      r.mask[a][1] = __mmask16(bits[a] >> 16);
    }
  }
}

// The batch's tiles in blocks, one thread each: a multiple of the team size, so that each thread gets the same
// work, of whole GEMM panels (32 tiles: no block but the last computes padding columns), shared out evenly.
// weight_grad, whose tiles are the GEMMs' K dimension, blocks them by 16 (a group) instead of 32: ResNet101's 14x14
// layers at batch 8 then give the threads 192 and 208 tiles rather than 192 and 224.
struct Blocks {
  Index ny, nx, tiles, unit, panels, count;  // panels: units of `unit` tiles
  Blocks(const Conv2dShape& s, Index threads, Index unit_tiles = pgemm::kNR)
      : ny(tile_count(s.out_h(), s.dil_h)),
        nx(tile_count(s.out_w(), s.dil_w)),
        tiles(Index(s.n) * ny * nx),
        unit(unit_tiles),
        panels((tiles + unit - 1) / unit),
        count(round_up((tiles + kMaxTiles - 1) / kMaxTiles, threads)) {}
  Index start(Index b) const { return std::min(tiles, panels * b / count * unit); }
  // Block b: its first tile t0, tn tiles (none for a block past the end), padded to `lanes` GEMM columns, and the
  // calling thread's tables of its lanes / 16 groups.
  struct Block {
    Index t0, tn, lanes, groups;
    const Group* gs;
  };
  Block block(const Conv2dShape& s, Index b) const { return span(s, start(b), start(b + 1)); }
  // Every tile as one block (the team's shared block: forward() and weight_grad() with one block per thread).
  Block whole(const Conv2dShape& s) const { return span(s, 0, tiles); }
  Block span(const Conv2dShape& s, Index t0, Index t1) const {
    const Index tn = t1 - t0, lanes = round_up(tn, unit), groups = lanes / 16;
    Group* gs = scratch<Group, Slot::winograd_groups>(std::size_t(groups));
    for (Index k = 0; k < groups; ++k) make_group(s, ny, nx, t0 + 16 * k, std::min<Index>(16, tn - 16 * k), gs[k]);
    return {t0, tn, lanes, groups, gs};
  }
};

// V[xi] (16 matrices vsz apart: K = channels [c0, c1) by N = the block's tile lanes, packed in panels, or
// row-major with rows ld apart when ld > 0) = B^T d B of the group's 16 tiles (lanes [q, q + 16) of the block)
// for each channel.
inline void transform_input(const float* x, Index plane, Index xs, const Group& g, Index q, Index c0, Index c1,
                            float* V, Index vsz, Index ld = 0) {
  const float* base = x + g.image * xs;
  __m512i idx[16];
  __mmask16 valid[16];
  bool fast[16];  // lane l reads base[in[k][0] + rel[l]] (Group)
  for (int k = 0; k < 16; ++k) {
    idx[k] = _mm512_load_si512(g.in[k]);
    valid[k] = _mm512_cmpge_epi32_mask(idx[k], _mm512_setzero_si512());
    fast[k] = g.row && valid[k] == 0xFFFF;
  }
  const __m512i rel = _mm512_load_si512(g.rel);
  const __mmask16 lo = lane_mask(g.rel[15] + 1), hi = lane_mask(g.rel[15] + 1 - 16);
  const Index kc = c1 - c0, step = ld > 0 ? ld : pgemm::kNR;
  float* dst = ld > 0 ? V + q : V + (q / pgemm::kNR * kc) * pgemm::kNR + q % pgemm::kNR;
  // Channels are planes apart, a stride the hardware prefetchers miss: the patch rows of channel c + kAhead are
  // requested while channel c is transformed.
  constexpr Index kAhead = 4;
  for (Index c = c0; c < c1; ++c, dst += step) {
    const float* src = base + c * plane;
    if (plane >= 1024 && c + kAhead < c1)
      for (int k = 0; k < 16; ++k) {
        const float* p = src + kAhead * plane + g.in[k][0];
        if (g.in[k][0] < 0) continue;
        _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(p + 16), _MM_HINT_T0);
      }
    __m512 d[16];
    for (int k = 0; k < 16; ++k) {
      if (fast[k]) {
        const float* p = src + g.in[k][0];
        d[k] = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(lo, p), rel, _mm512_maskz_loadu_ps(hi, p + 16));
      } else {
        d[k] = valid[k] ? _mm512_mask_i32gather_ps(_mm512_setzero_ps(), valid[k], idx[k], src, 4) : _mm512_setzero_ps();
      }
    }
    for (int j = 0; j < 4; ++j) {  // B^T d
      const __m512 d0 = d[j], d1 = d[4 + j], d2 = d[8 + j], d3 = d[12 + j];
      d[j] = _mm512_sub_ps(d0, d2);
      d[4 + j] = _mm512_add_ps(d1, d2);
      d[8 + j] = _mm512_sub_ps(d2, d1);
      d[12 + j] = _mm512_sub_ps(d1, d3);
    }
    for (int i = 0; i < 4; ++i) {  // (B^T d) B
      const __m512 t0 = d[4 * i], t1 = d[4 * i + 1], t2 = d[4 * i + 2], t3 = d[4 * i + 3];
      _mm512_storeu_ps(dst + (4 * i + 0) * vsz, _mm512_sub_ps(t0, t2));
      _mm512_storeu_ps(dst + (4 * i + 1) * vsz, _mm512_add_ps(t1, t2));
      _mm512_storeu_ps(dst + (4 * i + 2) * vsz, _mm512_sub_ps(t2, t1));
      _mm512_storeu_ps(dst + (4 * i + 3) * vsz, _mm512_sub_ps(t1, t3));
    }
  }
}

// y's 2x2 tiles = A^T M A of the group's lanes [q, q + 16) (M[xi] rows ldm apart, msz apart per xi), for output
// channels [0, O), then v -> act(v * scale[o] + shift[o]).
inline void transform_output(const float* M, Index ldm, Index msz, const Group& g, Index q, Index O, Index oplane,
                             Index ow, Index ys, const pgemm::Epilogue& ep, const float* res, float* y) {
  const __m512i interleave_lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23),
                interleave_hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  __m512i idx[4];
  __mmask16 valid[4];
  for (int k = 0; k < 4; ++k) {
    idx[k] = _mm512_load_si512(g.out[k]);
    valid[k] = _mm512_cmpge_epi32_mask(idx[k], _mm512_setzero_si512());
  }
  float* base = y + g.image * ys;
  for (Index o = 0; o < O; ++o) {
    const float* src = M + o * ldm + q;
    __m512 r[8];  // A^T M: 2 rows of 4
    for (int j = 0; j < 4; ++j) {
      const __m512 m0 = _mm512_loadu_ps(src + j * msz), m1 = _mm512_loadu_ps(src + (4 + j) * msz),
                   m2 = _mm512_loadu_ps(src + (8 + j) * msz), m3 = _mm512_loadu_ps(src + (12 + j) * msz);
      r[j] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
      r[4 + j] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
    }
    const __m512 scale = _mm512_set1_ps(ep.scale ? ep.scale[o] : 1.f), shift = _mm512_set1_ps(ep.shift ? ep.shift[o] : 0.f);
    float* dst = base + o * oplane;
    if (g.runs > 0) {
      for (int a = 0; a < 2; ++a) {
        const __m512 u0 = r[4 * a], u1 = r[4 * a + 1], u2 = r[4 * a + 2], u3 = r[4 * a + 3];
        const __m512 v0 = _mm512_fmadd_ps(_mm512_add_ps(_mm512_add_ps(u0, u1), u2), scale, shift),
                     v1 = _mm512_fmadd_ps(_mm512_sub_ps(_mm512_sub_ps(u1, u2), u3), scale, shift);
        __m512 h[2] = {_mm512_permutex2var_ps(v0, interleave_lo, v1), _mm512_permutex2var_ps(v0, interleave_hi, v1)};
        if (res) {
          const float* rb = res + (dst - y) + a * ow;
          __m512 add[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
          for (int k = 0; k < g.runs; ++k)
            for (int half = 0; half < 2; ++half)
              add[half] = _mm512_mask_loadu_ps(add[half], g.run[k].mask[a][half], rb + g.run[k].off + 16 * half);
          h[0] = _mm512_add_ps(h[0], add[0]);
          h[1] = _mm512_add_ps(h[1], add[1]);
        }
        if (ep.relu) {
          h[0] = _mm512_max_ps(h[0], _mm512_setzero_ps());
          h[1] = _mm512_max_ps(h[1], _mm512_setzero_ps());
        }
        float* row = dst + a * ow;
        for (int k = 0; k < g.runs; ++k)
          for (int half = 0; half < 2; ++half)
            _mm512_mask_storeu_ps(row + g.run[k].off + 16 * half, g.run[k].mask[a][half], h[half]);
      }
      continue;
    }
    for (int a = 0; a < 2; ++a) {
      const __m512 u0 = r[4 * a], u1 = r[4 * a + 1], u2 = r[4 * a + 2], u3 = r[4 * a + 3];
      __m512 v[2] = {_mm512_add_ps(_mm512_add_ps(u0, u1), u2), _mm512_sub_ps(_mm512_sub_ps(u1, u2), u3)};
      for (int b = 0; b < 2; ++b) {
        __m512 out = _mm512_fmadd_ps(v[b], scale, shift);
        if (res)
          out = _mm512_add_ps(out, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), valid[a * 2 + b], idx[a * 2 + b],
                                                            res + (dst - y), 4));
        if (ep.relu) out = _mm512_max_ps(out, _mm512_setzero_ps());
        _mm512_mask_i32scatter_ps(dst, valid[a * 2 + b], idx[a * 2 + b], out, 4);
      }
    }
  }
}

// The weight gradient's transforms. With y_t = A^T [(G g G^T) . V_t] A for each tile t, and dy_t the gradient of
// its 2x2 outputs (0 for those past the edge), dL/dg = G^T [sum over t of (A dy_t A^T) . V_t] G.

// Qp[xi] (16 matrices qsz apart: K = the block's `lanes` tile lanes by N = O output channels, packed in panels) =
// A dy_t A^T of each tile t, 16 output channels per step (a gather across their planes).
inline void transform_output_grad(const float* dy, Index O, Index oplane, Index ys, const Group* gs, Index lanes,
                                  float* Q, Index qsz, Index q0 = 0, Index q1 = -1) {  // lanes [q0, q1) of them
  const __m512i planes = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                            _mm512_set1_epi32(std::int32_t(oplane)));
  // Channels outer, tiles inner: consecutive tiles read the same lines of dy's 16 planes and write consecutive
  // rows of each panel (tiles outer took more than twice the samples: docs/performance.md).
  for (Index o = 0; o < O; o += 16) {
    const __mmask16 m = lane_mask(O - o);
    for (Index q = q0; q < (q1 < 0 ? lanes : q1); ++q) {
      const Group& g = gs[q / 16];
      const int l = int(q % 16);
      const float* base = dy + g.image * ys;
      __m512 d[4];
      for (int k = 0; k < 4; ++k)
        d[k] = g.out[k][l] < 0 ? _mm512_setzero_ps()
                               : _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, planes,
                                                          base + o * oplane + g.out[k][l], 4);
      // R = A dy (rows of dy: a = 0, 1), then Q = R A^T.
      const __m512 r[8] = {d[0], d[1], _mm512_add_ps(d[0], d[2]), _mm512_add_ps(d[1], d[3]),
                           _mm512_sub_ps(d[0], d[2]), _mm512_sub_ps(d[1], d[3]),
                           _mm512_sub_ps(_mm512_setzero_ps(), d[2]), _mm512_sub_ps(_mm512_setzero_ps(), d[3])};
      float* dst = Q + ((o / pgemm::kNR) * lanes + q) * pgemm::kNR + o % pgemm::kNR;
      for (int i = 0; i < 4; ++i) {
        const __m512 r0 = r[2 * i], r1 = r[2 * i + 1];
        _mm512_mask_storeu_ps(dst + (4 * i + 0) * qsz, m, r0);
        _mm512_mask_storeu_ps(dst + (4 * i + 1) * qsz, m, _mm512_add_ps(r0, r1));
        _mm512_mask_storeu_ps(dst + (4 * i + 2) * qsz, m, _mm512_sub_ps(r0, r1));
        _mm512_mask_storeu_ps(dst + (4 * i + 3) * qsz, m, _mm512_sub_ps(_mm512_setzero_ps(), r1));
      }
    }
  }
}

// dw[o][c] += G^T S G for output channels [o, o + 16) (masked to O) of input channel c, where S[xi] is the sum of
// the threads' partial S (each [16][C][O]).
inline void inverse_weight_grad(const std::vector<float*>& partial, Index C, Index O, Index c, Index o, float* dw) {
  const __mmask16 m = lane_mask(O - o);
  const __m512 half = _mm512_set1_ps(0.5f);
  __m512 sv[16];
  for (int xi = 0; xi < 16; ++xi) {
    sv[xi] = _mm512_setzero_ps();
    for (const float* p : partial)
      if (p) sv[xi] = _mm512_add_ps(sv[xi], _mm512_maskz_loadu_ps(m, p + (xi * C + c) * O + o));
  }
  __m512 t[12];  // G^T S: 3 rows of 4
  for (int j = 0; j < 4; ++j) {
    const __m512 s0 = sv[j], s1 = sv[4 + j], s2 = sv[8 + j], s3 = sv[12 + j];
    const __m512 p = _mm512_mul_ps(half, _mm512_add_ps(s1, s2));
    t[j] = _mm512_add_ps(s0, p);
    t[4 + j] = _mm512_mul_ps(half, _mm512_sub_ps(s1, s2));
    t[8 + j] = _mm512_add_ps(p, s3);
  }
  const __m512i rows = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                          _mm512_set1_epi32(std::int32_t(C * 9)));
  float* base = dw + (o * C + c) * 9;
  for (int k = 0; k < 3; ++k) {  // (G^T S) G, added to dw[o][c][k][0..2]
    const __m512 t0 = t[4 * k], t1 = t[4 * k + 1], t2 = t[4 * k + 2], t3 = t[4 * k + 3];
    const __m512 p = _mm512_mul_ps(half, _mm512_add_ps(t1, t2));
    const __m512 v[3] = {_mm512_add_ps(t0, p), _mm512_mul_ps(half, _mm512_sub_ps(t1, t2)), _mm512_add_ps(p, t3)};
    for (int l = 0; l < 3; ++l) {
      float* at = base + k * 3 + l;
      const __m512 cur = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, rows, at, 4);
      _mm512_mask_i32scatter_ps(at, m, rows, _mm512_add_ps(cur, v[l]), 4);
    }
  }
}

}  // namespace detail
#endif

// y [n, cout, out_h, out_w] = act(scale[o] * conv(x, w)[o] + shift[o] + res) for a 3x3 stride-1 convolution
// (supports(s)), x [n, cin, h, w], w [cout, cin, 3, 3]; scale, shift and res (shaped like y) may be null (1, 0,
// 0), act = ReLU when relu. flipped_w: w is [cin][cout][3][3] and the kernel from input channel c to output o is
// w[c][o] rotated by 180 degrees (conv2d_backward's dX: dY through the flipped, transposed kernel). Uses all
// OpenMP threads (call it outside a parallel region). Call only where enabled().
inline void forward(const Conv2dShape& s, const float* x, const float* w, const float* scale, const float* shift,
                    bool relu, float* y, const float* res = nullptr, bool flipped_w = false) {
#if defined(__AVX512F__)
  using namespace detail;
  const Index C = s.cin, O = s.cout;
  const Index plane = Index(s.h) * s.w, xs = C * plane, oplane = Index(s.out_h()) * s.out_w(), ys = O * oplane;
  float* U = scratch<float, Slot::winograd_u>(std::size_t(u_size(O, C)));
  transform_weights(w, O, C, U, flipped_w);
  const Blocks blocks(s, max_threads());
  const pgemm::Epilogue ep{scale, shift, relu};
  const Index nt = max_threads();
  if (nt > 1 && blocks.count == nt && blocks.panels % nt != 0 && O >= 32 * nt) {
    // One block per thread would leave the threads whole panels apart (ResNet101's 14x14 layers at batch 8: 13
    // panels, 7 against 6; measured in docs/performance.md). Instead the team shares one block of every tile: each
    // thread transforms its share of the input groups, then multiplies its share of the output channels over all
    // panels, and transforms its channels' outputs.
    const Index lanes = round_up(blocks.tiles, blocks.unit), groups = lanes / 16;
    const Index kc_max = std::min(C, kChannels), msz = O * lanes;
    float* V = scratch<float, Slot::winograd_v>(std::size_t(16 * kc_max * lanes));
    float* M = scratch<float, Slot::winograd_m>(std::size_t(16 * msz));
#pragma omp parallel num_threads(int(nt))
    {
      const Group* gs = blocks.whole(s).gs;  // each thread's own tables
      const Index me = thread_id(), team = team_size();
      const Index g0 = groups * me / team, g1 = groups * (me + 1) / team, o0 = O * me / team, o1 = O * (me + 1) / team;
      for (Index c0 = 0; c0 < C; c0 += kChannels) {
        const Index c1 = std::min(C, c0 + kChannels), kc = c1 - c0, vsz = kc * lanes;
        for (Index k = g0; k < g1; ++k) transform_input(x, plane, xs, gs[k], 16 * k, c0, c1, V, vsz);
#pragma omp barrier
        for (Index xi = 0; xi < 16; ++xi)
          pgemm::gemm(o1 - o0, lanes, kc, U + u_offset(O, C, xi, c0) + o0 * kULd, kULd, false, V + xi * vsz,
                      M + xi * msz + o0 * lanes, lanes, c0 > 0);
#pragma omp barrier
      }
      const pgemm::Epilogue mine{scale ? scale + o0 : nullptr, shift ? shift + o0 : nullptr, relu};
      for (Index k = 0; k < groups; ++k)
        transform_output(M + o0 * lanes, lanes, msz, gs[k], 16 * k, o1 - o0, oplane, s.out_w(), ys, mine,
                         res ? res + o0 * oplane : nullptr, y + o0 * oplane);
    }
    return;
  }
#pragma omp parallel for schedule(static)
  for (Index b = 0; b < blocks.count; ++b) {
    const auto [t0, tn, lanes, groups, gs] = blocks.block(s, b);
    if (tn <= 0) continue;
    const Index kc_max = std::min(C, kChannels), msz = O * lanes;
    float* V = scratch<float, Slot::winograd_v>(std::size_t(16 * kc_max * lanes));
    float* M = scratch<float, Slot::winograd_m>(std::size_t(16 * msz));
    for (Index c0 = 0; c0 < C; c0 += kChannels) {
      const Index c1 = std::min(C, c0 + kChannels), kc = c1 - c0, vsz = kc * lanes;
      for (Index k = 0; k < groups; ++k) transform_input(x, plane, xs, gs[k], 16 * k, c0, c1, V, vsz);
      for (Index xi = 0; xi < 16; ++xi)
        pgemm::gemm(O, lanes, kc, U + u_offset(O, C, xi, c0), kULd, false, V + xi * vsz, M + xi * msz, lanes, c0 > 0);
    }
    for (Index k = 0; k < groups; ++k)
      transform_output(M, lanes, msz, gs[k], 16 * k, O, oplane, s.out_w(), ys, ep, res, y);
  }
#else
  (void)s, (void)x, (void)w, (void)scale, (void)shift, (void)relu, (void)y, (void)res, (void)flipped_w;
#endif
}

// dw [cout, cin, 3, 3] += dL/dw of the convolution forward() computes (without its epilogue), for x [n, cin, h, w]
// and dy [n, cout, out_h, out_w]. Tiles are split between the threads, each summing its own S (16 x cin x cout),
// and the partial sums are added in thread order (a given thread count gives the same bits); with at most one
// block of tiles per thread, the input channels are split instead (each thread's rows of one S). Uses all OpenMP
// threads (call it outside a parallel region). Call only where enabled().
inline void weight_grad(const Conv2dShape& s, const float* x, const float* dy, float* dw) {
#if defined(__AVX512F__)
  using namespace detail;
  const Index C = s.cin, O = s.cout;
  const Index plane = Index(s.h) * s.w, xs = C * plane, oplane = Index(s.out_h()) * s.out_w(), ys = O * oplane;
  const Index nt = max_threads();
  const Blocks blocks(s, nt, 16);
  if (nt > 1 && blocks.count == nt && C >= 16 * nt) {
    // Few enough tiles for one block (ResNet101's 14x14 layers at batch 8): the team transforms dY once, a share
    // of the tiles each, then each thread owns a share of the input channels: its rows of S over every tile, with
    // no partial sums to zero and add up, then their inverse transform.
    const Index lanes = round_up(blocks.tiles, blocks.unit), groups = lanes / 16, qsz = pgemm::packed_size(lanes, O);
    float* Q = scratch<float, Slot::winograd_m>(std::size_t(16 * qsz));
    float* S = scratch<float, Slot::winograd_s>(std::size_t(16 * C * O));
    const std::vector<float*> whole{S};
#pragma omp parallel num_threads(int(nt))
    {
      const Group* gs = blocks.whole(s).gs;  // each thread's own tables
      const Index me = thread_id(), team = team_size();
      transform_output_grad(dy, O, oplane, ys, gs, lanes, Q, qsz, groups * me / team * 16,
                            groups * (me + 1) / team * 16);
#pragma omp barrier
      const Index c0 = C * me / team, c1 = C * (me + 1) / team;
      float* V = scratch<float, Slot::winograd_v>(std::size_t(16 * std::min(c1 - c0, kChannels) * lanes));
      for (Index a = c0; a < c1; a += kChannels) {
        const Index b = std::min(c1, a + kChannels), kc = b - a, vsz = kc * lanes;
        for (Index k = 0; k < groups; ++k) transform_input(x, plane, xs, gs[k], 16 * k, a, b, V, vsz, lanes);
        for (Index xi = 0; xi < 16; ++xi)
          pgemm::gemm(kc, O, lanes, V + xi * vsz, lanes, false, Q + xi * qsz, S + (xi * C + a) * O, O, false);
      }
      for (Index c = c0; c < c1; ++c)
        for (Index o = 0; o < O; o += 16) inverse_weight_grad(whole, C, O, c, o, dw);
    }
    return;
  }
  std::vector<float*> partial(std::size_t(nt), nullptr);
#pragma omp parallel num_threads(int(nt))
  {
    const Index me = thread_id(), team = team_size();
    float* S = scratch<float, Slot::winograd_s>(std::size_t(16 * C * O));
    std::fill_n(S, 16 * C * O, 0.f);
    partial[std::size_t(me)] = S;
    for (Index b = me; b < blocks.count; b += team) {
      const auto [t0, tn, lanes, groups, gs] = blocks.block(s, b);
      if (tn <= 0) continue;
      const Index kc_max = std::min(C, kChannels), qsz = pgemm::packed_size(lanes, O);
      float* Q = scratch<float, Slot::winograd_m>(std::size_t(16 * qsz));
      transform_output_grad(dy, O, oplane, ys, gs, lanes, Q, qsz);
      float* V = scratch<float, Slot::winograd_v>(std::size_t(16 * kc_max * lanes));
      for (Index c0 = 0; c0 < C; c0 += kChannels) {
        const Index c1 = std::min(C, c0 + kChannels), kc = c1 - c0, vsz = kc * lanes;
        for (Index k = 0; k < groups; ++k) transform_input(x, plane, xs, gs[k], 16 * k, c0, c1, V, vsz, lanes);
        for (Index xi = 0; xi < 16; ++xi)
          pgemm::gemm(kc, O, lanes, V + xi * vsz, lanes, false, Q + xi * qsz, S + (xi * C + c0) * O, O, true);
      }
    }
#pragma omp barrier
#pragma omp for schedule(static)
    for (Index c = 0; c < C; ++c)
      for (Index o = 0; o < O; o += 16) inverse_weight_grad(partial, C, O, c, o, dw);
  }
#else
  (void)s, (void)x, (void)dy, (void)dw;
#endif
}

}  // namespace hw1::cpu::winograd
