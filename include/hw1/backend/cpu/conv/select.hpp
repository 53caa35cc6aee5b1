// The CPU convolution's algorithm selector: which algorithm (trace.hpp's Algo) computes a convolution's forward
// and each of its gradients. The choice depends on the shape, the element type, the thread count, the build
// (AVX-512), the CPU at run time (the packed GEMM's switch, pgemm::enabled) and the environment (HW1_PGEMM,
// HW1_WINOGRAD, HW1_WINOGRAD4); the rules are tried in the order written and the first that holds wins. Every
// threshold is named in conv/tuning.hpp. conv2d.hpp runs what these return; tests pin them
// (tests/backend/cpu/test_conv_select.cpp) and the parity cases assert which ones ran.
//
// HW1_CONV_TRACE=1 prints, to stderr, one line for each distinct (pass, shape, algorithm) a process meets:
//   hw1 conv2d forward [8,256,14,14] -> 256 kernel 3x3 stride 1x1 pad 1x1 dilation 1x1: fwd_f2
#pragma once
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <type_traits>

#include "hw1/backend/cpu/conv/dense2x2.hpp"
#include "hw1/backend/cpu/conv/im2col.hpp"
#include "hw1/backend/cpu/conv/tuning.hpp"
#include "hw1/backend/cpu/conv/gemm_forward.hpp"
#include "hw1/backend/cpu/conv2d_shape.hpp"
#include "hw1/backend/cpu/trace.hpp"
#include "hw1/backend/cpu/winograd.hpp"
#include "hw1/backend/cpu/winograd4.hpp"

namespace hw1::cpu {

// The forward's algorithm.
template <class T>
Algo select_forward(const Conv2dShape& s) {
  if constexpr (std::is_same_v<T, float>) {
    if (detail::dense_2x2(s)) return Algo::fwd_dense2x2;      // 3x3 on 2x2 planes
    if (winograd::worthwhile4_forward(s)) return Algo::fwd_f4;  // inference only, unless HW1_WINOGRAD4=train
    if (winograd::worthwhile(s)) return Algo::fwd_f2;
  }
  return Algo::fwd_gemm;
}

// dX of a 3x3, stride-1 convolution s is itself one (dY -> dX): dY through the flipped, transposed kernel
// W'[c][o][2 - i][2 - j] = W[o][c][i][j], padding 2 * dilation - padding. The Winograd input gradient computes
// that convolution.
inline Conv2dShape input_grad_conv(const Conv2dShape& s) {
  return {s.n, s.cout, s.out_h(), s.out_w(), s.cin, 3, 3, 1, 1, 2 * s.dil_h - s.pad_h, 2 * s.dil_w - s.pad_w,
          s.dil_h, s.dil_w};
}
// Whether input_grad_conv(s) is s's input gradient and worth Winograd: not on small planes (below
// kWinogradInputGradMinPlane pixels), whose batched direct path builds dY's and X's column matrices for dW anyway
// (there the separate pass measured slower on a whole ResNet101 step: docs/performance.md).
inline bool winograd_input_grad(const Conv2dShape& s) {
  if (s.kh != 3 || s.kw != 3 || s.stride_h != 1 || s.stride_w != 1) return false;
  const Conv2dShape t = input_grad_conv(s);
  return Index(s.h) * s.w >= tuning::kWinogradInputGradMinPlane && t.pad_h >= 0 && t.pad_w >= 0 &&
         winograd::worthwhile(t) && t.out_h() == s.h && t.out_w() == s.w;
}
// Whether both gradients of a 1x1, stride-1 convolution run on the packed GEMM.
template <class T>
bool packed_1x1_grads(const Conv2dShape& s) {
  return detail::geom(s).pointwise() && Index(s.out_h()) * s.out_w() >= tuning::kPacked1x1MinPositions &&
         detail::packed_forward<T>();
}

// The gradients' algorithms (empty where that gradient is not wanted).
struct BackwardAlgos {
  std::optional<Algo> dx, dw;
};
template <class T>
BackwardAlgos select_backward(const Conv2dShape& s, bool want_dx, bool want_dw) {
  BackwardAlgos a;
  if (want_dx) a.dx = Algo::dx_gemm;
  if (want_dw) a.dw = Algo::dw_gemm;
  if constexpr (std::is_same_v<T, float>) {
    if (detail::dense_2x2(s)) {  // dX and dW as whole-image GEMMs
      if (want_dx) a.dx = Algo::dx_dense2x2;
      if (want_dw) a.dw = Algo::dw_dense2x2;
      return a;
    }
    const bool packed_1x1 = packed_1x1_grads<T>(s);
    if (want_dx) {
      if (packed_1x1)
        a.dx = Algo::dx_packed1x1;
      else if (winograd_input_grad(s))  // F(4x4) only on request (HW1_WINOGRAD4=train)
        a.dx = winograd::worthwhile4_input_grad(input_grad_conv(s)) ? Algo::dx_f4 : Algo::dx_f2;
    }
    if (want_dw) {
#if defined(__AVX512F__)
      if (packed_1x1)
        a.dw = Algo::dw_packed1x1;
      else
#endif
          if (winograd::worthwhile_weight_grad(s))
        a.dw = Algo::dw_f2;
    }
  }
  return a;
}

// "[8,256,14,14] -> 256 kernel 3x3 stride 1x1 pad 1x1 dilation 1x1".
inline std::string conv_shape_str(const Conv2dShape& s) {
  const auto two = [](int a, int b) { return std::to_string(a) + "x" + std::to_string(b); };
  return "[" + std::to_string(s.n) + "," + std::to_string(s.cin) + "," + std::to_string(s.h) + "," +
         std::to_string(s.w) + "] -> " + std::to_string(s.cout) + " kernel " + two(s.kh, s.kw) + " stride " +
         two(s.stride_h, s.stride_w) + " pad " + two(s.pad_h, s.pad_w) + " dilation " + two(s.dil_h, s.dil_w);
}

namespace detail {
struct ConvTrace {
  std::mutex m;
  std::FILE* to = nullptr;
  std::set<std::string> seen;
  ConvTrace() {  // HW1_CONV_TRACE set, not empty and not "0": stderr
    const char* v = std::getenv("HW1_CONV_TRACE");
    to = v && *v && std::string(v) != "0" ? stderr : nullptr;
  }
};
inline ConvTrace& conv_trace() {
  static ConvTrace t;
  return t;
}
}  // namespace detail

// Where the choices are printed: stderr under HW1_CONV_TRACE, else nowhere (null). set_conv_trace(f) prints them
// to f from then on (null: off), each distinct line once again; not while convolutions run on other threads.
inline std::FILE* conv_trace_stream() { return detail::conv_trace().to; }
inline void set_conv_trace(std::FILE* f) {
  detail::ConvTrace& t = detail::conv_trace();
  const std::lock_guard<std::mutex> lock(t.m);
  t.to = f;
  t.seen.clear();
}

// Counts the choice (trace.hpp) and, where tracing is on, prints it the first time this process meets it.
inline void note_choice(const char* pass, const Conv2dShape& s, Algo a) {
  count(a);
  detail::ConvTrace& t = detail::conv_trace();
  if (!t.to) return;
  std::string line = std::string("hw1 conv2d ") + pass + " " + conv_shape_str(s) + ": " + kAlgoNames[std::size_t(a)];
  const std::lock_guard<std::mutex> lock(t.m);
  if (t.to && t.seen.insert(line).second) std::fprintf(t.to, "%s\n", line.c_str());
}

}  // namespace hw1::cpu
