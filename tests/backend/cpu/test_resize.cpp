#define BOOST_TEST_MODULE resize_kernel
#include <boost/test/unit_test.hpp>

#include <vector>

#include "common/gradcheck.hpp"
#include "hw1/backend/cpu/resize.hpp"

using namespace hw1;
using hw1::test::kGradTol;
using V = std::vector<double>;

namespace {
void check_gradient(int n, int c, int h, int w, int oh, int ow, std::uint64_t seed) {
  V x = test::random_vector(std::size_t(n) * c * h * w, seed);
  const V g = test::random_vector(std::size_t(n) * c * oh * ow, seed + 1);
  auto loss = [&] {
    V y(g.size());
    cpu::bilinear_resize_forward<double>(n, c, h, w, oh, ow, x.data(), y.data());
    return test::dot(g, y.data());
  };
  V dx(x.size(), 4.0);
  cpu::bilinear_resize_backward<double>(n, c, h, w, oh, ow, g.data(), dx.data());
  BOOST_TEST(test::relative_error(dx, test::numeric_gradient(x, loss)) < kGradTol,
             h << "x" << w << " -> " << oh << "x" << ow);
}
}  // namespace

BOOST_AUTO_TEST_CASE(upsample_2x2_to_4x4) {
  // Bilinear reproduces an affine function exactly: f(i, j) = 1 + 2i + j sampled at the clamped source positions
  // p = max(0, (d + 0.5) / 2 - 0.5) clipped to the last row/column: {0, 0.25, 0.75, 1}.
  const V x = {1, 2, 3, 4};
  V y(16);
  cpu::bilinear_resize_forward<double>(1, 1, 2, 2, 4, 4, x.data(), y.data());
  const double p[4] = {0, 0.25, 0.75, 1};
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) BOOST_TEST(y[i * 4 + j] == 1 + 2 * p[i] + p[j], boost::test_tools::tolerance(1e-14));
}

BOOST_AUTO_TEST_CASE(hand_computed_rows) {
  // 5 -> 2: scale 2.5, src = {0.75, 3.25}: 0.25*x0 + 0.75*x1 and 0.75*x3 + 0.25*x4.
  const V x = {0, 1, 4, 9, 16};
  V y(2);
  cpu::bilinear_resize_forward<double>(1, 1, 1, 5, 1, 2, x.data(), y.data());
  BOOST_TEST(y[0] == 0.75, boost::test_tools::tolerance(1e-14));
  BOOST_TEST(y[1] == 10.75, boost::test_tools::tolerance(1e-14));
  // 3 -> 5: scale 0.6, src = {0 (clamped), 0.4, 1, 1.6, 2.2 -> last column only}.
  const V x3 = {1, 2, 4};
  V y5(5);
  cpu::bilinear_resize_forward<double>(1, 1, 1, 3, 1, 5, x3.data(), y5.data());
  const V want = {1, 1.4, 2, 3.2, 4};
  for (int i = 0; i < 5; ++i) BOOST_TEST(y5[i] == want[i], boost::test_tools::tolerance(1e-14));
  // Same size is the identity.
  const V z = test::random_vector(12, 9);
  V zz(12);
  cpu::bilinear_resize_forward<double>(1, 2, 2, 3, 2, 3, z.data(), zz.data());
  BOOST_TEST(zz == z, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(gradient_upsample) {
  check_gradient(2, 3, 3, 5, 7, 11, 1);   // non-integer ratios
  check_gradient(1, 2, 4, 4, 32, 32, 3);  // the x8 of DeepLab's head
}

BOOST_AUTO_TEST_CASE(gradient_downsample) {
  check_gradient(2, 2, 9, 13, 4, 5, 5);
  check_gradient(1, 1, 7, 3, 2, 3, 7);  // mixed: down in h, same in w
}

BOOST_AUTO_TEST_CASE(gradient_mixed) { check_gradient(1, 3, 5, 8, 9, 3, 11); }

BOOST_AUTO_TEST_CASE(float_instantiation) {
  const std::vector<float> x = {1, 2, 3, 4};
  std::vector<float> y(16), dx(4);
  cpu::bilinear_resize_forward<float>(1, 1, 2, 2, 4, 4, x.data(), y.data());
  BOOST_TEST(y[5] == 1.75f);
  const std::vector<float> ones(16, 1.0f);
  cpu::bilinear_resize_backward<float>(1, 1, 2, 2, 4, 4, ones.data(), dx.data());
  for (float v : dx) BOOST_TEST(v == 4.0f);  // every output's weights sum to 1, spread evenly by symmetry
}
