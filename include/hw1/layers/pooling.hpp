// MaxPool2d<Kernel, Stride, Padding, CeilMode> (torch.nn.MaxPool2d) and AdaptiveAvgPool2d(1) as GlobalAvgPool,
// which keeps torch's [N, C, 1, 1] output shape.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "hw1/backend/cpu/shapes.hpp"
#include "hw1/core/compose.hpp"

namespace hw1 {

template <int In, int K, int S, int P, bool Ceil, class B>
class MaxPool2dLayer : public LayerBase<In, In, B> {
  using Base = LayerBase<In, In, B>;

 public:
  using typename Base::context;
  using typename Base::params;
  using typename Base::tensor;
  void visit(params&, const std::string& prefix) { name_ = layer_name(prefix, "maxpool"); }
  tensor forward(context& c, tensor x) {
    const Dims4 d = dims4(x, name_.c_str());
    s_ = {d.n, d.c, d.h, d.w, K, K, S, S, P, P, Ceil};
    if (s_.out_h() <= 0 || s_.out_w() <= 0)
      throw Error(name_ + ": input " + shape_str(x.shape()) + " is too small for a " + std::to_string(K) + "x" +
                  std::to_string(K) + " max pool");
    tensor y = B::empty({std::size_t(d.n), std::size_t(d.c), std::size_t(s_.out_h()), std::size_t(s_.out_w())});
    if (c.record) {
      argmax_.resize(y.size());
      B::maxpool2d_forward(s_, x.data(), y.data(), argmax_.data());
    } else {  // no backward follows: skip the argmax
      B::maxpool2d_forward(s_, x.data(), y.data(), static_cast<std::int64_t*>(nullptr));
    }
    return y;
  }
  tensor backward(context&, tensor dy) {
    tensor dx = B::empty({std::size_t(s_.n), std::size_t(s_.c), std::size_t(s_.h), std::size_t(s_.w)});
    B::maxpool2d_backward(s_, argmax_.data(), dy.data(), dx.data());
    return dx;
  }

 private:
  std::string name_;
  Pool2dShape s_{};
  typename B::template buffer<std::int64_t> argmax_;  // host or device, as the tensors
};

template <int Kernel, int Stride = Kernel, int Padding = 0, bool CeilMode = false>
struct MaxPool2d {
  template <int In, class B>
  using bind = MaxPool2dLayer<In, Kernel, Stride, Padding, CeilMode, B>;
};

template <int In, class B>
class GlobalAvgPoolLayer : public LayerBase<In, In, B> {
  using Base = LayerBase<In, In, B>;

 public:
  using typename Base::context;
  using typename Base::params;
  using typename Base::tensor;
  void visit(params&, const std::string&) {}
  tensor forward(context&, tensor x) {
    d_ = dims4(x, "GlobalAvgPool");
    tensor y = B::empty({std::size_t(d_.n), std::size_t(d_.c), 1, 1});
    B::global_avgpool_forward(d_.n, d_.c, d_.h * d_.w, x.data(), y.data());
    return y;
  }
  tensor backward(context&, tensor dy) {
    tensor dx = B::empty({std::size_t(d_.n), std::size_t(d_.c), std::size_t(d_.h), std::size_t(d_.w)});
    B::global_avgpool_backward(d_.n, d_.c, d_.h * d_.w, dy.data(), dx.data());
    return dx;
  }

 private:
  Dims4 d_{};
};

struct GlobalAvgPool {
  template <int In, class B>
  using bind = GlobalAvgPoolLayer<In, B>;
};

}  // namespace hw1
