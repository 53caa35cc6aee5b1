#define BOOST_TEST_MODULE conv_transpose2d_kernel
#include <boost/test/unit_test.hpp>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "common/gradcheck.hpp"
#include "hw1/backend/cpu/conv_transpose2d.hpp"

using hw1::cpu::ConvTranspose2dShape;
using namespace hw1::test;

namespace {

std::string describe(const ConvTranspose2dShape& s) {
  std::ostringstream o;
  o << "x[" << s.n << "," << s.cin << "," << s.h << "," << s.w << "] cout " << s.cout << " k " << s.kh << "x" << s.kw
    << " stride " << s.stride_h << "x" << s.stride_w << " pad " << s.pad_h << "x" << s.pad_w << " out_pad "
    << s.out_pad_h << "x" << s.out_pad_w << " dil " << s.dil_h << "x" << s.dil_w;
  return o.str();
}

std::vector<ConvTranspose2dShape> geometries() {
  return {
      {1, 3, 5, 4, 2, 3, 3},                                // stride 1, no padding
      {3, 2, 4, 5, 3, 3, 3, 2, 2, 1, 1},                    // stride 2, padding 1, batch 3
      {1, 2, 3, 4, 3, 4, 4, 2, 2, 1, 1, 1, 1},              // stride 2, output padding 1
      {2, 3, 3, 3, 2, 3, 3, 4, 4, 0, 0, 3, 3},              // stride 4 (gaps between windows), output padding
      {1, 2, 4, 3, 2, 3, 3, 1, 1, 2, 2, 0, 0, 2, 2},        // dilation 2
      {2, 3, 4, 4, 2, 3, 2, 3, 2, 1, 0, 2, 1, 2, 3},        // asymmetric kernel, stride, padding, dilation
      {1, 2, 3, 3, 2, 3, 3, 1, 1, 0, 0, 1, 1, 2, 2},        // output padding >= stride but < dilation
      {1, 3, 3, 3, 3, 8, 8, 4, 4},                          // a mini FCN upscore: kernel 8, stride 4
      {3, 4, 5, 6, 3, 1, 1},                                // 1x1 direct path
      {1, 2, 30, 30, 64, 4, 4, 2, 2, 1, 1},                 // several blocks of input positions
      {1, 3, 20, 30, 1100, 1, 1},                           // several blocks on the direct 1x1 path
  };
}
constexpr int kMultiBlock = 2;  // the last geometries span several blocks

// The definition: every input pixel scatters its kernel-weighted copy into the output.
std::vector<double> reference(const ConvTranspose2dShape& s, const std::vector<double>& x,
                              const std::vector<double>& w, const double* b) {
  const int oh = s.out_h(), ow = s.out_w();
  std::vector<double> y(std::size_t(s.n) * s.cout * oh * ow, 0.0);
  for (int n = 0; n < s.n; ++n)
    for (int co = 0; co < s.cout; ++co)
      for (int i = 0; i < oh * ow; ++i) y[(std::size_t(n) * s.cout + co) * oh * ow + i] = b ? b[co] : 0.0;
  for (int n = 0; n < s.n; ++n)
    for (int ci = 0; ci < s.cin; ++ci)
      for (int iy = 0; iy < s.h; ++iy)
        for (int ix = 0; ix < s.w; ++ix)
          for (int co = 0; co < s.cout; ++co)
            for (int ki = 0; ki < s.kh; ++ki)
              for (int kj = 0; kj < s.kw; ++kj) {
                const int oy = iy * s.stride_h - s.pad_h + ki * s.dil_h, ox = ix * s.stride_w - s.pad_w + kj * s.dil_w;
                if (oy < 0 || oy >= oh || ox < 0 || ox >= ow) continue;
                y[((std::size_t(n) * s.cout + co) * oh + oy) * ow + ox] +=
                    x[((std::size_t(n) * s.cin + ci) * s.h + iy) * s.w + ix] *
                    w[((std::size_t(ci) * s.cout + co) * s.kh + ki) * s.kw + kj];
              }
  return y;
}

struct Problem {
  ConvTranspose2dShape s;
  std::vector<double> x, w, b, g;  // g: the upstream gradient dL/dy of loss = sum(y * g)
  explicit Problem(const ConvTranspose2dShape& sh, std::uint64_t seed) : s(sh) {
    x = random_vector(std::size_t(s.n) * s.cin * s.h * s.w, seed);
    w = random_vector(std::size_t(s.cin) * s.cout * s.kh * s.kw, seed + 1);
    b = random_vector(std::size_t(s.cout), seed + 2);
    g = random_vector(std::size_t(s.n) * s.cout * s.out_h() * s.out_w(), seed + 3);
  }
  std::vector<double> forward(bool bias = true) const {
    std::vector<double> y(g.size(), std::nan(""));
    hw1::cpu::conv_transpose2d_forward(s, x.data(), w.data(), bias ? b.data() : nullptr, y.data());
    return y;
  }
  double loss() const { return dot(g, forward().data()); }
  struct Grads {
    std::vector<double> dx, dw, db;
  };
  Grads backward() const {
    Grads r{std::vector<double>(x.size(), std::nan("")), std::vector<double>(w.size(), 0.0),
            std::vector<double>(b.size(), 0.0)};
    hw1::cpu::conv_transpose2d_backward(s, x.data(), w.data(), g.data(), r.dx.data(), r.dw.data(), r.db.data());
    return r;
  }
};

struct OneThread {
  int keep = omp_get_max_threads();
  OneThread() { omp_set_num_threads(1); }
  ~OneThread() { omp_set_num_threads(keep); }
};

double max_rel_diff(const std::vector<double>& a, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    num = std::max(num, std::abs(a[i] - ref[i]));
    den = std::max(den, std::abs(ref[i]));
  }
  return num / den;
}

}  // namespace

BOOST_AUTO_TEST_CASE(forward_matches_direct_scatter) {
  std::uint64_t seed = 300;
  for (const auto& s : geometries()) {
    BOOST_TEST_CONTEXT(describe(s)) {
      const Problem p(s, seed += 10);
      BOOST_TEST(max_rel_diff(p.forward(true), reference(s, p.x, p.w, p.b.data())) < 1e-12);
      BOOST_TEST(max_rel_diff(p.forward(false), reference(s, p.x, p.w, nullptr)) < 1e-12);
    }
  }
}

// FCN32s' upscore for a 512x512 image and 7 classes: kernel 64, stride 32, 16x16 -> 544x544.
BOOST_AUTO_TEST_CASE(fcn_upscore_geometry) {
  const ConvTranspose2dShape s{1, 7, 16, 16, 7, 64, 64, 32, 32};
  BOOST_TEST(s.out_h() == 544);
  const Problem p(s, 31);
  BOOST_TEST(max_rel_diff(p.forward(false), reference(s, p.x, p.w, nullptr)) < 1e-12);
}

BOOST_AUTO_TEST_CASE(block_geometries_span_several_blocks) {
  const auto all = geometries();
  for (auto it = all.end() - kMultiBlock; it != all.end(); ++it) {
    const auto g = hw1::cpu::detail::geom(*it);
    BOOST_TEST(hw1::cpu::detail::block_cols(g.rows(), g.cols()) < g.cols(), describe(*it));
  }
}

BOOST_AUTO_TEST_CASE(gradients_match_finite_differences) {
  std::uint64_t seed = 400;
  for (const auto& s : geometries()) {
    BOOST_TEST_CONTEXT(describe(s)) {
      Problem p(s, seed += 10);
      const auto a = p.backward();
      // The probes run single-threaded: thousands of tiny forwards would otherwise mostly wait on OpenMP barriers.
      const OneThread one;
      const auto loss = [&] { return p.loss(); };
      BOOST_TEST(relative_error(a.dx, numeric_gradient(p.x, loss, 1e-6, 300)) <= kGradTol);
      BOOST_TEST(relative_error(a.dw, numeric_gradient(p.w, loss, 1e-6, 300)) <= kGradTol);
      BOOST_TEST(relative_error(a.db, numeric_gradient(p.b, loss, 1e-6, 300)) <= kGradTol);
    }
  }
}

// dw and db accumulate (a second call adds the same gradient again); dx is overwritten whatever it held.
BOOST_AUTO_TEST_CASE(weight_gradients_accumulate_and_dx_is_overwritten) {
  for (const auto& s : {geometries()[1], geometries()[8]}) {
    BOOST_TEST_CONTEXT(describe(s)) {
      const Problem p(s, 7);
      const auto once = p.backward();
      std::vector<double> dx(p.x.size(), 123.0), dw = random_vector(p.w.size(), 8);
      std::vector<double> db = random_vector(p.b.size(), 9);
      const auto dw0 = dw, db0 = db;
      for (int k = 0; k < 2; ++k)
        hw1::cpu::conv_transpose2d_backward(s, p.x.data(), p.w.data(), p.g.data(), dx.data(), dw.data(), db.data());
      BOOST_TEST(max_rel_diff(dx, once.dx) < 1e-14);
      for (std::size_t i = 0; i < dw.size(); ++i)
        BOOST_TEST(dw[i] == dw0[i] + 2 * once.dw[i], boost::test_tools::tolerance(1e-12));
      for (std::size_t i = 0; i < db.size(); ++i)
        BOOST_TEST(db[i] == db0[i] + 2 * once.db[i], boost::test_tools::tolerance(1e-12));
    }
  }
}

BOOST_AUTO_TEST_CASE(nullptr_skips_each_gradient) {
  for (const auto& s : {geometries()[3], geometries()[8]}) {
    BOOST_TEST_CONTEXT(describe(s)) {
      const Problem p(s, 11);
      const auto all = p.backward();
      std::vector<double> dx(p.x.size()), dw(p.w.size(), 0.0), db(p.b.size(), 0.0);
      const double *x = p.x.data(), *w = p.w.data(), *g = p.g.data();
      hw1::cpu::conv_transpose2d_backward<double>(s, x, w, g, dx.data(), nullptr, nullptr);
      BOOST_TEST(max_rel_diff(dx, all.dx) < 1e-14);
      hw1::cpu::conv_transpose2d_backward<double>(s, x, w, g, nullptr, dw.data(), nullptr);
      BOOST_TEST(max_rel_diff(dw, all.dw) < 1e-14);
      hw1::cpu::conv_transpose2d_backward<double>(s, x, w, g, nullptr, nullptr, db.data());
      BOOST_TEST(max_rel_diff(db, all.db) < 1e-14);
      hw1::cpu::conv_transpose2d_backward<double>(s, x, w, g, nullptr, nullptr, nullptr);
    }
  }
}

BOOST_AUTO_TEST_CASE(float_agrees_with_double) {
  for (const auto& s : geometries()) {
    BOOST_TEST_CONTEXT(describe(s)) {
      const Problem p(s, 13);
      const auto f = [](const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); };
      const auto d = [](const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); };
      const auto xf = f(p.x), wf = f(p.w), bf = f(p.b), gf = f(p.g);
      std::vector<float> y(p.g.size()), dx(p.x.size()), dw(p.w.size(), 0.f), db(p.b.size(), 0.f);
      hw1::cpu::conv_transpose2d_forward(s, xf.data(), wf.data(), bf.data(), y.data());
      hw1::cpu::conv_transpose2d_backward(s, xf.data(), wf.data(), gf.data(), dx.data(), dw.data(), db.data());
      const auto ref = p.backward();
      BOOST_TEST(max_rel_diff(d(y), p.forward()) < 1e-5);
      BOOST_TEST(max_rel_diff(d(dx), ref.dx) < 1e-5);
      BOOST_TEST(max_rel_diff(d(dw), ref.dw) < 1e-5);
      BOOST_TEST(max_rel_diff(d(db), ref.db) < 1e-5);
    }
  }
}

// Results do not depend on how the work is split: one thread, and 2..4 threads that split either whole pieces
// (with per-thread weight-gradient partial sums) or the channels of each piece, agree.
BOOST_AUTO_TEST_CASE(thread_count_does_not_change_results) {
  const int keep = omp_get_max_threads();
  for (const auto& s : geometries()) {
    BOOST_TEST_CONTEXT(describe(s)) {
      const Problem p(s, 17);
      omp_set_num_threads(1);
      const auto y1 = p.forward();
      const auto g1 = p.backward();
      for (int t : {2, 3, 4}) {
        omp_set_num_threads(t);
        const auto g = p.backward();
        BOOST_TEST(max_rel_diff(p.forward(), y1) < 1e-13);
        BOOST_TEST(max_rel_diff(g.dx, g1.dx) < 1e-13);
        BOOST_TEST(max_rel_diff(g.dw, g1.dw) < 1e-13);
        BOOST_TEST(max_rel_diff(g.db, g1.db) < 1e-13);
      }
    }
  }
  omp_set_num_threads(keep);
}

BOOST_AUTO_TEST_CASE(invalid_shapes_throw) {
  std::vector<double> buf(4096, 0.0);
  const double* c = buf.data();
  double* m = buf.data();
  const auto run = [&](const ConvTranspose2dShape& s) { hw1::cpu::conv_transpose2d_forward(s, c, c, c, m); };
  BOOST_CHECK_THROW(run({1, 1, 2, 2, 1, 1, 1, 1, 1, 2, 2}), hw1::Error);              // padding eats the output
  BOOST_CHECK_THROW(run({1, 1, 4, 4, 1, 3, 3, 2, 2, 1, 1, 2, 2}), hw1::Error);        // output padding >= stride
  BOOST_CHECK_THROW(run({1, 1, 4, 4, 1, 3, 3, 0, 1}), hw1::Error);                    // stride 0
  BOOST_CHECK_THROW(run({1, 0, 4, 4, 1, 3, 3}), hw1::Error);                          // no input channels
  BOOST_CHECK_NO_THROW(run({1, 1, 4, 4, 1, 3, 3, 1, 1, 0, 0, 1, 1, 2, 2}));           // output padding < dilation
}
