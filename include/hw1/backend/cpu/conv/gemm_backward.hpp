// Algorithms dx_gemm and dw_gemm: a convolution's input and weight gradients as GEMMs, any element type, in one
// pass over the column matrix (when both are wanted): dW += dY * im2col(X)^T and dX = col2im(W^T * dY), image by
// image and block by block, or over batched groups of small images (as conv/gemm_forward.hpp). dW accumulates in
// per-thread partial sums added in thread order, or in disjoint columns per thread (conv/work_split.hpp).
#pragma once
#include <algorithm>
#include <type_traits>

#include "hw1/backend/cpu/conv/im2col.hpp"
#include "hw1/backend/cpu/conv/im2col_avx512.hpp"
#include "hw1/backend/cpu/conv/work_split.hpp"
#include "hw1/backend/cpu/conv2d_shape.hpp"
#include "hw1/backend/cpu/gemm.hpp"

namespace hw1::cpu::detail {

// dx = dL/dx (overwritten; null: skip) and dw += dL/dw (null: skip) of y = conv(x, w), given dy.
template <class T>
void gemm_backward(const Conv2dShape& s, const T* x, const T* w, const T* dy, T* dx, T* dw) {
  if (!dx && !dw) return;
  const detail::ColGeom g = detail::geom(s);
  const Index K = g.rows(), P = g.cols(), kk = Index(s.kh) * s.kw, plane = g.plane();
  const Index xs = Index(s.cin) * plane, ys = Index(s.cout) * P, bc = detail::block_cols(K, P);
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
      T* col = scratch<T, Slot::col>(std::size_t(nr * m));
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
        T* dyg = scratch<T, Slot::group_dy>(std::size_t(s.cout * (gr.begin(i + 1) - gr.begin(i)) * P));
        gather_dy(i, 0, s.cout, dyg);
        piece(i, c0, c1, dW, dyg);
      });
    } else {
      // Too few groups: the team gathers each group's dY together, then each thread takes its input channels
      // (its own columns of dw, so no partial sums).
      T* dyg = scratch<T, Slot::shared_dy>(std::size_t(s.cout * gr.most * P));
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
      T* col = scratch<T, Slot::col>(std::size_t(nr * m));
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

}  // namespace hw1::cpu::detail
