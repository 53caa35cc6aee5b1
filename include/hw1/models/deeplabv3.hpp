// DeepLabv3 as torchvision's deeplabv3_resnet101 / deeplabv3_resnet50: a ResNet backbone with layer3 / layer4
// strides replaced by dilation (output stride 8), DeepLabHead = ASPP<12, 24, 36> + 3x3 conv + BN + ReLU + 1x1 conv to
// K classes, the logits bilinearly upsampled (align_corners = False) to the input size. The optional auxiliary
// FCNHead(1024) reads layer3 (`aux_classifier.*`, torchvision's aux_loss=True).
#pragma once
#include <string>

#include "hw1/layers/aspp.hpp"
#include "hw1/models/resnet.hpp"

namespace hw1 {

template <int NumClasses>
using DeepLabHead = Seq<ASPP<12, 24, 36>, Conv3x3<256, 256>, BatchNorm2d<256>, ReLU, Conv2d<256, NumClasses, 1>>;
template <int NumClasses>
using FCNHead = Seq<Conv3x3<1024, 256>, BatchNorm2d<256>, ReLU, Dropout<0.1f>, Conv2d<256, NumClasses, 1>>;

template <class Preset, int NumClasses, class B>
class DeepLab : public Model<DeepLab<Preset, NumClasses, B>, B> {
 public:
  using tensor = typename B::tensor;
  using scalar = typename B::scalar;
  using backbone_type = typename ResNetTrunk<typename Preset::depth, true>::template bind<3, B>;
  // The heads are bound to what the backbone produces: layer4's output for the classifier, layer3's for the
  // auxiliary head (FCNHead's Conv3x3<1024, 256> checks it).
  static constexpr int aux_in_channels =
      std::remove_reference_t<decltype(std::declval<backbone_type&>().template get<"layer3">())>::out_channels;
  static constexpr const char* model_name = Preset::name;
  static constexpr const char* description = Preset::description;
  static constexpr Task task = Task::segmentation;
  static constexpr const char* head_weight = "classifier.4.weight";
  static constexpr bool has_aux_head = true;

  explicit DeepLab(int num_classes = NumClasses, bool aux_loss = false, std::uint64_t seed = 0)
      : num_classes_(check_num_classes(NumClasses, num_classes, model_name)), aux_(aux_loss) {
    if constexpr (NumClasses == dynamic) {
      classifier.template get<4>().set_out_channels(num_classes_);
      aux_classifier.template get<4>().set_out_channels(num_classes_);
    }
    this->finalize(seed);
  }
  explicit DeepLab(const ModelOptions& o) : DeepLab(o.num_classes, o.aux_loss, o.seed) {}
  int num_classes() const { return num_classes_; }
  bool has_aux() const { return aux_; }

  void visit(ParamSet<scalar>& ps, const std::string& p) {
    backbone.visit(ps, p + "backbone.");
    classifier.visit(ps, p + "classifier.");
    if (aux_) aux_classifier.visit(ps, p + "aux_classifier.");
  }

  // torchvision initialises only the backbone (ResNet's rule); the heads keep PyTorch's default.
  void adjust_init(ParamSet<scalar>& ps) {
    ps.set_init("classifier.", torch_default_init);
    ps.set_init("aux_classifier.", torch_default_init);
  }

  tensor forward_impl(Context<scalar>& c, tensor x) {
    if (x.dimension() != 4 || x.shape()[1] != 3)
      throw Error(std::string(model_name) + ": expected input [N, 3, H, W], got " + shape_str(x.shape()));
    in_ = dims4(x, model_name);
    tensor c3;
    tensor f = backbone.template forward<"layer3">(c, std::move(x), aux_ ? &c3 : nullptr);
    tensor y = upsample(classifier.forward(c, std::move(f)), low_);
    if (aux_) aux_out_ = upsample(aux_classifier.forward(c, std::move(c3)), aux_low_);
    return y;
  }
  // The auxiliary head's upsampled logits from the last forward (empty without aux_loss).
  const tensor& aux_output() const { return aux_out_; }

  tensor backward_impl(Context<scalar>& c, tensor dy) { return backward_both(c, std::move(dy), nullptr); }
  // Back-propagates the main and the auxiliary output's gradients together.
  tensor backward(const tensor& dy, const tensor& daux) {
    this->context().params = &this->params();
    return backward_both(this->context(), dy, &daux);
  }
  using Model<DeepLab<Preset, NumClasses, B>, B>::backward;

  backbone_type backbone;
  typename DeepLabHead<NumClasses>::template bind<backbone_type::out_channels, B> classifier;
  typename FCNHead<NumClasses>::template bind<aux_in_channels, B> aux_classifier;

 private:
  tensor upsample(tensor low, Dims4& d) {
    d = dims4(low, model_name);
    tensor y = B::empty({std::size_t(d.n), std::size_t(d.c), std::size_t(in_.h), std::size_t(in_.w)});
    B::bilinear_resize_forward(d.n, d.c, d.h, d.w, in_.h, in_.w, low.data(), y.data());
    return y;
  }
  tensor downsample_grad(const tensor& dy, const Dims4& d) {
    tensor dl = B::empty({std::size_t(d.n), std::size_t(d.c), std::size_t(d.h), std::size_t(d.w)});
    B::bilinear_resize_backward(d.n, d.c, d.h, d.w, in_.h, in_.w, dy.data(), dl.data());
    return dl;
  }
  tensor backward_both(Context<scalar>& c, tensor dy, const tensor* daux) {
    tensor df = classifier.backward(c, downsample_grad(dy, low_));
    if (aux_ && daux) {
      tensor dc3 = aux_classifier.backward(c, downsample_grad(*daux, aux_low_));
      return backbone.template backward<"layer3">(c, std::move(df), &dc3, c.input_grad);
    }
    return backbone.backward(c, std::move(df), c.input_grad);
  }

  int num_classes_;
  bool aux_;
  Dims4 in_{}, low_{}, aux_low_{};
  tensor aux_out_;
};

using DeepLabV3ResNet101Preset =
    Preset<"deeplabv3", "DeepLabv3-ResNet101 (torchvision deeplabv3_resnet101)", ResNet101Depth>;
using DeepLabV3ResNet50Preset =
    Preset<"deeplabv3_resnet50", "DeepLabv3-ResNet50 (torchvision deeplabv3_resnet50)", ResNet50Depth>;

// torchvision's deeplabv3_resnet101(num_classes=K, aux_loss=...) (named "deeplabv3" in hw1's programs and
// checkpoints) and deeplabv3_resnet50.
template <int NumClasses = 7, class B = backend::cpu>
using DeepLabV3 = DeepLab<DeepLabV3ResNet101Preset, NumClasses, B>;
template <int NumClasses = 7, class B = backend::cpu>
using DeepLabV3ResNet50 = DeepLab<DeepLabV3ResNet50Preset, NumClasses, B>;

}  // namespace hw1
