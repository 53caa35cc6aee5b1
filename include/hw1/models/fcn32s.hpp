// VGG16-FCN32s as the HW1 report printed it: VGG16 `features` (13 conv3x3 + ReLU, 5 max pools), fc6 and fc7 as
// 1x1 convolutions with ReLU and Dropout2d(0.5), score_fr (1x1 -> K), and upscore, a 64x64 transposed
// convolution with stride 32. The upsampled map is cropped back to the input size at offset min(16, out - H):
// 16 is the centre alignment of a kernel-64, stride-32 deconvolution (the report cropped at 32, which shifts the
// mask by 16 px), and the min() keeps every H, W >= 32 valid since out = 32 * floor(H / 32) + 32.
#pragma once
#include <algorithm>
#include <string>

#include "hw1/core/compose.hpp"
#include "hw1/layers/activation.hpp"
#include "hw1/layers/conv2d.hpp"
#include "hw1/layers/conv_transpose2d.hpp"
#include "hw1/layers/dropout.hpp"
#include "hw1/layers/pooling.hpp"
#include "hw1/models/model.hpp"

namespace hw1 {

template <int In, int Out>
using VggConv = Conv2d<In, Out, 3, 1, 1>;
using VggPool = MaxPool2d<2, 2>;

// torchvision's vgg16().features: indices 0..30 are exactly torchvision's `features.N`.
using VGG16Features = Seq<VggConv<3, 64>, ReLU, VggConv<64, 64>, ReLU, VggPool,                          // 0-4
                          VggConv<64, 128>, ReLU, VggConv<128, 128>, ReLU, VggPool,                      // 5-9
                          VggConv<128, 256>, ReLU, VggConv<256, 256>, ReLU, VggConv<256, 256>, ReLU, VggPool,  // 10-16
                          VggConv<256, 512>, ReLU, VggConv<512, 512>, ReLU, VggConv<512, 512>, ReLU, VggPool,  // 17-23
                          VggConv<512, 512>, ReLU, VggConv<512, 512>, ReLU, VggConv<512, 512>, ReLU, VggPool>; // 24-30

template <int NumClasses = 7, class B = backend::cpu>
class FCN32s : public Model<FCN32s<NumClasses, B>, B> {
 public:
  using tensor = typename B::tensor;
  using scalar = typename B::scalar;
  static constexpr const char* model_name = "fcn32s";

  explicit FCN32s(int num_classes = NumClasses, std::uint64_t seed = 0)
      : num_classes_(check_num_classes(NumClasses, num_classes, model_name)) {
    if constexpr (NumClasses == dynamic) {
      score_fr.set_out_channels(num_classes_);
      upscore.set_in_channels(num_classes_);
      upscore.set_out_channels(num_classes_);
    }
    this->finalize(seed);
  }
  int num_classes() const { return num_classes_; }

  void visit(ParamSet<scalar>& ps, const std::string& p) {
    features.visit(ps, p + "features.");
    fc6.visit(ps, p + "fc6.");
    fc7.visit(ps, p + "fc7.");
    score_fr.visit(ps, p + "score_fr.");
    upscore.visit(ps, p + "upscore.");
  }

  // VGG's features keep torchvision's VGG init; the FCN layers get PyTorch's default (a kaiming fan-out init of
  // score_fr, whose fan-out is only K, would start training with logits in the hundreds).
  void adjust_init(ParamSet<scalar>& ps) {
    for (const char* p : {"fc6.", "fc7.", "score_fr."}) ps.set_init(p, torch_default_init);
  }

  tensor forward_impl(Context<scalar>& c, tensor x) {
    if (x.dimension() != 4 || x.shape()[1] != 3)
      throw Error(std::string(model_name) + ": expected input [N, 3, H, W], got " + shape_str(x.shape()));
    if (x.shape()[2] < 32 || x.shape()[3] < 32)
      throw Error(std::string(model_name) + ": input height and width must be at least 32 (five 2x2 pools), got " +
                  shape_str(x.shape()));
    h_ = x.shape()[2];
    w_ = x.shape()[3];
    x = drop6.forward(c, relu6.forward(c, fc6.forward(c, features.forward(c, std::move(x)))));
    x = drop7.forward(c, relu7.forward(c, fc7.forward(c, std::move(x))));
    tensor up = upscore.forward(c, score_fr.forward(c, std::move(x)));
    up_shape_ = shape_of(up);
    oy_ = std::min<std::size_t>(16, up_shape_[2] - h_);
    ox_ = std::min<std::size_t>(16, up_shape_[3] - w_);
    tensor y = B::empty({up_shape_[0], up_shape_[1], h_, w_});
    B::crop2d_forward(int(up_shape_[0] * up_shape_[1]), int(up_shape_[2]), int(up_shape_[3]), int(oy_), int(ox_),
                      int(h_), int(w_), up.data(), y.data());
    return y;
  }

  tensor backward_impl(Context<scalar>& c, tensor dy) {
    tensor dup = B::empty(up_shape_);
    B::crop2d_backward(int(up_shape_[0] * up_shape_[1]), int(up_shape_[2]), int(up_shape_[3]), int(oy_), int(ox_),
                       int(h_), int(w_), dy.data(), dup.data());
    tensor d = score_fr.backward(c, upscore.backward(c, std::move(dup)));
    d = fc7.backward(c, relu7.backward(c, drop7.backward(c, std::move(d))));
    d = fc6.backward(c, relu6.backward(c, drop6.backward(c, std::move(d))));
    return features.backward(c, std::move(d), c.input_grad);
  }

  typename VGG16Features::template bind<3, B> features;
  typename Conv2d<512, 4096, 1>::template bind<512, B> fc6;
  typename ReLU::template bind<4096, B> relu6;
  typename Dropout2d<0.5f>::template bind<4096, B> drop6;
  typename Conv2d<4096, 4096, 1>::template bind<4096, B> fc7;
  typename ReLU::template bind<4096, B> relu7;
  typename Dropout2d<0.5f>::template bind<4096, B> drop7;
  typename Conv2d<4096, NumClasses, 1>::template bind<4096, B> score_fr;
  typename ConvTranspose2d<NumClasses, NumClasses, 64, 32, 0, 0, false>::template bind<NumClasses, B> upscore;

 private:
  int num_classes_;
  std::size_t h_ = 0, w_ = 0, oy_ = 0, ox_ = 0;
  Shape up_shape_;
};

}  // namespace hw1
