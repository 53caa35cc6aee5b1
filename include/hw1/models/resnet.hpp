// torchvision's ResNets with Bottleneck blocks (resnet50, resnet101): stem (conv7x7/2, BN, ReLU, maxpool 3x3/2),
// four stages of Bottlenecks (3, 4, 6, 3 or 3, 4, 23, 3), global average pool, fc. ResNetTrunk is the part
// DeepLabv3 reuses as its backbone, with the strides of layer3 and layer4 replaced by dilation (output stride 8).
// A network is one member list (Seq of Named members): names, visit order, channel wiring (each member is bound to
// the previous one's output; a mismatch is a compile error naming both numbers) and backward order all follow from it.
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

// torchvision's `layers` argument: Bottlenecks per stage.
template <int L1, int L2, int L3, int L4>
struct ResNetDepth {
  static constexpr int layer1 = L1, layer2 = L2, layer3 = L3, layer4 = L4;
};
using ResNet50Depth = ResNetDepth<3, 4, 6, 3>;
using ResNet101Depth = ResNetDepth<3, 4, 23, 3>;

// replace_stride_with_dilation = [False, False, False] (classification) or [False, True, True] (DeepLabv3).
template <class Depth, bool Dilated>
using ResNetTrunk = Seq<
    Named<"conv1", Conv<3, 64, ConvOpts{.kernel = 7, .stride = 2, .padding = 3, .bias = false}>>,
    Named<"bn1", BatchNorm2d<64>>,
    Named<"relu", ReLU>,
    Named<"maxpool", MaxPool2d<3, 2, 1>>,
    Named<"layer1", Stage<Bottleneck<64, 256>, Depth::layer1>>,
    Named<"layer2", Stage<Bottleneck<128, 512, 2>, Depth::layer2>>,
    Named<"layer3", std::conditional_t<Dilated, Stage<Bottleneck<256, 1024, 1, 2>, Depth::layer3, 1>,
                                       Stage<Bottleneck<256, 1024, 2>, Depth::layer3>>>,
    Named<"layer4", std::conditional_t<Dilated, Stage<Bottleneck<512, 2048, 1, 4>, Depth::layer4, 2>,
                                       Stage<Bottleneck<512, 2048, 2>, Depth::layer4>>>>;

// The classifier: the trunk, then avgpool and fc, as one member list bound to a 3-channel input.
template <class Depth, int NumClasses>
using ResNetClassifier = seq_append_t<ResNetTrunk<Depth, false>, Named<"avgpool", GlobalAvgPool>,
                                      Named<"fc", Linear<2048, NumClasses>>>;

template <class Preset, int NumClasses, class B>
class ResNet : public Model<ResNet<Preset, NumClasses, B>, B> {
 public:
  using tensor = typename B::tensor;
  using scalar = typename B::scalar;
  using network_type = typename ResNetClassifier<typename Preset::depth, NumClasses>::template bind<3, B>;
  static constexpr const char* model_name = Preset::name;
  static constexpr const char* description = Preset::description;
  static constexpr Task task = Task::classification;
  static constexpr const char* head_weight = "fc.weight";
  static constexpr bool has_aux_head = false;
  static constexpr int feature_channels = 2048;

  explicit ResNet(int num_classes = NumClasses, std::uint64_t seed = 0)
      : num_classes_(check_num_classes(NumClasses, num_classes, model_name)) {
    if constexpr (NumClasses == dynamic) net.template get<"fc">().set_out_channels(num_classes_);
    this->finalize(seed);
  }
  explicit ResNet(const ModelOptions& o) : ResNet(o.num_classes, o.seed) {}
  int num_classes() const { return num_classes_; }

  void visit(ParamSet<scalar>& ps, const std::string& p) { net.visit(ps, p); }
  tensor forward_impl(Context<scalar>& c, tensor x) {
    check_input(x);
    return net.forward(c, std::move(x));
  }
  tensor backward_impl(Context<scalar>& c, tensor dy) { return net.backward(c, std::move(dy), c.input_grad); }
  // The penultimate 2048-d features ([N, 2048], after global average pooling): what t-SNE pictures.
  tensor features(const tensor& x) {
    check_input(x);
    auto& c = this->context();
    c.params = &this->params();
    const bool rec = c.record;
    c.record = false;
    tensor f = net.template forward_until<"avgpool">(c, x);
    c.record = rec;
    f.reshape({f.shape()[0], f.shape()[1]});
    return f;
  }

  network_type net;

 private:
  static void check_input(const tensor& x) {
    if (x.dimension() != 4 || x.shape()[1] != 3)
      throw Error(std::string(model_name) + ": expected input [N, 3, H, W], got " + shape_str(x.shape()));
  }
  int num_classes_;
};

using ResNet50Preset = Preset<"resnet50", "ResNet50 (torchvision resnet50)", ResNet50Depth>;
using ResNet101Preset = Preset<"resnet101", "ResNet101 (torchvision resnet101)", ResNet101Depth>;

// torchvision's resnet101(num_classes=K) and resnet50(num_classes=K).
template <int NumClasses = 1000, class B = backend::cpu>
using ResNet101 = ResNet<ResNet101Preset, NumClasses, B>;
template <int NumClasses = 1000, class B = backend::cpu>
using ResNet50 = ResNet<ResNet50Preset, NumClasses, B>;

}  // namespace hw1
