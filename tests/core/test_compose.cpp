// The composition templates, checked end to end in double precision: Seq, Repeat, Residual, Concat, Stage,
// Bottleneck and ASPP get a finite-difference check of the input gradient and of every parameter gradient
// (tolerance: tests/common/gradcheck.hpp), in eval and training mode, plus the parameter names they register.
#define BOOST_TEST_MODULE compose
#include <boost/test/unit_test.hpp>

#include <set>

#include "common/gradcheck.hpp"
#include "hw1/models.hpp"

using namespace hw1;
using D = backend::cpu_t<double>;
using DTensor = HostTensor<double>;

namespace {

template <class Spec, int In>
struct Harness {
  using Layer = typename Spec::template bind<In, D>;
  Layer layer;
  ParamSet<double> ps;
  Context<double> ctx;
  explicit Harness(bool training) {
    layer.visit(ps, "");
    ps.allocate();
    ps.initialize(7);
    // break the symmetric init (BN weight 1, bias 0, running stats 0/1) so every term is exercised
    // (the entries in registration order, values first: the padding between views stays zero)
    auto noise = test::random_vector(ps.num_parameters() + ps.num_buffers(), 99, -0.2, 0.2);
    std::size_t nv = 0, nb = ps.num_parameters();
    for (const auto& e : ps.entries()) {
      double* p = ps.data(e);
      for (std::size_t i = 0; i < e.size; ++i)
        p[i] = e.trainable ? p[i] + noise[nv++] : std::abs(p[i] + noise[nb++]) + 0.1;
    }
    ctx.params = &ps;
    ctx.training = training;
  }
  DTensor run(const DTensor& x) {
    // training-mode batch norm updates running statistics: restore them so every evaluation is the same function
    // and dropout draws the same masks (same seed, step and call index) so the function is deterministic
    auto saved = ps.buffers();
    ctx.calls = 0;
    DTensor y = layer.forward(ctx, x);
    ps.buffers() = saved;
    return y;
  }
};

template <class Spec, int In>
void check_gradients(const Shape& shape, bool training, double eps = 1e-6) {
  Harness<Spec, In> h(training);
  auto xv = test::random_vector([&] { std::size_t n = 1; for (auto d : shape) n *= d; return n; }(), 5);
  DTensor x = hw1::empty<double>(shape);
  std::copy(xv.begin(), xv.end(), x.begin());
  DTensor y = h.run(x);
  auto g = test::random_vector(y.size(), 6);
  DTensor gy = hw1::empty<double>(shape_of(y));
  std::copy(g.begin(), g.end(), gy.begin());
  h.ps.zero_grad();
  DTensor dx = h.layer.backward(h.ctx, gy);
  auto loss = [&] {
    DTensor xx = hw1::empty<double>(shape);
    std::copy(xv.begin(), xv.end(), xx.begin());
    DTensor yy = h.run(xx);
    return test::dot(g, yy.data());
  };
  auto num_dx = test::numeric_gradient(xv, loss, eps, 150);
  BOOST_TEST(test::relative_error(std::vector<double>(dx.begin(), dx.end()), num_dx) <= test::kGradTol);
  auto& p = h.ps.values();
  std::vector<double> analytic(h.ps.grads().begin(), h.ps.grads().end());
  std::vector<double> pv(p.begin(), p.end());
  auto loss_p = [&] {
    std::copy(pv.begin(), pv.end(), p.begin());
    DTensor xx = hw1::empty<double>(shape);
    std::copy(xv.begin(), xv.end(), xx.begin());
    return test::dot(g, h.run(xx).data());
  };
  auto num_dp = test::numeric_gradient(pv, loss_p, eps, 300);
  BOOST_TEST(test::relative_error(analytic, num_dp) <= test::kGradTol);
}

template <class Layer>
std::set<std::string> names_of() {
  Layer l;
  ParamSet<float> ps;
  l.visit(ps, "");
  std::set<std::string> out;
  for (auto& e : ps.entries()) out.insert(e.name);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(seq_of_conv_bn_relu_pool) {
  using S = Seq<Conv2d<3, 4, 3, 2, 1>, BatchNorm2d<4>, ReLU, MaxPool2d<2, 2>, Conv2d<4, 5, 1>>;
  check_gradients<S, 3>({2, 3, 9, 7}, false);
  check_gradients<S, 3>({2, 3, 9, 7}, true);
}

BOOST_AUTO_TEST_CASE(residual_and_repeat) {
  using Block = Residual<Seq<Conv3x3<4, 4>, BatchNorm2d<4>>>;
  check_gradients<Repeat<2, Block>, 4>({2, 4, 5, 6}, true);
  using Proj = Residual<Seq<Conv3x3<4, 6, 2>, BatchNorm2d<6>>, Seq<Conv1x1<4, 6, 2>, BatchNorm2d<6>>>;
  check_gradients<Proj, 4>({2, 4, 7, 5}, false);
}

BOOST_AUTO_TEST_CASE(bottleneck_two_argument_spelling) {
  // hw1::Bottleneck<Mid, Out>: input channels bound by the composition; projection when In != Out
  using S = Seq<Conv2d<3, 8, 3, 1, 1>, Bottleneck<2, 8>, Bottleneck<3, 12, 2>, Bottleneck<3, 12, 1, 2>>;
  check_gradients<S, 3>({2, 3, 9, 8}, true);
  check_gradients<S, 3>({2, 3, 9, 8}, false);
  using L = Bottleneck<64, 256>::bind<64, backend::cpu>;
  static_assert(L::in_channels == 64 && L::out_channels == 256 && L::has_downsample);
  static_assert(!Bottleneck<64, 256>::bind<256, backend::cpu>::has_downsample);
  auto names = names_of<L>();
  BOOST_TEST(names.count("conv2.weight") == 1);
  BOOST_TEST(names.count("downsample.1.running_var") == 1);
  BOOST_TEST(names.size() == 3 + 3 * 4 + 1 + 4);  // 3 conv weights, 3 BN x 4, downsample conv + BN
}

BOOST_AUTO_TEST_CASE(concat_and_aspp) {
  using C = Concat<Seq<Conv1x1<3, 2>, ReLU>, Conv3x3<3, 3, 1, 2>, Identity>;
  check_gradients<C, 3>({2, 3, 6, 5}, false);
  // ASPP with small rates on a small map: every branch, the pooling broadcast and the projection
  check_gradients<ASPP<1, 2>, 3>({2, 3, 6, 5}, true, 1e-6);
  using A = ASPP<12, 24, 36>::bind<2048, backend::cpu>;
  static_assert(A::out_channels == 256);
  auto names = names_of<A>();
  for (const char* n : {"convs.0.0.weight", "convs.1.0.weight", "convs.3.1.running_mean", "convs.4.1.weight",
                        "convs.4.2.bias", "project.0.weight", "project.1.running_var"})
    BOOST_TEST(names.count(n) == 1, n);
}

BOOST_AUTO_TEST_CASE(dropout_is_seeded_and_off_in_eval) {
  using S = Seq<Conv1x1<3, 8>, Dropout2d<0.5f>, Dropout<0.25f>>;
  Harness<S, 3> h(true);
  DTensor x = hw1::zeros<double>({2, 3, 4, 4});
  x += 1.0;
  h.ctx.seed = 5;
  DTensor a = h.run(x);
  DTensor b = h.run(x);
  BOOST_TEST((a == b));  // same seed, step and call index -> same masks
  h.ctx.step = 1;
  DTensor c = h.run(x);
  BOOST_TEST(!(a == c));
  h.ctx.training = false;
  DTensor e1 = h.run(x), e2 = h.run(x);
  BOOST_TEST((e1 == e2));
}

BOOST_AUTO_TEST_CASE(model_parameter_names_are_torchvisions) {
  ResNet101<50> r;
  BOOST_TEST(r.num_parameters() == 42'602'610u);  // torchvision resnet101(num_classes=50): sum of p.numel()
  BOOST_TEST(r.params().find("layer3.22.bn3.running_var") != nullptr);
  BOOST_TEST(r.params().find("layer4.0.downsample.0.weight") != nullptr);
  BOOST_TEST(r.params().find("fc.bias")->shape == Shape{50});
  DeepLabV3<7> d(7, true);
  BOOST_TEST(d.params().find("backbone.layer4.2.conv3.weight") != nullptr);
  BOOST_TEST(d.params().find("classifier.0.convs.4.1.weight") != nullptr);
  BOOST_TEST(d.params().find("aux_classifier.4.bias") != nullptr);
  FCN32s<7> f;
  BOOST_TEST(f.params().find("features.28.weight") != nullptr);
  BOOST_TEST(f.params().find("upscore.weight")->shape == (Shape{7, 7, 64, 64}));
}

// set_input_grad(false): backward skips the input's gradient (the first convolution's dX) and returns a
// dimensionless tensor; the parameter gradients are the same bits as with it.
template <class Net>
void check_input_grad_off(Net& net, const Shape& shape) {
  net.train(true);
  Tensor x = hw1::empty<float>(shape);
  const auto xv = test::random_vector(x.size(), 3);
  std::copy(xv.begin(), xv.end(), x.begin());
  auto grads = [&](bool input_grad, Tensor& dx) {
    net.set_input_grad(input_grad);
    net.zero_grad();
    Tensor y = net.forward(x);
    Tensor g = hw1::empty<float>(shape_of(y));
    const auto gv = test::random_vector(y.size(), 4);
    std::copy(gv.begin(), gv.end(), g.begin());
    dx = net.backward(g);
    return net.params().grads();
  };
  Tensor with, without;
  const auto a = grads(true, with), b = grads(false, without);
  BOOST_TEST(with.shape() == x.shape());
  BOOST_TEST(without.dimension() == 0u);
  BOOST_TEST((a == b));
  BOOST_TEST(std::any_of(a.begin(), a.end(), [](float v) { return v != 0.f; }));
}

BOOST_AUTO_TEST_CASE(input_gradient_can_be_skipped) {
  ResNet101<10> r;
  check_input_grad_off(r, {2, 3, 32, 32});
  DeepLabV3<3> d(3, false);
  check_input_grad_off(d, {2, 3, 32, 32});
  FCN32s<3> f;
  f.set_dropout_off(true);
  check_input_grad_off(f, {1, 3, 32, 32});
}
