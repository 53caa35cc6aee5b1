#define BOOST_TEST_MODULE elementwise_kernel
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "common/gradcheck.hpp"
#include "hw1/backend/cpu/elementwise.hpp"

using namespace hw1;
using hw1::test::kGradTol;
using V = std::vector<double>;

BOOST_AUTO_TEST_CASE(relu_forward_and_gradient) {
  // Values at least 0.1 away from the kink at 0, so a +-1e-6 probe never crosses it.
  V x = test::random_vector(300000, 1);  // several chunks, so the parallel split is exercised
  for (auto& v : x) v += v >= 0 ? 0.1 : -0.1;
  V y(x.size());
  cpu::relu_forward<double>(x.size(), x.data(), y.data());
  for (std::size_t i = 0; i < x.size(); ++i) BOOST_REQUIRE(y[i] == (x[i] > 0 ? x[i] : 0.0));

  V xs(x.begin(), x.begin() + 200);
  const V g = test::random_vector(xs.size(), 2);
  auto loss = [&] {
    V ys(xs.size());
    cpu::relu_forward<double>(xs.size(), xs.data(), ys.data());
    return test::dot(g, ys.data());
  };
  V ys(xs.size()), dx(xs.size(), 3.0);
  cpu::relu_forward<double>(xs.size(), xs.data(), ys.data());
  cpu::relu_backward<double>(xs.size(), ys.data(), g.data(), dx.data());
  BOOST_TEST(test::relative_error(dx, test::numeric_gradient(xs, loss)) < kGradTol);

  // In place, as the layers call it.
  V inplace = xs, dy = g;
  cpu::relu_forward<double>(inplace.size(), inplace.data(), inplace.data());
  cpu::relu_backward<double>(dy.size(), inplace.data(), dy.data(), dy.data());
  BOOST_TEST(inplace == ys, boost::test_tools::per_element());
  BOOST_TEST(dy == dx, boost::test_tools::per_element());
}

// The masked ReLU (what a recording ReLU layer keeps on the CPU) against the plain kernels, in place as the layers
// call it, with NaN and signed zeros: same outputs, and a backward that gives 0 wherever the output is not
// positive, even for an inf or NaN incoming gradient.
template <class T>
void relu_mask_matches_plain() {
  const V xd = test::random_vector(300001, 5);  // several chunks and a ragged tail
  std::vector<T> x(xd.begin(), xd.end()), dy(x.size());
  x[3] = T(0), x[4] = -T(0), x[5] = std::numeric_limits<T>::quiet_NaN(), x[6] = -std::numeric_limits<T>::infinity();
  for (std::size_t i = 0; i < dy.size(); ++i) dy[i] = T(i % 7) - T(3);
  dy[6] = std::numeric_limits<T>::infinity(), dy[4] = std::numeric_limits<T>::quiet_NaN();
  std::vector<T> y(x.size()), dx(x.size()), y2 = x, dx2 = dy;
  std::vector<std::uint8_t> mask(x.size(), 9);
  cpu::relu_forward<T>(x.size(), x.data(), y.data());
  cpu::relu_backward<T>(x.size(), y.data(), dy.data(), dx.data());
  cpu::relu_forward_mask<T>(y2.size(), y2.data(), y2.data(), mask.data());
  cpu::relu_backward_mask<T>(dx2.size(), mask.data(), dx2.data(), dx2.data());
  BOOST_TEST(std::isnan(y2[5]));
  BOOST_TEST(mask[3] + mask[4] + mask[5] + mask[6] == 0);
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (i == 5) continue;
    BOOST_REQUIRE(y2[i] == y[i]);
    BOOST_REQUIRE(int(mask[i]) == int(y[i] > 0));
    BOOST_REQUIRE(dx2[i] == dx[i]);
  }
}

BOOST_AUTO_TEST_CASE(relu_mask) {
  relu_mask_matches_plain<double>();
  relu_mask_matches_plain<float>();
}

BOOST_AUTO_TEST_CASE(add_and_mul) {
  const V a = test::random_vector(1000, 3), b = test::random_vector(1000, 4);
  V y(1000), z(1000);
  cpu::add_forward<double>(a.size(), a.data(), b.data(), y.data());
  cpu::mul_forward<double>(a.size(), a.data(), b.data(), z.data());
  for (std::size_t i = 0; i < a.size(); ++i) {
    BOOST_REQUIRE(y[i] == a[i] + b[i]);
    BOOST_REQUIRE(z[i] == a[i] * b[i]);
  }
  V acc = a;
  cpu::add_forward<double>(acc.size(), acc.data(), b.data(), acc.data());
  BOOST_TEST(acc == y, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(concat_forward_and_gradient) {
  const int n = 2, hw = 5;
  const std::vector<int> ch = {1, 3, 2};
  std::vector<V> parts;
  for (std::size_t i = 0; i < ch.size(); ++i) parts.push_back(test::random_vector(std::size_t(n) * ch[i] * hw, 10 + i));
  const int total = 6;
  V y(std::size_t(n) * total * hw);
  auto forward = [&] {
    cpu::concat_channels_forward<double>(n, hw, {parts[0].data(), parts[1].data(), parts[2].data()}, ch, y.data());
  };
  forward();
  // Image 1, channel 2 of y is part 1's channel 1.
  for (int p = 0; p < hw; ++p) BOOST_TEST(y[(1 * total + 2) * hw + p] == parts[1][(1 * 3 + 1) * hw + p]);

  const V g = test::random_vector(y.size(), 20);
  std::vector<V> d;
  for (std::size_t i = 0; i < ch.size(); ++i) d.emplace_back(parts[i].size(), 7.0);
  cpu::concat_channels_backward<double>(n, hw, g.data(), {d[0].data(), d[1].data(), d[2].data()}, ch);
  auto loss = [&] {
    forward();
    return test::dot(g, y.data());
  };
  for (std::size_t i = 0; i < ch.size(); ++i)
    BOOST_TEST(test::relative_error(d[i], test::numeric_gradient(parts[i], loss)) < kGradTol);

  BOOST_CHECK_THROW(cpu::concat_channels_forward<double>(n, hw, {parts[0].data()}, ch, y.data()), hw1::Error);
}

BOOST_AUTO_TEST_CASE(dropout_gradient_with_fixed_mask) {
  V x = test::random_vector(500, 30);
  const V g = test::random_vector(500, 31);
  V mask(500);
  cpu::dropout_mask<double>(mask.size(), 0.4, 123, mask.data());
  auto loss = [&] {
    V y(x.size());
    cpu::mul_forward<double>(x.size(), x.data(), mask.data(), y.data());
    return test::dot(g, y.data());
  };
  V dx(x.size());
  cpu::mul_forward<double>(g.size(), g.data(), mask.data(), dx.data());  // backward: dx = dy * mask
  BOOST_TEST(test::relative_error(dx, test::numeric_gradient(x, loss)) < kGradTol);
}

BOOST_AUTO_TEST_CASE(dropout_statistics_and_determinism) {
  const std::size_t count = 200000;
  const double p = 0.3, keep = 1 / (1 - p);
  V m(count), m2(count), m3(count);
  cpu::dropout_mask<double>(count, p, 42, m.data());
  cpu::dropout_mask<double>(count, p, 42, m2.data());
  cpu::dropout_mask<double>(count, p, 43, m3.data());
  std::size_t kept = 0, same = 0;
  double sum = 0;
  for (std::size_t i = 0; i < count; ++i) {
    BOOST_REQUIRE((m[i] == 0.0 || m[i] == keep));
    kept += m[i] != 0;
    sum += m[i];
    same += m[i] == m3[i];
  }
  // Binomial std of the kept fraction is sqrt(0.21 / 2e5) ~ 1e-3: allow 5 sigma.
  BOOST_TEST(std::abs(double(kept) / count - (1 - p)) < 5e-3);
  BOOST_TEST(std::abs(sum / count - 1.0) < 5e-3 * keep);
  BOOST_TEST(m == m2, boost::test_tools::per_element());
  BOOST_TEST(double(same) / count < 0.7);  // another seed gives another mask (independent: ~0.58 agree)

  V ones(1000);
  cpu::dropout_mask<double>(ones.size(), 0.0, 7, ones.data());
  for (double v : ones) BOOST_REQUIRE(v == 1.0);
  BOOST_CHECK_THROW(cpu::dropout_mask<double>(ones.size(), 1.0, 7, ones.data()), hw1::Error);
  BOOST_CHECK_THROW(cpu::dropout2d_mask<double>(1, 1, 1, -0.1, 7, ones.data()), hw1::Error);
}

BOOST_AUTO_TEST_CASE(dropout2d_zeroes_whole_channels) {
  const int n = 40, c = 100, hw = 9;
  const double p = 0.5;
  V m(std::size_t(n) * c * hw), m2(m.size());
  cpu::dropout2d_mask<double>(n, c, hw, p, 99, m.data());
  cpu::dropout2d_mask<double>(n, c, hw, p, 99, m2.data());
  BOOST_TEST(m == m2, boost::test_tools::per_element());
  std::size_t kept = 0;
  for (int pl = 0; pl < n * c; ++pl) {
    const double v = m[std::size_t(pl) * hw];
    BOOST_REQUIRE((v == 0.0 || v == 2.0));
    for (int i = 1; i < hw; ++i) BOOST_REQUIRE(m[std::size_t(pl) * hw + i] == v);
    kept += v != 0;
  }
  // 4000 channels: std of the kept fraction ~ 0.008, allow 5 sigma.
  BOOST_TEST(std::abs(double(kept) / (n * c) - 0.5) < 0.04);
}

BOOST_AUTO_TEST_CASE(float_instantiation) {
  std::vector<float> x = {-1, 2, -3, 4}, y(4), m(4);
  cpu::relu_forward<float>(4, x.data(), y.data());
  BOOST_TEST(y == std::vector<float>({0, 2, 0, 4}), boost::test_tools::per_element());
  cpu::relu_backward<float>(4, y.data(), x.data(), y.data());
  BOOST_TEST(y == std::vector<float>({0, 2, 0, 4}), boost::test_tools::per_element());
  cpu::add_forward<float>(4, x.data(), x.data(), y.data());
  BOOST_TEST(y[3] == 8.0f);
  cpu::dropout_mask<float>(4, 0.5f, 1, m.data());
  cpu::dropout2d_mask<float>(1, 2, 2, 0.5f, 1, m.data());
  cpu::mul_forward<float>(4, x.data(), m.data(), y.data());
  std::vector<float> cat(8), a = {1, 2}, b = {3, 4, 5, 6, 7, 8};
  cpu::concat_channels_forward<float>(1, 2, {a.data(), b.data()}, {1, 3}, cat.data());
  BOOST_TEST(cat == std::vector<float>({1, 2, 3, 4, 5, 6, 7, 8}), boost::test_tools::per_element());
  cpu::concat_channels_backward<float>(1, 2, cat.data(), {b.data(), a.data()}, {3, 1});
  BOOST_TEST(a[1] == 8.0f);
}
