#define BOOST_TEST_MODULE gpu_ops
#include <boost/test/unit_test.hpp>

#include "gpu/gpu_main.hpp"
#include "gpu/gpu_testing.hpp"

#include <cmath>
#include <random>
#include <vector>

#include "hw1/backend/cpu.hpp"
#include "hw1/backend/cuda.hpp"

// Every op of the CUDA backend against the CPU backend on random data: outputs and gradients agree to float
// rounding (relative L2 error), indices and dropout masks exactly. Accumulating outputs start non-zero.
namespace {
using V = std::vector<float>;
using hw1::gpu::DeviceBuffer;
namespace cpu = hw1::cpu;
namespace g = hw1::gpu::ops;

using hw1::gpu_test::dev;
using hw1::gpu_test::rel;
using hw1::gpu_test::rnd;
#define CHECK_NEAR(cpu_v, gpu_b, tol) BOOST_TEST(rel(cpu_v, (gpu_b).to_vector()) < (tol))
constexpr double tol = 2e-5;

void conv_case(hw1::Conv2dShape s, bool bias) {
  const auto xs = std::size_t(s.n) * s.cin * s.h * s.w, ws = std::size_t(s.cout) * s.cin * s.kh * s.kw,
             ys = std::size_t(s.n) * s.cout * s.out_h() * s.out_w();
  V x = rnd(xs, 1), w = rnd(ws, 2), b = rnd(s.cout, 3), dy = rnd(ys, 4), y(ys), dx(xs), dw = rnd(ws, 5), db = rnd(s.cout, 6);
  auto X = dev(x), W = dev(w), B = dev(b), DY = dev(dy), DW = dev(dw), DB = dev(db);
  DeviceBuffer<float> Y(ys), DX(xs);
  cpu::conv2d_forward<float>(s, x.data(), w.data(), bias ? b.data() : nullptr, y.data());
  g::conv2d_forward<float>(s, X.data(), W.data(), bias ? B.data() : nullptr, Y.data());
  CHECK_NEAR(y, Y, tol);
  cpu::conv2d_backward<float>(s, x.data(), w.data(), dy.data(), dx.data(), dw.data(), bias ? db.data() : nullptr);
  g::conv2d_backward<float>(s, X.data(), W.data(), DY.data(), DX.data(), DW.data(), bias ? DB.data() : nullptr);
  CHECK_NEAR(dx, DX, tol);
  CHECK_NEAR(dw, DW, tol);
  CHECK_NEAR(db, DB, tol);
}
}  // namespace

BOOST_AUTO_TEST_CASE(conv2d_forward_backward) {
  conv_case({2, 3, 17, 15, 8, 3, 3, 1, 1, 1, 1, 1, 1}, true);
  conv_case({2, 8, 16, 16, 16, 3, 3, 2, 2, 1, 1, 1, 1}, false);   // stride 2
  conv_case({1, 16, 20, 20, 8, 3, 3, 1, 1, 12, 12, 12, 12}, false);  // ASPP-style dilation
  conv_case({3, 32, 7, 9, 16, 1, 1, 1, 1, 0, 0, 1, 1}, true);     // pointwise
  conv_case({1, 3, 33, 31, 8, 7, 7, 2, 2, 3, 3, 1, 1}, false);    // ResNet stem
}

BOOST_AUTO_TEST_CASE(conv_transpose2d_forward_backward) {
  for (hw1::ConvTranspose2dShape s : {hw1::ConvTranspose2dShape{2, 3, 2, 3, 3, 64, 64, 32, 32, 0, 0, 0, 0, 1, 1},
                                      hw1::ConvTranspose2dShape{1, 4, 5, 6, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1}}) {
    const auto xs = std::size_t(s.n) * s.cin * s.h * s.w, ws = std::size_t(s.cin) * s.cout * s.kh * s.kw,
               ys = std::size_t(s.n) * s.cout * s.out_h() * s.out_w();
    V x = rnd(xs, 1), w = rnd(ws, 2), b = rnd(s.cout, 3), dy = rnd(ys, 4), y(ys), dx(xs), dw = rnd(ws, 5),
      db = rnd(s.cout, 6);
    auto X = dev(x), W = dev(w), B = dev(b), DY = dev(dy), DW = dev(dw), DB = dev(db);
    DeviceBuffer<float> Y(ys), DX(xs);
    cpu::conv_transpose2d_forward<float>(s, x.data(), w.data(), b.data(), y.data());
    g::conv_transpose2d_forward<float>(s, X.data(), W.data(), B.data(), Y.data());
    CHECK_NEAR(y, Y, tol);
    cpu::conv_transpose2d_backward<float>(s, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data());
    g::conv_transpose2d_backward<float>(s, X.data(), W.data(), DY.data(), DX.data(), DW.data(), DB.data());
    CHECK_NEAR(dx, DX, tol);
    CHECK_NEAR(dw, DW, tol);
    CHECK_NEAR(db, DB, tol);
  }
}

BOOST_AUTO_TEST_CASE(batchnorm_train_and_eval) {
  const int n = 3, c = 5, hw = 37;
  const std::size_t m = std::size_t(n) * c * hw;
  V x = rnd(m, 1, -2, 3), gm = rnd(c, 2, 0.5, 1.5), bt = rnd(c, 3), rm = rnd(c, 4), rv = rnd(c, 5, 0.5, 2),
    dy = rnd(m, 6), y(m), sm(c), si(c), dx(m), dg = rnd(c, 7), db = rnd(c, 8);
  auto X = dev(x), G = dev(gm), Bt = dev(bt), RM = dev(rm), RV = dev(rv), DY = dev(dy), DG = dev(dg), DB = dev(db);
  DeviceBuffer<float> Y(m), SM(c), SI(c), DX(m);
  cpu::batchnorm_forward_train<float>(n, c, hw, x.data(), gm.data(), bt.data(), 1e-5f, 0.1f, rm.data(), rv.data(),
                                      y.data(), sm.data(), si.data());
  g::batchnorm_forward_train<float>(n, c, hw, X.data(), G.data(), Bt.data(), 1e-5f, 0.1f, RM.data(), RV.data(),
                                    Y.data(), SM.data(), SI.data());
  CHECK_NEAR(y, Y, tol);
  CHECK_NEAR(rm, RM, tol);
  CHECK_NEAR(rv, RV, tol);  // unbiased variance in the running estimate, as torch
  CHECK_NEAR(sm, SM, tol);
  CHECK_NEAR(si, SI, tol);
  cpu::batchnorm_backward_train<float>(n, c, hw, x.data(), gm.data(), sm.data(), si.data(), 1e-5f, dy.data(), dx.data(),
                                       dg.data(), db.data());
  g::batchnorm_backward_train<float>(n, c, hw, X.data(), G.data(), SM.data(), SI.data(), 1e-5f, DY.data(), DX.data(),
                                     DG.data(), DB.data());
  CHECK_NEAR(dx, DX, tol);
  CHECK_NEAR(dg, DG, tol);
  CHECK_NEAR(db, DB, tol);
  cpu::batchnorm_forward_eval<float>(n, c, hw, x.data(), gm.data(), bt.data(), rm.data(), rv.data(), 1e-5f, y.data());
  g::batchnorm_forward_eval<float>(n, c, hw, X.data(), G.data(), Bt.data(), RM.data(), RV.data(), 1e-5f, Y.data());
  CHECK_NEAR(y, Y, tol);
  cpu::batchnorm_backward_eval<float>(n, c, hw, x.data(), gm.data(), rm.data(), rv.data(), 1e-5f, dy.data(), dx.data(),
                                      dg.data(), db.data());
  g::batchnorm_backward_eval<float>(n, c, hw, X.data(), G.data(), RM.data(), RV.data(), 1e-5f, DY.data(), DX.data(),
                                    DG.data(), DB.data());
  CHECK_NEAR(dx, DX, tol);
  CHECK_NEAR(dg, DG, tol);
  CHECK_NEAR(db, DB, tol);
}

BOOST_AUTO_TEST_CASE(pooling) {
  for (hw1::Pool2dShape s : {hw1::Pool2dShape{2, 3, 15, 16, 3, 3, 2, 2, 1, 1, false},
                             hw1::Pool2dShape{2, 4, 8, 10, 2, 2, 2, 2, 0, 0, false}}) {
    const std::size_t xs = std::size_t(s.n) * s.c * s.h * s.w, ys = std::size_t(s.n) * s.c * s.out_h() * s.out_w();
    V x = rnd(xs, 1), dy = rnd(ys, 2), y(ys), dx(xs);
    std::vector<std::int64_t> am(ys);
    auto X = dev(x), DY = dev(dy);
    DeviceBuffer<float> Y(ys), DX(xs);
    DeviceBuffer<std::int64_t> AM(ys);
    cpu::maxpool2d_forward<float>(s, x.data(), y.data(), am.data());
    g::maxpool2d_forward<float>(s, X.data(), Y.data(), AM.data());
    BOOST_TEST(y == Y.to_vector(), boost::test_tools::per_element());
    BOOST_TEST(am == AM.to_vector(), boost::test_tools::per_element());
    cpu::maxpool2d_backward<float>(s, am.data(), dy.data(), dx.data());
    g::maxpool2d_backward<float>(s, AM.data(), DY.data(), DX.data());
    CHECK_NEAR(dx, DX, 1e-6);
  }
  const int n = 2, c = 6, hw = 49;
  V x = rnd(std::size_t(n) * c * hw, 3), y(n * c), dy = rnd(n * c, 4), dx(x.size());
  auto X = dev(x), DY = dev(dy);
  DeviceBuffer<float> Y(y.size()), DX(x.size());
  cpu::global_avgpool_forward<float>(n, c, hw, x.data(), y.data());
  g::global_avgpool_forward<float>(n, c, hw, X.data(), Y.data());
  CHECK_NEAR(y, Y, 1e-6);
  cpu::global_avgpool_backward<float>(n, c, hw, dy.data(), dx.data());
  g::global_avgpool_backward<float>(n, c, hw, DY.data(), DX.data());
  CHECK_NEAR(dx, DX, 1e-6);
}

BOOST_AUTO_TEST_CASE(linear) {
  const int n = 5, in = 37, out = 11;
  V x = rnd(n * in, 1), w = rnd(out * in, 2), b = rnd(out, 3), dy = rnd(n * out, 4), y(n * out), dx(n * in),
    dw = rnd(out * in, 5), db = rnd(out, 6);
  auto X = dev(x), W = dev(w), B = dev(b), DY = dev(dy), DW = dev(dw), DB = dev(db);
  DeviceBuffer<float> Y(y.size()), DX(dx.size());
  cpu::linear_forward<float>(n, in, out, x.data(), w.data(), b.data(), y.data());
  g::linear_forward<float>(n, in, out, X.data(), W.data(), B.data(), Y.data());
  CHECK_NEAR(y, Y, tol);
  cpu::linear_backward<float>(n, in, out, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data());
  g::linear_backward<float>(n, in, out, X.data(), W.data(), DY.data(), DX.data(), DW.data(), DB.data());
  CHECK_NEAR(dx, DX, tol);
  CHECK_NEAR(dw, DW, tol);
  CHECK_NEAR(db, DB, tol);
}

BOOST_AUTO_TEST_CASE(resize_and_crop) {
  for (auto [h, w, oh, ow] : {std::array<int, 4>{5, 7, 40, 56}, {1, 1, 9, 8}, {33, 30, 12, 17}}) {
    const int n = 2, c = 3;
    V x = rnd(std::size_t(n) * c * h * w, 1), y(std::size_t(n) * c * oh * ow), dy = rnd(y.size(), 2), dx(x.size());
    auto X = dev(x), DY = dev(dy);
    DeviceBuffer<float> Y(y.size()), DX(dx.size());
    cpu::bilinear_resize_forward<float>(n, c, h, w, oh, ow, x.data(), y.data());
    g::bilinear_resize_forward<float>(n, c, h, w, oh, ow, X.data(), Y.data());
    CHECK_NEAR(y, Y, 1e-6);
    cpu::bilinear_resize_backward<float>(n, c, h, w, oh, ow, dy.data(), dx.data());
    g::bilinear_resize_backward<float>(n, c, h, w, oh, ow, DY.data(), DX.data());
    CHECK_NEAR(dx, DX, 1e-6);
  }
  const int planes = 4, h = 20, w = 18, oy = 3, ox = 5, oh = 9, ow = 11;
  V x = rnd(planes * h * w, 3), y(planes * oh * ow), dy = rnd(y.size(), 4), dx(x.size());
  auto X = dev(x), DY = dev(dy);
  DeviceBuffer<float> Y(y.size()), DX(dx.size());
  cpu::crop2d_forward<float>(planes, h, w, oy, ox, oh, ow, x.data(), y.data());
  g::crop2d_forward<float>(planes, h, w, oy, ox, oh, ow, X.data(), Y.data());
  BOOST_TEST(y == Y.to_vector(), boost::test_tools::per_element());
  cpu::crop2d_backward<float>(planes, h, w, oy, ox, oh, ow, dy.data(), dx.data());
  g::crop2d_backward<float>(planes, h, w, oy, ox, oh, ow, DY.data(), DX.data());
  BOOST_TEST(dx == DX.to_vector(), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(cross_entropy) {
  const int n = 3, k = 5, hw = 29;
  V z = rnd(std::size_t(n) * k * hw, 1, -4, 4), wt = rnd(k, 2, 0.2, 2), dz(z.size());
  std::vector<std::int64_t> t(std::size_t(n) * hw);
  std::mt19937 r(3);
  for (auto& v : t) v = std::int64_t(r() % (k + 1)) - (r() % 7 == 0 ? 0 : 0), v = v == k ? 255 : v;
  auto Z = dev(z), W = dev(wt);
  DeviceBuffer<std::int64_t> T;
  T.upload(t.data(), t.size());
  DeviceBuffer<float> DZ(z.size());
  for (bool weighted : {false, true}) {
    const float lc = cpu::softmax_cross_entropy<float>(n, k, hw, z.data(), t.data(), weighted ? wt.data() : nullptr,
                                                       255, dz.data());
    const float lg = g::softmax_cross_entropy<float>(n, k, hw, Z.data(), T.data(), weighted ? W.data() : nullptr, 255,
                                                     DZ.data());
    BOOST_TEST(std::abs(lc - lg) < 1e-5 * std::abs(lc));
    CHECK_NEAR(dz, DZ, 1e-5);
  }
  t[7] = 9;  // neither a class nor ignore_index
  T.upload(t.data(), t.size());
  BOOST_CHECK_THROW(g::softmax_cross_entropy<float>(n, k, hw, Z.data(), T.data(), nullptr, 255, DZ.data()), hw1::Error);
}

BOOST_AUTO_TEST_CASE(elementwise_concat_dropout) {
  const std::size_t m = 1000;
  V a = rnd(m, 1), b = rnd(m, 2), y(m), dx(m);
  auto A = dev(a), Bv = dev(b);
  DeviceBuffer<float> Y(m), DX(m);
  cpu::relu_forward<float>(m, a.data(), y.data());
  g::relu_forward<float>(m, A.data(), Y.data());
  BOOST_TEST(y == Y.to_vector(), boost::test_tools::per_element());
  cpu::relu_backward<float>(m, y.data(), b.data(), dx.data());
  g::relu_backward<float>(m, Y.data(), Bv.data(), DX.data());
  BOOST_TEST(dx == DX.to_vector(), boost::test_tools::per_element());
  cpu::add_forward<float>(m, a.data(), b.data(), y.data());
  g::add_forward<float>(m, A.data(), Bv.data(), Y.data());
  BOOST_TEST(y == Y.to_vector(), boost::test_tools::per_element());
  cpu::mul_forward<float>(m, a.data(), b.data(), y.data());
  g::mul_forward<float>(m, A.data(), Bv.data(), Y.data());
  BOOST_TEST(y == Y.to_vector(), boost::test_tools::per_element());

  const int n = 2, hw = 10;
  const std::vector<int> ch{3, 5, 2};
  V p0 = rnd(n * 3 * hw, 4), p1 = rnd(n * 5 * hw, 5), p2 = rnd(n * 2 * hw, 6), cat(n * 10 * hw);
  auto P0 = dev(p0), P1 = dev(p1), P2 = dev(p2);
  DeviceBuffer<float> CAT(cat.size()), Q0(p0.size()), Q1(p1.size()), Q2(p2.size());
  cpu::concat_channels_forward<float>(n, hw, {p0.data(), p1.data(), p2.data()}, ch, cat.data());
  g::concat_channels_forward<float>(n, hw, {P0.data(), P1.data(), P2.data()}, ch, CAT.data());
  BOOST_TEST(cat == CAT.to_vector(), boost::test_tools::per_element());
  g::concat_channels_backward<float>(n, hw, CAT.data(), {Q0.data(), Q1.data(), Q2.data()}, ch);
  BOOST_TEST(p0 == Q0.to_vector(), boost::test_tools::per_element());
  BOOST_TEST(p1 == Q1.to_vector(), boost::test_tools::per_element());
  BOOST_TEST(p2 == Q2.to_vector(), boost::test_tools::per_element());

  V mask(m), mask2(6 * 50);
  cpu::dropout_mask<float>(m, 0.3f, 42, mask.data());
  g::dropout_mask<float>(m, 0.3f, 42, Y.data());
  BOOST_TEST(mask == Y.to_vector(), boost::test_tools::per_element());
  DeviceBuffer<float> M2(mask2.size());
  cpu::dropout2d_mask<float>(2, 3, 50, 0.5f, 7, mask2.data());
  g::dropout2d_mask<float>(2, 3, 50, 0.5f, 7, M2.data());
  BOOST_TEST(mask2 == M2.to_vector(), boost::test_tools::per_element());
}
