// hw1-winograd-accuracy: the float32 error of each algorithm conv2d can pick for a 3x3 stride-1 convolution
// (the im2col GEMM path, Winograd F(2x2,3x3), Winograd F(4x4,3x3)) against a double-precision loop, forward
// and input gradient, on the 3x3 layer shapes of VGG16 (FCN32s) and ResNet101 / DeepLabv3, for several kinds of
// data. One line per layer, data kind and direction: max |err| / max |ref| per algorithm, and the algorithm
// conv2d's selector takes at this thread count (and environment: HW1_WINOGRAD4). docs/accuracy.md holds a run of it.
//
// usage: hw1-winograd-accuracy [--layers all|vgg|resnet] [--data normal,relu,smooth] [--seed S]
// Data kinds (x for the forward, dY for the input gradient; weights always He-normal, std sqrt(2 / 9C)):
//   normal  iid N(0, 1)
//   relu    max(0, N(0, 1)): post-ReLU activations (non-negative, mean 0.4 std)
//   smooth  max(0, z) of a field z bilinearly interpolated from N(0, 1) values 8 pixels apart, plus 0.1 N(0, 1):
//           activations of natural images, spatially correlated (for dY: the field without the max)
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "hw1/backend/cpu/conv2d.hpp"
#include "hw1/backend/cpu/winograd.hpp"
#include "hw1/backend/cpu/winograd4.hpp"
#include "hw1/train/cli.hpp"

namespace {

using hw1::cpu::Conv2dShape;
using hw1::cpu::Index;
namespace wg = hw1::cpu::winograd;

struct Layer {
  const char* name;
  int n, c, h, w, o, pad, dil;
};

// The 3x3 layers of the networks at the sizes users train and run them (FCN32s' VGG16 at a 256x256 input, whose
// 100-pixel padding makes the first plane 454x454: 64-channel planes of 128x128 stand in for it; ResNet101 at 224;
// DeepLabv3's dilated stages at 256 and 512).
const Layer kLayers[] = {
    {"vgg.conv1_2 b1 128", 1, 64, 128, 128, 64, 1, 1},     {"vgg.conv2_2 b2 64", 2, 128, 64, 64, 128, 1, 1},
    {"vgg.conv3_2 b4 32", 4, 256, 32, 32, 256, 1, 1},      {"vgg.conv3_2 b1 64", 1, 256, 64, 64, 256, 1, 1},
    {"vgg.conv4_2 b4 16", 4, 512, 16, 16, 512, 1, 1},      {"vgg.conv4_2 b1 32", 1, 512, 32, 32, 512, 1, 1},
    {"vgg.conv5_2 b8 14", 8, 512, 14, 14, 512, 1, 1},      {"resnet.layer1 b8 56", 8, 64, 56, 56, 64, 1, 1},
    {"resnet.layer2 b8 28", 8, 128, 28, 28, 128, 1, 1},    {"resnet.layer3 b8 14", 8, 256, 14, 14, 256, 1, 1},
    {"resnet.layer3 b2 14", 2, 256, 14, 14, 256, 1, 1},    {"deeplab.layer3 b2 32 d2", 2, 256, 32, 32, 256, 2, 2},
    {"deeplab.layer4 b2 32 d4", 2, 512, 32, 32, 512, 4, 4}, {"deeplab.layer4 b1 64 d4", 1, 512, 64, 64, 512, 4, 4},
};

// x[n][c][h][w] of the given kind.
std::vector<double> make_data(const std::string& kind, int n, int c, int h, int w, bool nonneg, std::mt19937_64& rng) {
  std::normal_distribution<double> nd;
  std::vector<double> v(std::size_t(n) * c * h * w);
  if (kind == "normal" || kind == "relu") {
    for (auto& x : v) x = nd(rng);
    if (kind == "relu")
      for (auto& x : v) x = std::max(0.0, x);
    return v;
  }
  const int step = 8, gh = h / step + 2, gw = w / step + 2;
  std::vector<double> g(std::size_t(gh) * gw);
  for (std::size_t p = 0; p < std::size_t(n) * c; ++p) {
    for (auto& x : g) x = nd(rng);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const double fy = double(y) / step, fx = double(x) / step;
        const int y0 = int(fy), x0 = int(fx);
        const double a = fy - y0, b = fx - x0;
        const double z = (1 - a) * ((1 - b) * g[y0 * gw + x0] + b * g[y0 * gw + x0 + 1]) +
                         a * ((1 - b) * g[(y0 + 1) * gw + x0] + b * g[(y0 + 1) * gw + x0 + 1]) + 0.1 * nd(rng);
        v[(p * h + y) * w + x] = nonneg ? std::max(0.0, z) : z;
      }
  }
  return v;
}

// y = conv(x, w) in double (dx = false), or dX of sum(y * g) (dx = true: `x` is g, the result has s's input shape).
std::vector<double> reference(const Conv2dShape& s, const std::vector<double>& x, const std::vector<double>& w, bool dx) {
  const int oh = s.out_h(), ow = s.out_w();
  std::vector<double> out(dx ? std::size_t(s.n) * s.cin * s.h * s.w : std::size_t(s.n) * s.cout * oh * ow, 0.0);
  if (!dx) {
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (int n = 0; n < s.n; ++n)
      for (int o = 0; o < s.cout; ++o) {
        double* y = out.data() + (std::size_t(n) * s.cout + o) * oh * ow;
        for (int c = 0; c < s.cin; ++c)
          for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 3; ++j) {
              const double k = w[(std::size_t(o) * s.cin + c) * 9 + i * 3 + j];
              const double* xp = x.data() + (std::size_t(n) * s.cin + c) * s.h * s.w;
              for (int oy = 0; oy < oh; ++oy) {
                const int iy = oy - s.pad_h + i * s.dil_h;
                if (iy < 0 || iy >= s.h) continue;
                for (int ox = 0; ox < ow; ++ox) {
                  const int ix = ox - s.pad_w + j * s.dil_w;
                  if (ix >= 0 && ix < s.w) y[oy * ow + ox] += k * xp[iy * s.w + ix];
                }
              }
            }
      }
    return out;
  }
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int n = 0; n < s.n; ++n)
    for (int c = 0; c < s.cin; ++c) {
      double* d = out.data() + (std::size_t(n) * s.cin + c) * s.h * s.w;
      for (int o = 0; o < s.cout; ++o)
        for (int i = 0; i < 3; ++i)
          for (int j = 0; j < 3; ++j) {
            const double k = w[(std::size_t(o) * s.cin + c) * 9 + i * 3 + j];
            const double* gp = x.data() + (std::size_t(n) * s.cout + o) * oh * ow;
            for (int oy = 0; oy < oh; ++oy) {
              const int iy = oy - s.pad_h + i * s.dil_h;
              if (iy < 0 || iy >= s.h) continue;
              for (int ox = 0; ox < ow; ++ox) {
                const int ix = ox - s.pad_w + j * s.dil_w;
                if (ix >= 0 && ix < s.w) d[iy * s.w + ix] += k * gp[oy * ow + ox];
              }
            }
          }
    }
  return out;
}

double rel_error(const std::vector<float>& got, const std::vector<double>& want) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    num = std::max(num, std::abs(double(got[i]) - want[i]));
    den = std::max(den, std::abs(want[i]));
  }
  return num / den;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string usage =
      "usage: hw1-winograd-accuracy [--layers all|vgg|resnet] [--data normal,relu,smooth] [--seed S]\n"
      "  float32 error of the GEMM path, Winograd F(2x2) and F(4x4) against double loops, per 3x3 layer shape,\n"
      "  forward and input gradient (one JSON line each)\n";
  return hw1::run_main("hw1-winograd-accuracy", usage, [&] {
    hw1::Cli cli(argc, argv, {"--layers", "--data", "--seed"}, {}, usage);
    const std::string which = cli.choice("--layers", "all", {"all", "vgg", "resnet"});
    const auto kinds = hw1::Cli::split(cli.str("--data", "normal,relu,smooth"));
    for (const auto& k : kinds)
      if (k != "normal" && k != "relu" && k != "smooth") throw hw1::UsageError("--data: unknown kind '" + k + "'");
    const auto seed = std::uint64_t(cli.integer("--seed", 1, 0, hw1::kMaxSeed));
#if !defined(__AVX512F__)
    throw hw1::Error("the Winograd paths exist only in AVX-512 builds");
#endif
    // The GEMM path is what conv2d takes with Winograd off; F(2x2) and F(4x4) are called directly. What the
    // selector would take is asked of the *_worthwhile rules, which read the environment before it changes here.
    for (const Layer& l : kLayers) {
      const std::string name = l.name;
      if ((which == "vgg" && !name.starts_with("vgg")) || (which == "resnet" && name.starts_with("vgg"))) continue;
      const Conv2dShape s{l.n, l.c, l.h, l.w, l.o, 3, 3, 1, 1, l.pad, l.pad, l.dil, l.dil};
      const Conv2dShape t{s.n, s.cout, s.out_h(), s.out_w(), s.cin, 3, 3, 1, 1, 2 * s.dil_h - s.pad_h,
                          2 * s.dil_w - s.pad_w, s.dil_h, s.dil_w};
      Conv2dShape st = s;  // the forward of a training step
      st.backward_follows = true;
      const char* pick_infer = wg::worthwhile4_forward(s) ? "f4" : wg::worthwhile(s) ? "f2" : "gemm";
      const char* pick_train = wg::worthwhile4_forward(st) ? "f4" : wg::worthwhile(st) ? "f2" : "gemm";
      const char* pick_dx = !(Index(s.h) * s.w >= 100 && wg::worthwhile(t)) ? "gemm"
                            : wg::worthwhile4_input_grad(t)              ? "f4"
                                                                          : "f2";
      for (const auto& kind : kinds) {
        std::mt19937_64 rng(seed);
        std::normal_distribution<double> nd;
        std::vector<double> w(std::size_t(s.cout) * s.cin * 9);
        for (auto& v : w) v = nd(rng) * std::sqrt(2.0 / (9.0 * s.cin));
        const std::vector<float> wf(w.begin(), w.end());
        for (const bool dx : {false, true}) {
          const auto in = dx ? make_data(kind, s.n, s.cout, s.out_h(), s.out_w(), false, rng)
                             : make_data(kind, s.n, s.cin, s.h, s.w, true, rng);
          // The double reference from the float32 inputs, so only the arithmetic differs.
          const std::vector<float> inf(in.begin(), in.end());
          const std::vector<double> in32(inf.begin(), inf.end()), w32(wf.begin(), wf.end());
          const auto want = reference(s, in32, w32, dx);
          std::vector<float> gemm(want.size(), NAN), f2(want.size(), NAN), f4(want.size(), NAN);
          wg::set_enabled(false);  // the GEMM path
          if (dx)
            hw1::cpu::conv2d_backward<float>(s, nullptr, wf.data(), inf.data(), gemm.data(), nullptr, nullptr);
          else
            hw1::cpu::conv2d_forward<float>(s, inf.data(), wf.data(), nullptr, gemm.data());
          wg::set_enabled(true);
          const Conv2dShape& u = dx ? t : s;
          wg::forward(u, inf.data(), wf.data(), nullptr, nullptr, false, f2.data(), nullptr, dx);
          wg::forward4(u, inf.data(), wf.data(), nullptr, nullptr, false, f4.data(), nullptr, dx);
          std::printf("{\"layer\": \"%s\", \"data\": \"%s\", \"pass\": \"%s\", \"gemm\": %.2e, \"f2\": %.2e, "
                      "\"f4\": %.2e, \"picked\": \"%s\", \"threads\": %d}\n",
                      l.name, kind.c_str(), dx ? "dX" : "forward", rel_error(gemm, want), rel_error(f2, want),
                      rel_error(f4, want), dx ? pick_dx : (std::string(pick_infer) + " (inference), " + pick_train + " (training)").c_str(),
                      omp_get_max_threads());
          std::fflush(stdout);
        }
      }
    }
    return 0;
  });
}
