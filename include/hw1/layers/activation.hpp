// ReLU (out-of-place; backward uses the output's sign, as PyTorch's threshold_backward does).
#pragma once
#include <string>

#include "hw1/core/compose.hpp"

namespace hw1 {

template <int In, class B>
class ReLULayer : public LayerBase<In, In, B> {
  using Base = LayerBase<In, In, B>;

 public:
  using typename Base::context;
  using typename Base::params;
  using typename Base::tensor;
  static constexpr bool fusable_relu = true;  // see conv_bn_relu() in core/compose.hpp
  void visit(params&, const std::string&) {}
  tensor forward(context& c, tensor x) {
    B::relu_forward(x.size(), x.data(), x.data());
    if (c.record) y_ = x;
    return x;
  }
  tensor backward(context&, tensor dy) {
    B::relu_backward(dy.size(), y_.data(), dy.data(), dy.data());
    y_ = tensor();
    return dy;
  }

 private:
  tensor y_;
};

struct ReLU {
  template <int In, class B>
  using bind = ReLULayer<In, B>;
};

}  // namespace hw1
