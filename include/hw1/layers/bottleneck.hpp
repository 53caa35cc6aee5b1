// Bottleneck<Mid, Out, Stride, Dilation>: torchvision's ResNet Bottleneck (expansion 4: Out = 4 * Mid in the
// presets, but any Out works). 1x1 -> 3x3 (stride, dilation) -> 1x1, each with batch norm; the shortcut is a
// 1x1 conv + batch norm ("downsample") when the stride or the channel count changes, else identity.
// Stage<Block, N, FirstDilation> is torchvision's _make_layer: the first block carries the stride (and the
// previous stage's dilation), the remaining N - 1 are Repeat<N - 1, ...> of the stride-1 block.
#pragma once
#include <string>
#include <utility>

#include "hw1/core/compose.hpp"
#include "hw1/layers/activation.hpp"
#include "hw1/layers/batchnorm2d.hpp"
#include "hw1/layers/conv2d.hpp"

namespace hw1 {

// The members, under torchvision's names, in visit order (ReLUs hold no parameters; torchvision shares one).
template <int In, int Mid, int Out, int Stride, int Dilation, bool Downsample>
struct BottleneckMembers {
  template <class B, class... Shortcut>
  using fields = Fields<B, Named<"conv1", Conv1x1<In, Mid>>, Named<"bn1", BatchNorm2d<Mid>>, Named<"relu1", ReLU>,
                        Named<"conv2", Conv3x3<Mid, Mid, Stride, Dilation>>, Named<"bn2", BatchNorm2d<Mid>>,
                        Named<"relu2", ReLU>, Named<"conv3", Conv1x1<Mid, Out>>, Named<"bn3", BatchNorm2d<Out>>,
                        Named<"relu3", ReLU>, Shortcut...>;
  template <class B>
  using type = std::conditional_t<Downsample,
                                  fields<B, Named<"downsample", Seq<Conv1x1<In, Out, Stride>, BatchNorm2d<Out>>>>,
                                  fields<B>>;
};

template <int In, int Mid, int Out, int Stride, int Dilation, class B>
class BottleneckLayer : public LayerBase<In, Out, B> {
  using Base = LayerBase<In, Out, B>;

 public:
  using typename Base::context;
  using typename Base::params;
  using typename Base::tensor;
  static constexpr bool has_downsample = Stride != 1 || In != Out;
  using members_type = typename BottleneckMembers<In, Mid, Out, Stride, Dilation, has_downsample>::template type<B>;

  void visit(params& ps, const std::string& p) { m.visit(ps, p); }

  // x is copied only for the downsample conv, which records its own copy for backward in training; conv1 keeps
  // x itself, and without a downsample the shortcut then reads conv1's recorded input. In fused inference x is
  // only read, also as the shortcut.
  tensor forward(context& c, tensor x) {
    auto& conv1 = m.template get<"conv1">();
    auto& bn1 = m.template get<"bn1">();
    auto& relu1 = m.template get<"relu1">();
    using NoRelu = decltype(&relu1);
    tensor identity, y;
    const tensor* shortcut = &x;
    if constexpr (has_downsample) {
      auto& down = m.template get<"downsample">();
      identity = conv_bn_relu(c, down.template get<0>(), &down.template get<1>(), NoRelu(nullptr), std::as_const(x));
      y = conv_bn_relu(c, conv1, &bn1, &relu1, std::move(x));
      shortcut = &identity;
    } else if (c.record && !fusable<B>(c)) {
      y = conv_bn_relu(c, conv1, &bn1, &relu1, std::move(x));
      shortcut = &conv1.recorded_input();
    } else {
      y = conv_bn_relu(c, conv1, &bn1, &relu1, std::as_const(x));
    }
    y = conv_bn_relu(c, m.template get<"conv2">(), &m.template get<"bn2">(), &m.template get<"relu2">(), std::move(y));
    return conv_bn_add_relu(c, m.template get<"conv3">(), &m.template get<"bn3">(), &m.template get<"relu3">(),
                            std::move(y), *shortcut, "Bottleneck");
  }

  // dy after the ReLU is read by both paths (batch norm's backward leaves it as it is), and without a downsample
  // it becomes dx itself, the main path's gradient added to it.
  tensor backward(context& c, tensor dy) {
    dy = m.template get<"relu3">().backward(c, std::move(dy));
    tensor dm = m.template get<"conv3">().backward(c, m.template get<"bn3">().backward(c, dy));
    dm = m.template get<"relu2">().backward(c, std::move(dm));
    dm = m.template get<"conv2">().backward(c, m.template get<"bn2">().backward(c, std::move(dm)));
    dm = m.template get<"relu1">().backward(c, std::move(dm));
    dm = m.template get<"conv1">().backward(c, m.template get<"bn1">().backward(c, std::move(dm)));
    tensor dx;
    if constexpr (has_downsample)
      dx = m.template get<"downsample">().backward(c, dy);
    else
      dx = std::move(dy);
    B::add_forward(dx.size(), dx.data(), dm.data(), dx.data());
    return dx;
  }

  members_type m;
};

template <int Mid, int Out, int Stride = 1, int Dilation = 1>
struct Bottleneck {
  static constexpr int mid_channels = Mid, out_channels = Out, stride = Stride, dilation = Dilation;
  template <int S, int D>
  using with = Bottleneck<Mid, Out, S, D>;
  template <int In, class B>
  using bind = BottleneckLayer<In, Mid, Out, Stride, Dilation, B>;
};

template <int In, class B, class First, class Rest>
class StageLayer : public LayerBase<In, First::out_channels, B> {
  using Base = LayerBase<In, First::out_channels, B>;

 public:
  using typename Base::context;
  using typename Base::params;
  using typename Base::tensor;
  void visit(params& ps, const std::string& prefix) {
    first.visit(ps, prefix + "0.");
    rest.visit(ps, prefix);
  }
  tensor forward(context& c, tensor x) { return rest.forward(c, first.forward(c, std::move(x))); }
  tensor backward(context& c, tensor dy) { return first.backward(c, rest.backward(c, std::move(dy))); }
  First first;
  Rest rest;
};

template <class Block, int N, int FirstDilation = Block::dilation>
struct Stage {
  static_assert(N >= 1, "hw1::Stage needs at least one block");
  template <int In, class B>
  using bind = StageLayer<In, B,
                          typename Block::template with<Block::stride, FirstDilation>::template bind<In, B>,
                          typename Repeat<N - 1, typename Block::template with<1, Block::dilation>, 1>::template bind<
                              Block::out_channels, B>>;
};

}  // namespace hw1
