#define BOOST_TEST_MODULE conv2d_kernel
#include <boost/test/unit_test.hpp>

#include <omp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "common/gradcheck.hpp"
#include "common/precondition.hpp"
#include "hw1/backend/cpu/conv2d.hpp"

using hw1::cpu::Conv2dShape;
using namespace hw1::test;

namespace {

std::string describe(const Conv2dShape& s) {
  std::ostringstream o;
  o << "x[" << s.n << "," << s.cin << "," << s.h << "," << s.w << "] cout " << s.cout << " k " << s.kh << "x" << s.kw
    << " stride " << s.stride_h << "x" << s.stride_w << " pad " << s.pad_h << "x" << s.pad_w << " dil " << s.dil_h
    << "x" << s.dil_w;
  return o.str();
}

// Geometries that exercise every branch: odd sizes, stride, padding, dilation 2 and 3, kernels 1/3/7, the 1x1
// direct path, asymmetric settings, batch 1 and 3, and shapes spanning several position blocks (block edges
// falling mid-row) on both the im2col and the direct path.
std::vector<Conv2dShape> geometries() {
  return {
      {1, 3, 11, 13, 4, 3, 3},                          // odd non-square, no padding
      {3, 2, 9, 7, 5, 3, 3, 2, 2, 1, 1},                // stride 2, padding 1, batch 3
      {1, 3, 12, 10, 2, 3, 3, 1, 1, 2, 2, 2, 2},        // dilation 2 (DeepLab style padding = dilation)
      {3, 2, 13, 11, 3, 3, 3, 1, 1, 3, 3, 3, 3},        // dilation 3
      {2, 3, 17, 15, 4, 7, 7, 2, 2, 3, 3},              // ResNet stem 7x7/2 pad 3
      {3, 5, 6, 9, 4, 1, 1},                            // 1x1 direct path, batch 3
      {1, 4, 9, 8, 3, 1, 1, 2, 2},                      // 1x1 stride 2 (projection shortcut): im2col path
      {3, 2, 10, 12, 3, 3, 5, 2, 1, 1, 2, 3, 1},        // asymmetric kernel, stride, padding, dilation
      {1, 2, 5, 4, 3, 3, 3, 1, 1, 2, 2},                // padding larger than the window reach at the border
      {3, 4, 1, 1, 5, 3, 3, 1, 1, 1, 1},                // 1x1 image: only the centre tap is live (trimmed to 1x1)
      {2, 3, 2, 2, 4, 3, 3, 2, 2, 1, 1},                // 2x2 -> 1x1 at stride 2: the first row and column die
      {1, 3, 5, 6, 2, 3, 3, 1, 1, 6, 6, 6, 6},          // dilation past the image: the outer taps die
      {2, 64, 32, 32, 3, 3, 3, 1, 1, 1, 1},             // several blocks of positions
      {1, 1024, 16, 40, 3, 1, 1},                       // several blocks on the direct 1x1 path
  };
}
constexpr int kMultiBlock = 2;  // the last geometries span several blocks

// The definition, seven loops deep.
std::vector<double> reference(const Conv2dShape& s, const std::vector<double>& x, const std::vector<double>& w,
                              const double* b) {
  const int oh = s.out_h(), ow = s.out_w();
  std::vector<double> y(std::size_t(s.n) * s.cout * oh * ow);
  for (int n = 0; n < s.n; ++n)
    for (int co = 0; co < s.cout; ++co)
      for (int oy = 0; oy < oh; ++oy)
        for (int ox = 0; ox < ow; ++ox) {
          double acc = b ? b[co] : 0.0;
          for (int ci = 0; ci < s.cin; ++ci)
            for (int ki = 0; ki < s.kh; ++ki)
              for (int kj = 0; kj < s.kw; ++kj) {
                const int iy = oy * s.stride_h - s.pad_h + ki * s.dil_h, ix = ox * s.stride_w - s.pad_w + kj * s.dil_w;
                if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
                acc += x[((std::size_t(n) * s.cin + ci) * s.h + iy) * s.w + ix] *
                       w[((std::size_t(co) * s.cin + ci) * s.kh + ki) * s.kw + kj];
              }
          y[((std::size_t(n) * s.cout + co) * oh + oy) * ow + ox] = acc;
        }
  return y;
}

struct Problem {
  Conv2dShape s;
  std::vector<double> x, w, b, g;  // g: the upstream gradient dL/dy of loss = sum(y * g)
  explicit Problem(const Conv2dShape& sh, std::uint64_t seed) : s(sh) {
    x = random_vector(std::size_t(s.n) * s.cin * s.h * s.w, seed);
    w = random_vector(std::size_t(s.cout) * s.cin * s.kh * s.kw, seed + 1);
    b = random_vector(std::size_t(s.cout), seed + 2);
    g = random_vector(std::size_t(s.n) * s.cout * s.out_h() * s.out_w(), seed + 3);
  }
  std::size_t ysize() const { return g.size(); }
  std::vector<double> forward(bool bias = true) const {
    std::vector<double> y(ysize(), std::nan(""));
    hw1::cpu::conv2d_forward(s, x.data(), w.data(), bias ? b.data() : nullptr, y.data());
    return y;
  }
  double loss() const { return dot(g, forward().data()); }
  struct Grads {
    std::vector<double> dx, dw, db;
  };
  Grads backward() const {
    Grads r{std::vector<double>(x.size(), std::nan("")), std::vector<double>(w.size(), 0.0),
            std::vector<double>(b.size(), 0.0)};
    hw1::cpu::conv2d_backward(s, x.data(), w.data(), g.data(), r.dx.data(), r.dw.data(), r.db.data());
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

BOOST_AUTO_TEST_CASE(forward_matches_direct_loops) {
  std::uint64_t seed = 100;
  for (const auto& s : geometries()) {
    BOOST_TEST_CONTEXT(describe(s)) {
      const Problem p(s, seed += 10);
      BOOST_TEST(max_rel_diff(p.forward(true), reference(s, p.x, p.w, p.b.data())) < 1e-12);
      BOOST_TEST(max_rel_diff(p.forward(false), reference(s, p.x, p.w, nullptr)) < 1e-12);
    }
  }
}

BOOST_AUTO_TEST_CASE(block_geometries_span_several_blocks) {
  const auto all = geometries();
  for (auto it = all.end() - kMultiBlock; it != all.end(); ++it) {
    const auto g = hw1::cpu::detail::geom(*it);
    BOOST_TEST(hw1::cpu::detail::block_cols(g.rows(), g.cols()) < g.cols(), describe(*it));
  }
}

BOOST_AUTO_TEST_CASE(gradients_match_finite_differences) {
  std::uint64_t seed = 200;
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
  for (const auto& s : {geometries()[1], geometries()[5]}) {
    BOOST_TEST_CONTEXT(describe(s)) {
      const Problem p(s, 7);
      const auto once = p.backward();
      std::vector<double> dx(p.x.size(), 123.0), dw = random_vector(p.w.size(), 8);
      std::vector<double> db = random_vector(p.b.size(), 9);
      const auto dw0 = dw, db0 = db;
      for (int k = 0; k < 2; ++k)
        hw1::cpu::conv2d_backward(s, p.x.data(), p.w.data(), p.g.data(), dx.data(), dw.data(), db.data());
      BOOST_TEST(max_rel_diff(dx, once.dx) < 1e-14);
      for (std::size_t i = 0; i < dw.size(); ++i)
        BOOST_TEST(dw[i] == dw0[i] + 2 * once.dw[i], boost::test_tools::tolerance(1e-12));
      for (std::size_t i = 0; i < db.size(); ++i)
        BOOST_TEST(db[i] == db0[i] + 2 * once.db[i], boost::test_tools::tolerance(1e-12));
    }
  }
}

// Each output may be skipped with nullptr, and the others come out the same.
BOOST_AUTO_TEST_CASE(nullptr_skips_each_gradient) {
  for (const auto& s : {geometries()[2], geometries()[5]}) {
    BOOST_TEST_CONTEXT(describe(s)) {
      const Problem p(s, 11);
      const auto all = p.backward();
      std::vector<double> dx(p.x.size()), dw(p.w.size(), 0.0), db(p.b.size(), 0.0);
      hw1::cpu::conv2d_backward<double>(s, p.x.data(), p.w.data(), p.g.data(), dx.data(), nullptr, nullptr);
      BOOST_TEST(max_rel_diff(dx, all.dx) < 1e-14);
      hw1::cpu::conv2d_backward<double>(s, p.x.data(), p.w.data(), p.g.data(), nullptr, dw.data(), nullptr);
      BOOST_TEST(max_rel_diff(dw, all.dw) < 1e-14);
      hw1::cpu::conv2d_backward<double>(s, p.x.data(), p.w.data(), p.g.data(), nullptr, nullptr, db.data());
      BOOST_TEST(max_rel_diff(db, all.db) < 1e-14);
      hw1::cpu::conv2d_backward<double>(s, p.x.data(), p.w.data(), p.g.data(), nullptr, nullptr, nullptr);
    }
  }
}

std::vector<Conv2dShape> grouped_geometries();

// The same code in float agrees with double to float's precision (float has its own AVX-512 gather/scatter on the
// batched small-image path).
BOOST_AUTO_TEST_CASE(float_agrees_with_double) {
  auto all = geometries();
  for (const auto& s : grouped_geometries()) all.push_back(s);
  for (const auto& s : all) {
    BOOST_TEST_CONTEXT(describe(s)) {
      const Problem p(s, 13);
      const auto f = [](const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); };
      const auto d = [](const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); };
      const auto xf = f(p.x), wf = f(p.w), bf = f(p.b), gf = f(p.g);
      std::vector<float> y(p.ysize()), dx(p.x.size()), dw(p.w.size(), 0.f), db(p.b.size(), 0.f);
      hw1::cpu::conv2d_forward(s, xf.data(), wf.data(), bf.data(), y.data());
      hw1::cpu::conv2d_backward(s, xf.data(), wf.data(), gf.data(), dx.data(), dw.data(), db.data());
      const auto ref = p.backward();
      BOOST_TEST(max_rel_diff(d(y), p.forward()) < 1e-5);
      BOOST_TEST(max_rel_diff(d(dx), ref.dx) < 1e-5);
      BOOST_TEST(max_rel_diff(d(dw), ref.dw) < 1e-5);
      BOOST_TEST(max_rel_diff(d(db), ref.db) < 1e-5);
    }
  }
}

// Float at network-like widths: on AVX-512 builds the forward runs through the packed GEMM (pgemm.hpp), whose
// 14-row micro-kernels, column-matrix blocks of 256 rows, 512-position blocks, the aliasing-stride copy of W
// (K = 512) and the packed 1x1 path only show at these sizes. Checked against the double-precision definition,
// at 1 and 2 threads.
BOOST_AUTO_TEST_CASE(float_forward_at_network_widths) {
  const std::vector<Conv2dShape> shapes = {
      {1, 64, 30, 30, 40, 3, 3, 1, 1, 1, 1},     // K = 576: three row blocks; 900 positions: two blocks
      {2, 300, 9, 9, 29, 1, 1},                  // 1x1 direct, K = 300
      {1, 512, 8, 8, 20, 1, 1},                  // K = 512: W's rows copied before the multiply
      {1, 32, 40, 40, 17, 3, 3, 1, 1, 2, 2, 2, 2},  // dilation 2, 1600 positions
      {16, 64, 2, 2, 30, 3, 3, 1, 1, 1, 1},      // batched small images, K = 576
      {40, 128, 4, 4, 33, 1, 1},                 // batched 1x1
      // Batched 1x1 through masked-load runs (4 to 64 positions per image): uneven groups of 23 + 22 images
      // (K = 1024), 9 positions (runs that straddle the 16-lane vectors), 64, and 2 (copies instead).
      {45, 1024, 4, 4, 19, 1, 1},
      {71, 1024, 3, 3, 6, 1, 1},
      {9, 256, 8, 8, 31, 1, 1},
      {50, 600, 1, 2, 17, 1, 1},
  };
  const int keep = omp_get_max_threads();
  for (const auto& s : shapes) {
    BOOST_TEST_CONTEXT(describe(s)) {
      const Problem p(s, 77);
      const std::vector<float> xf(p.x.begin(), p.x.end()), wf(p.w.begin(), p.w.end()), bf(p.b.begin(), p.b.end());
      const auto want = reference(s, p.x, p.w, p.b.data());
      for (int t : {1, 2}) {
        omp_set_num_threads(t);
        std::vector<float> y(p.ysize(), std::nanf(""));
        hw1::cpu::conv2d_forward(s, xf.data(), wf.data(), bf.data(), y.data());
        BOOST_TEST(max_rel_diff(std::vector<double>(y.begin(), y.end()), want) < 1e-5);
      }
    }
  }
  omp_set_num_threads(keep);
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

// Few output positions per image: pieces batch several images into one GEMM. Batches 5, 45 and 64 give one
// group, several groups and uneven group sizes; 1x1 direct, 1x1 stride 2 and 3x3 stride 2 at 1x1..4x4 outputs.
std::vector<Conv2dShape> grouped_geometries() {
  return {
      {5, 6, 4, 4, 7, 3, 3, 2, 2, 1, 1},     // 3x3 stride 2 -> 2x2, batch 5
      {64, 3, 2, 2, 4, 3, 3, 2, 2, 1, 1},    // 3x3 stride 2 -> 1x1, batch 64
      {45, 128, 8, 8, 5, 3, 3, 2, 2, 1, 1},  // 3x3 stride 2 -> 4x4: K = 1152 splits 45 images into 22 + 23
      {5, 4, 3, 3, 6, 1, 1},                 // 1x1 direct path, 3x3, batch 5
      {64, 5, 2, 2, 3, 1, 1},                // 1x1 direct path, 2x2, batch 64
      {64, 1024, 4, 4, 3, 1, 1},             // 1x1 direct path, K = 1024: two groups of 32
      {64, 4, 6, 6, 5, 1, 1, 2, 2},          // 1x1 stride 2 -> 3x3, batch 64
      {64, 8, 2, 2, 6, 3, 3, 1, 1, 1, 1},    // 3x3 pad 1 at 2x2 (ResNet layer3 at 32x32 input), batch 64
      {33, 3, 4, 5, 5, 3, 3, 1, 1, 2, 2, 2, 2},  // dilation 2 at 4x5, batch 33
      {64, 8, 1, 1, 4, 3, 3, 1, 1, 1, 1},    // 3x3 pad 1 at 1x1: every tap but the centre reads padding
  };
}

BOOST_AUTO_TEST_CASE(grouped_images_match_reference_gradients_and_threads) {
  std::uint64_t seed = 300;
  const int keep = omp_get_max_threads();
  bool several_groups = false;
  for (const auto& s : grouped_geometries()) {
    BOOST_TEST_CONTEXT(describe(s)) {
      const auto g = hw1::cpu::detail::geom(s);
      const auto groups = hw1::cpu::detail::image_groups(s.n, g.rows(), g.cols(), g.c * g.plane());
      BOOST_TEST(groups.most > 1);
      several_groups |= groups.count > 1 && s.n % groups.count != 0;
      Problem p(s, seed += 10);
      BOOST_TEST(max_rel_diff(p.forward(true), reference(s, p.x, p.w, p.b.data())) < 1e-12);
      BOOST_TEST(max_rel_diff(p.forward(false), reference(s, p.x, p.w, nullptr)) < 1e-12);
      omp_set_num_threads(1);
      const auto y1 = p.forward();
      const auto a = p.backward();
      for (int t : {2, 3, 4}) {
        omp_set_num_threads(t);
        const auto b = p.backward();
        BOOST_TEST(max_rel_diff(p.forward(), y1) < 1e-13);
        BOOST_TEST(max_rel_diff(b.dx, a.dx) < 1e-13);
        BOOST_TEST(max_rel_diff(b.dw, a.dw) < 1e-13);
        BOOST_TEST(max_rel_diff(b.db, a.db) < 1e-13);
        // A given thread count gives the same bits every time (resumed training equals uninterrupted).
        const auto c = p.backward();
        BOOST_TEST((c.dx == b.dx && c.dw == b.dw && c.db == b.db));
      }
      omp_set_num_threads(1);
      const auto loss = [&] { return p.loss(); };
      BOOST_TEST(relative_error(a.dx, numeric_gradient(p.x, loss, 1e-6, 200)) <= kGradTol);
      BOOST_TEST(relative_error(a.dw, numeric_gradient(p.w, loss, 1e-6, 200)) <= kGradTol);
      BOOST_TEST(relative_error(a.db, numeric_gradient(p.b, loss, 1e-6, 200)) <= kGradTol);
      omp_set_num_threads(keep);
    }
  }
  BOOST_TEST(several_groups);  // uneven group sizes were exercised
}

BOOST_AUTO_TEST_CASE(invalid_shapes_throw) {
  std::vector<double> buf(4096, 0.0);
  const double* c = buf.data();
  double* m = buf.data();
  const auto run = [&](const Conv2dShape& s) { hw1::cpu::conv2d_forward(s, c, c, c, m); };
  BOOST_CHECK_THROW(run({1, 1, 2, 2, 1, 5, 5}), hw1::Error);                // kernel larger than the input
  BOOST_CHECK_THROW(run({1, 1, 3, 3, 1, 4, 4, 2, 2}), hw1::Error);          // truncation would claim one row
  BOOST_CHECK_THROW(run({1, 1, 8, 8, 1, 3, 3, 1, 1, 1, 1, 5, 5}), hw1::Error);  // dilation reaches past the input
  BOOST_CHECK_THROW(run({1, 1, 8, 8, 1, 3, 3, 0, 1}), hw1::Error);          // stride 0
  BOOST_CHECK_THROW(run({1, 1, 8, 8, 1, 3, 3, 1, 1, -1, 0}), hw1::Error);   // negative padding
  BOOST_CHECK_THROW(run({0, 1, 8, 8, 1, 3, 3}), hw1::Error);                // empty batch
  BOOST_CHECK_NO_THROW(run({1, 1, 3, 3, 1, 4, 4, 2, 2, 1, 1}));             // padding makes it fit
  try {
    run({1, 1, 2, 2, 1, 5, 5});
  } catch (const hw1::Error& e) {
    BOOST_TEST(std::string(e.what()).find("larger input") != std::string::npos);
  }
}

// Taps that read only padding at every output are dropped before the multiply (the geometries above check that the
// results do not change): which taps, and when nothing is dropped.
BOOST_AUTO_TEST_CASE(dead_taps_are_trimmed) {
  namespace d = hw1::cpu::detail;
  d::Trim t{};
  BOOST_TEST(d::trim(Conv2dShape{3, 4, 1, 1, 5, 3, 3, 1, 1, 1, 1}, t));
  BOOST_TEST((t.s.kh == 1 && t.s.kw == 1 && t.s.pad_h == 0 && t.s.pad_w == 0 && t.r0 == 1 && t.c0 == 1));
  BOOST_TEST(d::trim(Conv2dShape{2, 3, 2, 2, 4, 3, 3, 2, 2, 1, 1}, t));
  BOOST_TEST((t.s.kh == 2 && t.s.kw == 2 && t.s.pad_h == 0 && t.r0 == 1 && t.c0 == 1));
  BOOST_TEST(d::trim(Conv2dShape{1, 3, 5, 6, 2, 3, 3, 1, 1, 6, 6, 6, 6}, t));
  BOOST_TEST((t.s.kh == 1 && t.s.kw == 1 && t.s.pad_h == 0 && t.s.dil_h == 6));
  BOOST_TEST(!d::trim(Conv2dShape{1, 3, 8, 8, 2, 3, 3, 1, 1, 1, 1}, t));          // every tap live
  BOOST_TEST(!d::trim(Conv2dShape{1, 3, 64, 64, 2, 3, 3, 1, 1, 36, 36, 36, 36}, t));  // ASPP: live at some rows
}

// 3x3 convolutions of 2x2 planes (padding 1) take one GEMM over whole images in float (conv3x3_dense_2x2), with
// batch norm's scale and shift, the bias, a residual and ReLU in its epilogue, and so do their gradients: checked
// against the definition for channel counts that leave part of the last 8-channel panel empty, at 1-3 threads.
BOOST_AUTO_TEST_CASE(float_3x3_on_2x2_planes_with_epilogue) {
  const int keep = omp_get_max_threads();
  for (const Conv2dShape& s : {Conv2dShape{1, 3, 2, 2, 7, 3, 3, 1, 1, 1, 1}, Conv2dShape{5, 40, 2, 2, 33, 3, 3, 1, 1, 1, 1},
                               Conv2dShape{64, 256, 2, 2, 24, 3, 3, 1, 1, 1, 1}}) {
    BOOST_TEST_CONTEXT(describe(s)) {
      const Problem p(s, 91);
      const auto scale = hw1::test::random_vector(std::size_t(s.cout), 92, 0.5, 2.0);
      const auto shift = hw1::test::random_vector(std::size_t(s.cout), 93);
      const auto res = hw1::test::random_vector(p.ysize(), 94);
      auto want = reference(s, p.x, p.w, p.b.data());
      const std::size_t plane = 4;
      bool clipped = false;
      for (std::size_t i = 0; i < want.size(); ++i) {
        const std::size_t o = i / plane % std::size_t(s.cout);
        want[i] = std::max(0.0, want[i] * scale[o] + shift[o] + double(float(res[i])));
        clipped |= want[i] == 0.0;
      }
      BOOST_TEST(clipped);
      const auto f = [](const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); };
      const auto xf = f(p.x), wf = f(p.w), bf = f(p.b), sc = f(scale), sh = f(shift), rf = f(res);
      for (int t : {1, 2, 3}) {
        omp_set_num_threads(t);
        std::vector<float> y(p.ysize(), std::nanf(""));
        hw1::cpu::conv2d_forward_fused<float>(s, xf.data(), wf.data(), bf.data(), sc.data(), sh.data(), true, y.data(),
                                              rf.data());
        BOOST_TEST(max_rel_diff(std::vector<double>(y.begin(), y.end()), want) < 1e-5, "threads " << t);
        // The gradients (dX through the flipped kernel, dW folded from the transposed GEMM), dw accumulated.
        const auto ref = p.backward();
        const auto gf = f(p.g);
        std::vector<float> dx(p.x.size(), std::nanf("")), dw(p.w.size(), 1.f), db(p.b.size(), 0.f);
        hw1::cpu::conv2d_backward<float>(s, xf.data(), wf.data(), gf.data(), dx.data(), dw.data(), db.data());
        std::vector<double> dw_want = ref.dw;
        for (auto& v : dw_want) v += 1.0;
        BOOST_TEST(max_rel_diff(std::vector<double>(dx.begin(), dx.end()), ref.dx) < 1e-5, "threads " << t);
        BOOST_TEST(max_rel_diff(std::vector<double>(dw.begin(), dw.end()), dw_want) < 1e-5, "threads " << t);
        BOOST_TEST(max_rel_diff(std::vector<double>(db.begin(), db.end()), ref.db) < 1e-5, "threads " << t);
      }
    }
  }
  omp_set_num_threads(keep);
}

// 1x1, stride-1 gradients at 100+ positions per image on AVX-512 builds: dX as the forward of W^T (transposed
// once; cout = 512 pads its rows), dW from pgemm over 16 x 16 transposes of X (channel counts and positions that
// are not multiples of 16 or 32, several 256-position blocks), dW accumulated; each thread count owns its share of
// dW's columns.
BOOST_AUTO_TEST_CASE(float_pointwise_gradients_at_network_widths) {
  const int keep = omp_get_max_threads();
  for (const Conv2dShape& s : {Conv2dShape{2, 37, 11, 13, 21, 1, 1}, Conv2dShape{1, 64, 20, 30, 512, 1, 1},
                               Conv2dShape{3, 520, 10, 10, 48, 1, 1}, Conv2dShape{2, 512, 12, 12, 17, 1, 1}}) {
    BOOST_TEST_CONTEXT(describe(s)) {
      const Problem p(s, 61);
      const auto ref = p.backward();
      const auto f = [](const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); };
      const auto xf = f(p.x), wf = f(p.w), gf = f(p.g);
      std::vector<double> dw_want = ref.dw;
      for (auto& v : dw_want) v += 1.0;
      for (int t : {1, 2, 3}) {
        omp_set_num_threads(t);
        std::vector<float> dx(p.x.size(), std::nanf("")), dw(p.w.size(), 1.f);
        hw1::cpu::conv2d_backward<float>(s, xf.data(), wf.data(), gf.data(), dx.data(), dw.data(), nullptr);
        BOOST_TEST(max_rel_diff(std::vector<double>(dx.begin(), dx.end()), ref.dx) < 1e-5, "threads " << t);
        BOOST_TEST(max_rel_diff(std::vector<double>(dw.begin(), dw.end()), dw_want) < 1e-5, "threads " << t);
      }
    }
  }
  omp_set_num_threads(keep);
}

// The case exists in every build (so its ctest entry has a case to run or skip); without AVX-512F the packed GEMM
// is not compiled and the precondition skips it.
namespace {
bool pgemm_on() {
#if defined(__AVX512F__)
  return hw1::cpu::pgemm::enabled();
#else
  return false;
#endif
}
const hw1::test::RunsWhen<&pgemm_on> PgemmOn{"the packed GEMM is not in this build (no AVX-512F) or is off (HW1_PGEMM=0)"};
}  // namespace

// Every row count from 1 to 40 (micro-kernel calls of 14 rows, then one of 4-14 or two of 7-9, or 1-3 alone), A
// read in place and transposed, C overwritten and accumulated, against double sums; and the transposing packer
// against the definition of the panel layout, zeros past n included.
BOOST_AUTO_TEST_CASE(pgemm_every_row_count_and_transposed_packing, *boost::unit_test::label("needs_avx512") * boost::unit_test::precondition(PgemmOn)) {
#if defined(__AVX512F__)
  namespace pg = hw1::cpu::pgemm;
  using hw1::cpu::Index;
  const Index N = 45, K = 70;
  const auto a = hw1::test::random_vector(std::size_t(40 * K), 5), bm = hw1::test::random_vector(std::size_t(K * N), 6);
  const std::vector<float> af(a.begin(), a.end()), bf(bm.begin(), bm.end());
  std::vector<float> at(af.size());  // A^T, rows of 40
  for (Index i = 0; i < 40; ++i)
    for (Index k = 0; k < K; ++k) at[std::size_t(k * 40 + i)] = af[std::size_t(i * K + k)];
  std::vector<float> bp(std::size_t(pg::packed_size(K, N)));
  pg::pack_rows(bf.data(), N, K, N, 0, K, bp.data());
  for (Index M = 1; M <= 40; ++M)
    for (bool trans : {false, true})
      for (bool acc : {false, true}) {
        std::vector<float> c(std::size_t(M * N), 0.5f);
        pg::gemm(M, N, K, trans ? at.data() : af.data(), trans ? 40 : K, trans, bp.data(), c.data(), N, acc);
        double worst = 0;
        for (Index i = 0; i < M; ++i)
          for (Index j = 0; j < N; ++j) {
            double want = acc ? 0.5 : 0.0;
            for (Index k = 0; k < K; ++k) want += double(af[std::size_t(i * K + k)]) * bf[std::size_t(k * N + j)];
            worst = std::max(worst, std::abs(c[std::size_t(i * N + j)] - want));
          }
        BOOST_TEST(worst < 1e-4, "M " << M << " trans " << trans << " accumulate " << acc);
      }
  for (auto [n, k] : {std::pair<Index, Index>{37, 23}, {32, 16}, {16, 1}, {50, 300}, {1, 17}}) {
    const Index ld = k + 3;
    const auto src = hw1::test::random_vector(std::size_t(n * ld), 7);
    const std::vector<float> sf(src.begin(), src.end());
    std::vector<float> got(std::size_t(pg::packed_size(k, n)), std::nanf(""));
    pg::pack_transposed(sf.data(), ld, n, k, got.data());
    bool same = true;
    for (Index j = 0; j < pg::panel_count(n); ++j)
      for (Index r = 0; r < k; ++r)
        for (Index l = 0; l < pg::kNR; ++l) {
          const Index col = j * pg::kNR + l;
          const float want = col < n ? sf[std::size_t(col * ld + r)] : 0.f;
          same &= got[std::size_t((j * k + r) * pg::kNR + l)] == want;
        }
    BOOST_TEST(same, "n " << n << " k " << k);
  }
#endif
}

// Stride 2 with output rows of 16 and more: im2col's rows through two loads and a permute per 16 values, and
// col2im's adds through 8 values spread over 16 lanes (their partial last steps too), against double.
BOOST_AUTO_TEST_CASE(float_stride2_rows_of_16_and_more) {
  for (const Conv2dShape& s : {Conv2dShape{2, 5, 70, 66, 6, 3, 3, 2, 2, 1, 1}, Conv2dShape{1, 3, 81, 80, 4, 7, 7, 2, 2, 3, 3},
                               Conv2dShape{2, 8, 64, 60, 5, 1, 1, 2, 2}}) {
    BOOST_TEST_CONTEXT(describe(s)) {
      BOOST_TEST(s.out_w() >= 30);
      const Problem p(s, 41);
      const auto ref = p.backward();
      const auto f = [](const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); };
      const auto d = [](const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); };
      const auto xf = f(p.x), wf = f(p.w), bf = f(p.b), gf = f(p.g);
      std::vector<float> y(p.ysize(), std::nanf("")), dx(p.x.size(), std::nanf("")), dw(p.w.size(), 0.f);
      hw1::cpu::conv2d_forward(s, xf.data(), wf.data(), bf.data(), y.data());
      hw1::cpu::conv2d_backward<float>(s, xf.data(), wf.data(), gf.data(), dx.data(), dw.data(), nullptr);
      BOOST_TEST(max_rel_diff(d(y), p.forward()) < 1e-5);
      BOOST_TEST(max_rel_diff(d(dx), ref.dx) < 1e-5);
      BOOST_TEST(max_rel_diff(d(dw), ref.dw) < 1e-5);
    }
  }
}

// The stride-2 row helpers touch nothing past the row: each row here ends at a page whose successor is unmapped, so
// a read or write one float too far faults (a write there could also race with another thread's channel).
BOOST_AUTO_TEST_CASE(stride2_row_helpers_stay_inside_the_row) {
  const long page = sysconf(_SC_PAGESIZE);
  void* mem = mmap(nullptr, std::size_t(2 * page), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  BOOST_REQUIRE(mem != MAP_FAILED);
  BOOST_REQUIRE(mprotect(static_cast<char*>(mem) + page, std::size_t(page), PROT_NONE) == 0);
  float* end = reinterpret_cast<float*>(static_cast<char*>(mem) + page);
  for (hw1::cpu::Index n = 1; n <= 40; ++n) {
    float* row = end - (2 * n - 1);  // the row's last value is the page's last float
    for (hw1::cpu::Index i = 0; i < 2 * n - 1; ++i) row[i] = float(i);
    std::vector<float> got(static_cast<std::size_t>(n));
    hw1::cpu::copy_strided(static_cast<const float*>(row), 2, n, got.data());
    bool same = true;
    for (hw1::cpu::Index i = 0; i < n; ++i) same &= got[std::size_t(i)] == float(2 * i);
    std::vector<float> add(static_cast<std::size_t>(n), 1.f);
    hw1::cpu::add_strided(static_cast<const float*>(add.data()), 2, n, row);
    for (hw1::cpu::Index i = 0; i < 2 * n - 1; ++i) same &= row[i] == float(i) + (i % 2 ? 0.f : 1.f);
    BOOST_TEST(same, "n " << n);
  }
  munmap(mem, std::size_t(2 * page));
}
