#define BOOST_TEST_MODULE gpu_models
#include <boost/test/unit_test.hpp>

#include "gpu/gpu_main.hpp"

#include <cmath>
#include <random>
#include <vector>

#include "hw1/backend/cuda.hpp"
#include "hw1/models.hpp"

// The three networks on the CUDA backend against the CPU backend, same seed so same initial weights: eval and
// training-mode logits, the input gradient and every parameter gradient, and the running statistics after a
// training-mode pass. Then a short SGD run on each backend: the GPU loss curve follows the CPU one and falls.
namespace {
double rel(const float* a, const float* b, std::size_t n) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < n; ++i) num += double(a[i] - b[i]) * (a[i] - b[i]), den += double(a[i]) * a[i];
  return std::sqrt(num / std::max(den, 1e-30));
}
template <class A, class B>
double rel(const A& a, const B& b) {
  BOOST_REQUIRE_EQUAL(a.size(), b.size());
  return rel(a.data(), b.data(), a.size());
}
hw1::Tensor input(hw1::Shape s, unsigned seed) {
  hw1::Tensor x = hw1::empty<float>(s);
  std::mt19937 r(seed);
  std::normal_distribution<float> d(0, 1);
  for (auto& v : x) v = d(r);
  return x;
}
std::vector<std::int64_t> labels(std::size_t n, int k, unsigned seed) {
  std::mt19937 r(seed);
  std::vector<std::int64_t> t(n);
  for (auto& v : t) v = std::int64_t(r() % k);
  return t;
}

// Forward (eval, then train) and backward of the same model on both backends.
template <template <int, class> class M, int K>
void compare(hw1::Shape shape, double tol_fwd, double tol_grad) {
  M<K, hw1::backend::cpu> c;
  M<K, hw1::cuda> g;
  BOOST_REQUIRE_EQUAL(c.num_parameters(), g.num_parameters());
  g.params().to_host();
  BOOST_TEST(rel(c.params().values(), g.params().values()) == 0.0);  // same init, uploaded intact
  const hw1::Tensor x = input(shape, 1);
  const auto xd = hw1::gpu::to_device(x);
  c.eval(), g.eval();
  {
    const hw1::Tensor yc = c.forward(x);
    const hw1::Tensor yg = g.forward(xd).to_host();
    BOOST_REQUIRE(hw1::shape_of(yc) == hw1::shape_of(yg));
    BOOST_TEST(rel(yc.data(), yg.data(), yc.size()) < tol_fwd);
  }
  c.train(), g.train();
  c.set_dropout_off(true), g.set_dropout_off(true);
  c.zero_grad(), g.zero_grad();
  const hw1::Tensor yc = c.forward(x);
  const auto ygd = g.forward(xd);
  const hw1::Tensor yg = ygd.to_host();
  BOOST_TEST(rel(yc.data(), yg.data(), yc.size()) < tol_fwd);
  const hw1::Tensor dy = input(hw1::shape_of(yc), 2);
  const hw1::Tensor dxc = c.backward(dy);
  const hw1::Tensor dxg = g.backward(hw1::gpu::to_device(dy)).to_host();
  BOOST_TEST(rel(dxc.data(), dxg.data(), dxc.size()) < tol_grad);
  g.params().to_host();
  BOOST_TEST(rel(c.params().grads(), g.params().grads()) < tol_grad);
  BOOST_TEST(rel(c.params().buffers(), g.params().buffers()) < tol_fwd);
  // Per tensor, so one bad layer cannot hide in the total.
  for (const auto& e : c.params().entries())
    if (e.trainable)
      BOOST_TEST(rel(c.params().grad(e), g.params().grad(e), e.size) < 20 * tol_grad, e.name);
}

template <int K, class B>
using FCN = hw1::FCN32s<K, B>;
template <int K, class B>
using DeepLab = hw1::DeepLabV3<K, B>;
template <int K, class B>
using ResNet = hw1::ResNet101<K, B>;
}  // namespace

// FCN32s first: its upscore.weight follows the 7-element score_fr.bias, the layout an unpadded ParamSet misaligned.
BOOST_AUTO_TEST_CASE(fcn32s_matches_cpu) { compare<FCN, 7>({2, 3, 64, 64}, 1e-4, 1e-3); }
BOOST_AUTO_TEST_CASE(resnet101_matches_cpu) { compare<ResNet, 10>({2, 3, 64, 64}, 1e-4, 1e-3); }
BOOST_AUTO_TEST_CASE(deeplabv3_matches_cpu) { compare<DeepLab, 7>({2, 3, 65, 57}, 1e-4, 1e-3); }

// Checkpoints: save from the device, load into a CPU model: identical tensors.
BOOST_AUTO_TEST_CASE(save_load_round_trip) {
  hw1::DeepLabV3<3, hw1::cuda> g(3, false, 5);
  hw1::SafeTensorsWriter w;
  g.add_to(w);
  const std::string path = "gpu_models_roundtrip.safetensors";
  w.write(path);
  hw1::DeepLabV3<3, hw1::backend::cpu> c(3, false, 99);
  c.load(path);
  BOOST_TEST(rel(c.params().values(), g.params().values()) == 0.0);
  hw1::DeepLabV3<3, hw1::cuda> g2(3, false, 99);
  g2.load(path);
  g2.params().to_host();
  BOOST_TEST(rel(c.params().values(), g2.params().values()) == 0.0);
}

// A short training run (plain SGD on the host arrays, the loss on each backend's own kernel): both curves fall
// and stay close.
BOOST_AUTO_TEST_CASE(short_training_run_follows_cpu) {
  constexpr int K = 3;
  hw1::DeepLabV3<K, hw1::backend::cpu> c(K, false, 7);
  hw1::DeepLabV3<K, hw1::cuda> g(K, false, 7);
  c.train(), g.train();
  c.set_dropout_off(true), g.set_dropout_off(true);
  const hw1::Tensor x = input({4, 3, 48, 48}, 3);
  const auto xd = hw1::gpu::to_device(x);
  const auto t = labels(4 * 48 * 48, K, 4);
  hw1::gpu::DeviceBuffer<std::int64_t> td;
  td.upload(t.data(), t.size());
  std::vector<double> lc, lg;
  const float lr = 0.01f;
  for (int step = 0; step < 8; ++step) {
    c.zero_grad(), g.zero_grad();
    hw1::Tensor y = c.forward(x);
    hw1::Tensor dy = hw1::empty<float>(hw1::shape_of(y));
    lc.push_back(hw1::cpu::softmax_cross_entropy<float>(4, K, 48 * 48, y.data(), t.data(), nullptr, -100, dy.data()));
    c.backward(dy);
    auto yd = g.forward(xd);
    auto dyd = hw1::cuda::empty(yd.shape());
    lg.push_back(hw1::cuda::softmax_cross_entropy(4, K, 48 * 48, yd.data(), td.data(), nullptr, -100, dyd.data()));
    g.backward(dyd);
    g.params().to_host();
    for (auto* m : {&c.params(), &g.params()}) {
      auto& v = m->values();
      const auto& gr = m->grads();
      for (std::size_t i = 0; i < v.size(); ++i) v[i] -= lr * gr[i];
    }
    g.params().to_device();
  }
  BOOST_TEST_MESSAGE("cpu loss " << lc.front() << " -> " << lc.back() << ", gpu " << lg.front() << " -> " << lg.back());
  BOOST_TEST(lc.back() < 0.8 * lc.front());
  BOOST_TEST(lg.back() < 0.8 * lg.front());
  for (std::size_t i = 0; i < lc.size(); ++i) BOOST_TEST(std::abs(lc[i] - lg[i]) < 0.02 * lc[0] + 0.01 * i * lc[0]);
}
