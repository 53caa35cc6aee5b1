// Conv2d on the CPU: conv2d_forward_fused, conv2d_forward and conv2d_backward. Each call validates the shape
// (shapes.hpp), drops the kernel's dead taps (conv/trim.hpp), asks the selector (conv/select.hpp) for the
// algorithm of each thing it computes, counts the choice (trace.hpp; HW1_CONV_TRACE=1 prints it) and runs it:
//   fwd_gemm, dx_gemm, dw_gemm        im2col + GEMM, any element type     conv/gemm_forward.hpp, gemm_backward.hpp
//   fwd/dx/dw_dense2x2                3x3 on 2x2 planes as one GEMM       conv/dense2x2.hpp
//   fwd_f2, dx_f2, dw_f2              Winograd F(2x2, 3x3)                winograd.hpp
//   fwd_f4, dx_f4                     Winograd F(4x4, 3x3)                winograd4.hpp
//   dx_packed1x1, dw_packed1x1        1x1 gradients on the packed GEMM    conv/packed1x1.hpp
// All but the GEMM paths are float on AVX-512 builds. The thresholds between them: conv/tuning.hpp.
#pragma once
#include <algorithm>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "hw1/backend/cpu/conv/dense2x2.hpp"
#include "hw1/backend/cpu/conv/gemm_backward.hpp"
#include "hw1/backend/cpu/conv/gemm_forward.hpp"
#include "hw1/backend/cpu/conv/packed1x1.hpp"
#include "hw1/backend/cpu/conv/select.hpp"
#include "hw1/backend/cpu/conv/trim.hpp"
#include "hw1/backend/cpu/conv/work_split.hpp"
#include "hw1/backend/cpu/conv2d_shape.hpp"
#include "hw1/backend/cpu/gemm.hpp"
#include "hw1/backend/cpu/shapes.hpp"
#include "hw1/backend/cpu/trace.hpp"
#include "hw1/backend/cpu/winograd.hpp"
#include "hw1/backend/cpu/winograd4.hpp"

namespace hw1::cpu {

// x [n,cin,h,w]; w [cout,cin,kh,kw]; y [n,cout,out_h,out_w] is overwritten with, per output channel o,
// act(scale[o] * (conv(x, w) + bias[o]) + shift[o] + res), act = ReLU when relu, else identity; bias, scale,
// shift and res (shaped like y, not aliasing it) may each be null (0, 1, 0, 0). A convolution followed by batch
// norm in inference (scale = gamma / sqrt(var + eps), shift = beta - mean * scale), a residual add and ReLU, in
// one pass over y.
template <class T>
void conv2d_forward_fused(const Conv2dShape& s, const T* x, const T* w, const T* bias, const T* scale,
                          const T* shift, bool relu, T* y, const T* res = nullptr) {
  detail::check(s);
  if (detail::Trim t; detail::trim(s, t)) {
    T* w2 = scratch<T, Slot::trimmed_w>(std::size_t(s.cout) * s.cin * t.s.kh * t.s.kw);
    detail::for_trimmed(s, t, [&](Index full, Index part) { w2[part] = w[full]; });
    return conv2d_forward_fused(t.s, x, static_cast<const T*>(w2), bias, scale, shift, relu, y, res);
  }
  // The bias goes into the shift: act(scale * acc + (shift + scale * bias)).
  std::vector<T> folded;
  if (bias) {
    folded.resize(std::size_t(s.cout));
    for (int o = 0; o < s.cout; ++o) folded[o] = (shift ? shift[o] : T(0)) + (scale ? scale[o] : T(1)) * bias[o];
    shift = folded.data();
  }
  const Algo a = select_forward<T>(s);
  note_choice("forward", s, a);
  if constexpr (std::is_same_v<T, float>) {
    switch (a) {
      case Algo::fwd_dense2x2:
#if defined(__AVX512F__)
        return detail::conv3x3_dense_2x2(s, x, w, scale, shift, relu, y, res);
#else
        break;
#endif
      case Algo::fwd_f4: return winograd::forward4(s, x, w, scale, shift, relu, y, res);
      case Algo::fwd_f2: return winograd::forward(s, x, w, scale, shift, relu, y, res);
      default: break;
    }
  }
  detail::gemm_forward(s, x, w, Index(0), scale, shift, relu, y, res);
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
    T* w2 = scratch<T, Slot::trimmed_w>(n2);
    T* dw2 = dw ? scratch<T, Slot::trimmed_dw>(n2) : nullptr;
    detail::for_trimmed(s, t, [&](Index full, Index part) { w2[part] = w[full]; });
    if (dw2) std::fill_n(dw2, n2, T(0));
    conv2d_backward(t.s, x, static_cast<const T*>(w2), dy, dx, dw2, db);
    if (dw2) detail::for_trimmed(s, t, [&](Index full, Index part) { dw[full] += dw2[part]; });
    return;
  }
  if (db) detail::add_channel_sums(dy, s.n, s.cout, Index(s.out_h()) * s.out_w(), db);
  const BackwardAlgos a = select_backward<T>(s, dx != nullptr, dw != nullptr);
  if (a.dx) note_choice("input-grad", s, *a.dx);
  if (a.dw) note_choice("weight-grad", s, *a.dw);
  // The GEMM paths take what the others leave, both gradients in one pass.
  T* gemm_dx = a.dx == Algo::dx_gemm ? dx : nullptr;
  T* gemm_dw = a.dw == Algo::dw_gemm ? dw : nullptr;
  if constexpr (std::is_same_v<T, float>) {
    switch (a.dx.value_or(Algo::dx_gemm)) {
#if defined(__AVX512F__)
      case Algo::dx_dense2x2: {
        const Conv2dShape t{s.n, s.cout, 2, 2, s.cin, 3, 3, 1, 1, 1, 1, 1, 1};
        detail::conv3x3_dense_2x2(t, dy, w, nullptr, nullptr, false, dx, nullptr, true);
        break;
      }
#endif
      case Algo::dx_packed1x1: detail::packed1x1_input_grad(s, w, dy, dx); break;
      // W' in place (flip): input_grad_conv.
      case Algo::dx_f4: winograd::forward4(input_grad_conv(s), dy, w, nullptr, nullptr, false, dx, nullptr, true); break;
      case Algo::dx_f2: winograd::forward(input_grad_conv(s), dy, w, nullptr, nullptr, false, dx, nullptr, true); break;
      default: break;
    }
    switch (a.dw.value_or(Algo::dw_gemm)) {
#if defined(__AVX512F__)
      case Algo::dw_dense2x2: detail::conv3x3_dense_2x2_weight_grad(s, x, dy, dw); break;
#endif
      case Algo::dw_packed1x1: detail::packed1x1_weight_grad(s, x, dy, dw); break;
      case Algo::dw_f2: winograd::weight_grad(s, x, dy, dw); break;
      default: break;
    }
  }
  detail::gemm_backward(s, x, w, dy, gemm_dx, gemm_dw);
}

}  // namespace hw1::cpu
