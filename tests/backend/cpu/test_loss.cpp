#define BOOST_TEST_MODULE loss_kernel
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "common/gradcheck.hpp"
#include "hw1/backend/cpu/loss.hpp"

using namespace hw1;
using hw1::test::kGradTol;
using V = std::vector<double>;
using L = std::vector<std::int64_t>;

namespace {
// logits [3 images, 3 classes], hw = 1
const V kLogits = {1, 2, 3, 0, 0, 0, 0.5, -1, 2};
const double kNll0 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3;  // image 0, target 2
const double kNll1 = std::log(3.0);                                                  // image 1, target 0
const double kNll2 = std::log(std::exp(0.5) + std::exp(-1.0) + std::exp(2.0)) + 1;  // image 2, target 1

void check_gradient(int n, int k, int hw, const L& target, const double* weight, std::int64_t ignore,
                    std::uint64_t seed) {
  V z = test::random_vector(std::size_t(n) * k * hw, seed, -3, 3);
  auto loss = [&] { return cpu::softmax_cross_entropy<double>(n, k, hw, z.data(), target.data(), weight, ignore, nullptr); };
  V dz(z.size(), 5.0);
  const double l = cpu::softmax_cross_entropy<double>(n, k, hw, z.data(), target.data(), weight, ignore, dz.data());
  BOOST_TEST(l == loss());  // computing the gradient does not change the value
  BOOST_TEST(test::relative_error(dz, test::numeric_gradient(z, loss)) < kGradTol);
  for (int b = 0; b < n; ++b)  // ignored positions get exactly zero gradient
    for (int p = 0; p < hw; ++p)
      if (target[b * hw + p] == ignore)
        for (int j = 0; j < k; ++j) BOOST_TEST(dz[(std::size_t(b) * k + j) * hw + p] == 0.0);
}
}  // namespace

BOOST_AUTO_TEST_CASE(hand_computed_values) {
  const L t = {2, 0, 1};
  BOOST_TEST(cpu::softmax_cross_entropy<double>(3, 3, 1, kLogits.data(), t.data(), nullptr, -100, nullptr) ==
                 (kNll0 + kNll1 + kNll2) / 3,
             boost::test_tools::tolerance(1e-14));
  // Weighted mean over the non-ignored positions: (0.5 * nll0 + 2 * nll2) / (0.5 + 2); torch gives 2.67457023021460.
  const V w = {1, 2, 0.5};
  const L t2 = {2, -100, 1};
  const double l = cpu::softmax_cross_entropy<double>(3, 3, 1, kLogits.data(), t2.data(), w.data(), -100, nullptr);
  BOOST_TEST(l == (0.5 * kNll0 + 2 * kNll2) / 2.5, boost::test_tools::tolerance(1e-14));
  BOOST_TEST(l == 2.6745702302146017, boost::test_tools::tolerance(1e-13));
}

BOOST_AUTO_TEST_CASE(spatial_layout) {
  // hw = 3: image 0 holds the three rows of kLogits as pixels, so class j of pixel p is at j * 3 + p.
  V z(9);
  for (int p = 0; p < 3; ++p)
    for (int j = 0; j < 3; ++j) z[j * 3 + p] = kLogits[p * 3 + j];
  const L t = {2, 0, 1};
  BOOST_TEST(cpu::softmax_cross_entropy<double>(1, 3, 3, z.data(), t.data(), nullptr, 255, nullptr) ==
                 (kNll0 + kNll1 + kNll2) / 3,
             boost::test_tools::tolerance(1e-14));
}

BOOST_AUTO_TEST_CASE(all_ignored_gives_zero) {
  const L t = {255, 255, 255};
  V dz(9, 1.0);
  BOOST_TEST(cpu::softmax_cross_entropy<double>(3, 3, 1, kLogits.data(), t.data(), nullptr, 255, dz.data()) == 0.0);
  for (double g : dz) BOOST_TEST(g == 0.0);
}

BOOST_AUTO_TEST_CASE(out_of_range_label_throws) {
  const L t = {2, 7, 1};
  BOOST_CHECK_EXCEPTION(cpu::softmax_cross_entropy<double>(3, 3, 1, kLogits.data(), t.data(), nullptr, 255, nullptr),
                        hw1::Error, [](const hw1::Error& e) {
                          const std::string m = e.what();
                          return m.find("target 7") != std::string::npos && m.find("image 1") != std::string::npos;
                        });
  const L neg = {2, 0, -1};  // -1 is not the ignore index here
  BOOST_CHECK_THROW(cpu::softmax_cross_entropy<double>(3, 3, 1, kLogits.data(), neg.data(), nullptr, 255, nullptr),
                    hw1::Error);
}

BOOST_AUTO_TEST_CASE(gradient_classification) {
  check_gradient(5, 4, 1, {0, 3, 1, 1, 2}, nullptr, -100, 1);
  const V w = {0.3, 1.7, 1.0, 2.5};
  check_gradient(5, 4, 1, {0, 3, -100, 1, 2}, w.data(), -100, 2);
}

BOOST_AUTO_TEST_CASE(gradient_segmentation) {
  const L t = {0, 255, 2, 1, 1, 0,  //
               2, 2, 255, 0, 1, 255};
  check_gradient(2, 3, 6, t, nullptr, 255, 3);
  const V w = {0.5, 2.0, 1.25};
  check_gradient(2, 3, 6, t, w.data(), 255, 4);
}

BOOST_AUTO_TEST_CASE(float_is_stable_for_large_logits) {
  const std::vector<float> z = {1000, 0, -1000, 500};  // n=2, k=2: would overflow exp() without the max shift
  const L t = {0, 0};
  std::vector<float> dz(4);
  const float l = cpu::softmax_cross_entropy<float>(2, 2, 1, z.data(), t.data(), nullptr, -100, dz.data());
  BOOST_TEST(l == 750.0f, boost::test_tools::tolerance(1e-6f));  // (0 + 1500) / 2
  BOOST_TEST(dz[1] == 0.0f, boost::test_tools::tolerance(1e-6f));
  BOOST_TEST(dz[2] == -0.5f, boost::test_tools::tolerance(1e-6f));
}
