// ReLU (out-of-place; backward uses the output's sign, as PyTorch's threshold_backward does). On the CPU a recording
// forward keeps a byte mask of where the output is positive instead of a copy of the output, and the layer before
// it may apply it in its own output pass (BatchNorm2dLayer::forward_then): record_mask() hands that layer the mask.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "hw1/core/compose.hpp"

namespace hw1 {

template <int In, class B>
class ReLULayer : public LayerBase<In, In, B> {
  using Base = LayerBase<In, In, B>;
  static constexpr bool masks = detail::FusingBackend<B>;

 public:
  using typename Base::context;
  using typename Base::params;
  using typename Base::tensor;
  static constexpr bool fusable_relu = true;  // see conv_bn_relu() in core/compose.hpp
  void visit(params&, const std::string&) {}
  tensor forward(context& c, tensor x) {
    if constexpr (masks) {
      if (c.record) {
        B::relu_forward_mask(x.size(), x.data(), x.data(), record_mask(x.size(), false));
        return x;
      }
    }
    B::relu_forward(x.size(), x.data(), x.data());
    if (c.record) y_ = x;
    return x;
  }

  // For the layer before this ReLU when it applies the ReLU in its own output pass (CPU): the mask of `count`
  // bytes it must fill (1 where the output is positive). With in_backward that layer also applies the mask to the
  // gradient in its own backward, and this layer's backward passes dy through.
  std::uint8_t* record_mask(std::size_t count, bool in_backward) requires masks {
    mask_.resize(count);  // kept between steps: the same size comes back every iteration
    pass_through_ = in_backward;
    return mask_.data();
  }

  tensor backward(context&, tensor dy) {
    if constexpr (masks) {
      if (!pass_through_) B::relu_backward_mask(dy.size(), mask_.data(), dy.data(), dy.data());
      return dy;
    } else {
      B::relu_backward(dy.size(), y_.data(), dy.data(), dy.data());
      y_ = tensor();
      return dy;
    }
  }

 private:
  tensor y_;
  std::vector<std::uint8_t> mask_;  // CPU: where the recorded output was positive
  bool pass_through_ = false;
};

struct ReLU {
  template <int In, class B>
  using bind = ReLULayer<In, B>;
};

}  // namespace hw1
