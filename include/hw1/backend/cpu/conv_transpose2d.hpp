// ConvTranspose2d on the CPU. It is the data gradient of the Conv2d that maps its output [cout, out_h, out_w] to
// its input [cin, h, w], so it reuses that conv's column view with the roles swapped: forward is
// col2im(W^T * X) (columns on the input grid scatter into the output image), backward reads im2col(dY):
// dX = W * im2col(dY), dW += X * im2col(dY)^T. Parallelism follows conv2d.hpp.
#pragma once
#include <algorithm>
#include <string>
#include <vector>

#include "hw1/backend/cpu/conv2d.hpp"
#include "hw1/backend/cpu/shapes.hpp"

namespace hw1::cpu {


namespace detail {

// The adjoint conv's column view: image = this op's output [cout, out_h, out_w], positions = its input h x w.
inline ColGeom geom(const ConvTranspose2dShape& s) {
  return {s.cout, s.out_h(), s.out_w(), s.kh, s.kw, s.stride_h, s.stride_w, s.pad_h, s.pad_w, s.dil_h, s.dil_w,
          s.h, s.w};
}


}  // namespace detail

// x [n,cin,h,w]; w [cin,cout,kh,kw] (PyTorch's layout); bias [cout] or nullptr; y [n,cout,out_h,out_w] is
// overwritten.
template <class T>
void conv_transpose2d_forward(const ConvTranspose2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  detail::check(s);
  const detail::ColGeom g = detail::geom(s);
  const Index K = g.rows(), P = g.cols(), kk = Index(s.kh) * s.kw, plane = g.plane();
  const Index xs = Index(s.cin) * P, ys = Index(s.cout) * plane, bc = detail::block_cols(K, P);
  // Image n, output channels [c0, c1) (column rows [r0, r0 + nr)): Y[c0:c1] = col2im(W[:, rows]^T * X) + bias.
  // col2im scatters across blocks, so blocks of one image stay on one thread.
  detail::for_pieces(Index(s.n), s.cout, [&](Index n, Index c0, Index c1) {
    if (c0 >= c1) return;
    const Index r0 = c0 * kk, nr = (c1 - c0) * kk, nc = c1 - c0;
    T* yc = y + n * ys + c0 * plane;
    const auto Wr = mat(w + r0, s.cin, nr, K);
    if (!g.pointwise()) std::fill_n(yc, nc * plane, T(0));
    for (Index p0 = 0; p0 < P; p0 += bc) {
      const Index m = std::min(P, p0 + bc) - p0;
      const auto X = mat(x + n * xs + p0, s.cin, m, P);
      if (g.pointwise()) {
        gemm(mat(yc + p0, nc, m, P), Wr.transpose(), X, false);
        continue;
      }
      T* col = scratch<T, Slot::col>(std::size_t(nr * m));
      gemm(mat(col, nr, m), Wr.transpose(), X, false);
      detail::col2im(g, static_cast<const T*>(col), p0, p0 + m, c0, c1, y + n * ys);
    }
    if (bias) mat(yc, nc, plane).colwise() += vec(bias + c0, nc);
  });
}

// dy [n,cout,out_h,out_w]. dx is overwritten (nullptr: skip). dw [cin,cout,kh,kw] and db [cout] are accumulated
// (+=); nullptr skips each.
template <class T>
void conv_transpose2d_backward(const ConvTranspose2dShape& s, const T* x, const T* w, const T* dy, T* dx, T* dw,
                               T* db) {
  detail::check(s);
  const detail::ColGeom g = detail::geom(s);
  const Index K = g.rows(), P = g.cols(), xs = Index(s.cin) * P, ys = Index(s.cout) * g.plane();
  const Index bc = detail::block_cols(K, P), nb = (P + bc - 1) / bc, items = Index(s.n) * nb;
  if (db) detail::add_channel_sums(dy, s.n, s.cout, g.plane(), db);
  if (!dx && !dw) return;
  // Piece i = (image, block of input positions), input channels [c0, c1), with C = im2col(dY)[:, block]:
  // dX[c0:c1, block] = W[c0:c1] * C and dW[c0:c1] += X[c0:c1, block] * C^T (dw itself, or a thread's partial sum).
  detail::for_backward_pieces(items, s.cin, dw, s.cin * K, [&](Index i, Index c0, Index c1, T* dW) {
    if (c0 >= c1) return;
    const Index n = i / nb, p0 = i % nb * bc, m = std::min(P, p0 + bc) - p0, nc = c1 - c0;
    const T* dyn = dy + n * ys;
    auto use = [&](const auto& C) {
      if (dx) gemm(mat(dx + n * xs + c0 * P + p0, nc, m, P), mat(w + c0 * K, nc, K), C, false);
      if (dW) gemm(mat(dW + c0 * K, nc, K), mat(x + n * xs + c0 * P + p0, nc, m, P), C.transpose(), true);
    };
    if (g.pointwise()) {
      use(mat(dyn + p0, s.cout, m, P));
      return;
    }
    T* col = scratch<T, Slot::col>(std::size_t(K * m));
    detail::im2col(g, dyn, p0, p0 + m, 0, K, col);
    use(mat(static_cast<const T*>(col), K, m));
  });
}

}  // namespace hw1::cpu
