// ParamSet's layout: every view of every preset starts on a 256-byte boundary (what cuDNN's own buffers have), on
// the host as on the device, and the padding between views stays out of the counts and of checkpoints.
#define BOOST_TEST_MODULE params
#include <boost/test/unit_test.hpp>

#include <cstdint>

#include "hw1/models.hpp"
#include "hw1/train/optimizer.hpp"

using namespace hw1;

namespace {

bool aligned(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % kAlignBytes == 0; }

// Checks every entry of a model's ParamSet: value, gradient and running-statistic views aligned, views disjoint
// and inside the arrays, padding zero after initialisation; returns the number of views checked.
template <class Net>
std::size_t check_views(Net& net) {
  auto& ps = net.params();
  BOOST_TEST(aligned(ps.values().data()));
  BOOST_TEST(aligned(ps.grads().data()));
  BOOST_TEST(aligned(ps.buffers().data()));
  std::size_t real = 0, running = 0, misaligned = 0, n = 0;
  std::vector<char> used_v(ps.flat_size(), 0), used_b(ps.flat_buffer_size(), 0);
  for (const auto& e : ps.entries()) {
    ++n;
    auto& used = e.trainable ? used_v : used_b;
    BOOST_TEST_REQUIRE(e.offset + e.size <= used.size(), e.name);
    for (std::size_t i = e.offset; i < e.offset + e.size; ++i) {
      BOOST_TEST_REQUIRE(!used[i], e.name << " overlaps another view");
      used[i] = 1;
    }
    const bool ok = aligned(ps.data(e)) && (!e.trainable || aligned(ps.grad(e))) &&
                    aligned(e.trainable ? ps.value(e.offset) : ps.buffer(e.offset));
    if (!ok) {
      ++misaligned;
      BOOST_TEST_MESSAGE(e.name << " at element offset " << e.offset << " is not " << kAlignBytes << "-byte aligned");
    }
    (e.trainable ? real : running) += e.size;
  }
  BOOST_TEST(misaligned == 0u);
  BOOST_TEST(ps.num_parameters() == real);
  BOOST_TEST(ps.num_buffers() == running);
  BOOST_TEST(ps.flat_size() == ps.values().size());
  BOOST_TEST(ps.flat_size() % ps.align_elements() == 0u);
  std::size_t nonzero_padding = 0;
  for (std::size_t i = 0; i < used_v.size(); ++i) nonzero_padding += !used_v[i] && (ps.values()[i] != 0 || ps.grads()[i] != 0);
  for (std::size_t i = 0; i < used_b.size(); ++i) nonzero_padding += !used_b[i] && ps.buffers()[i] != 0;
  BOOST_TEST(nonzero_padding == 0u);
  return n;
}

}  // namespace

BOOST_AUTO_TEST_CASE(resnet101_views_are_256_byte_aligned) {
  ResNet101<50> r;
  BOOST_TEST(check_views(r) == r.params().entries().size());
  BOOST_TEST(r.num_parameters() == 42'602'610u);  // padding does not count
}

BOOST_AUTO_TEST_CASE(fcn32s_views_are_256_byte_aligned) {
  FCN32s<7> f;
  check_views(f);
  // upscore.weight follows score_fr.bias[7]: without padding it would start 28 bytes past a boundary
  const auto* bias = f.params().find("score_fr.bias");
  const auto* up = f.params().find("upscore.weight");
  BOOST_TEST_REQUIRE((bias && up));
  BOOST_TEST(bias->size == 7u);
  BOOST_TEST(up->offset > bias->offset + bias->size);
}

BOOST_AUTO_TEST_CASE(deeplabv3_views_are_256_byte_aligned) {
  DeepLabV3<7> d(7, true);  // with aux_classifier.*, which follows classifier.4.bias[7]
  check_views(d);
  DeepLabV3<7> plain;
  check_views(plain);
  FCN32s<hw1::dynamic> any(21);  // run-time class count
  check_views(any);
}

BOOST_AUTO_TEST_CASE(double_models_are_aligned_too) {
  ResNet101<10, backend::cpu_t<double>> r;
  check_views(r);
}

BOOST_AUTO_TEST_CASE(padding_stays_zero_through_an_optimizer_step) {
  FCN32s<7> f;
  auto& ps = f.params();
  for (auto& g : ps.grads()) g = 0;
  for (const auto& e : ps.entries())
    if (e.trainable) std::fill(ps.grad(e), ps.grad(e) + e.size, 0.5f);
  OptimizerConfig c;
  c.name = "adam";
  c.weight_decay = 1e-4;
  auto opt = make_optimizer(c);
  opt->step(ps.value(0), ps.grad(0), ps.flat_size(), 1e-3);
  std::vector<char> used(ps.flat_size(), 0);
  for (const auto& e : ps.entries())
    if (e.trainable) std::fill(used.begin() + e.offset, used.begin() + e.offset + e.size, 1);
  std::size_t nonzero = 0;
  for (std::size_t i = 0; i < used.size(); ++i) nonzero += !used[i] && ps.values()[i] != 0;
  BOOST_TEST(nonzero == 0u);
}
