// Dropout<P> (element-wise) and Dropout2d<P> (whole channels), torch semantics: active only in training mode,
// survivors scaled by 1/(1-P). Masks come from the context's seed, so a run is reproducible.
#pragma once
#include <string>

#include "hw1/core/compose.hpp"

namespace hw1 {

template <int In, float P, bool Channelwise, class B>
class DropoutLayer : public LayerBase<In, In, B> {
  static_assert(P >= 0.0f && P < 1.0f, "hw1::Dropout: probability must be in [0, 1)");
  using Base = LayerBase<In, In, B>;

 public:
  using typename Base::context;
  using typename Base::params;
  using typename Base::scalar;
  using typename Base::tensor;
  void visit(params&, const std::string&) {}
  tensor forward(context& c, tensor x) {
    active_ = c.training && !c.dropout_off && P > 0.0f;
    if (!active_) return x;
    mask_ = B::empty(shape_of(x));
    if constexpr (Channelwise) {
      const Dims4 d = dims4(x, "Dropout2d");
      B::dropout2d_mask(d.n, d.c, d.h * d.w, scalar(P), c.next_seed(), mask_.data());
    } else {
      B::dropout_mask(x.size(), scalar(P), c.next_seed(), mask_.data());
    }
    B::mul_forward(x.size(), x.data(), mask_.data(), x.data());
    return x;
  }
  tensor backward(context&, tensor dy) {
    if (!active_) return dy;
    B::mul_forward(dy.size(), dy.data(), mask_.data(), dy.data());
    return dy;
  }

 private:
  bool active_ = false;
  tensor mask_;
};

template <float P>
struct Dropout {
  template <int In, class B>
  using bind = DropoutLayer<In, P, false, B>;
};
template <float P>
struct Dropout2d {
  template <int In, class B>
  using bind = DropoutLayer<In, P, true, B>;
};

}  // namespace hw1
