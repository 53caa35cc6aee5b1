// The model registry and the member lists the networks are written as: every registered network builds from its
// name with the class count asked for, its head and names are what the registry says, dispatch refuses unknown and
// unaccepted names, and a Seq's tap and forward_until give the outputs of the members they name.
#define BOOST_TEST_MODULE model_registry
#include <boost/test/unit_test.hpp>

#include <set>
#include <string>

#include "common/testing.hpp"
#include "hw1/models.hpp"

using namespace hw1;
using hw1::test::contains;

namespace {
Tensor ramp(const Shape& s) {
  Tensor x = empty(s);
  for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = float((i * 37) % 101) / 50.f - 1.f;
  return x;
}
}  // namespace

BOOST_AUTO_TEST_CASE(every_registered_network_builds_by_name) {
  std::set<std::string> names;
  for (const auto& m : models) {
    BOOST_TEST_CONTEXT(m.name) {
      BOOST_TEST(names.insert(std::string(m.name)).second);  // one row per name
      BOOST_TEST(find_model(m.name) == &m);
      const int k = 3;
      with_model<backend::cpu, int>(m.name, [&]<class Net>(std::type_identity<Net>) {
        Net net(ModelOptions{.num_classes = k, .aux_loss = m.has_aux_head});
        BOOST_TEST(std::string(Net::model_name) == std::string(m.name));
        const auto* head = net.params().find(std::string(m.head_weight));
        BOOST_REQUIRE(head != nullptr);
        BOOST_TEST(head->shape[0] == std::size_t(k));
        std::set<std::string> seen;
        for (const auto& e : net.params().entries()) BOOST_TEST(seen.insert(e.name).second, e.name);
        if (m.has_aux_head) BOOST_TEST(net.params().find("aux_classifier.4.weight") != nullptr);
        return 0;
      });
    }
  }
}

BOOST_AUTO_TEST_CASE(dispatch_refuses_unknown_and_unaccepted_names) {
  auto any = []<class Net>(std::type_identity<Net>) { return 1; };
  BOOST_TEST(contains(hw1::test::error_of([&] { with_model<backend::cpu, int>("vgg19", any); }), "unknown model 'vgg19'"));
  auto seg = []<class Net>(std::type_identity<Net>) requires(Net::task == Task::segmentation) { return 2; };
  const std::string e = hw1::test::error_of([&] { with_model<backend::cpu, int>("resnet50", seg); });
  BOOST_TEST(contains(e, "not one this program takes"), e);
  BOOST_TEST(contains(e, "deeplabv3_resnet50"), e);
  BOOST_TEST(!contains(e, "resnet101,"), e);
  const int got = with_model<backend::cpu, int>("fcn32s", seg);
  BOOST_TEST(got == 2);
  auto unknown = [&] { with_model<backend::cpu, int>("vgg19", any); };
  BOOST_CHECK_THROW(unknown(), UsageError);
}

// torchvision's stage depths: resnet50 has layer3.0..5, resnet101 layer3.0..22, and nothing else differs.
BOOST_AUTO_TEST_CASE(presets_differ_only_in_depth) {
  ResNet50<dynamic> r50(4);
  ResNet101<dynamic> r101(4);
  BOOST_TEST(r50.params().find("layer3.5.conv3.weight") != nullptr);
  BOOST_TEST(r50.params().find("layer3.6.conv1.weight") == nullptr);
  BOOST_TEST(r101.params().find("layer3.22.conv3.weight") != nullptr);
  std::set<std::string> n101;
  for (const auto& e : r101.params().entries()) n101.insert(e.name);
  for (const auto& e : r50.params().entries()) BOOST_TEST(n101.count(e.name) == 1u, e.name);
  BOOST_TEST(r50.params().find("layer1.0.downsample.1.running_var") != nullptr);
  BOOST_TEST(r50.params().find("layer1.1.downsample.0.weight") == nullptr);
}

// The tap of DeepLabv3's backbone at layer3 is exactly what forward_until<"layer3"> computes, and the features of a
// classifier are the average pool's output, whatever the mode (fused inference or recorded training).
BOOST_AUTO_TEST_CASE(tap_and_forward_until_name_the_member_they_return) {
  using Trunk = ResNetTrunk<ResNet50Depth, true>::bind<3, backend::cpu>;
  ParamSet<float> ps;
  Trunk trunk;
  trunk.visit(ps, "");
  ps.allocate();
  ps.initialize(7);
  const Tensor x = ramp({2, 3, 35, 33});
  for (bool training : {false, true}) {
    Context<float> c;
    c.params = &ps;
    c.training = training;
    c.record = training;
    Tensor tap;
    const Tensor y = trunk.forward<"layer3">(c, x, &tap);
    Context<float> c2 = c;
    c2.record = false;
    const Tensor until = trunk.forward_until<"layer3">(c2, x);
    BOOST_TEST(tap.shape() == until.shape());
    BOOST_TEST(y.shape()[1] == 2048u);
    BOOST_TEST(tap.shape()[1] == 1024u);
    double diff = 0, scale = 0;
    for (std::size_t i = 0; i < tap.size(); ++i) {
      diff = std::max(diff, double(std::abs(tap.data()[i] - until.data()[i])));
      scale = std::max(scale, double(std::abs(until.data()[i])));
    }
    BOOST_TEST(diff <= 1e-5 * std::max(1.0, scale), "training " << training << ": " << diff);
    if (training) trunk.backward<"layer3">(c, ramp(shape_of(y)), &tap, false);  // drops what forward recorded
  }
}
