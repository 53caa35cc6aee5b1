#define BOOST_TEST_MODULE winograd_kernel
#include <boost/test/unit_test.hpp>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "common/gradcheck.hpp"
#include "common/precondition.hpp"
#include "hw1/backend/cpu/conv2d.hpp"
#include "hw1/backend/cpu/winograd.hpp"
#include "hw1/backend/cpu/winograd4.hpp"

using hw1::cpu::Conv2dShape;
using hw1::cpu::Index;
namespace wg = hw1::cpu::winograd;

namespace {

// Winograd exists only in AVX-512 builds and can be turned off (HW1_WINOGRAD=0, HW1_PGEMM=0): the tests then
// report themselves skipped rather than passing without running.
const hw1::test::RunsWhen<&wg::enabled> Available{"Winograd is not in this build (no AVX-512F) or is off (HW1_WINOGRAD=0 / HW1_PGEMM=0)"};
const hw1::test::RunsWhen<&wg::enabled4> Available4{"Winograd F(4x4) is not in this build (no AVX-512F) or is off (HW1_WINOGRAD4=0 / HW1_WINOGRAD=0 / HW1_PGEMM=0)"};

std::string describe(const Conv2dShape& s) {
  std::ostringstream o;
  o << "x[" << s.n << "," << s.cin << "," << s.h << "," << s.w << "] cout " << s.cout << " pad " << s.pad_h << "x"
    << s.pad_w << " dil " << s.dil_h << "x" << s.dil_w;
  return o.str();
}

Conv2dShape conv3x3(int n, int cin, int h, int w, int cout, int ph, int pw, int dh, int dw) {
  return {n, cin, h, w, cout, 3, 3, 1, 1, ph, pw, dh, dw};
}

// Partial tiles at the right and bottom edges (odd outputs), channel counts that are not multiples of 16 or of the
// GEMM's 14 rows, no padding, padding past the dilation, dilations 2, 3, 12 and asymmetric ones, more than 256
// input channels (two K blocks), several tile blocks, many 2x2 images per block, and a 1x1 output.
std::vector<Conv2dShape> shapes() {
  return {
      conv3x3(1, 16, 8, 8, 16, 1, 1, 1, 1),    conv3x3(2, 17, 7, 9, 13, 1, 1, 1, 1),
      conv3x3(3, 20, 5, 6, 18, 0, 0, 1, 1),    conv3x3(1, 16, 6, 6, 16, 2, 2, 1, 1),
      conv3x3(1, 24, 12, 11, 20, 2, 2, 2, 2),  conv3x3(2, 16, 13, 10, 15, 3, 3, 3, 3),
      conv3x3(1, 16, 9, 20, 16, 0, 4, 1, 4),   conv3x3(1, 16, 40, 37, 17, 12, 12, 12, 12),
      conv3x3(1, 300, 10, 10, 30, 1, 1, 1, 1), conv3x3(5, 32, 16, 16, 40, 1, 1, 1, 1),
      conv3x3(64, 32, 2, 2, 16, 1, 1, 1, 1),   conv3x3(3, 16, 1, 1, 16, 1, 1, 1, 1),
      // One block per thread would leave whole panels between the threads (13 panels; 5 with two K blocks): the
      // team shares one block, each thread its input groups and output channels (100 channels: at 3 threads too).
      conv3x3(8, 16, 14, 14, 64, 1, 1, 1, 1),  conv3x3(8, 16, 14, 14, 100, 1, 1, 1, 1),
      conv3x3(3, 300, 14, 14, 64, 1, 1, 1, 1),
  };
}

// The definition in double.
std::vector<double> reference(const Conv2dShape& s, const std::vector<double>& x, const std::vector<double>& w) {
  const int oh = s.out_h(), ow = s.out_w();
  std::vector<double> y(std::size_t(s.n) * s.cout * oh * ow, 0.0);
  for (int n = 0; n < s.n; ++n)
    for (int o = 0; o < s.cout; ++o)
      for (int oy = 0; oy < oh; ++oy)
        for (int ox = 0; ox < ow; ++ox) {
          double acc = 0;
          for (int c = 0; c < s.cin; ++c)
            for (int i = 0; i < 3; ++i)
              for (int j = 0; j < 3; ++j) {
                const int iy = oy - s.pad_h + i * s.dil_h, ix = ox - s.pad_w + j * s.dil_w;
                if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
                acc += x[((std::size_t(n) * s.cin + c) * s.h + iy) * s.w + ix] * w[(std::size_t(o) * s.cin + c) * 9 + i * 3 + j];
              }
          y[((std::size_t(n) * s.cout + o) * oh + oy) * ow + ox] = acc;
        }
  return y;
}

// dL/dx of L = sum(y * g), in double.
std::vector<double> reference_dx(const Conv2dShape& s, const std::vector<double>& w, const std::vector<double>& g) {
  const int oh = s.out_h(), ow = s.out_w();
  std::vector<double> dx(std::size_t(s.n) * s.cin * s.h * s.w, 0.0);
  for (int n = 0; n < s.n; ++n)
    for (int o = 0; o < s.cout; ++o)
      for (int oy = 0; oy < oh; ++oy)
        for (int ox = 0; ox < ow; ++ox) {
          const double gv = g[((std::size_t(n) * s.cout + o) * oh + oy) * ow + ox];
          for (int c = 0; c < s.cin; ++c)
            for (int i = 0; i < 3; ++i)
              for (int j = 0; j < 3; ++j) {
                const int iy = oy - s.pad_h + i * s.dil_h, ix = ox - s.pad_w + j * s.dil_w;
                if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
                dx[((std::size_t(n) * s.cin + c) * s.h + iy) * s.w + ix] += gv * w[(std::size_t(o) * s.cin + c) * 9 + i * 3 + j];
              }
        }
  return dx;
}

// dL/dw of L = sum(y * g), in double.
std::vector<double> reference_dw(const Conv2dShape& s, const std::vector<double>& x, const std::vector<double>& g) {
  const int oh = s.out_h(), ow = s.out_w();
  std::vector<double> dw(std::size_t(s.cout) * s.cin * 9, 0.0);
  for (int n = 0; n < s.n; ++n)
    for (int o = 0; o < s.cout; ++o)
      for (int c = 0; c < s.cin; ++c)
        for (int i = 0; i < 3; ++i)
          for (int j = 0; j < 3; ++j) {
            double acc = 0;
            for (int oy = 0; oy < oh; ++oy)
              for (int ox = 0; ox < ow; ++ox) {
                const int iy = oy - s.pad_h + i * s.dil_h, ix = ox - s.pad_w + j * s.dil_w;
                if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
                acc += g[((std::size_t(n) * s.cout + o) * oh + oy) * ow + ox] *
                       x[((std::size_t(n) * s.cin + c) * s.h + iy) * s.w + ix];
              }
            dw[(std::size_t(o) * s.cin + c) * 9 + i * 3 + j] += acc;
          }
  return dw;
}

std::vector<float> to_float(const std::vector<double>& v) { return {v.begin(), v.end()}; }

// max |got - want| over max |want|; NaN anywhere (an output never written) fails.
double rel_error(const std::vector<float>& got, const std::vector<double>& want) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    num = std::max(num, std::abs(double(got[i]) - want[i]));
    den = std::max(den, std::abs(want[i]));
  }
  return num / den;
}

struct Threads {
  int keep = omp_get_max_threads();
  explicit Threads(int t) { omp_set_num_threads(t); }
  ~Threads() { omp_set_num_threads(keep); }
};

}  // namespace

BOOST_AUTO_TEST_CASE(forward_matches_double_reference, *boost::unit_test::label("needs_avx512") * boost::unit_test::precondition(Available)) {
  std::uint64_t seed = 1;
  for (const auto& s : shapes()) {
    BOOST_TEST_CONTEXT(describe(s)) {
      BOOST_REQUIRE(wg::supports(s));
      const auto x = hw1::test::random_vector(std::size_t(s.n) * s.cin * s.h * s.w, seed += 10);
      const auto w = hw1::test::random_vector(std::size_t(s.cout) * s.cin * 9, seed + 1);
      const auto want = reference(s, x, w);
      const auto xf = to_float(x), wf = to_float(w);
      for (int t : {1, 2, 3}) {
        const Threads threads(t);
        std::vector<float> y(want.size(), std::nanf(""));
        wg::forward(s, xf.data(), wf.data(), nullptr, nullptr, false, y.data());
        BOOST_TEST(rel_error(y, want) < 1e-5, "threads " << t);
      }
    }
  }
}

// The epilogue: v -> max(0, v * scale[o] + shift[o]) (batch norm in inference + ReLU), shift alone, and with a
// residual added before the ReLU. Dilation 1 writes through output runs (up to 4 stretches of a tile row per 16
// tiles: 7x9 outputs, 5 tiles a row, runs of 5, 5, 5 and 1; 15x40, rows of 20 tiles); 2x2 planes (a run per tile)
// and dilation 2 scatter instead.
BOOST_AUTO_TEST_CASE(epilogue_scale_shift_relu, *boost::unit_test::label("needs_avx512") * boost::unit_test::precondition(Available)) {
  for (const auto& s : {conv3x3(2, 17, 7, 9, 13, 1, 1, 1, 1), conv3x3(1, 24, 12, 11, 20, 2, 2, 2, 2),
                        conv3x3(3, 16, 15, 40, 17, 1, 1, 1, 1), conv3x3(40, 16, 2, 2, 16, 1, 1, 1, 1),
                        conv3x3(8, 16, 14, 14, 70, 1, 1, 1, 1)}) {
    BOOST_TEST_CONTEXT(describe(s)) {
      const auto x = hw1::test::random_vector(std::size_t(s.n) * s.cin * s.h * s.w, 5);
      const auto w = hw1::test::random_vector(std::size_t(s.cout) * s.cin * 9, 6);
      const auto scale = hw1::test::random_vector(std::size_t(s.cout), 7, 0.5, 2.0);
      const auto shift = hw1::test::random_vector(std::size_t(s.cout), 8);
      auto want = reference(s, x, w), want_shift = want, want_res = want;
      const auto res = hw1::test::random_vector(want.size(), 9);
      const std::size_t plane = std::size_t(s.out_h()) * s.out_w();
      bool clipped = false;
      for (std::size_t i = 0; i < want.size(); ++i) {
        const std::size_t o = i / plane % std::size_t(s.cout);
        want_shift[i] += shift[o];
        want_res[i] = std::max(0.0, want[i] * scale[o] + shift[o] + double(float(res[i])));
        want[i] = std::max(0.0, want[i] * scale[o] + shift[o]);
        clipped |= want[i] == 0.0;
      }
      BOOST_TEST(clipped);  // the ReLU matters in this data
      const auto xf = to_float(x), wf = to_float(w), sc = to_float(scale), sh = to_float(shift), rf = to_float(res);
      std::vector<float> y(want.size(), std::nanf(""));
      wg::forward(s, xf.data(), wf.data(), sc.data(), sh.data(), true, y.data());
      BOOST_TEST(rel_error(y, want) < 1e-5);
      wg::forward(s, xf.data(), wf.data(), nullptr, sh.data(), false, y.data());
      BOOST_TEST(rel_error(y, want_shift) < 1e-5);
      std::fill(y.begin(), y.end(), std::nanf(""));
      wg::forward(s, xf.data(), wf.data(), sc.data(), sh.data(), true, y.data(), rf.data());
      BOOST_TEST(rel_error(y, want_res) < 1e-5);
    }
  }
}

// conv2d_forward and conv2d_backward take the Winograd path where worthwhile (dX as a convolution of dY with the
// flipped, transposed kernel; dW by weight_grad): all match the definition, with or without dX requested.
BOOST_AUTO_TEST_CASE(conv2d_forward_and_input_gradient_through_winograd, *boost::unit_test::label("needs_avx512") * boost::unit_test::precondition(Available)) {
  std::uint64_t seed = 300;
  // (batches large enough for the 256 tiles worthwhile() asks for; the 9x9 and 4x4 planes take the direct input
  // gradient, as conv2d_backward does below 10x10)
  for (const auto& s : {conv3x3(12, 32, 9, 9, 24, 1, 1, 1, 1), conv3x3(11, 20, 12, 12, 16, 0, 0, 1, 1),
                        conv3x3(8, 16, 10, 10, 16, 2, 2, 1, 1), conv3x3(5, 16, 14, 13, 18, 2, 2, 2, 2),
                        conv3x3(64, 64, 4, 4, 40, 1, 1, 1, 1), conv3x3(4, 16, 32, 32, 16, 1, 1, 1, 1)}) {
    BOOST_TEST_CONTEXT(describe(s)) {
      BOOST_TEST(wg::worthwhile(s));
      const auto x = hw1::test::random_vector(std::size_t(s.n) * s.cin * s.h * s.w, seed += 10);
      const auto w = hw1::test::random_vector(std::size_t(s.cout) * s.cin * 9, seed + 1);
      const auto g = hw1::test::random_vector(std::size_t(s.n) * s.cout * s.out_h() * s.out_w(), seed + 2);
      const auto xf = to_float(x), wf = to_float(w), gf = to_float(g);
      std::vector<float> y(g.size(), std::nanf("")), dx(x.size(), std::nanf("")), dw(w.size(), 0.f), dw_alone(w.size(), 0.f);
      hw1::cpu::conv2d_forward<float>(s, xf.data(), wf.data(), nullptr, y.data());
      BOOST_TEST(rel_error(y, reference(s, x, w)) < 1e-5);
      hw1::cpu::conv2d_backward<float>(s, xf.data(), wf.data(), gf.data(), dx.data(), dw.data(), nullptr);
      BOOST_TEST(rel_error(dx, reference_dx(s, w, g)) < 1e-5);
      hw1::cpu::conv2d_backward<float>(s, xf.data(), wf.data(), gf.data(), nullptr, dw_alone.data(), nullptr);
      BOOST_TEST(dw == dw_alone, boost::test_tools::per_element());
      BOOST_TEST(rel_error(dw, reference_dw(s, x, g)) < 2e-5);
    }
  }
}

// Where the path is not taken: other kernels and strides, few channels, and outputs whose tiles would mostly be
// thrown away.
BOOST_AUTO_TEST_CASE(when_the_path_applies) {
  BOOST_TEST(!wg::supports(Conv2dShape{1, 64, 8, 8, 64, 5, 5, 1, 1, 2, 2}));
  BOOST_TEST(!wg::supports(Conv2dShape{1, 64, 8, 8, 64, 3, 3, 2, 2, 1, 1}));
  BOOST_TEST(!wg::worthwhile(conv3x3(1, 3, 64, 64, 64, 1, 1, 1, 1)));  // 3 input channels
  BOOST_TEST(!wg::worthwhile(conv3x3(64, 512, 1, 1, 512, 1, 1, 1, 1)));  // 1x1 output: 1 of 4 tile outputs used
  BOOST_TEST(!wg::worthwhile(conv3x3(32, 256, 2, 2, 256, 1, 1, 1, 1)));  // 32 tiles: the weight transform dominates
  if (wg::enabled()) BOOST_TEST(wg::worthwhile(conv3x3(64, 256, 2, 2, 256, 1, 1, 1, 1)));
  BOOST_TEST(wg::utilization(conv3x3(1, 64, 3, 3, 64, 1, 1, 1, 1)) == 9.0 / 16.0);
  BOOST_TEST(wg::utilization(conv3x3(1, 64, 64, 64, 64, 36, 36, 36, 36)) == 4096.0 / (4.0 * 36 * 36));
  BOOST_TEST(wg::tile_count(64, 12) == 36);
  BOOST_TEST(wg::tile_origin(12, 12) == 24);
  if (wg::enabled()) BOOST_TEST(wg::worthwhile(conv3x3(1, 256, 64, 64, 256, 2, 2, 2, 2)));
  if (wg::enabled()) BOOST_TEST(wg::worthwhile_weight_grad(conv3x3(8, 64, 56, 56, 64, 1, 1, 1, 1)) == (omp_get_max_threads() <= 32));
  BOOST_TEST(!wg::worthwhile_weight_grad(conv3x3(8, 512, 7, 7, 512, 1, 1, 1, 1)));
}

// The weight gradient (Winograd F(3x3, 2x2) form) against the double-precision definition, accumulating into dw,
// at 1-3 threads, on the forward shapes (padding, dilation, partial tiles, many blocks, two channel blocks).
BOOST_AUTO_TEST_CASE(weight_gradient_matches_double_reference, *boost::unit_test::label("needs_avx512") * boost::unit_test::precondition(Available)) {
  std::uint64_t seed = 900;
  for (const auto& s : shapes()) {
    BOOST_TEST_CONTEXT(describe(s)) {
      const auto x = hw1::test::random_vector(std::size_t(s.n) * s.cin * s.h * s.w, seed += 10);
      const auto g = hw1::test::random_vector(std::size_t(s.n) * s.cout * s.out_h() * s.out_w(), seed + 1);
      const auto w0 = hw1::test::random_vector(std::size_t(s.cout) * s.cin * 9, seed + 2);
      std::vector<double> want = reference_dw(s, x, g);
      for (std::size_t i = 0; i < want.size(); ++i) want[i] += w0[i];
      const auto xf = to_float(x), gf = to_float(g);
      for (int t : {1, 2, 3}) {
        const Threads threads(t);
        auto dw = to_float(w0);
        wg::weight_grad(s, xf.data(), gf.data(), dw.data());
        BOOST_TEST(rel_error(dw, want) < 2e-5, "threads " << t);
      }
    }
  }
}

// ---- Winograd F(4x4, 3x3) (winograd4.hpp) ----

// F(4x4)'s own cases on top of shapes(): planes that are and are not multiples of 4 (14x14: 2 of 4 outputs wasted
// in the last tile of a row), 16-tile rows at dilation 2 and 4 (DeepLab's 64x64 stages, smaller), dilation 3 (16 not
// a multiple of it), 4x4 planes (a group spans 16 images), and more tiles than one block holds.
std::vector<Conv2dShape> shapes4() {
  auto v = shapes();
  for (const auto& s : {conv3x3(3, 40, 14, 14, 33, 1, 1, 1, 1), conv3x3(2, 24, 28, 28, 20, 1, 1, 1, 1),
                        conv3x3(1, 20, 32, 32, 18, 2, 2, 2, 2), conv3x3(1, 18, 32, 32, 16, 4, 4, 4, 4),
                        conv3x3(2, 16, 19, 23, 17, 3, 3, 3, 3), conv3x3(20, 16, 4, 4, 16, 1, 1, 1, 1),
                        conv3x3(3, 16, 40, 36, 16, 1, 1, 1, 1), conv3x3(1, 17, 30, 33, 16, 1, 2, 1, 2)})
    v.push_back(s);
  return v;
}

// max |error| / max |y| measured over shapes4() at 1-3 threads: up to 1.2e-5 (3 x 300 channels at 14x14); the bound leaves
// room for other data while any wrong index or transform entry gives errors of order 1.
constexpr double kF4Bound = 5e-5;

BOOST_AUTO_TEST_CASE(f4_forward_matches_double_reference, *boost::unit_test::label("needs_avx512") * boost::unit_test::precondition(Available4)) {
  std::uint64_t seed = 2000;
  double worst = 0;
  for (const auto& s : shapes4()) {
    BOOST_TEST_CONTEXT(describe(s)) {
      BOOST_REQUIRE(wg::supports(s));
      const auto x = hw1::test::random_vector(std::size_t(s.n) * s.cin * s.h * s.w, seed += 10);
      const auto w = hw1::test::random_vector(std::size_t(s.cout) * s.cin * 9, seed + 1);
      const auto want = reference(s, x, w);
      const auto xf = to_float(x), wf = to_float(w);
      for (int t : {1, 2, 3}) {
        const Threads threads(t);
        std::vector<float> y(want.size(), std::nanf(""));
        wg::forward4(s, xf.data(), wf.data(), nullptr, nullptr, false, y.data());
        const double e = rel_error(y, want);
        if (e > worst) BOOST_TEST_MESSAGE(describe(s) << ": " << e);
        worst = std::max(worst, e);
        BOOST_TEST(e < kF4Bound, "threads " << t);
      }
    }
  }
  BOOST_TEST_MESSAGE("F(4x4) forward: largest relative error " << worst);
}

// The epilogue (scale, shift, ReLU, residual) as in epilogue_scale_shift_relu, and the flipped, transposed kernel
// (conv2d_backward's input gradient) against the double-precision dX.
BOOST_AUTO_TEST_CASE(f4_epilogue_and_flipped_kernel, *boost::unit_test::label("needs_avx512") * boost::unit_test::precondition(Available4)) {
  for (const auto& s : {conv3x3(2, 17, 7, 9, 13, 1, 1, 1, 1), conv3x3(1, 24, 12, 11, 20, 2, 2, 2, 2),
                        conv3x3(3, 16, 15, 40, 17, 1, 1, 1, 1), conv3x3(20, 16, 4, 4, 16, 1, 1, 1, 1),
                        conv3x3(8, 16, 14, 14, 70, 1, 1, 1, 1), conv3x3(1, 16, 32, 32, 20, 4, 4, 4, 4)}) {
    BOOST_TEST_CONTEXT(describe(s)) {
      const auto x = hw1::test::random_vector(std::size_t(s.n) * s.cin * s.h * s.w, 15);
      const auto w = hw1::test::random_vector(std::size_t(s.cout) * s.cin * 9, 16);
      const auto scale = hw1::test::random_vector(std::size_t(s.cout), 17, 0.5, 2.0);
      const auto shift = hw1::test::random_vector(std::size_t(s.cout), 18);
      auto want = reference(s, x, w), want_shift = want, want_res = want;
      const auto res = hw1::test::random_vector(want.size(), 19);
      const std::size_t plane = std::size_t(s.out_h()) * s.out_w();
      for (std::size_t i = 0; i < want.size(); ++i) {
        const std::size_t o = i / plane % std::size_t(s.cout);
        want_shift[i] += shift[o];
        want_res[i] = std::max(0.0, want[i] * scale[o] + shift[o] + double(float(res[i])));
        want[i] = std::max(0.0, want[i] * scale[o] + shift[o]);
      }
      const auto xf = to_float(x), wf = to_float(w), sc = to_float(scale), sh = to_float(shift), rf = to_float(res);
      std::vector<float> y(want.size(), std::nanf(""));
      wg::forward4(s, xf.data(), wf.data(), sc.data(), sh.data(), true, y.data());
      BOOST_TEST(rel_error(y, want) < kF4Bound);
      wg::forward4(s, xf.data(), wf.data(), nullptr, sh.data(), false, y.data());
      BOOST_TEST(rel_error(y, want_shift) < kF4Bound);
      std::fill(y.begin(), y.end(), std::nanf(""));
      wg::forward4(s, xf.data(), wf.data(), sc.data(), sh.data(), true, y.data(), rf.data());
      BOOST_TEST(rel_error(y, want_res) < kF4Bound);
      // dX = dY through the flipped, transposed kernel (as conv2d_backward calls it), padding 2d - p.
      const Conv2dShape t{s.n, s.cout, s.out_h(), s.out_w(), s.cin, 3, 3, 1, 1, 2 * s.dil_h - s.pad_h,
                          2 * s.dil_w - s.pad_w, s.dil_h, s.dil_w};
      if (t.pad_h >= 0 && t.pad_w >= 0 && t.out_h() == s.h && t.out_w() == s.w) {
        const auto g = hw1::test::random_vector(want.size(), 20);
        const auto gf = to_float(g);
        std::vector<float> dx(x.size(), std::nanf(""));
        wg::forward4(t, gf.data(), wf.data(), nullptr, nullptr, false, dx.data(), nullptr, true);
        BOOST_TEST(rel_error(dx, reference_dx(s, w, g)) < kF4Bound);
      }
    }
  }
}

// conv2d_forward takes F(4x4) where worthwhile4() (layer-like shapes with 64+ channels) outside training, and
// F(2x2) in the forward of a pass that will be back-propagated and for dX (winograd4.hpp: F(4x4) in training only
// with HW1_WINOGRAD4=train); each matches the definition, and the trace counters show which one ran.
BOOST_AUTO_TEST_CASE(conv2d_through_f4, *boost::unit_test::label("needs_avx512") * boost::unit_test::precondition(Available4)) {
  // worthwhile4 asks 64+ tiles per thread: 2 threads, so that these shapes take F(4x4) on any machine.
  const Threads threads(2);
  namespace cpu = hw1::cpu;
  const bool f4_in_training = wg::in_training_requested();
  std::uint64_t seed = 3000;
  for (auto s : {conv3x3(8, 128, 14, 14, 130, 1, 1, 1, 1), conv3x3(2, 130, 32, 32, 128, 2, 2, 2, 2)}) {
    BOOST_TEST_CONTEXT(describe(s)) {
      const Conv2dShape t{s.n, s.cout, s.out_h(), s.out_w(), s.cin, 3, 3, 1, 1, 2 * s.dil_h - s.pad_h,
                          2 * s.dil_w - s.pad_w, s.dil_h, s.dil_w};
      BOOST_TEST(wg::worthwhile4(s));
      BOOST_TEST(wg::worthwhile4(t));
      const auto x = hw1::test::random_vector(std::size_t(s.n) * s.cin * s.h * s.w, seed += 10);
      const auto w = hw1::test::random_vector(std::size_t(s.cout) * s.cin * 9, seed + 1);
      const auto g = hw1::test::random_vector(std::size_t(s.n) * s.cout * s.out_h() * s.out_w(), seed + 2);
      const auto xf = to_float(x), wf = to_float(w), gf = to_float(g);
      const auto want = reference(s, x, w);
      for (const bool training : {false, true}) {
        s.backward_follows = training;
        cpu::reset_algo_counts();
        std::vector<float> y(g.size(), std::nanf(""));
        cpu::conv2d_forward<float>(s, xf.data(), wf.data(), nullptr, y.data());
        const bool f4 = !training || f4_in_training;
        BOOST_TEST(cpu::algo_count(cpu::Algo::fwd_f4) == (f4 ? 1 : 0), "training " << training);
        BOOST_TEST(cpu::algo_count(cpu::Algo::fwd_f2) == (f4 ? 0 : 1), "training " << training);
        BOOST_TEST(rel_error(y, want) < (f4 ? kF4Bound : 1e-5), "training " << training);
      }
      cpu::reset_algo_counts();
      std::vector<float> dx(x.size(), std::nanf(""));
      cpu::conv2d_backward<float>(s, xf.data(), wf.data(), gf.data(), dx.data(), nullptr, nullptr);
      BOOST_TEST(cpu::algo_count(cpu::Algo::dx_f4) == (f4_in_training ? 1 : 0));
      BOOST_TEST(cpu::algo_count(cpu::Algo::dx_f2) == (f4_in_training ? 0 : 1));
      BOOST_TEST(rel_error(dx, reference_dx(s, w, g)) < (f4_in_training ? kF4Bound : 1e-5));
    }
  }
}

// Where F(4x4) is taken: 64+ channels, at least 3/4 of the computed outputs used, 64+ tiles per thread.
BOOST_AUTO_TEST_CASE(when_f4_applies) {
  BOOST_TEST(wg::tile_count4(14, 1) == 4);
  BOOST_TEST(wg::tile_count4(64, 2) == 16);
  BOOST_TEST(wg::tile_count4(64, 12) == 24);
  BOOST_TEST(wg::tile_origin4(5, 2) == 17);  // tiles 0, 1 start at 0, 1; 2, 3 at 8, 9; 4, 5 at 16, 17
  BOOST_TEST(wg::utilization4(conv3x3(1, 64, 14, 14, 64, 1, 1, 1, 1)) == 196.0 / 256.0);
  BOOST_TEST(!wg::worthwhile4(conv3x3(8, 32, 56, 56, 64, 1, 1, 1, 1)));      // 32 channels: the transforms weigh
  BOOST_TEST(!wg::worthwhile4(conv3x3(8, 512, 7, 7, 512, 1, 1, 1, 1)));      // 32 tiles
  BOOST_TEST(!wg::worthwhile4(conv3x3(1, 2048, 64, 64, 256, 12, 12, 12, 12)));  // 44% of the outputs used
  if (wg::enabled4() && omp_get_max_threads() <= 2) {
    BOOST_TEST(wg::worthwhile4(conv3x3(8, 256, 14, 14, 256, 1, 1, 1, 1)));
    BOOST_TEST(wg::worthwhile4(conv3x3(8, 64, 56, 56, 64, 1, 1, 1, 1)));
    BOOST_TEST(wg::worthwhile4(conv3x3(1, 256, 64, 64, 256, 2, 2, 2, 2)));
  }
}
