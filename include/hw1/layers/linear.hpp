// Linear<In, Out>: torch.nn.Linear. Accepts [N, In] or [N, In, 1, 1] (so it follows GlobalAvgPool as
// torchvision's flatten + fc does) and returns [N, Out]. Out may be `dynamic` (the class head).
#pragma once
#include <cmath>
#include <string>

#include "hw1/core/compose.hpp"

namespace hw1 {

template <int In, int Out, bool Bias, class B>
class LinearLayer : public LayerBase<In, Out, B> {
  using Base = LayerBase<In, Out, B>;

 public:
  using typename Base::context;
  using typename Base::params;
  using typename Base::tensor;

  void set_out_channels(int c) requires(Out == dynamic) { out_ = c; }
  int out_ch() const { return out_; }

  void visit(params& ps, const std::string& prefix) {
    if (out_ <= 0) throw Error(prefix + "weight: output size not set (dynamic layer)");
    name_ = layer_name(prefix, "linear");
    // torch's default: kaiming_uniform_(a=sqrt(5)) -> U(-1/sqrt(in), 1/sqrt(in)), bias likewise.
    const double bound = 1.0 / std::sqrt(double(In));
    w_ = ps.add(prefix + "weight", {std::size_t(out_), std::size_t(In)}, true, {Init::uniform, bound});
    if constexpr (Bias) b_ = ps.add(prefix + "bias", {std::size_t(out_)}, true, {Init::uniform, bound});
  }

  tensor forward(context& c, tensor x) {
    std::size_t features = x.dimension() >= 2 ? x.size() / x.shape()[0] : 0;
    if (features != std::size_t(In) || (x.dimension() == 4 && (x.shape()[2] != 1 || x.shape()[3] != 1)))
      throw Error(name_ + ": expected input [N, " + std::to_string(In) + "] or [N, " + std::to_string(In) +
                  ", 1, 1], got " + shape_str(x.shape()));
    const int n = int(x.shape()[0]);
    tensor y = B::empty({std::size_t(n), std::size_t(out_)});
    B::linear_forward(n, In, out_, x.data(), c.w(w_), Bias ? c.w(b_) : nullptr, y.data());
    if (c.record) x_ = std::move(x);
    return y;
  }

  tensor backward(context& c, tensor dy) {
    tensor dx = B::empty(shape_of(x_));
    B::linear_backward(int(x_.shape()[0]), In, out_, x_.data(), c.w(w_), dy.data(), dx.data(), c.g(w_),
                       Bias ? c.g(b_) : nullptr);
    c.grad_ready(w_, std::size_t(out_) * std::size_t(In));
    if constexpr (Bias) c.grad_ready(b_, std::size_t(out_));
    x_ = tensor();
    return dx;
  }

 private:
  int out_ = Out;
  std::size_t w_ = 0, b_ = 0;
  std::string name_;
  tensor x_;
};

template <int In, int Out, bool Bias = true>
struct Linear {
  template <int InBound, class B>
  using bind = std::conditional_t<channels_match<InBound, In>::value, LinearLayer<In, Out, Bias, B>, void>;
};

}  // namespace hw1
