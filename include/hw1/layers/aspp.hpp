// ASPP<Rates...>: torchvision's DeepLabV3 atrous spatial pyramid pooling (256 channels per branch):
//   convs.0            1x1 conv + BN + ReLU
//   convs.1 .. convs.R 3x3 conv (dilation = padding = rate) + BN + ReLU, one per rate
//   convs.R+1          image pooling: global average pool + 1x1 conv + BN + ReLU, upsampled to the input size
//   project            1x1 conv (R+2)*256 -> 256 + BN + ReLU + Dropout(0.5)
// ASPP<12, 24, 36> is DeepLabv3's head; ASPP<6, 12, 18> the output-stride-16 variant.
#pragma once
#include <string>

#include "hw1/core/compose.hpp"
#include "hw1/layers/activation.hpp"
#include "hw1/layers/batchnorm2d.hpp"
#include "hw1/layers/conv2d.hpp"
#include "hw1/layers/dropout.hpp"
#include "hw1/layers/pooling.hpp"

namespace hw1 {

// Image-pooling branch: children 0 (pool) .. 3 (ReLU) as torchvision's ASPPPooling (an nn.Sequential), whose
// forward then bilinearly upsamples the 1x1 result to the input size (a broadcast, computed by the same op).
template <int In, int Out, class B>
class ASPPPoolingLayer : public LayerBase<In, Out, B> {
  using Base = LayerBase<In, Out, B>;
  using Inner = typename Seq<GlobalAvgPool, Conv1x1<In, Out>, BatchNorm2d<Out>, ReLU>::template bind<In, B>;

 public:
  using typename Base::context;
  using typename Base::params;
  using typename Base::tensor;
  void visit(params& ps, const std::string& prefix) { inner_.visit(ps, prefix); }
  tensor forward(context& c, tensor x) {
    d_ = dims4(x, "ASPPPooling");
    tensor p = inner_.forward(c, std::move(x));
    tensor y = B::empty({std::size_t(d_.n), std::size_t(Out), std::size_t(d_.h), std::size_t(d_.w)});
    B::bilinear_resize_forward(d_.n, Out, 1, 1, d_.h, d_.w, p.data(), y.data());
    return y;
  }
  tensor backward(context& c, tensor dy) {
    tensor dp = B::empty({std::size_t(d_.n), std::size_t(Out), 1, 1});
    B::bilinear_resize_backward(d_.n, Out, 1, 1, d_.h, d_.w, dy.data(), dp.data());
    return inner_.backward(c, std::move(dp));
  }

 private:
  Inner inner_;
  Dims4 d_{};
};

template <int Out>
struct ASPPPooling {
  template <int In, class B>
  using bind = ASPPPoolingLayer<In, Out, B>;
};

template <int In, class B, int... Rates>
class ASPPLayer : public LayerBase<In, 256, B> {
  using Base = LayerBase<In, 256, B>;
  static constexpr int kBranches = int(sizeof...(Rates)) + 2;

 public:
  using typename Base::context;
  using typename Base::params;
  using typename Base::tensor;
  using Convs = typename Concat<Seq<Conv1x1<In, 256>, BatchNorm2d<256>, ReLU>,
                               Seq<Conv3x3<In, 256, 1, Rates>, BatchNorm2d<256>, ReLU>...,
                               ASPPPooling<256>>::template bind<In, B>;
  using Project = typename Seq<Conv1x1<kBranches * 256, 256>, BatchNorm2d<256>, ReLU, Dropout<0.5f>>::template bind<
      kBranches * 256, B>;

  void visit(params& ps, const std::string& prefix) {
    convs.visit(ps, prefix + "convs.");
    project.visit(ps, prefix + "project.");
  }
  tensor forward(context& c, tensor x) { return project.forward(c, convs.forward(c, std::move(x))); }
  tensor backward(context& c, tensor dy) { return convs.backward(c, project.backward(c, std::move(dy))); }

  Convs convs;
  Project project;
};

template <int... Rates>
struct ASPP {
  static_assert(sizeof...(Rates) > 0, "hw1::ASPP needs at least one atrous rate");
  static_assert(((Rates > 0) && ...), "hw1::ASPP: atrous rates must be positive");
  template <int In, class B>
  using bind = ASPPLayer<In, B, Rates...>;
};

}  // namespace hw1
