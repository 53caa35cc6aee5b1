// The geometry of a 2-D convolution, shared by the CPU kernels (conv2d.hpp, winograd.hpp) and the CUDA backend.
#pragma once

namespace hw1::cpu {

struct Conv2dShape {  // PyTorch Conv2d semantics, groups = 1, NCHW, row-major
  int n, cin, h, w;   // input
  int cout, kh, kw;
  int stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1;
  // The forward of a pass that will be back-propagated (Context::record): the CPU backend then keeps Winograd
  // F(4x4) out of it, whose error the gradients would inherit (winograd4.hpp).
  bool backward_follows = false;
  int out_h() const { return (h + 2 * pad_h - dil_h * (kh - 1) - 1) / stride_h + 1; }
  int out_w() const { return (w + 2 * pad_w - dil_w * (kw - 1) - 1) / stride_w + 1; }
};

}  // namespace hw1::cpu

namespace hw1 {
using Conv2dShape = cpu::Conv2dShape;
}  // namespace hw1
