// Algorithms dx_packed1x1 and dw_packed1x1: both gradients of a 1x1, stride-1 convolution on the packed GEMM
// (float, AVX-512), taken from tuning::kPacked1x1MinPositions positions per image.
#pragma once
#include <algorithm>

#include "hw1/backend/cpu/conv/gemm_forward.hpp"
#include "hw1/backend/cpu/conv/tuning.hpp"
#include "hw1/backend/cpu/conv/work_split.hpp"
#include "hw1/backend/cpu/conv2d_shape.hpp"
#include "hw1/backend/cpu/gemm.hpp"
#include "hw1/backend/cpu/pgemm.hpp"
#include "hw1/core/error.hpp"

namespace hw1::cpu::detail {

// dX is the forward of the 1x1 convolution from cout to cin channels with weights W^T: W transposed once (rows not
// a multiple of tuning::kAliasingRowFloats floats apart, see pgemm.hpp), then the forward's packed GEMMs and image
// groups.
inline void packed1x1_input_grad(const Conv2dShape& s, const float* w, const float* dy, float* dx) {
  const Index ld = s.cout % tuning::kAliasingRowFloats ? s.cout : s.cout + tuning::kAliasPad;
  float* wt = scratch<float, Slot::w_transposed>(std::size_t(s.cin * ld));
#pragma omp parallel for schedule(static)
  for (Index c0 = 0; c0 < s.cin; c0 += 16)
    for (Index o0 = 0; o0 < s.cout; o0 += 16)
      for (Index c = c0; c < std::min<Index>(s.cin, c0 + 16); ++c)
        for (Index o = o0; o < std::min<Index>(s.cout, o0 + 16); ++o) wt[c * ld + o] = w[o * s.cin + c];
  const Conv2dShape t{s.n, s.cout, s.h, s.w, s.cin, 1, 1, 1, 1, 0, 0, 1, 1};
  detail::gemm_forward<float>(t, dy, wt, ld, nullptr, nullptr, false, dx, nullptr);
}

// dW += dY_n X_n^T per image, dY_n read in place as A and X_n^T packed by 16 x 16 transposes, pgemm::kKC positions
// at a time. Each thread owns its share of the input channels (columns of dW) over the whole batch: no partial
// sums to zero and add up.
inline void packed1x1_weight_grad(const Conv2dShape& s, const float* x, const float* dy, float* dw) {
#if defined(__AVX512F__)
  const Index P = Index(s.h) * s.w, K = s.cin, xs = Index(s.cin) * P, ys = Index(s.cout) * P;
#pragma omp parallel
  {
    const auto [c0, c1] = detail::my_share(s.cin);
    float* col = scratch<float, Slot::col>(std::size_t(pgemm::packed_size(std::min(P, pgemm::kKC), c1 - c0)));
    for (Index n = 0; n < s.n && c0 < c1; ++n)
      for (Index p0 = 0; p0 < P; p0 += pgemm::kKC) {
        const Index kb = std::min(pgemm::kKC, P - p0);
        pgemm::pack_transposed(x + n * xs + c0 * P + p0, P, c1 - c0, kb, col);
        pgemm::gemm(s.cout, c1 - c0, kb, dy + n * ys + p0, P, false, col, dw + c0, K, true);
      }
  }
#else
  (void)s, (void)x, (void)dy, (void)dw;
  throw Error("conv2d: the packed 1x1 weight gradient needs an AVX-512 build");
#endif
}

}  // namespace hw1::cpu::detail
