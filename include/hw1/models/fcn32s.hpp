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

// Everything up to the crop, as one member list bound to a 3-channel input.
template <int NumClasses>
using FCN32sNetwork = Seq<Named<"features", VGG16Features>,
                          Named<"fc6", Conv2d<512, 4096, 1>>, Named<"relu6", ReLU>, Named<"drop6", Dropout2d<0.5f>>,
                          Named<"fc7", Conv2d<4096, 4096, 1>>, Named<"relu7", ReLU>, Named<"drop7", Dropout2d<0.5f>>,
                          Named<"score_fr", Conv2d<4096, NumClasses, 1>>,
                          Named<"upscore", ConvTranspose2d<NumClasses, NumClasses, 64, 32, 0, 0, false>>>;

template <int NumClasses = 7, class B = backend::cpu>
class FCN32s : public Model<FCN32s<NumClasses, B>, B> {
 public:
  using tensor = typename B::tensor;
  using scalar = typename B::scalar;
  using network_type = typename FCN32sNetwork<NumClasses>::template bind<3, B>;
  static constexpr const char* model_name = "fcn32s";
  static constexpr const char* description = "VGG16-FCN32s (the HW1 report's)";
  static constexpr Task task = Task::segmentation;
  static constexpr const char* head_weight = "score_fr.weight";
  static constexpr bool has_aux_head = false;

  explicit FCN32s(int num_classes = NumClasses, std::uint64_t seed = 0)
      : num_classes_(check_num_classes(NumClasses, num_classes, model_name)) {
    if constexpr (NumClasses == dynamic) {
      net.template get<"score_fr">().set_out_channels(num_classes_);
      net.template get<"upscore">().set_in_channels(num_classes_);
      net.template get<"upscore">().set_out_channels(num_classes_);
    }
    this->finalize(seed);
  }
  explicit FCN32s(const ModelOptions& o) : FCN32s(o.num_classes, o.seed) {}
  int num_classes() const { return num_classes_; }

  void visit(ParamSet<scalar>& ps, const std::string& p) { net.visit(ps, p); }

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
    tensor up = net.forward(c, std::move(x));
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
    return net.backward(c, std::move(dup), c.input_grad);
  }

  network_type net;

 private:
  int num_classes_;
  std::size_t h_ = 0, w_ = 0, oy_ = 0, ox_ = 0;
  Shape up_shape_;
};

}  // namespace hw1
