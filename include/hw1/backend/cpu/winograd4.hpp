// Winograd F(4x4, 3x3) for the forward (and, through the flipped kernel, the input gradient) of 3x3 stride-1
// convolutions with many channels, float on AVX-512.
//
// The same algorithm as winograd.hpp's F(2x2, 3x3), with 4x4 output tiles: Y = A^T [(G g G^T) . (B^T d B)] A over
// the 6x6 input patch d under each tile, 36 products per 16 outputs (2.25 per output, against 4 for F(2x2) and 9
// for the direct sum), so 1.78x fewer multiply-adds than F(2x2) where the tiles cover the plane exactly, and 36
// GEMMs (one per transform point) instead of 16. The interpolation points are 0, +-1, +-2 and infinity (Lavin &
// Gray 2016):
//
//   B^T = [4  0 -5  0 1 0]     G = [ 1/4     0    0 ]     A^T = [1 1  1 1  1 0]
//         [0 -4 -4  1 1 0]         [-1/6 -1/6 -1/6 ]           [0 1 -1 2 -2 0]
//         [0  4 -4 -1 1 0]         [-1/6  1/6 -1/6 ]           [0 1  1 4  4 0]
//         [0 -2 -1  2 1 0]         [1/24 1/12  1/6 ]           [0 1 -1 8 -8 1]
//         [0  2 -1 -2 1 0]         [1/24 -1/12 1/6 ]
//         [0  4  0 -5 0 1]         [  0     0    1 ]
//
// Accuracy: the entries up to 8 and the 1/6, 1/24 of G cost about a decimal digit against F(2x2): with random
// data, max |error| / max |y| of one 4x4 tile in float32 measured 1.7e-6 to 3.0e-6 for 64 to 1024 input channels
// (the direct sum: 2e-7 to 3e-7); over whole layers the kernel tests measured up to 1.2e-5 (300 channels; F(2x2)
// stays under 1e-5 there) and bound it at 5e-5 against a double-precision loop.
// Dilation d works as in winograd.hpp: a tile is the outputs oy + {0, d, 2d, 3d} (likewise x), its patch the input
// at oy - pad + {0, d, ..., 5d}; tile origins along an axis are the t with t mod 4d < d.
//
// Where it is taken (worthwhile4): 64+ channels in and out, at least 3/4 of the computed outputs real (planes of
// 4k x 4k exactly; 14x14 at 77%), and 64+ tiles per thread (the weight transform, 36 values per kernel, must pay
// off). Where that pays, and why the row stores and loads below: measured in docs/performance.md. conv2d takes it for inference only (worthwhile4_forward: not in the forward of a
// pass that will be back-propagated, nor for dX; see in_training_requested below and docs/accuracy.md).
// HW1_WINOGRAD4=0 in the environment turns it off (conv2d then takes F(2x2)); HW1_WINOGRAD4=train takes it in
// training too, outside the accuracy contract.

#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "hw1/backend/cpu/conv/tuning.hpp"
#include "hw1/backend/cpu/conv2d_shape.hpp"
#include "hw1/backend/cpu/gemm.hpp"
#include "hw1/backend/cpu/pgemm.hpp"
#include "hw1/backend/cpu/winograd.hpp"

namespace hw1::cpu::winograd {

// winograd.hpp's tile arithmetic with tiles of 4 outputs along each axis.
inline Index tile_count4(Index out, Index d) { return tile_count(out, d, 4); }
inline Index tile_origin4(Index t, Index d) { return tile_origin(t, d, 4); }
inline Index tile_total4(const Conv2dShape& s) { return tile_total(s, 4); }
inline double utilization4(const Conv2dShape& s) { return utilization(s, 4); }

// Whether this build has the path and the environment leaves it on (HW1_WINOGRAD4=0 / off turns it off; so do
// HW1_WINOGRAD=0 and HW1_PGEMM=0).
inline bool enabled4() {
#if defined(__AVX512F__)
  static const bool on = !env_off("HW1_WINOGRAD4");
  return on && enabled();
#else
  return false;
#endif
}

// F(4x4) in training too (the forward of a recording pass and the input gradient): only with HW1_WINOGRAD4=train.
// Per layer its float32 error is 1e-5 (max |err| / max |y|), against 2e-7 to 8e-7 for the GEMM path and F(2x2)
// and about the same for PyTorch; in training, those errors flip ReLU and max-pooling decisions that the 20-30x
// smaller ones of the other paths leave alone, and each flip moves the gradients below it by a discrete step:
// FCN32s' weight gradients then miss the float64 ones by up to 1.6e-4 (1.5e-6 without F(4x4)), and they compound
// further through a deep backward. So by default F(4x4) serves inference only (docs/accuracy.md).
inline bool in_training_requested() {
  static const bool on = [] {
    const char* v = std::getenv("HW1_WINOGRAD4");
    return v && std::string(v) == "train";
  }();
  return on;
}

inline bool worthwhile4(const Conv2dShape& s) {
  return enabled4() && supports(s) && s.cin >= tuning::kWinograd4MinChannels &&
         s.cout >= tuning::kWinograd4MinChannels && utilization4(s) >= tuning::kWinograd4MinUtilization &&
         tile_total4(s) >= tuning::kWinograd4MinTilesPerThread * Index(max_threads());
}

// Whether conv2d's forward takes F(4x4): where worthwhile4, outside training unless HW1_WINOGRAD4=train.
inline bool worthwhile4_forward(const Conv2dShape& s) {
  return (!s.backward_follows || in_training_requested()) && worthwhile4(s);
}
// Whether the selector (conv/select.hpp) takes F(4x4) for the input gradient (t: the flipped convolution dY -> dX): only with
// HW1_WINOGRAD4=train.
inline bool worthwhile4_input_grad(const Conv2dShape& t) { return in_training_requested() && worthwhile4(t); }

#if defined(__AVX512F__)
namespace detail4 {

using winograd::detail::kChannels;
using winograd::detail::kULd;
using winograd::detail::load_kernels;
using winograd::detail::round_up;
using winograd::detail::u_offset;  // the same layout as F(2x2)'s U, with 36 points instead of 16
using winograd::detail::u_size;

constexpr Index kMaxTiles = 128;  // tiles per block: 36 V and M matrices of a block stay in L2 / L3

// U[xi] = (G g G^T)[xi] of each kernel, laid out as winograd.hpp's U (O x kc blocks, rows kULd apart), 36 points.
inline void transform_weights(const float* w, Index O, Index C, float* U, bool flipped) {
  const __m512 q4 = _mm512_set1_ps(0.25f), s6 = _mm512_set1_ps(-1.f / 6), a24 = _mm512_set1_ps(1.f / 24),
               b12 = _mm512_set1_ps(1.f / 12), c6 = _mm512_set1_ps(1.f / 6);
  // G applied to 3 values: 6 values.
  const auto apply_g = [&](__m512 g0, __m512 g1, __m512 g2, __m512* r) {
    const __m512 sum = _mm512_add_ps(g0, g2);
    r[0] = _mm512_mul_ps(q4, g0);
    r[1] = _mm512_mul_ps(s6, _mm512_add_ps(sum, g1));
    r[2] = _mm512_mul_ps(s6, _mm512_sub_ps(sum, g1));
    const __m512 e = _mm512_fmadd_ps(a24, g0, _mm512_mul_ps(c6, g2)), f = _mm512_mul_ps(b12, g1);
    r[3] = _mm512_add_ps(e, f);
    r[4] = _mm512_sub_ps(e, f);
    r[5] = g2;
  };
#pragma omp parallel for schedule(static)
  for (Index o = 0; o < O; ++o)
    for (Index c = 0; c < C; c += 16) {
      const __mmask16 m = lane_mask(C - c);
      __m512 g[9];
      load_kernels(w, O, C, o, c, flipped, g);
      __m512 t[18];  // G g: 6 rows of 3 (t[i * 3 + j])
      for (int j = 0; j < 3; ++j) {
        __m512 r[6];
        apply_g(g[j], g[3 + j], g[6 + j], r);
        for (int i = 0; i < 6; ++i) t[i * 3 + j] = r[i];
      }
      for (int i = 0; i < 6; ++i) {  // (G g) G^T
        __m512 r[6];
        apply_g(t[3 * i], t[3 * i + 1], t[3 * i + 2], r);
        for (int j = 0; j < 6; ++j)
          _mm512_mask_storeu_ps(U + u_offset(O, C, i * 6 + j, c) + o * kULd + c % kChannels, m, r[j]);
      }
    }
}

// Where the 16 tiles of a group read and write: per lane, the offsets (from the group's first image) of the 36
// patch entries and of the 16 outputs, -1 outside.
//
// Runs: where the group's lanes fall into at most kMaxRuns stretches of consecutive tiles of one tile row each, and
// the dilation d along x divides 16 with every lane in step with its tile (tile index in the row = lane, mod d),
// lane l's outputs in a tile row sit at p(l) + b d from the run's base, p(l) = (l / d) 4d + l mod d (d consecutive
// lanes' tiles cover 4d consecutive outputs). Output row a of the 16 lanes, 64 values laid out by p, then goes out
// as 4 masked vector stores per run instead of 16 scatters; and a patch entry inside the image for all of a run's
// lanes is read by 1-4 vector loads and a permute instead of a gather.
constexpr int kMaxRuns = 4;
struct Run {
  std::int32_t off;      // output: y offset of p = 0 (from the group's first image)
  __mmask16 mask[4][4];  // output row a, values [16 h, 16 h + 16): which ones exist
  __mmask16 lanes;       // the run's lanes
  int l0, span;          // its first lane; p(last lane) - p(l0) + 1
  alignas(64) std::int32_t idx[16];  // p(l) - p(l0) for its lanes (0 elsewhere)
};
struct Group {
  Index image;
  int runs;  // 0: gathers and scatters only
  Run run[kMaxRuns];
  alignas(64) std::int32_t in[36][16];
  alignas(64) std::int32_t out[16][16];
};

// p(l) above.
inline Index run_pos(Index l, Index d) { return l / d * 4 * d + l % d; }

inline void make_group(const Conv2dShape& s, Index ny, Index nx, Index t0, Index count, Group& g) {
  const Index per = ny * nx, oh = s.out_h(), ow = s.out_w(), ys = Index(s.cout) * oh * ow;
  g.image = count > 0 ? t0 / per : 0;
  winograd::detail::lane_offsets<4>(s, ny, nx, t0, count, g.image, g.in, g.out);
  // Runs: a new one where the image or the tile row changes.
  g.runs = 0;
  const Index d = s.dil_w;
  if (d > 16 || 16 % d != 0 || count <= 0) return;
  std::uint64_t bits[4] = {0, 0, 0, 0};
  Index key = -1;
  for (Index l = 0; l < count; ++l) {
    const Index t = t0 + l, r = t % per, tx = r % nx, oy = tile_origin4(r / nx, s.dil_h), ox = tile_origin4(tx, d);
    if (tx % d != l % d) {  // out of step
      g.runs = 0;
      return;
    }
    if (t / nx != key) {
      if (g.runs == kMaxRuns) {
        g.runs = 0;
        return;
      }
      Run& run = g.run[g.runs++];
      run.off = std::int32_t((t / per - g.image) * ys + oy * ow + ox - run_pos(l, d));
      run.lanes = 0;
      run.l0 = int(l);
      for (auto& v : run.idx) v = 0;
      for (auto& b : bits) b = 0;
      key = t / nx;
    }
    Run& run = g.run[g.runs - 1];
    run.lanes = __mmask16(run.lanes | (1u << l));
    run.idx[l] = std::int32_t(run_pos(l, d) - run_pos(run.l0, d));
    run.span = run.idx[l] + 1;
    for (Index a = 0; a < 4; ++a)
      for (Index b = 0; b < 4; ++b)
        if (oy + a * s.dil_h < oh && ox + b * d < ow) bits[a] |= std::uint64_t(1) << (run_pos(l, d) + b * d);
    for (Index a = 0; a < 4; ++a)
      for (Index h = 0; h < 4; ++h) run.mask[a][h] = __mmask16(bits[a] >> (16 * h));
  }
}

// B^T applied to 6 values (in place).
inline void apply_bt(__m512& d0, __m512& d1, __m512& d2, __m512& d3, __m512& d4, __m512& d5) {
  const __m512 four = _mm512_set1_ps(4.f), five = _mm512_set1_ps(5.f), two = _mm512_set1_ps(2.f);
  const __m512 t1 = _mm512_fnmadd_ps(four, d2, d4), t2 = _mm512_fnmadd_ps(four, d1, d3);
  const __m512 t3 = _mm512_sub_ps(d4, d2), t4 = _mm512_mul_ps(two, _mm512_sub_ps(d3, d1));
  const __m512 r0 = _mm512_fnmadd_ps(five, d2, _mm512_fmadd_ps(four, d0, d4));
  const __m512 r5 = _mm512_fnmadd_ps(five, d3, _mm512_fmadd_ps(four, d1, d5));
  d0 = r0;
  d1 = _mm512_add_ps(t1, t2);
  d2 = _mm512_sub_ps(t1, t2);
  d3 = _mm512_add_ps(t3, t4);
  d4 = _mm512_sub_ps(t3, t4);
  d5 = r5;
}

// Lane l = src[idx[l]] for idx < span (<= 64), from 1-4 masked loads and permutes.
inline __m512 run_load(const float* src, __m512i idx, int span) {
  if (span <= 16) return _mm512_permutexvar_ps(idx, _mm512_maskz_loadu_ps(lane_mask(span), src));
  const __m512 w0 = _mm512_loadu_ps(src), w1 = _mm512_maskz_loadu_ps(lane_mask(span - 16), src + 16);
  const __m512 lo = _mm512_permutex2var_ps(w0, idx, w1);
  if (span <= 32) return lo;
  const __m512 w2 = _mm512_maskz_loadu_ps(lane_mask(span - 32), src + 32),
               w3 = _mm512_maskz_loadu_ps(lane_mask(span - 48), src + 48);
  const __mmask16 high = _mm512_cmpge_epi32_mask(idx, _mm512_set1_epi32(32));
  return _mm512_mask_blend_ps(high, lo, _mm512_permutex2var_ps(w2, idx, w3));  // (idx mod 32 picks in w2, w3)
}

// V[xi] (36 matrices vsz apart, K = channels [c0, c1) by N = the block's lanes, in panels) = B^T d B of the
// group's 16 tiles (lanes [q, q + 16)).
inline void transform_input(const float* x, Index plane, Index xs, const Group& g, Index q, Index c0, Index c1,
                            float* V, Index vsz) {
  const float* base = x + g.image * xs;
  __mmask16 gathered[36];  // per entry: the lanes no run's loads cover
  std::uint32_t loaded[36];  // per entry: bit r = run r's lanes come from run_load
  for (int k = 0; k < 36; ++k) {
    const __mmask16 valid = _mm512_cmpge_epi32_mask(_mm512_load_si512(g.in[k]), _mm512_setzero_si512());
    gathered[k] = valid;
    loaded[k] = 0;
    for (int r = 0; r < g.runs; ++r)
      if ((valid & g.run[r].lanes) == g.run[r].lanes) {
        gathered[k] = __mmask16(gathered[k] & ~g.run[r].lanes);
        loaded[k] |= 1u << r;
      }
  }
  __m512i idx[kMaxRuns];
  for (int r = 0; r < g.runs; ++r) idx[r] = _mm512_load_si512(g.run[r].idx);
  const Index kc = c1 - c0;
  float* dst = V + (q / pgemm::kNR * kc) * pgemm::kNR + q % pgemm::kNR;
  for (Index c = c0; c < c1; ++c, dst += pgemm::kNR) {
    const float* src = base + c * plane;
    __m512 d[36];
    for (int k = 0; k < 36; ++k) {
      d[k] = gathered[k] ? _mm512_mask_i32gather_ps(_mm512_setzero_ps(), gathered[k], _mm512_load_si512(g.in[k]), src, 4)
                         : _mm512_setzero_ps();
      for (int r = 0; r < g.runs; ++r)
        if (loaded[k] >> r & 1)
          d[k] = _mm512_mask_mov_ps(d[k], g.run[r].lanes, run_load(src + g.in[k][g.run[r].l0], idx[r], g.run[r].span));
    }
    for (int j = 0; j < 6; ++j) apply_bt(d[j], d[6 + j], d[12 + j], d[18 + j], d[24 + j], d[30 + j]);  // B^T d
    for (int i = 0; i < 6; ++i) {                                                                      // (B^T d) B
      __m512* r = d + 6 * i;
      apply_bt(r[0], r[1], r[2], r[3], r[4], r[5]);
      for (int j = 0; j < 6; ++j) _mm512_storeu_ps(dst + (6 * i + j) * vsz, r[j]);
    }
  }
}

// A^T applied to 6 values: 4 values.
inline void apply_at(__m512 m0, __m512 m1, __m512 m2, __m512 m3, __m512 m4, __m512 m5, __m512* o) {
  const __m512 a = _mm512_add_ps(m1, m2), b = _mm512_sub_ps(m1, m2), c = _mm512_add_ps(m3, m4),
               e = _mm512_sub_ps(m3, m4);
  o[0] = _mm512_add_ps(_mm512_add_ps(m0, a), c);
  o[1] = _mm512_fmadd_ps(_mm512_set1_ps(2.f), e, b);
  o[2] = _mm512_fmadd_ps(_mm512_set1_ps(4.f), c, a);
  o[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.f), e, b), m5);
}

// y's 4x4 tiles = A^T M A of lanes [q, q + 16) (M[xi] rows ldm apart, msz apart per xi), output channels [0, O),
// then act(v * scale[o] + shift[o] + res). y's rows are ow apart; dh, dw: the dilation.
inline void transform_output(const float* M, Index ldm, Index msz, const Group& g, Index q, Index O, Index oplane,
                             Index ys, Index ow, Index dh, Index dw, const pgemm::Epilogue& ep, const float* res,
                             float* y) {
  __m512i idx[16];
  __mmask16 valid[16];
  for (int k = 0; k < 16; ++k) {
    idx[k] = _mm512_load_si512(g.out[k]);
    valid[k] = _mm512_cmpge_epi32_mask(idx[k], _mm512_setzero_si512());
  }
  // Runs: value P (of 64) of an output row is v_b[l], b = (P mod 4d) / d, l = (P / 4d) d + P mod d: lane l of the
  // pair (v0, v1) or (v2, v3), the second of a pair at b odd.
  __m512i pick[4];
  __mmask16 upper[4];
  for (int h = 0; h < 4; ++h) {
    alignas(64) std::int32_t p[16];
    std::uint32_t up = 0;
    for (int i = 0; i < 16; ++i) {
      const Index P = 16 * h + i, rem = P % (4 * dw), b = rem / dw, l = P / (4 * dw) * dw + rem % dw;
      p[i] = std::int32_t(l + 16 * (b & 1));
      if (b >= 2) up |= 1u << i;
    }
    pick[h] = _mm512_load_si512(p);
    upper[h] = __mmask16(up);
  }
  const Index off = g.image * ys;
  for (Index o = 0; o < O; ++o) {
    const float* src = M + o * ldm + q;
    __m512 r[24];  // A^T M: 4 rows of 6 (r[a * 6 + j])
    for (int j = 0; j < 6; ++j) {
      __m512 v[4];
      apply_at(_mm512_loadu_ps(src + j * msz), _mm512_loadu_ps(src + (6 + j) * msz),
               _mm512_loadu_ps(src + (12 + j) * msz), _mm512_loadu_ps(src + (18 + j) * msz),
               _mm512_loadu_ps(src + (24 + j) * msz), _mm512_loadu_ps(src + (30 + j) * msz), v);
      for (int a = 0; a < 4; ++a) r[a * 6 + j] = v[a];
    }
    const __m512 scale = _mm512_set1_ps(ep.scale ? ep.scale[o] : 1.f), shift = _mm512_set1_ps(ep.shift ? ep.shift[o] : 0.f);
    float* dst = y + off + o * oplane;
    const float* rs = res ? res + off + o * oplane : nullptr;
    for (int a = 0; a < 4; ++a) {
      __m512 v[4];
      apply_at(r[a * 6], r[a * 6 + 1], r[a * 6 + 2], r[a * 6 + 3], r[a * 6 + 4], r[a * 6 + 5], v);
      for (int b = 0; b < 4; ++b) v[b] = _mm512_fmadd_ps(v[b], scale, shift);
      if (g.runs > 0) {
        __m512 h[4];
        for (int k = 0; k < 4; ++k)
          h[k] = _mm512_mask_blend_ps(upper[k], _mm512_permutex2var_ps(v[0], pick[k], v[1]),
                                      _mm512_permutex2var_ps(v[2], pick[k], v[3]));
        const Index row = a * dh * ow;
        if (rs) {
          __m512 add[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
          for (int k = 0; k < g.runs; ++k)
            for (int i = 0; i < 4; ++i)
              add[i] = _mm512_mask_loadu_ps(add[i], g.run[k].mask[a][i], rs + row + g.run[k].off + 16 * i);
          for (int i = 0; i < 4; ++i) h[i] = _mm512_add_ps(h[i], add[i]);
        }
        if (ep.relu)
          for (int i = 0; i < 4; ++i) h[i] = _mm512_max_ps(h[i], _mm512_setzero_ps());
        for (int k = 0; k < g.runs; ++k)
          for (int i = 0; i < 4; ++i)
            _mm512_mask_storeu_ps(dst + row + g.run[k].off + 16 * i, g.run[k].mask[a][i], h[i]);
        continue;
      }
      for (int b = 0; b < 4; ++b) {
        const int k = a * 4 + b;
        __m512 out = v[b];
        if (rs) out = _mm512_add_ps(out, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), valid[k], idx[k], rs, 4));
        if (ep.relu) out = _mm512_max_ps(out, _mm512_setzero_ps());
        _mm512_mask_i32scatter_ps(dst, valid[k], idx[k], out, 4);
      }
    }
  }
}

}  // namespace detail4
#endif

// As winograd::forward (same arguments, same result up to float rounding), through F(4x4, 3x3). Uses all OpenMP
// threads (call it outside a parallel region). Call only where enabled4() and supports(s).
inline void forward4(const Conv2dShape& s, const float* x, const float* w, const float* scale, const float* shift,
                     bool relu, float* y, const float* res = nullptr, bool flipped_w = false) {
#if defined(__AVX512F__)
  using namespace detail4;
  const Index C = s.cin, O = s.cout;
  const Index plane = Index(s.h) * s.w, xs = C * plane, oplane = Index(s.out_h()) * s.out_w(), ys = O * oplane;
  float* U = scratch<float, Slot::winograd_u>(std::size_t(u_size(O, C, 36)));
  transform_weights(w, O, C, U, flipped_w);
  const Index ny = tile_count4(s.out_h(), s.dil_h), nx = tile_count4(s.out_w(), s.dil_w), tiles = Index(s.n) * ny * nx;
  const Index nt = max_threads(), panels = (tiles + pgemm::kNR - 1) / pgemm::kNR;
  // Blocks of whole 32-tile panels, a multiple of the team size, shared out evenly.
  const Index count = round_up((tiles + kMaxTiles - 1) / kMaxTiles, nt);
  const auto start = [&](Index b) { return std::min(tiles, panels * b / count * pgemm::kNR); };
  const pgemm::Epilogue ep{scale, shift, relu};
#pragma omp parallel for schedule(static)
  for (Index b = 0; b < count; ++b) {
    const Index t0 = start(b), tn = start(b + 1) - t0;
    if (tn <= 0) continue;
    const Index lanes = round_up(tn, pgemm::kNR), groups = lanes / 16;
    Group* gs = scratch<Group, Slot::winograd_groups>(std::size_t(groups));
    for (Index k = 0; k < groups; ++k) make_group(s, ny, nx, t0 + 16 * k, std::min<Index>(16, tn - 16 * k), gs[k]);
    const Index kc_max = std::min(C, kChannels), msz = O * lanes;
    float* V = scratch<float, Slot::winograd_v>(std::size_t(36 * kc_max * lanes));
    float* M = scratch<float, Slot::winograd_m>(std::size_t(36 * msz));
    for (Index c0 = 0; c0 < C; c0 += kChannels) {
      const Index c1 = std::min(C, c0 + kChannels), kc = c1 - c0, vsz = kc * lanes;
      for (Index k = 0; k < groups; ++k) transform_input(x, plane, xs, gs[k], 16 * k, c0, c1, V, vsz);
      for (Index xi = 0; xi < 36; ++xi)
        pgemm::gemm(O, lanes, kc, U + u_offset(O, C, xi, c0), kULd, false, V + xi * vsz, M + xi * msz, lanes, c0 > 0);
    }
    for (Index k = 0; k < groups; ++k) transform_output(M, lanes, msz, gs[k], 16 * k, O, oplane, ys, s.out_w(), s.dil_h, s.dil_w, ep, res, y);
  }
#else
  (void)s, (void)x, (void)w, (void)scale, (void)shift, (void)relu, (void)y, (void)res, (void)flipped_w;
#endif
}

}  // namespace hw1::cpu::winograd
