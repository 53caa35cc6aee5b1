#define BOOST_TEST_MODULE pooling_kernel
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "common/gradcheck.hpp"
#include "hw1/backend/cpu/pooling.hpp"

using namespace hw1;
using hw1::test::kGradTol;
using V = std::vector<double>;

namespace {
// Distinct values 0.1 apart in shuffled order: a +-1e-6 probe never changes which element is the max.
V distinct_values(std::size_t n, std::uint64_t seed) {
  V v(n);
  std::iota(v.begin(), v.end(), 0.0);
  std::shuffle(v.begin(), v.end(), std::mt19937_64(seed));
  for (auto& x : v) x = 0.1 * x - 0.05 * double(n);
  return v;
}

void check_maxpool_gradient(const cpu::Pool2dShape& s, std::uint64_t seed) {
  const std::size_t in = std::size_t(s.n) * s.c * s.h * s.w, out = std::size_t(s.n) * s.c * s.out_h() * s.out_w();
  V x = distinct_values(in, seed);
  const V g = test::random_vector(out, seed + 1);
  std::vector<std::int64_t> am(out);
  auto loss = [&] {
    V y(out);
    cpu::maxpool2d_forward<double>(s, x.data(), y.data(), am.data());
    return test::dot(g, y.data());
  };
  loss();
  V dx(in, 3.0);
  cpu::maxpool2d_backward<double>(s, am.data(), g.data(), dx.data());
  BOOST_TEST(test::relative_error(dx, test::numeric_gradient(x, loss)) < kGradTol);
}
}  // namespace

BOOST_AUTO_TEST_CASE(output_sizes_follow_pytorch) {
  struct Case { int h, k, s, p; bool ceil; int out; };
  // Expected values as printed by torch.nn.functional.max_pool2d.
  const Case cases[] = {{7, 3, 2, 1, true, 4},  {6, 2, 2, 0, true, 3},   {5, 2, 2, 1, true, 3},
                        {5, 2, 2, 0, true, 3},  {5, 2, 2, 0, false, 2},  {8, 3, 2, 0, true, 4},
                        {8, 3, 2, 0, false, 3}, {112, 3, 2, 1, false, 56}, {4, 3, 2, 1, true, 3},
                        {3, 3, 3, 1, true, 2},  {10, 3, 3, 1, true, 4}};
  for (const auto& c : cases) {
    const cpu::Pool2dShape s{1, 1, c.h, c.h + 1, c.k, c.k, c.s, c.s, c.p, c.p, c.ceil};
    BOOST_TEST(s.out_h() == c.out, "h=" << c.h << " k=" << c.k << " s=" << c.s << " p=" << c.p << " ceil=" << c.ceil);
  }
}

BOOST_AUTO_TEST_CASE(forward_values_padding_and_ties) {
  // All-negative input with padding: padding is -inf, so outputs stay negative.
  const V x = {-5, -1, -3, -2, -9, -4, -7, -8, -6};  // 3x3
  const cpu::Pool2dShape s{1, 1, 3, 3, 3, 3, 2, 2, 1, 1, false};  // 2x2 output
  V y(4);
  std::vector<std::int64_t> am(4);
  cpu::maxpool2d_forward<double>(s, x.data(), y.data(), am.data());
  const V want = {-1, -1, -2, -4};
  const std::vector<std::int64_t> want_at = {1, 1, 3, 5};
  for (int i = 0; i < 4; ++i) {
    BOOST_TEST(y[i] == want[i]);
    BOOST_TEST(am[i] == want_at[i]);
  }
  // Ties: the first maximum in row-major window order wins, as in PyTorch.
  const V t = {2, 2, 2, 2};
  const cpu::Pool2dShape s2{1, 1, 2, 2, 2, 2, 2, 2, 0, 0, false};
  cpu::maxpool2d_forward<double>(s2, t.data(), y.data(), am.data());
  BOOST_TEST(am[0] == 0);
}

BOOST_AUTO_TEST_CASE(invalid_shapes_throw) {
  const V x(16, 0.0);
  V y(64);
  std::vector<std::int64_t> am(64);
  BOOST_CHECK_THROW(cpu::maxpool2d_forward<double>({1, 1, 4, 4, 3, 3, 2, 2, 2, 2, false}, x.data(), y.data(), am.data()),
                    hw1::Error);  // padding above half the kernel
  BOOST_CHECK_THROW(cpu::maxpool2d_forward<double>({1, 1, 2, 2, 3, 3, 1, 1, 0, 0, false}, x.data(), y.data(), am.data()),
                    hw1::Error);  // window larger than the input
}

BOOST_AUTO_TEST_CASE(maxpool_gradient_k3_s2_p1) { check_maxpool_gradient({2, 3, 7, 9, 3, 3, 2, 2, 1, 1, false}, 5); }

BOOST_AUTO_TEST_CASE(maxpool_gradient_ceil_mode) {
  // 8x5, k3 s2 p0, ceil: 4x2 outputs, the last row of windows hangs over the bottom edge.
  const cpu::Pool2dShape s{2, 2, 8, 5, 3, 3, 2, 2, 0, 0, true};
  BOOST_TEST(s.out_h() == 4);
  BOOST_TEST(s.out_w() == 2);
  check_maxpool_gradient(s, 7);
  check_maxpool_gradient({1, 2, 4, 10, 3, 3, 2, 3, 1, 1, true}, 9);  // padded, anisotropic stride
}

BOOST_AUTO_TEST_CASE(global_avgpool) {
  const int n = 2, c = 3, hw = 7;
  V x = test::random_vector(n * c * hw, 3);
  const V g = test::random_vector(n * c, 4);
  V y(n * c);
  cpu::global_avgpool_forward<double>(n, c, hw, x.data(), y.data());
  for (int p = 0; p < n * c; ++p) {
    double s = 0;
    for (int i = 0; i < hw; ++i) s += x[p * hw + i];
    BOOST_TEST(y[p] == s / hw, boost::test_tools::tolerance(1e-14));
  }
  auto loss = [&] {
    cpu::global_avgpool_forward<double>(n, c, hw, x.data(), y.data());
    return test::dot(g, y.data());
  };
  V dx(x.size(), 5.0);
  cpu::global_avgpool_backward<double>(n, c, hw, g.data(), dx.data());
  BOOST_TEST(test::relative_error(dx, test::numeric_gradient(x, loss)) < kGradTol);
}

BOOST_AUTO_TEST_CASE(float_instantiation) {
  const std::vector<float> x = {1, 5, 3, 2, 8, 0, 4, 6, 7};
  std::vector<float> y(4), dx(9);
  std::vector<std::int64_t> am(4);
  const cpu::Pool2dShape s{1, 1, 3, 3, 2, 2, 1, 1, 0, 0, false};
  cpu::maxpool2d_forward<float>(s, x.data(), y.data(), am.data());
  BOOST_TEST(y == std::vector<float>({8, 8, 8, 8}), boost::test_tools::per_element());
  cpu::maxpool2d_backward<float>(s, am.data(), y.data(), dx.data());
  BOOST_TEST(dx[4] == 32.0f);
  cpu::global_avgpool_forward<float>(1, 1, 9, x.data(), y.data());
  BOOST_TEST(y[0] == 4.0f);
}

// Without argmax (inference) the kernel takes a branch-free path for windows inside the image: it must give the
// same values as the argmax path, NaN and ties included, for every geometry and at the borders.
BOOST_AUTO_TEST_CASE(no_argmax_path_matches_argmax_path) {
  const std::vector<cpu::Pool2dShape> shapes = {
      {2, 3, 9, 11, 2, 2, 2, 2, 0, 0, false},  // VGG
      {2, 3, 9, 11, 3, 3, 2, 2, 1, 1, false},  // ResNet stem
      {1, 2, 10, 7, 3, 3, 2, 2, 1, 1, true},   // ceil mode: last window past the edge
      {1, 2, 8, 13, 3, 2, 1, 3, 1, 0, false},  // asymmetric kernel and stride
      {1, 1, 2, 2, 2, 2, 2, 2, 1, 1, false},   // every window touches padding
  };
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> pick(0, 5);  // few distinct values: many ties
  for (const auto& s : shapes) {
    BOOST_TEST_CONTEXT("h " << s.h << " w " << s.w << " k " << s.kh << "x" << s.kw) {
      std::vector<float> x(std::size_t(s.n) * s.c * s.h * s.w);
      for (auto& v : x) v = float(pick(rng));
      x[x.size() / 3] = std::numeric_limits<float>::quiet_NaN();
      const std::size_t out = std::size_t(s.n) * s.c * s.out_h() * s.out_w();
      std::vector<float> a(out), b(out);
      std::vector<std::int64_t> am(out);
      cpu::maxpool2d_forward<float>(s, x.data(), a.data(), am.data());
      cpu::maxpool2d_forward<float>(s, x.data(), b.data(), nullptr);
      for (std::size_t i = 0; i < out; ++i)
        BOOST_TEST((a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i]))), "output " << i);
    }
  }
}

// Training (argmax) in float takes 16 windows at a time for stride 1 and 2 inside the image: the same values and
// the same argmax as the one-window path (double), ties, NaN and -inf included, with partial last vectors.
BOOST_AUTO_TEST_CASE(float_argmax_matches_scalar_path) {
  const std::vector<cpu::Pool2dShape> shapes = {
      {2, 3, 20, 70, 3, 3, 2, 2, 1, 1, false},  // ResNet stem: 35 outputs a row
      {1, 2, 9, 50, 2, 2, 2, 2, 0, 0, false},   // VGG
      {1, 2, 8, 45, 3, 3, 1, 1, 1, 1, false},   // stride 1
      {1, 2, 7, 23, 3, 3, 2, 2, 1, 1, true},    // ceil mode
      {1, 1, 5, 9, 3, 3, 2, 2, 1, 1, false},    // fewer than 16 inner windows
  };
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> pick(0, 4);  // few distinct values: many ties
  for (const auto& s : shapes) {
    BOOST_TEST_CONTEXT("h " << s.h << " w " << s.w << " k " << s.kh << "x" << s.kw << " s " << s.stride_w) {
      const std::size_t in = std::size_t(s.n) * s.c * s.h * s.w, out = std::size_t(s.n) * s.c * s.out_h() * s.out_w();
      std::vector<float> x(in);
      for (auto& v : x) v = float(pick(rng)) - 2.f;
      x[in / 3] = std::numeric_limits<float>::quiet_NaN();
      x[in / 3 + 2] = std::numeric_limits<float>::quiet_NaN();
      for (std::size_t i = 5; i < in; i += 97) x[i] = -std::numeric_limits<float>::infinity();
      const V xd(x.begin(), x.end());
      std::vector<float> y(out);
      V yd(out);
      std::vector<std::int64_t> am(out), amd(out);
      cpu::maxpool2d_forward<float>(s, x.data(), y.data(), am.data());
      cpu::maxpool2d_forward<double>(s, xd.data(), yd.data(), amd.data());
      for (std::size_t i = 0; i < out; ++i) {
        BOOST_TEST((double(y[i]) == yd[i] || (std::isnan(y[i]) && std::isnan(yd[i]))), "output " << i);
        BOOST_TEST(am[i] == amd[i], "output " << i);
      }
    }
  }
}
