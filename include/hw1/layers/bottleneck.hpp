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

template <int In, int Mid, int Out, int Stride, int Dilation, class B>
class BottleneckLayer : public LayerBase<In, Out, B> {
  using Base = LayerBase<In, Out, B>;
  struct Empty {};
  template <class S>
  using L = typename S::template bind<dynamic, B>;  // children: channels fixed by their own template arguments

 public:
  using typename Base::context;
  using typename Base::params;
  using typename Base::tensor;
  static constexpr bool has_downsample = Stride != 1 || In != Out;

  void visit(params& ps, const std::string& p) {
    conv1.visit(ps, p + "conv1."), bn1.visit(ps, p + "bn1.");
    conv2.visit(ps, p + "conv2."), bn2.visit(ps, p + "bn2.");
    conv3.visit(ps, p + "conv3."), bn3.visit(ps, p + "bn3.");
    if constexpr (has_downsample) down_conv.visit(ps, p + "downsample.0."), down_bn.visit(ps, p + "downsample.1.");
  }

  // x is copied only for the downsample conv, which records its own copy for backward in training; conv1 keeps
  // x itself, and without a downsample the shortcut then reads conv1's recorded input. In fused inference x is
  // only read, also as the shortcut.
  tensor forward(context& c, tensor x) {
    using NoRelu = decltype(relu1)*;
    tensor identity, y;
    const tensor* shortcut = &x;
    if constexpr (has_downsample) {
      identity = conv_bn_relu(c, down_conv, &down_bn, NoRelu(nullptr), std::as_const(x));
      y = conv_bn_relu(c, conv1, &bn1, &relu1, std::move(x));
      shortcut = &identity;
    } else if (c.record && !fusable<B>(c)) {
      y = conv_bn_relu(c, conv1, &bn1, &relu1, std::move(x));
      shortcut = &conv1.recorded_input();
    } else {
      y = conv_bn_relu(c, conv1, &bn1, &relu1, std::as_const(x));
    }
    y = conv_bn_relu(c, conv2, &bn2, &relu2, std::move(y));
    return conv_bn_add_relu(c, conv3, &bn3, &relu3, std::move(y), *shortcut, "Bottleneck");
  }

  // dy after the ReLU is read by both paths (batch norm's backward leaves it as it is), and without a downsample
  // it becomes dx itself, the main path's gradient added to it.
  tensor backward(context& c, tensor dy) {
    dy = relu3.backward(c, std::move(dy));
    tensor dm = conv3.backward(c, bn3.backward(c, dy));
    dm = conv2.backward(c, bn2.backward(c, relu2.backward(c, std::move(dm))));
    dm = conv1.backward(c, bn1.backward(c, relu1.backward(c, std::move(dm))));
    tensor dx;
    if constexpr (has_downsample)
      dx = down_conv.backward(c, down_bn.backward(c, dy));
    else
      dx = std::move(dy);
    B::add_forward(dx.size(), dx.data(), dm.data(), dx.data());
    return dx;
  }

  L<Conv1x1<In, Mid>> conv1;
  L<BatchNorm2d<Mid>> bn1;
  L<ReLU> relu1;
  L<Conv3x3<Mid, Mid, Stride, Dilation>> conv2;
  L<BatchNorm2d<Mid>> bn2;
  L<ReLU> relu2;
  L<Conv1x1<Mid, Out>> conv3;
  L<BatchNorm2d<Out>> bn3;
  L<ReLU> relu3;
  [[no_unique_address]] std::conditional_t<has_downsample, L<Conv1x1<In, Out, Stride>>, Empty> down_conv;
  [[no_unique_address]] std::conditional_t<has_downsample, L<BatchNorm2d<Out>>, Empty> down_bn;
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
