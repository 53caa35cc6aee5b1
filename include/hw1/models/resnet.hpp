// ResNet101, as torchvision's resnet101: stem (conv7x7/2, BN, ReLU, maxpool 3x3/2), stages of 3, 4, 23 and 3
// Bottlenecks, global average pool, fc. ResNetTrunk is the part DeepLabv3 reuses as its backbone, with the
// strides of layer3 and layer4 replaced by dilation (output stride 8).
#pragma once
#include <string>

#include "hw1/core/compose.hpp"
#include "hw1/layers/activation.hpp"
#include "hw1/layers/batchnorm2d.hpp"
#include "hw1/layers/bottleneck.hpp"
#include "hw1/layers/conv2d.hpp"
#include "hw1/layers/linear.hpp"
#include "hw1/layers/pooling.hpp"
#include "hw1/models/model.hpp"

namespace hw1 {

// replace_stride_with_dilation = [False, False, False] (classification) or [False, True, True] (DeepLabv3).
template <bool Dilated, class B>
struct ResNet101Trunk {
  using tensor = typename B::tensor;
  using scalar = typename B::scalar;
  template <class S, int In>
  using L = typename S::template bind<In, B>;

  using Layer3 = std::conditional_t<Dilated, Stage<Bottleneck<256, 1024, 1, 2>, 23, 1>,
                                    Stage<Bottleneck<256, 1024, 2>, 23>>;
  using Layer4 = std::conditional_t<Dilated, Stage<Bottleneck<512, 2048, 1, 4>, 3, 2>,
                                    Stage<Bottleneck<512, 2048, 2>, 3>>;

  L<Conv2d<3, 64, 7, 2, 3, 1, false>, 3> conv1;
  L<BatchNorm2d<64>, 64> bn1;
  L<ReLU, 64> relu;
  L<MaxPool2d<3, 2, 1>, 64> maxpool;
  L<Stage<Bottleneck<64, 256>, 3>, 64> layer1;
  L<Stage<Bottleneck<128, 512, 2>, 4>, 256> layer2;
  L<Layer3, 512> layer3;
  L<Layer4, 1024> layer4;

  void visit(ParamSet<scalar>& ps, const std::string& p) {
    conv1.visit(ps, p + "conv1.");
    bn1.visit(ps, p + "bn1.");
    maxpool.visit(ps, p + "maxpool.");
    layer1.visit(ps, p + "layer1.");
    layer2.visit(ps, p + "layer2.");
    layer3.visit(ps, p + "layer3.");
    layer4.visit(ps, p + "layer4.");
  }
  // `c3`, when given, receives layer3's output (DeepLabv3's auxiliary head reads it).
  tensor forward(Context<scalar>& c, tensor x, tensor* c3 = nullptr) {
    x = maxpool.forward(c, conv_bn_relu(c, conv1, &bn1, &relu, std::move(x)));
    x = layer3.forward(c, layer2.forward(c, layer1.forward(c, std::move(x))));
    if (c3) *c3 = x;
    return layer4.forward(c, std::move(x));
  }
  // `dc3`, when given, is added to the gradient flowing into layer3's output.
  tensor backward(Context<scalar>& c, tensor dy, const tensor* dc3 = nullptr) {
    dy = layer4.backward(c, std::move(dy));
    if (dc3) B::add_forward(dy.size(), dy.data(), dc3->data(), dy.data());
    dy = layer1.backward(c, layer2.backward(c, layer3.backward(c, std::move(dy))));
    return conv1.backward(c, bn1.backward(c, relu.backward(c, maxpool.backward(c, std::move(dy)))), c.input_grad);
  }
};

template <int NumClasses = 1000, class B = backend::cpu>
class ResNet101 : public Model<ResNet101<NumClasses, B>, B> {
 public:
  using tensor = typename B::tensor;
  using scalar = typename B::scalar;
  static constexpr const char* model_name = "resnet101";
  static constexpr int feature_channels = 2048;

  explicit ResNet101(int num_classes = NumClasses, std::uint64_t seed = 0)
      : num_classes_(check_num_classes(NumClasses, num_classes, model_name)) {
    if constexpr (NumClasses == dynamic) fc.set_out_channels(num_classes_);
    this->finalize(seed);
  }
  int num_classes() const { return num_classes_; }

  void visit(ParamSet<scalar>& ps, const std::string& p) {
    trunk.visit(ps, p);
    fc.visit(ps, p + "fc.");
  }
  tensor forward_impl(Context<scalar>& c, tensor x) {
    check_input(x);
    return fc.forward(c, avgpool.forward(c, trunk.forward(c, std::move(x))));
  }
  tensor backward_impl(Context<scalar>& c, tensor dy) {
    return trunk.backward(c, avgpool.backward(c, fc.backward(c, std::move(dy))));
  }
  // The penultimate 2048-d features ([N, 2048], after global average pooling): what t-SNE pictures.
  tensor features(const tensor& x) {
    check_input(x);
    auto& c = this->context();
    c.params = &this->params();
    const bool rec = c.record;
    c.record = false;
    tensor f = avgpool.forward(c, trunk.forward(c, x));
    c.record = rec;
    f.reshape({f.shape()[0], f.shape()[1]});
    return f;
  }

  ResNet101Trunk<false, B> trunk;
  typename GlobalAvgPool::template bind<2048, B> avgpool;
  typename Linear<2048, NumClasses>::template bind<2048, B> fc;

 private:
  static void check_input(const tensor& x) {
    if (x.dimension() != 4 || x.shape()[1] != 3)
      throw Error(std::string(model_name) + ": expected input [N, 3, H, W], got " + shape_str(x.shape()));
  }
  int num_classes_;
};

}  // namespace hw1
