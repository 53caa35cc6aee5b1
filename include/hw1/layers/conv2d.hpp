// Conv2d<In, Out, Kernel, Stride, Padding, Dilation, Bias>: torch.nn.Conv2d(In, Out, Kernel, Stride, Padding,
// Dilation, bias=Bias) with square kernels, as ResNet, VGG and DeepLab use them. Out may be `dynamic`
// (a class head whose width the model sets at run time with set_out_channels()).
#pragma once
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "hw1/backend/cpu/shapes.hpp"
#include "hw1/core/compose.hpp"

namespace hw1 {

template <int In, int Out, int K, int Stride, int Padding, int Dilation, bool Bias, class B>
class Conv2dLayer : public LayerBase<In, Out, B> {
  static_assert(K > 0 && Stride > 0 && Padding >= 0 && Dilation > 0, "hw1::Conv2d: invalid kernel geometry");
  using Base = LayerBase<In, Out, B>;

 public:
  using typename Base::context;
  using typename Base::params;
  using typename Base::scalar;
  using typename Base::tensor;

  void set_in_channels(int c) requires(In == dynamic) { in_ = c; }
  void set_out_channels(int c) requires(Out == dynamic) { out_ = c; }
  int in_ch() const { return in_; }
  int out_ch() const { return out_; }

  void visit(params& ps, const std::string& prefix) {
    if (in_ <= 0 || out_ <= 0) throw Error(prefix + "weight: channel count not set (dynamic layer)");
    name_ = layer_name(prefix, "conv");
    // torchvision's ResNet / VGG init: kaiming_normal_(mode="fan_out", nonlinearity="relu"), bias 0.
    const double std = std::sqrt(2.0 / (double(out_) * K * K));
    w_ = ps.add(prefix + "weight", {std::size_t(out_), std::size_t(in_), K, K}, true, {Init::normal, std});
    if constexpr (Bias) b_ = ps.add(prefix + "bias", {std::size_t(out_)}, true, {Init::zeros, 0});
  }

  static constexpr bool fusable_conv = true;  // see conv_bn_relu() in core/compose.hpp

  tensor forward(context& c, tensor x) {
    tensor y = output_for(x);
    s_.backward_follows = c.record;
    B::conv2d_forward(s_, x.data(), c.w(w_), Bias ? c.w(b_) : nullptr, y.data());
    if (c.record) x_ = std::move(x);
    return y;
  }

  // Inference only, on a backend with conv2d_forward_fused: this convolution, then the batch norm layer bn in
  // inference (null: none), then + residual (null: none; a tensor shaped like the output), then ReLU when relu,
  // in one pass over the output. Records nothing.
  template <class BnPtr>
  tensor forward_fused(context& c, const tensor& x, BnPtr bn, bool relu, const tensor* residual = nullptr) {
    tensor y = output_for(x);
    if (residual && residual->shape() != y.shape())
      throw Error(name_ + ": output " + shape_str(y.shape()) + " and the residual added to it " +
                  shape_str(residual->shape()) + " differ");
    std::vector<scalar> scale, shift;
    if constexpr (!std::is_same_v<BnPtr, std::nullptr_t>) {
      if (bn) bn->inference_affine(c, out_, scale, shift);
    }
    B::conv2d_forward_fused(s_, x.data(), c.w(w_), Bias ? c.w(b_) : nullptr, scale.empty() ? nullptr : scale.data(),
                            shift.empty() ? nullptr : shift.data(), relu, y.data(),
                            residual ? residual->data() : nullptr);
    return y;
  }

  // The input the last recording forward kept for backward (empty after backward, or when nothing recorded).
  const tensor& recorded_input() const { return x_; }

  // With want_dx false only the parameter gradients are computed, and dx is an empty tensor (a network's first
  // layer when the input's gradient is not wanted: Context::input_grad).
  tensor backward(context& c, tensor dy, bool want_dx = true) {
    tensor dx = want_dx ? B::empty({std::size_t(s_.n), std::size_t(in_), std::size_t(s_.h), std::size_t(s_.w)})
                        : tensor();
    B::conv2d_backward(s_, x_.data(), c.w(w_), dy.data(), want_dx ? dx.data() : nullptr, c.g(w_),
                       Bias ? c.g(b_) : nullptr);
    c.grad_ready(w_, std::size_t(out_) * std::size_t(in_) * K * K);
    if constexpr (Bias) c.grad_ready(b_, std::size_t(out_));
    x_ = tensor();
    return dx;
  }

 private:
  int in_ = In, out_ = Out;
  std::size_t w_ = 0, b_ = 0;
  std::string name_;
  Conv2dShape s_{};
  tensor x_;

  // Checks x, sets s_ and returns the uninitialised output.
  tensor output_for(const tensor& x) {
    const Dims4 d = checked_input(x, name_, in_);
    s_ = {d.n, in_, d.h, d.w, out_, K, K, Stride, Stride, Padding, Padding, Dilation, Dilation};
    if (s_.out_h() <= 0 || s_.out_w() <= 0)
      throw Error(name_ + ": input " + shape_str(x.shape()) + " is too small for a " + std::to_string(K) + "x" +
                  std::to_string(K) + " convolution (dilation " + std::to_string(Dilation) + ")");
    return B::empty({std::size_t(d.n), std::size_t(out_), std::size_t(s_.out_h()), std::size_t(s_.out_w())});
  }
};

template <int In, int Out, int Kernel, int Stride = 1, int Padding = 0, int Dilation = 1, bool Bias = true>
struct Conv2d {
  template <int InBound, class B>
  using bind = std::conditional_t<channels_match<InBound, In>::value,
                                  Conv2dLayer<In, Out, Kernel, Stride, Padding, Dilation, Bias, B>, void>;
};

// The named form: Conv<3, 64, ConvOpts{.kernel = 7, .stride = 2, .padding = 3, .bias = false}> is
// Conv2d<3, 64, 7, 2, 3, 1, false>, with every argument that differs from torch.nn.Conv2d's default named.
struct ConvOpts {
  int kernel = 3, stride = 1, padding = 0, dilation = 1;
  bool bias = true;
};
template <int In, int Out, ConvOpts O>
using Conv = Conv2d<In, Out, O.kernel, O.stride, O.padding, O.dilation, O.bias>;

// The convolutions ResNet and DeepLab are made of: no bias (batch norm follows), "same" padding for 3x3.
template <int In, int Out, int Stride = 1>
using Conv1x1 = Conv2d<In, Out, 1, Stride, 0, 1, false>;
template <int In, int Out, int Stride = 1, int Dilation = 1>
using Conv3x3 = Conv2d<In, Out, 3, Stride, Dilation, Dilation, false>;

}  // namespace hw1
