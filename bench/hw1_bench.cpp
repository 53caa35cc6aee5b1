// hw1-bench: times one benchmark row in this process and prints one JSON line, so that bench/compare can run
// every row in a fresh process (peak RSS per row) next to PyTorch's numbers.
//   hw1-bench --row resnet101-train-32 [--iters N] [--warmup W]
// Rows: <net>-<infer|train>-<size>[-b<batch>] for every network of the registry (batch defaults: the rows),
// plus "sgemm" (hw1's float GEMM, 2048^3), "pgemm" (hw1's packed convolution GEMM, 2048^3), "fma-peak" (the
// cores' FMA throughput) and "winograd-layers" (F(2x2,3x3) against F(4x4,3x3) on the networks' 3x3 layers).
#include <immintrin.h>
#include <omp.h>
#include <sys/resource.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "hw1/backend/cpu/winograd4.hpp"
#include "hw1/models.hpp"
#include "hw1/train/cli.hpp"
#include "bench_common.hpp"
#include "cpu_rows.hpp"
#include "hw1/train/loss.hpp"
#include "hw1/train/optimizer.hpp"

namespace {

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;
}

using hw1::bench::time_it;

void report(const std::string& row, double batch, const std::vector<double>& t, double extra_gflops = 0) {
  const double median = t[t.size() / 2];
  std::printf("{\"row\": \"%s\", \"impl\": \"hw1\", \"batch\": %g, \"median_s\": %.6f, \"min_s\": %.6f, "
              "\"img_per_s\": %.4f, \"peak_rss_mib\": %.1f, \"threads\": %d, \"gflops\": %.2f, \"blas\": \"%s\"}\n",
              row.c_str(), batch, median, t.front(), batch / median, peak_rss_mib(), omp_get_max_threads(),
              extra_gflops, hw1::cpu::blas_name().c_str());
}

template <class Net>
void run_net(Net& net, const std::string& row, bool train, std::size_t batch, std::size_t size, int warmup, int iters,
             int classes) {
  hw1::Tensor x = hw1::empty({batch, 3, size, size});
  std::mt19937 rng(0);
  std::normal_distribution<float> d;
  for (auto& v : x) v = d(rng);
  if (!train) {
    net.eval();
    net.set_record(false);
    report(row, double(batch), time_it([&] { (void)net.forward(x); }, warmup, iters));
    return;
  }
  net.train(true);
  net.set_record(true);
  net.set_input_grad(false);  // as on PyTorch's side, whose input does not require grad
  hw1::OptimizerConfig oc;
  oc.name = "sgd";
  oc.momentum = 0.9;
  auto opt = hw1::make_optimizer(oc);
  std::vector<std::int64_t> target;
  auto step = [&] {
    hw1::Tensor y = net.forward(x);
    if (target.empty()) target = hw1::bench::cyclic_targets(y, classes);
    auto l = hw1::cross_entropy(y, target);
    net.zero_grad();
    net.backward(l.grad);
    auto& p = net.params();
    opt->step(p.values().data(), p.grads().data(), p.values().size(), 1e-4);
  };
  report(row, double(batch), time_it(step, warmup, iters));
}

// 2048^3 float GEMM through hw1's gemm() (OpenBLAS where built with it, else Eigen), on all threads: the
// machine's practical sgemm rate.
void sgemm(int warmup, int iters) {
  const int n = 2048;
  std::vector<float> a(std::size_t(n) * n), b(a.size()), c(a.size());
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  for (auto& v : a) v = d(rng);
  for (auto& v : b) v = d(rng);
  using hw1::cpu::mat;
  auto t = time_it([&] { hw1::cpu::gemm(mat(c.data(), n, n), mat(a.data(), n, n), mat(b.data(), n, n), false); },
                   warmup, iters);
  report("sgemm", 1, t, 2.0 * n * n * n / t[t.size() / 2] / 1e9);
}

// 2048^3 through the packed GEMM the convolutions use (pgemm.hpp), on all threads as conv2d splits it: the team
// packs B's rows into panels, then each thread multiplies its share of A's rows. Packing is timed.
void pgemm_row(int warmup, int iters) {
  namespace pg = hw1::cpu::pgemm;
  if (!pg::enabled()) throw hw1::Error("pgemm: the packed GEMM is not in this build (no AVX-512F) or HW1_PGEMM=0");
  const int n = 2048;
  std::vector<float> a(std::size_t(n) * n), b(a.size()), c(a.size()), bp(std::size_t(pg::packed_size(n, n)));
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  for (auto& v : a) v = d(rng);
  for (auto& v : b) v = d(rng);
  auto t = time_it(
      [&] {
#pragma omp parallel
        {
          const auto [r0, r1] = hw1::cpu::detail::my_share(n);
          pg::pack_rows(b.data(), n, n, n, r0, r1, bp.data());
#pragma omp barrier
          pg::gemm(r1 - r0, n, n, a.data() + r0 * n, n, false, bp.data(), c.data() + r0 * n, n, false);
        }
      },
      warmup, iters);
  report("pgemm", 1, t, 2.0 * n * n * n / t[t.size() / 2] / 1e9);
}

// Independent FMA chains on every thread: the cores' peak float FMA rate (2 flops per lane).
void fma_peak(int warmup, int iters) {
  const long reps = 20'000'000;
  auto body = [&] {
#pragma omp parallel
    {
// Twelve independent chains (2 FMA pipes x 4-cycle latency need 8), one opaque asm per round so that the
// compiler can neither fold the recurrences nor order the chains' FMAs one after another.
#if defined(__AVX512F__)
#define HW1_V __m512
#define HW1_SET _mm512_set1_ps
#define HW1_FMA _mm512_fmadd_ps
#define HW1_SUM(v) _mm512_reduce_add_ps(v)
#else
#define HW1_V __m256
#define HW1_SET _mm256_set1_ps
#define HW1_FMA _mm256_fmadd_ps
#define HW1_SUM(v) [](__m256 x) { alignas(32) float t[8]; _mm256_store_ps(t, x); float r = 0; for (float f : t) r += f; return r; }(v)
#endif
      HW1_V a0 = HW1_SET(1.0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0,
            a10 = a0, a11 = a0;
      const HW1_V m = HW1_SET(0.999999f), k = HW1_SET(1e-7f);
      for (long r = 0; r < reps; ++r) {
        a0 = HW1_FMA(a0, m, k), a1 = HW1_FMA(a1, m, k), a2 = HW1_FMA(a2, m, k), a3 = HW1_FMA(a3, m, k);
        a4 = HW1_FMA(a4, m, k), a5 = HW1_FMA(a5, m, k), a6 = HW1_FMA(a6, m, k), a7 = HW1_FMA(a7, m, k);
        a8 = HW1_FMA(a8, m, k), a9 = HW1_FMA(a9, m, k), a10 = HW1_FMA(a10, m, k), a11 = HW1_FMA(a11, m, k);
        asm volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5), "+x"(a6), "+x"(a7), "+x"(a8),
                     "+x"(a9), "+x"(a10), "+x"(a11));
      }
      const float s = HW1_SUM(a0) + HW1_SUM(a1) + HW1_SUM(a2) + HW1_SUM(a3) + HW1_SUM(a4) + HW1_SUM(a5) +
                      HW1_SUM(a6) + HW1_SUM(a7) + HW1_SUM(a8) + HW1_SUM(a9) + HW1_SUM(a10) + HW1_SUM(a11);
#undef HW1_V
#undef HW1_SET
#undef HW1_FMA
#undef HW1_SUM
      volatile float sink = s;
      (void)sink;
    }
  };
#if defined(__AVX512F__)
  const double lanes = 16;
#else
  const double lanes = 8;
#endif
  auto t = time_it(body, warmup, iters);
  report("fma-peak", 1, t, 2.0 * lanes * 12 * double(reps) * omp_get_max_threads() / t[t.size() / 2] / 1e9);
}

// Winograd F(2x2,3x3) against F(4x4,3x3) on the networks' 3x3 layer shapes, one JSON line per layer: the fastest
// of `iters` calls each (alternating), which one conv2d takes (worthwhile4), and max |F4 - F2| / max |F2|.
void winograd_layers(int warmup, int iters) {
#if defined(__AVX512F__)
  namespace wg = hw1::cpu::winograd;
  struct L {
    const char* name;
    int n, c, h, w, o, pad, dil;
  };
  const L layers[] = {{"resnet224.layer1", 8, 64, 56, 56, 64, 1, 1},      {"resnet224.layer2", 8, 128, 28, 28, 128, 1, 1},
                      {"resnet224.layer3", 8, 256, 14, 14, 256, 1, 1},    {"resnet224.layer4", 8, 512, 7, 7, 512, 1, 1},
                      {"deeplab512.layer3", 1, 256, 64, 64, 256, 2, 2},   {"deeplab512.layer4", 1, 512, 64, 64, 512, 4, 4},
                      {"deeplab256b2.layer3", 2, 256, 32, 32, 256, 2, 2}, {"deeplab256b2.layer4", 2, 512, 32, 32, 512, 4, 4},
                      {"fcn512.conv1_2", 1, 64, 512, 512, 64, 1, 1},      {"fcn512.conv3_2", 1, 256, 128, 128, 256, 1, 1}};
  for (const L& l : layers) {
    const hw1::cpu::Conv2dShape s{l.n, l.c, l.h, l.w, l.o, 3, 3, 1, 1, l.pad, l.pad, l.dil, l.dil};
    std::mt19937 rng(1);
    std::normal_distribution<float> nd;
    std::vector<float> x(std::size_t(s.n) * s.cin * s.h * s.w), w(std::size_t(s.cout) * s.cin * 9);
    for (auto& v : x) v = nd(rng);
    for (auto& v : w) v = nd(rng) / std::sqrt(9.f * float(s.cin));
    std::vector<float> y2(std::size_t(s.n) * s.cout * s.out_h() * s.out_w()), y4(y2.size());
    double t2 = 1e30, t4 = 1e30;
    for (int i = 0; i < warmup + iters; ++i) {
      const auto a = time_it([&] { wg::forward(s, x.data(), w.data(), nullptr, nullptr, false, y2.data()); }, 0, 1);
      const auto b = time_it([&] { wg::forward4(s, x.data(), w.data(), nullptr, nullptr, false, y4.data()); }, 0, 1);
      if (i >= warmup) t2 = std::min(t2, a[0]), t4 = std::min(t4, b[0]);
    }
    double num = 0, den = 0;
    for (std::size_t i = 0; i < y2.size(); ++i)
      num = std::max(num, double(std::abs(y2[i] - y4[i]))), den = std::max(den, double(std::abs(y2[i])));
    std::printf("{\"row\": \"winograd-layers\", \"layer\": \"%s\", \"f2_ms\": %.3f, \"f4_ms\": %.3f, \"f2_over_f4\": %.2f, "
                "\"worthwhile4\": %s, \"utilization4\": %.2f, \"tiles4\": %ld, \"rel_diff\": %.1e, \"threads\": %d}\n",
                l.name, t2 * 1e3, t4 * 1e3, t2 / t4, wg::worthwhile4(s) ? "true" : "false", wg::utilization4(s),
                long(wg::tile_total4(s)), num / den, omp_get_max_threads());
  }
#else
  (void)warmup, (void)iters;
  throw hw1::UsageError("winograd-layers needs an AVX-512 build");
#endif
}

}  // namespace

int main(int argc, char** argv) {
  const std::string usage =
      "usage: hw1-bench --row NAME [--iters N] [--warmup W]\n"
      "  NAME: resnet101-infer-32, resnet101-train-32, resnet101-train-224, fcn32s-infer-512, fcn32s-train-256,\n"
      "        deeplabv3-infer-512, deeplabv3-train-256, any <net>-<infer|train>-<size>[-b<batch>], sgemm, pgemm,\n"
      "        fma-peak, winograd-layers (F(2x2) against F(4x4) per 3x3 layer shape)\n";
  return hw1::run_main("hw1-bench", usage, [&] {
    hw1::Cli cli(argc, argv, {"--row", "--iters", "--warmup"}, {}, usage);
    const std::string row = cli.required("--row");
    const int iters = int(cli.integer("--iters", 5, 1, 1000000)), warmup = int(cli.integer("--warmup", 1, 0, 1000000));
    if (row == "sgemm") return sgemm(warmup, iters), 0;
    if (row == "pgemm") return pgemm_row(warmup, iters), 0;
    if (row == "fma-peak") return fma_peak(warmup, iters), 0;
    if (row == "winograd-layers") return winograd_layers(warmup, iters), 0;
    const auto r = hw1::bench::parse_row(row);
    const bool train = r.train;
    const std::size_t size = r.size;
    const hw1::ModelInfo* info = hw1::find_model(r.net);
    if (!info) throw hw1::UsageError("unknown network in row '" + row + "' (networks: " + hw1::model_names(", ") + ")");
    const bool classifier = info->task == hw1::Task::classification;
    const std::size_t batch = hw1::bench::cpu_row_batch(r, classifier);
    const int k = hw1::bench::cpu_row_classes(classifier);
    hw1::with_model<hw1::backend::cpu, int>(r.net, [&]<class Net>(std::type_identity<Net>) {
      Net net(hw1::ModelOptions{.num_classes = k});
      run_net(net, row, train, batch, size, warmup, iters, k);
      return 0;
    });
    return 0;
  });
}
