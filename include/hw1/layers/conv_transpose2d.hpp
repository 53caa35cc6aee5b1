// ConvTranspose2d<In, Out, Kernel, Stride, Padding, OutputPadding, Bias>: torch.nn.ConvTranspose2d with square
// kernels (weight layout [In, Out, K, K]). FCN32s' `upscore` is ConvTranspose2d<K, K, 64, 32, 0, 0, false>.
#pragma once
#include <cmath>
#include <string>

#include "hw1/backend/cpu/shapes.hpp"
#include "hw1/core/compose.hpp"

namespace hw1 {

template <int In, int Out, int K, int Stride, int Padding, int OutPad, bool Bias, class B>
class ConvTranspose2dLayer : public LayerBase<In, Out, B> {
  using Base = LayerBase<In, Out, B>;

 public:
  using typename Base::context;
  using typename Base::params;
  using typename Base::tensor;

  void set_in_channels(int c) requires(In == dynamic) { in_ = c; }
  void set_out_channels(int c) requires(Out == dynamic) { out_ = c; }

  void visit(params& ps, const std::string& prefix) {
    if (in_ <= 0 || out_ <= 0) throw Error(prefix + "weight: channel count not set (dynamic layer)");
    name_ = layer_name(prefix, "conv_transpose");
    // torch's default: kaiming_uniform_(a=sqrt(5)) over fan_in = weight.size(1) * K * K -> bound 1/sqrt(fan_in).
    const double bound = 1.0 / std::sqrt(double(out_) * K * K);
    w_ = ps.add(prefix + "weight", {std::size_t(in_), std::size_t(out_), K, K}, true, {Init::uniform, bound});
    if constexpr (Bias) b_ = ps.add(prefix + "bias", {std::size_t(out_)}, true, {Init::uniform, bound});
  }

  tensor forward(context& c, tensor x) {
    const Dims4 d = checked_input(x, name_, in_);
    s_ = {d.n, in_, d.h, d.w, out_, K, K, Stride, Stride, Padding, Padding, OutPad, OutPad, 1, 1};
    if (s_.out_h() <= 0 || s_.out_w() <= 0) throw Error(name_ + ": output size would be empty");
    tensor y = B::empty({std::size_t(d.n), std::size_t(out_), std::size_t(s_.out_h()), std::size_t(s_.out_w())});
    B::conv_transpose2d_forward(s_, x.data(), c.w(w_), Bias ? c.w(b_) : nullptr, y.data());
    if (c.record) x_ = std::move(x);
    return y;
  }

  tensor backward(context& c, tensor dy) {
    tensor dx = B::empty({std::size_t(s_.n), std::size_t(in_), std::size_t(s_.h), std::size_t(s_.w)});
    B::conv_transpose2d_backward(s_, x_.data(), c.w(w_), dy.data(), dx.data(), c.g(w_), Bias ? c.g(b_) : nullptr);
    c.grad_ready(w_, std::size_t(in_) * std::size_t(out_) * K * K);
    if constexpr (Bias) c.grad_ready(b_, std::size_t(out_));
    x_ = tensor();
    return dx;
  }

 private:
  int in_ = In, out_ = Out;
  std::size_t w_ = 0, b_ = 0;
  std::string name_;
  ConvTranspose2dShape s_{};
  tensor x_;
};

template <int In, int Out, int Kernel, int Stride = 1, int Padding = 0, int OutputPadding = 0, bool Bias = true>
struct ConvTranspose2d {
  template <int InBound, class B>
  using bind = std::conditional_t<channels_match<InBound, In>::value,
                                  ConvTranspose2dLayer<In, Out, Kernel, Stride, Padding, OutputPadding, Bias, B>, void>;
};

}  // namespace hw1
