// Algorithm fwd_gemm: a convolution's forward as GEMMs, any element type. Per image, Y[cout, P] =
// W[cout, cin*kh*kw] * im2col(X)[cin*kh*kw, P] (P = output pixels). The column matrix is built one block of
// positions at a time, so that it stays in cache between im2col and GEMM and its size is bounded at any image
// size; a 1x1, stride 1, unpadded conv reads X directly. Images with few positions are batched instead: one GEMM
// covers a group of images' columns side by side. On float with AVX-512 the GEMM is the packed one (pgemm.hpp),
// with im2col writing its B panels directly and the epilogue (scale, shift, residual, ReLU) in its kernel.
// Parallelism: with enough (image, block) pieces each thread takes whole pieces; otherwise each thread takes a
// share of the channels of every piece. Either way the GEMMs run single-threaded. Threads wait on each other only
// when a few batched groups are shared by the team (two barriers per group, for the shared column matrix).
#pragma once
#include <algorithm>
#include <optional>
#include <type_traits>
#include <vector>

#include "hw1/backend/cpu/conv/im2col.hpp"
#include "hw1/backend/cpu/conv/im2col_avx512.hpp"
#include "hw1/backend/cpu/conv/tuning.hpp"
#include "hw1/backend/cpu/conv/work_split.hpp"
#include "hw1/backend/cpu/conv2d_shape.hpp"
#include "hw1/backend/cpu/gemm.hpp"
#include "hw1/backend/cpu/pgemm.hpp"

namespace hw1::cpu::detail {

// Whether conv2d_forward multiplies through the packed GEMM (pgemm.hpp): float on AVX-512, unless HW1_PGEMM=0.
template <class T>
bool packed_forward() {
  if constexpr (std::is_same_v<T, float>)
    return pgemm::enabled();
  else
    return false;
}

// y[i] = a[i] + r[i], then max(y[i], 0) when relu, for i < n; a may be y, r overlaps neither.
template <class T>
void add_relu(T* y, const T* a, const T* __restrict r, Index n, bool relu) {
  if (relu)
    for (Index i = 0; i < n; ++i) y[i] = std::max(a[i] + r[i], T(0));
  else
    for (Index i = 0; i < n; ++i) y[i] = a[i] + r[i];
}

// y = act(scale * conv(x, w) + shift + res) (see conv2d_forward_fused; the bias is already in shift), W's rows ldw
// apart (0: the kernel's K = cin * kh * kw values, i.e. contiguous; ldw > K only for 1x1, stride-1 convolutions on
// the packed path: conv/packed1x1.hpp's dX through W^T).
template <class T>
void gemm_forward(const Conv2dShape& s, const T* x, const T* w, Index ldw, const T* scale, const T* shift, bool relu,
                  T* y, const T* res) {
  const detail::ColGeom g = detail::geom(s);
  const Index K = g.rows(), P = g.cols(), xs = Index(s.cin) * g.plane();
  const bool packed = detail::packed_forward<T>();
  Index ld = ldw ? ldw : K;
  const detail::Groups gr = detail::image_groups(s.n, K, P, xs);
  // Rows of W a multiple of tuning::kAliasingRowFloats apart make pgemm copy W's blocks on every call (its
  // aliasing note): with more than one call here, W is copied once instead, to rows kAliasPad floats longer
  // (ResNet's 1x1 convolutions of 512-2048 channels: 8 images at 14x14 copied the 1 MiB W per image).
  if (packed && ld % tuning::kAliasingRowFloats == 0 && (gr.count > 1 || P > tuning::kPackedBlockCols)) {
    const Index ld2 = ld + tuning::kAliasPad;
    T* w2 = scratch<T, Slot::w_copy>(std::size_t(s.cout * ld2));
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
  // `most` and `most - 1` images, where the images have kPointwiseRunsMinPositions to kPointwiseRunsMaxPositions
  // positions (the range where it beat the copies of im2col_table per layer: docs/performance.md).
  std::optional<detail::PointwiseRuns> pw[2];
  if constexpr (std::is_same_v<T, float>) {
    if (packed && g.pointwise() && gr.most > 1 && P >= tuning::kPointwiseRunsMinPositions && P <= tuning::kPointwiseRunsMaxPositions) {
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
                                      detail::PanelsOut<T>{col, K, m, scratch<T, Slot::panel_row>(std::size_t(m))});
    }
#endif
    if (packed)
      detail::im2col_table(g, tab, m, xg, xs, r0, r1, detail::PanelsOut<T>{col, K, m, scratch<T, Slot::panel_row>(std::size_t(m))});
    else
      detail::im2col_table(g, tab, m, xg, xs, r0, r1, detail::RowsOut<T>{col, 0, m});
  };
  if (gr.most > 1) {
    // Group i (images [n0, n0 + ni)), output channels [o0, o1): Yg = W[o0:o1] * [col(X[n0]) ... col(X[n0+ni-1])],
    // then each image's P columns (+ bias) go to its place in y.
    auto multiply = [&](Index i, Index o0, Index o1, const T* col) {
      const Index n0 = gr.begin(i), ni = gr.begin(i + 1) - n0, m = ni * P, no = o1 - o0;
      T* yg = scratch<T, Slot::group_out>(std::size_t(no * m));
      multiply_col(o0, no, m, col, m, yg, m);
      for (Index j = 0; j < ni; ++j) {
        // Image n0 + j's output channels [o0, o1) are one stretch of y. Late: with planes of kLateResidualPerPlane
        // positions and more
        // each plane gets its + res and ReLU as it is copied; smaller ones are copied, then the whole stretch gets
        // them in one pass (ResNet's 2x2 planes at 32x32: measured in docs/performance.md).
        const Index at = ((n0 + j) * s.cout + o0) * P;
        for (Index o = 0; o < no; ++o) {
          T* dst = y + at + o * P;
          if (late && P >= tuning::kLateResidualPerPlane)
            detail::add_relu(dst, yg + o * m + j * P, res + at + o * P, P, relu);
          else
            copy_short(yg + o * m + j * P, P, dst);
        }
        if (late && P < tuning::kLateResidualPerPlane) detail::add_relu(y + at, y + at, res + at, no * P, relu);
      }
    };
    if (detail::split_items(gr.count, max_threads())) {  // whole groups per thread
#pragma omp parallel for schedule(static)
      for (Index i = 0; i < gr.count; ++i) {
        const Index n0 = gr.begin(i), ni = gr.begin(i + 1) - n0, m = ni * P;
        T* col = scratch<T, Slot::col>(col_size(m));
        build_group(detail::group_table(g, ni, xs), m, x + n0 * xs, 0, K, col);
        multiply(i, 0, s.cout, col);
      }
    } else {
      // Too few groups: the team builds each group's column matrix together (a share of its rows each), then
      // each thread multiplies its share of the output channels; the barriers keep the shared buffer consistent.
      T* col = scratch<T, Slot::shared_col>(col_size(gr.most * P));
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
      T* col = scratch<T, Slot::col>(std::size_t(K * m));
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
        T* col = scratch<T, Slot::col>(std::size_t(pgemm::packed_size(kb, m)));
        if (g.pointwise())
          pgemm::pack_rows(xn + r0 * P + p0, P, kb, m, 0, kb, col);
        else
          detail::im2col(g, xn, p0, p0 + m, r0, r0 + kb,
                         detail::PanelsOut<T>{col, kb, m, scratch<T, Slot::panel_row>(std::size_t(m)), r0});
        const bool last = r0 + kb >= K;
        pgemm::gemm(o1 - o0, m, kb, w + o0 * ld + r0, ld, false, col, yp, P, r0 > 0, last && epilogue ? &ep : nullptr);
      }
    }
  });
}

}  // namespace hw1::cpu::detail
