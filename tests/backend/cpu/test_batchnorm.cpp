#define BOOST_TEST_MODULE batchnorm_kernel
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "common/gradcheck.hpp"
#include "hw1/backend/cpu/batchnorm.hpp"
#include "hw1/backend/cpu/elementwise.hpp"

using namespace hw1;
using hw1::test::kGradTol;
using V = std::vector<double>;

namespace {
constexpr int N = 3, C = 4, HW = 5;  // 15 values per channel
const std::size_t kCount = std::size_t(N) * C * HW;
}  // namespace

BOOST_AUTO_TEST_CASE(running_stats_follow_pytorch) {
  // One channel, values {1,2,3,6}: mean 3, biased var 14/4 = 3.5, unbiased 14/3.
  const V x = {1, 2, 6, 3};  // n=2, hw=2
  const double gamma = 2.0, beta = 0.5, eps = 1e-5;
  double rm = 0.4, rv = 2.0, mean = 0, invstd = 0;
  V y(4);
  cpu::batchnorm_forward_train<double>(2, 1, 2, x.data(), &gamma, &beta, eps, 0.1, &rm, &rv, y.data(), &mean, &invstd);
  BOOST_TEST(mean == 3.0, boost::test_tools::tolerance(1e-14));
  BOOST_TEST(invstd == 1 / std::sqrt(3.5 + eps), boost::test_tools::tolerance(1e-14));
  BOOST_TEST(rm == 0.9 * 0.4 + 0.1 * 3.0, boost::test_tools::tolerance(1e-14));
  BOOST_TEST(rv == 0.9 * 2.0 + 0.1 * 14.0 / 3.0, boost::test_tools::tolerance(1e-14));
  for (int i = 0; i < 4; ++i)
    BOOST_TEST(y[i] == (x[i] - 3.0) / std::sqrt(3.5 + eps) * gamma + beta, boost::test_tools::tolerance(1e-12));

  // Eval with those running stats uses them, not the batch's.
  cpu::batchnorm_forward_eval<double>(2, 1, 2, x.data(), &gamma, &beta, &rm, &rv, eps, y.data());
  for (int i = 0; i < 4; ++i)
    BOOST_TEST(y[i] == (x[i] - rm) / std::sqrt(rv + eps) * gamma + beta, boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(train_output_is_normalised_per_channel) {
  const V x = test::random_vector(kCount, 1, -3, 5), gamma = test::random_vector(C, 2), beta = test::random_vector(C, 3);
  V rm(C, 0), rv(C, 1), y(kCount), sm(C), si(C);
  cpu::batchnorm_forward_train<double>(N, C, HW, x.data(), gamma.data(), beta.data(), 1e-5, 0.1, rm.data(), rv.data(),
                                       y.data(), sm.data(), si.data());
  for (int c = 0; c < C; ++c) {
    double s = 0, s2 = 0;
    for (int b = 0; b < N; ++b)
      for (int i = 0; i < HW; ++i) {
        const double z = (y[(b * C + c) * HW + i] - beta[c]) / gamma[c];
        s += z, s2 += z * z;
      }
    BOOST_TEST(s / (N * HW) == 0.0, boost::test_tools::tolerance(1e-12));
    BOOST_TEST(std::abs(s2 / (N * HW) - 1.0) < 1e-4);  // 1 - eps/var
  }
}

BOOST_AUTO_TEST_CASE(train_needs_more_than_one_value) {
  const double x = 1, g = 1, b = 0;
  double rm = 0, rv = 1, y, sm, si;
  BOOST_CHECK_THROW(cpu::batchnorm_forward_train<double>(1, 1, 1, &x, &g, &b, 1e-5, 0.1, &rm, &rv, &y, &sm, &si),
                    hw1::Error);
}

// HW below 16 takes the kernels' small-plane loops, 16 and above the per-channel ones.
void train_gradients_at(int HW) {
  const std::size_t kCount = std::size_t(N) * C * HW;
  V x = test::random_vector(kCount, 11, -2, 3), gamma = test::random_vector(C, 12, 0.5, 1.5),
    beta = test::random_vector(C, 13);
  const V g = test::random_vector(kCount, 14);
  const double eps = 1e-5;
  auto loss = [&] {
    V rm(C, 0), rv(C, 1), y(kCount), sm(C), si(C);
    cpu::batchnorm_forward_train<double>(N, C, HW, x.data(), gamma.data(), beta.data(), eps, 0.1, rm.data(),
                                         rv.data(), y.data(), sm.data(), si.data());
    return test::dot(g, y.data());
  };
  V rm(C, 0), rv(C, 1), y(kCount), sm(C), si(C), dx(kCount, 7.0), dgamma(C, 0.25), dbeta(C, -0.5);
  cpu::batchnorm_forward_train<double>(N, C, HW, x.data(), gamma.data(), beta.data(), eps, 0.1, rm.data(), rv.data(),
                                       y.data(), sm.data(), si.data());
  cpu::batchnorm_backward_train<double>(N, C, HW, x.data(), gamma.data(), sm.data(), si.data(), eps, g.data(), dx.data(),
                                        dgamma.data(), dbeta.data());
  for (int c = 0; c < C; ++c) dgamma[c] -= 0.25, dbeta[c] += 0.5;  // they accumulate
  BOOST_TEST(test::relative_error(dx, test::numeric_gradient(x, loss)) < kGradTol);
  BOOST_TEST(test::relative_error(dgamma, test::numeric_gradient(gamma, loss)) < kGradTol);
  BOOST_TEST(test::relative_error(dbeta, test::numeric_gradient(beta, loss)) < kGradTol);
}

BOOST_AUTO_TEST_CASE(train_gradients) {
  for (int hw : {1, 5, 21, 40}) {
    BOOST_TEST_CONTEXT("hw " << hw) { train_gradients_at(hw); }
  }
}

// HW below 16 takes the kernels' small-plane loops, 16 and above the per-channel ones.
void eval_gradients_at(int HW) {
  const std::size_t kCount = std::size_t(N) * C * HW;
  V x = test::random_vector(kCount, 21, -2, 3), gamma = test::random_vector(C, 22, 0.5, 1.5),
    beta = test::random_vector(C, 23);
  const V g = test::random_vector(kCount, 24), rm = test::random_vector(C, 25),
          rv = test::random_vector(C, 26, 0.2, 2.0);
  const double eps = 1e-5;
  auto loss = [&] {
    V y(kCount);
    cpu::batchnorm_forward_eval<double>(N, C, HW, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(), eps,
                                        y.data());
    return test::dot(g, y.data());
  };
  V dx(kCount, 7.0), dgamma(C, 0.25), dbeta(C, -0.5);
  cpu::batchnorm_backward_eval<double>(N, C, HW, x.data(), gamma.data(), rm.data(), rv.data(), eps, g.data(),
                                       dx.data(), dgamma.data(), dbeta.data());
  for (int c = 0; c < C; ++c) dgamma[c] -= 0.25, dbeta[c] += 0.5;
  BOOST_TEST(test::relative_error(dx, test::numeric_gradient(x, loss)) < kGradTol);
  BOOST_TEST(test::relative_error(dgamma, test::numeric_gradient(gamma, loss)) < kGradTol);
  BOOST_TEST(test::relative_error(dbeta, test::numeric_gradient(beta, loss)) < kGradTol);
}

BOOST_AUTO_TEST_CASE(eval_gradients) {
  for (int hw : {1, 5, 21, 40}) {
    BOOST_TEST_CONTEXT("hw " << hw) { eval_gradients_at(hw); }
  }
}

BOOST_AUTO_TEST_CASE(float_matches_double) {
  const V xd = test::random_vector(kCount, 31, -2, 3);
  const std::vector<float> x(xd.begin(), xd.end()), gamma(C, 1.5f), beta(C, 0.25f);
  std::vector<float> rm(C, 0), rv(C, 1), y(kCount), sm(C), si(C);
  cpu::batchnorm_forward_train<float>(N, C, HW, x.data(), gamma.data(), beta.data(), 1e-5f, 0.1f, rm.data(), rv.data(),
                                      y.data(), sm.data(), si.data());
  const V gd(C, 1.5), bd(C, 0.25);
  V rmd(C, 0), rvd(C, 1), yd(kCount), smd(C), sid(C);
  cpu::batchnorm_forward_train<double>(N, C, HW, xd.data(), gd.data(), bd.data(), 1e-5, 0.1, rmd.data(), rvd.data(),
                                       yd.data(), smd.data(), sid.data());
  for (std::size_t i = 0; i < kCount; ++i) BOOST_TEST(std::abs(y[i] - yd[i]) < 1e-5);
  for (int c = 0; c < C; ++c) BOOST_TEST(std::abs(rv[c] - rvd[c]) < 1e-6);
}

// What follows a batch norm, run in its own passes (BnAfter: + residual, ReLU and its mask; the backwards' ReLU
// mask), gives what the separate kernels give: batch norm, add, ReLU, and ReLU's backward before batch norm's.
template <class T>
void fused_matches_separate(int HW, bool train) {
  using W = std::vector<T>;
  const std::size_t count = std::size_t(N) * C * HW;
  const auto to = [](const V& v) { return W(v.begin(), v.end()); };
  const W x = to(test::random_vector(count, 41, -2, 3)), res = to(test::random_vector(count, 42)),
          gamma = to(test::random_vector(C, 43, 0.5, 1.5)), beta = to(test::random_vector(C, 44)),
          g = to(test::random_vector(count, 45));
  const T eps = T(1e-5);
  for (bool with_res : {false, true}) {
    BOOST_TEST_CONTEXT("hw " << HW << (train ? " train" : " eval") << (with_res ? " + residual" : "")) {
      W rm(C, 0), rv(C, 1), sm(C), si(C), ref(count);
      const auto forward = [&](T* y, const cpu::BnAfter<T>& after) {
        rm.assign(C, T(0.25)), rv.assign(C, T(1.5));
        if (train) {
          cpu::batchnorm_forward_train<T>(N, C, HW, x.data(), gamma.data(), beta.data(), eps, T(0.1), rm.data(),
                                          rv.data(), y, sm.data(), si.data(), after);
        } else {
          cpu::batchnorm_forward_eval<T>(N, C, HW, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(), eps, y,
                                         after);
        }
      };
      forward(ref.data(), {});
      if (with_res) cpu::add_forward<T>(count, ref.data(), res.data(), ref.data());
      cpu::relu_forward<T>(count, ref.data(), ref.data());
      W y(count);
      std::vector<std::uint8_t> mask(count, 7);
      forward(y.data(), {with_res ? res.data() : nullptr, true, mask.data()});
      std::size_t positive = 0;
      for (std::size_t i = 0; i < count; ++i) {
        BOOST_REQUIRE(std::abs(y[i] - ref[i]) <= T(1e-6) * (T(1) + std::abs(ref[i])));
        BOOST_REQUIRE(int(mask[i]) == int(ref[i] > 0));
        positive += mask[i];
      }
      BOOST_TEST(positive > 0);  // both sides of the kink are exercised
      BOOST_TEST(positive < count);

      // Backward: the mask applied to dy on the way in, against dy masked first (dx, dgamma, dbeta).
      W gm(count), dx_ref(count), dx(count), dg_ref(C, 0), db_ref(C, 0), dg(C, 0), db(C, 0);
      for (std::size_t i = 0; i < count; ++i) gm[i] = ref[i] > 0 ? g[i] : T(0);
      const auto backward = [&](const T* dy, T* out, T* dgamma, T* dbeta, const std::uint8_t* m) {
        if (train)
          cpu::batchnorm_backward_train<T>(N, C, HW, x.data(), gamma.data(), sm.data(), si.data(), eps, dy, out, dgamma,
                                           dbeta, m);
        else
          cpu::batchnorm_backward_eval<T>(N, C, HW, x.data(), gamma.data(), rm.data(), rv.data(), eps, dy, out,
                                          dgamma, dbeta, m);
      };
      backward(gm.data(), dx_ref.data(), dg_ref.data(), db_ref.data(), nullptr);
      backward(g.data(), dx.data(), dg.data(), db.data(), mask.data());
      const auto close = [](const W& a, const W& b) {
        T worst = 0, scale = 0;
        for (std::size_t i = 0; i < a.size(); ++i) {
          worst = std::max(worst, std::abs(a[i] - b[i]));
          scale = std::max(scale, std::abs(b[i]));
        }
        return worst <= T(1e-5) * scale;
      };
      BOOST_TEST(close(dx, dx_ref));
      BOOST_TEST(close(dg, dg_ref));
      BOOST_TEST(close(db, db_ref));
      if (!train) {  // eval's dx may alias dy
        W inplace = g;
        backward(inplace.data(), inplace.data(), dg.data(), db.data(), mask.data());
        BOOST_TEST(close(inplace, dx_ref));
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(fused_residual_relu_and_mask) {
  for (int hw : {1, 5, 21, 40}) {
    fused_matches_separate<double>(hw, true);
    fused_matches_separate<double>(hw, false);
    fused_matches_separate<float>(hw, true);
    fused_matches_separate<float>(hw, false);
  }
}
