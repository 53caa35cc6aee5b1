#define BOOST_TEST_MODULE gpu_train
#include <boost/test/unit_test.hpp>

#include "gpu/gpu_main.hpp"
#include "gpu/gpu_testing.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <vector>

#include "hw1/backend/cuda/train.cuh"
#include "hw1/data/synthetic.hpp"
#include "hw1/train/checkpoint.hpp"

// The trainers' GPU pieces against their CPU counterparts: the device optimizers (every variant, several steps,
// state files interchangeable), the device loss, mIoU counts and fp16 gradient check, the 16-bit convolutions of
// mixed precision; then the real programs: hw1-train-segmenter / hw1-train-classifier with --device cuda against
// --device cpu on the same data and seed, --resume across devices, hw1-predict --device cuda, fp16 / bf16 runs.
namespace fs = std::filesystem;
namespace {
using V = std::vector<float>;
using hw1::gpu::DeviceBuffer;
using GpuOps = hw1::TrainOps<hw1::cuda>;
using CpuOps = hw1::TrainOps<hw1::backend::cpu>;

using hw1::gpu_test::dev;
using hw1::gpu_test::rel;
using hw1::gpu_test::rnd;
double max_abs_diff(const V& a, const V& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, double(std::abs(a[i] - b[i])));
  return m;
}

// The same optimizer on both sides, three steps with fresh gradients and a changing learning rate: parameters
// and state agree (the kernels repeat the CPU's float operations in order, so up to the last bit is expected;
// 1e-6 relative is allowed). Then the device state saved and loaded by a CPU optimizer, and back.
void optimizer_case(const hw1::OptimizerConfig& c) {
  BOOST_TEST_CONTEXT("optimizer " << c.name << " momentum " << c.momentum << " nesterov " << c.nesterov << " wd "
                                  << c.weight_decay) {
    const std::size_t n = 100003;  // not a multiple of any block or chunk size
    V p = rnd(n, 1);
    auto P = dev(p);
    auto cpu = hw1::make_optimizer(c);
    auto gpu = GpuOps::make_optimizer(c);
    for (int s = 0; s < 3; ++s) {
      const V g = rnd(n, 10 + s, -2, 2);
      auto G = dev(g);
      const double lr = 0.01 * (s + 1);
      cpu->step(p.data(), g.data(), n, lr);
      gpu->step(P.data(), G.data(), n, lr);
    }
    const V pg = P.to_vector();
    BOOST_TEST(rel(p, pg) < 1e-6);
    BOOST_TEST_MESSAGE(c.name << ": max |cpu - gpu| after 3 steps " << max_abs_diff(p, pg));
    BOOST_TEST(gpu->steps() == 3);
    // state files: the device writes what the CPU writes
    hw1::SafeTensorsWriter wc, wg;
    cpu->save_state(wc);
    gpu->save_state(wg);
    const fs::path fc = fs::temp_directory_path() / ("hw1-gpu-opt-cpu-" + std::to_string(getpid()) + ".safetensors");
    const fs::path fg = fs::temp_directory_path() / ("hw1-gpu-opt-gpu-" + std::to_string(getpid()) + ".safetensors");
    wc.write(fc.string());
    wg.write(fg.string());
    const auto sc = hw1::SafeTensors::read(fc.string()), sg = hw1::SafeTensors::read(fg.string());
    BOOST_TEST(sc.names() == sg.names(), boost::test_tools::per_element());
    BOOST_TEST(sg.metadata.at("optimizer") == c.name);
    for (const auto& name : sc.names()) {
      if (name == "optimizer.step") continue;
      V a(n), b(n);
      sc.copy_to(name, a.data());
      sg.copy_to(name, b.data());
      BOOST_TEST(rel(a, b) < 1e-6, name);
    }
    // GPU state -> CPU optimizer and CPU state -> GPU optimizer: one more identical step on both.
    auto cpu2 = hw1::make_optimizer(c);
    auto gpu2 = GpuOps::make_optimizer(c);
    cpu2->load_state(sg, n);
    gpu2->load_state(sc, n);
    V p2 = p;
    auto P2 = dev(p);
    const V g = rnd(n, 99, -2, 2);
    auto G = dev(g);
    cpu2->step(p2.data(), g.data(), n, 0.02);
    gpu2->step(P2.data(), G.data(), n, 0.02);
    BOOST_TEST(rel(p2, P2.to_vector()) < 1e-6);
    BOOST_CHECK_THROW(gpu2->load_state(sc, n + 1), hw1::Error);  // another model's state
    fs::remove(fc);
    fs::remove(fg);
  }
}

// The programs this test drives, found at run time, so the suite runs on a machine that did not configure it (a
// copied build tree or a bundle): $HW1_BIN_DIR/<name> when set, else beside this test program, else in ../examples
// or ../bin relative to it (the build tree's and the install's layouts). Not found is a failure that says where it
// looked.
std::string program(const std::string& name) {
  std::vector<fs::path> dirs;
  if (const char* d = std::getenv("HW1_BIN_DIR"); d && *d) dirs.emplace_back(d);
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec).parent_path();
  if (!ec) dirs.insert(dirs.end(), {self, self / ".." / "examples", self / ".." / "bin"});
  std::string looked;
  for (const auto& d : dirs) {
    if (fs::is_regular_file(d / name, ec)) return (d / name).lexically_normal().string();
    looked += " " + d.string();
  }
  BOOST_FAIL(name << " not found (looked in" << looked << "); set HW1_BIN_DIR to the folder that holds it");
  return {};
}
const std::string& segmenter() {
  static const std::string p = program("hw1-train-segmenter");
  return p;
}
const std::string& classifier() {
  static const std::string p = program("hw1-train-classifier");
  return p;
}
const std::string& predictor() {
  static const std::string p = program("hw1-predict");
  return p;
}

// Runs a program, stdout and stderr into `log`; the exit status.
int run(const std::string& exe, const std::vector<std::string>& args, const fs::path& log) {
  std::string cmd = "'" + exe + "'";
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " > '" + log.string() + "' 2>&1";
  const int r = std::system(cmd.c_str());
  return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}
std::string text(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}
fs::path scratch(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("hw1-test-gpu-train-" + std::to_string(getpid())) / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}
struct Cleanup {
  ~Cleanup() {
    std::error_code ec;
    fs::remove_all(fs::temp_directory_path() / ("hw1-test-gpu-train-" + std::to_string(getpid())), ec);
  }
};
const fs::path& seg_data() {
  static const fs::path root = [] {
    auto r = scratch("seg");
    hw1::make_segmentation_set(r.string(), 8, 4, 64, 9);
    return r;
  }();
  return root;
}
std::vector<double> train_losses(const fs::path& run_dir) {
  const auto log = hw1::MetricsLog::read((run_dir / "metrics.csv").string(), 1e9);
  std::vector<double> l;
  for (const auto& r : log.rows) l.push_back(r[1]);
  return l;
}
}  // namespace

BOOST_GLOBAL_FIXTURE(Cleanup);

BOOST_AUTO_TEST_CASE(device_optimizers_match_cpu) {
  optimizer_case({.name = "sgd", .momentum = 0});
  optimizer_case({.name = "sgd", .momentum = 0, .weight_decay = 1e-2});
  optimizer_case({.name = "sgd", .momentum = 0.9, .weight_decay = 1e-4});
  optimizer_case({.name = "sgd", .momentum = 0.9, .dampening = 0.1});
  optimizer_case({.name = "sgd", .momentum = 0.9, .weight_decay = 1e-4, .nesterov = true});
  optimizer_case({.name = "adam", .weight_decay = 1e-3});
  optimizer_case({.name = "adamw", .weight_decay = 1e-2});
  BOOST_CHECK_THROW(GpuOps::make_optimizer({.name = "rmsprop"}), hw1::Error);
}

BOOST_AUTO_TEST_CASE(device_loss_and_miou_match_cpu) {
  const int n = 3, k = 7, h = 9, w = 11, hw = h * w;
  const V z = rnd(std::size_t(n) * k * hw, 1, -3, 3);
  std::vector<std::int64_t> t(std::size_t(n) * hw);
  std::mt19937 r(2);
  for (auto& v : t) v = std::int64_t(r() % 8) == 7 ? -100 : std::int64_t(r() % k);  // some ignored
  const std::vector<float> wt{1, 2, 0.5f, 1, 3, 1, 0};
  hw1::Tensor zc = hw1::empty<float>({std::size_t(n), std::size_t(k), std::size_t(h), std::size_t(w)});
  std::copy(z.begin(), z.end(), zc.data());
  const auto zg = hw1::gpu::to_device(zc);
  const auto tg = GpuOps::targets(t);
  for (double scale : {1.0, 1024.0}) {
    const auto c = CpuOps::cross_entropy(zc, t, wt, scale);
    const auto g = GpuOps::cross_entropy(zg, tg, wt, scale);
    BOOST_TEST(std::abs(c.loss - g.loss) < 1e-5 * std::abs(c.loss));
    const auto gh = g.grad.to_host();
    BOOST_TEST(rel(V(c.grad.begin(), c.grad.end()), V(gh.begin(), gh.end())) < 1e-5);
  }
  const auto nograd = GpuOps::cross_entropy(zg, tg, {}, 1, false);
  BOOST_TEST(nograd.grad.size() == 0u);
  BOOST_TEST(std::abs(nograd.loss - CpuOps::cross_entropy(zc, t, {}, 1, false).loss) < 1e-5 * nograd.loss);
  // mIoU counts (targets 0..6 here; 6 = Unknown)
  std::vector<std::int64_t> seg(t.size());
  for (auto& v : seg) v = std::int64_t(r() % 7);
  hw1::MeanIoU mc, mg;
  CpuOps::update_miou(mc, zc, seg);
  GpuOps::update_miou(mg, zg, GpuOps::targets(seg));
  BOOST_TEST(mc.predicted() == mg.predicted(), boost::test_tools::per_element());
  BOOST_TEST(mc.actual() == mg.actual(), boost::test_tools::per_element());
  BOOST_TEST(mc.true_positive() == mg.true_positive(), boost::test_tools::per_element());
  // the classifier's arg-max
  hw1::Tensor y = hw1::empty<float>({5, 50});
  const V yv = rnd(250, 4);
  std::copy(yv.begin(), yv.end(), y.data());
  BOOST_TEST(CpuOps::argmax(y) == GpuOps::argmax(hw1::gpu::to_device(y)), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(fp16_gradient_check_and_loss_scaler) {
  hw1::ParamSet<float> ps;
  ps.add("w", {1000}, true, {hw1::Init::ones, 0});
  ps.allocate();
  hw1::cuda::attach_params(ps);
  hw1::ParamSet<float> host;
  host.add("w", {1000}, true, {hw1::Init::ones, 0});
  host.allocate();
  V g = rnd(1000, 5, -1000, 1000);
  std::copy(g.begin(), g.end(), ps.grads().begin());
  std::copy(g.begin(), g.end(), host.grads().begin());
  ps.to_device();
  BOOST_TEST(GpuOps::unscale_grads(ps, 1.0 / 1024));
  BOOST_TEST(CpuOps::unscale_grads(host, 1.0 / 1024));
  ps.to_host();
  BOOST_TEST(ps.grads() == host.grads(), boost::test_tools::per_element());
  ps.grads()[417] = INFINITY;
  ps.to_device();
  BOOST_TEST(!GpuOps::unscale_grads(ps, 0.5));
  ps.grads()[417] = NAN;
  ps.to_device();
  BOOST_TEST(!GpuOps::unscale_grads(ps, 0.5));

  hw1::LossScaler s;
  s.enabled = true;
  BOOST_TEST(s.grad_scale() == 65536.0);
  BOOST_TEST(!s.update(false));
  BOOST_TEST(s.scale == 32768.0);
  for (int i = 0; i < 1999; ++i) BOOST_TEST_REQUIRE(s.update(true));
  BOOST_TEST(s.scale == 32768.0);
  BOOST_TEST(s.update(true));
  BOOST_TEST(s.scale == 65536.0);
  BOOST_TEST(s.skipped == 1);
}

// fp16 / bf16 convolutions: close to the float32 CPU result, but not equal to it (the 16-bit path really ran).
BOOST_AUTO_TEST_CASE(mixed_precision_convolutions) {
  namespace g = hw1::gpu::ops;
  const hw1::Conv2dShape s{2, 16, 20, 18, 32, 3, 3, 1, 1, 2, 2, 2, 2};
  const auto xs = std::size_t(s.n) * s.cin * s.h * s.w, ws = std::size_t(s.cout) * s.cin * s.kh * s.kw,
             ys = std::size_t(s.n) * s.cout * s.out_h() * s.out_w();
  V x = rnd(xs, 1), w = rnd(ws, 2, -0.1f, 0.1f), b = rnd(s.cout, 3), dy = rnd(ys, 4), y(ys), dx(xs), dw(ws, 0.5f),
    db(s.cout, 0);
  hw1::cpu::conv2d_forward<float>(s, x.data(), w.data(), b.data(), y.data());
  hw1::cpu::conv2d_backward<float>(s, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data());
  for (auto [p, tol] : {std::pair{hw1::gpu::Precision::fp16, 2e-3}, std::pair{hw1::gpu::Precision::bf16, 1.5e-2}}) {
    BOOST_TEST_CONTEXT(hw1::gpu::precision_name(p)) {
      hw1::gpu::precision() = p;
      auto X = dev(x), W = dev(w), B = dev(b), DY = dev(dy), DW = dev(V(ws, 0.5f)), DB = dev(V(s.cout, 0));
      DeviceBuffer<float> Y(ys), DX(xs);
      g::conv2d_forward<float>(s, X.data(), W.data(), B.data(), Y.data());
      g::conv2d_backward<float>(s, X.data(), W.data(), DY.data(), DX.data(), DW.data(), DB.data());
      hw1::gpu::precision() = hw1::gpu::Precision::fp32;
      for (auto [cpu, gpu, name] : {std::tuple{&y, &Y, "y"}, std::tuple{&dx, &DX, "dx"}, std::tuple{&dw, &DW, "dw"}}) {
        const double e = rel(*cpu, gpu->to_vector());
        BOOST_TEST_MESSAGE(hw1::gpu::precision_name(p) << " " << name << " relative error " << e);
        BOOST_TEST(e < tol, name);
        BOOST_TEST(e > 1e-6, name << ": as exact as float32, so the 16-bit path did not run");
      }
      BOOST_TEST(rel(db, DB.to_vector()) < 1e-5);  // bias gradient: float32 in every mode
    }
  }
  // A transposed convolution (FCN32s' upscore) in fp16.
  const hw1::ConvTranspose2dShape t{2, 4, 3, 3, 3, 8, 8, 4, 4, 2, 2, 0, 0, 1, 1};
  const auto txs = std::size_t(t.n) * t.cin * t.h * t.w, tws = std::size_t(t.cin) * t.cout * t.kh * t.kw,
             tys = std::size_t(t.n) * t.cout * t.out_h() * t.out_w();
  V tx = rnd(txs, 5), tw = rnd(tws, 6), ty(tys);
  hw1::cpu::conv_transpose2d_forward<float>(t, tx.data(), tw.data(), nullptr, ty.data());
  hw1::gpu::precision() = hw1::gpu::Precision::fp16;
  auto TX = dev(tx), TW = dev(tw);
  DeviceBuffer<float> TY(tys);
  g::conv_transpose2d_forward<float>(t, TX.data(), TW.data(), nullptr, TY.data());
  hw1::gpu::precision() = hw1::gpu::Precision::fp32;
  BOOST_TEST(rel(ty, TY.to_vector()) < 2e-3);
}

// The real trainer on the GPU: DeepLabv3 from scratch, same data, seed and options as on the CPU. The GPU's
// per-epoch training loss follows the CPU's (float32, TF32 off) and falls.
BOOST_AUTO_TEST_CASE(segmenter_on_gpu_follows_cpu) {
  const auto c = scratch("seg-cpu"), g = scratch("seg-gpu");
  const std::vector<std::string> common{"--model",      "deeplabv3", "--train", (seg_data() / "train").string(),
                                        "--val",        (seg_data() / "validation").string(),
                                        "--epochs",     "4",         "--batch-size", "4", "--optimizer", "sgd",
                                        "--lr",         "0.01",      "--seed",  "3", "--workers", "1", "--force"};
  auto args = [&](const fs::path& out, const std::string& device) {
    auto a = common;
    a.insert(a.end(), {"--out", out.string(), "--device", device});
    return a;
  };
  BOOST_REQUIRE_MESSAGE(run(segmenter(), args(c, "cpu"), c / "log") == 0, text(c / "log"));
  BOOST_REQUIRE_MESSAGE(run(segmenter(), args(g, "cuda"), g / "log") == 0, text(g / "log"));
  const auto lc = train_losses(c), lg = train_losses(g);
  BOOST_REQUIRE(lc.size() == 4u);
  BOOST_REQUIRE(lg.size() == 4u);
  BOOST_TEST_MESSAGE("train loss cpu " << lc[0] << " -> " << lc[3] << ", gpu " << lg[0] << " -> " << lg[3]);
  BOOST_TEST(lg[3] < 0.95 * lg[0]);
  for (std::size_t e = 0; e < 4; ++e) BOOST_TEST(std::abs(lc[e] - lg[e]) < (0.01 + 0.02 * double(e)) * lc[0], e);
  // The checkpoint is the CPU's format: same metadata, same tensors (names, shapes) as the CPU run's.
  const auto fc = hw1::SafeTensors::read((c / "epoch-004.safetensors").string());
  const auto fg = hw1::SafeTensors::read((g / "epoch-004.safetensors").string());
  BOOST_TEST(hw1::CheckpointInfo::from(fg).model == "deeplabv3");
  BOOST_TEST(fc.names() == fg.names(), boost::test_tools::per_element());
  for (const auto& n : fc.names()) BOOST_TEST((fc.info(n).shape == fg.info(n).shape), n);
}

// --resume across devices (GPU -> CPU -> GPU), then hw1-predict --device cuda against --device cpu.
BOOST_AUTO_TEST_CASE(resume_across_devices_and_predict) {
  const auto d = scratch("cross");
  const std::vector<std::string> a{"--model", "fcn32s", "--train", (seg_data() / "train").string(), "--val",
                                   (seg_data() / "validation").string(), "--out", d.string(), "--epochs", "1",
                                   "--batch-size", "4", "--optimizer", "adamw", "--lr", "1e-4", "--seed", "5",
                                   "--workers", "1", "--force", "--device", "cuda"};
  BOOST_REQUIRE_MESSAGE(run(segmenter(), a, d / "log1") == 0, text(d / "log1"));
  BOOST_REQUIRE_MESSAGE(run(segmenter(), {"--resume", d.string(), "--epochs", "2", "--device", "cpu"},
                            d / "log2") == 0,
                        text(d / "log2"));
  BOOST_REQUIRE_MESSAGE(run(segmenter(), {"--resume", d.string(), "--epochs", "3", "--device", "cuda:0"},
                            d / "log3") == 0,
                        text(d / "log3"));
  BOOST_TEST(train_losses(d).size() == 3u);
  BOOST_TEST(text(d / "log2").find("resuming") != std::string::npos);
  const auto mc = d / "masks-cpu", mg = d / "masks-gpu";
  const std::string ck = (d / "epoch-003.safetensors").string(), images = (seg_data() / "validation").string();
  BOOST_REQUIRE(run(predictor(), {"--checkpoint", ck, "--images", images, "--masks", mc.string()}, d / "p1") == 0);
  BOOST_REQUIRE_MESSAGE(run(predictor(), {"--checkpoint", ck, "--images", images, "--masks", mg.string(), "--device",
                                          "cuda"},
                            d / "p2") == 0,
                        text(d / "p2"));
  std::size_t same = 0, total = 0;
  for (const auto& e : fs::directory_iterator(mc)) {
    const auto a = hw1::read_image(e.path().string(), 3), b = hw1::read_image((mg / e.path().filename()).string(), 3);
    BOOST_REQUIRE(a.pixels.size() == b.pixels.size());
    for (std::size_t i = 0; i < a.pixels.size(); ++i) same += a.pixels[i] == b.pixels[i];
    total += a.pixels.size();
  }
  BOOST_TEST(total > 0u);
  BOOST_TEST(double(same) >= 0.99 * double(total));  // rounding may flip a few near-tie pixels
}

// The classifier on the GPU, float32 and each other precision (one case each, so each ctest entry stays short):
// runs finish, losses are finite and the first epoch's is near float32's.
std::vector<double> classifier_losses(const std::string& precision) {
  static const fs::path data = [] {
    const auto d = scratch("cls");
    hw1::make_classification_set(d.string(), 3, 8, 4, 7);
    return d;
  }();
  const auto out = scratch("cls-" + precision);
  const std::vector<std::string> a{"--train", (data / "train_50").string(), "--val", (data / "val_50").string(),
                                   "--out", out.string(), "--epochs", "3", "--batch-size", "8", "--optimizer",
                                   "sgd", "--lr", "0.01", "--seed", "1", "--workers", "1", "--force", "--device",
                                   "cuda", "--precision", precision};
  BOOST_REQUIRE_MESSAGE(run(classifier(), a, out / "log") == 0, precision << ": " << text(out / "log"));
  const auto l = train_losses(out);
  BOOST_REQUIRE(l.size() == 3u);
  for (double v : l) BOOST_TEST(std::isfinite(v), precision);
  BOOST_TEST_MESSAGE(precision << ": train loss " << l[0] << " -> " << l[2]);
  return l;
}
void classifier_follows_float32(const std::string& precision) {
  const auto f = classifier_losses("float32");
  const auto l = classifier_losses(precision);
  BOOST_TEST(std::abs(l[0] - f[0]) < 0.05 * f[0], precision);
}
BOOST_AUTO_TEST_CASE(classifier_tf32_follows_float32) { classifier_follows_float32("tf32"); }
BOOST_AUTO_TEST_CASE(classifier_fp16_follows_float32) { classifier_follows_float32("fp16"); }
BOOST_AUTO_TEST_CASE(classifier_bf16_follows_float32) { classifier_follows_float32("bf16"); }

// DeepLabv3 in fp16 through the segmenter (loss scaling, the auxiliary head): finishes with finite losses.
BOOST_AUTO_TEST_CASE(segmenter_fp16_with_aux_loss) {
  const auto seg = scratch("seg-fp16");
  const std::vector<std::string> a{"--model", "deeplabv3", "--aux-loss", "0.4", "--train",
                                   (seg_data() / "train").string(), "--val", (seg_data() / "validation").string(),
                                   "--out", seg.string(), "--epochs", "2", "--batch-size", "4", "--seed", "3",
                                   "--workers", "1", "--force", "--device", "cuda", "--precision", "fp16"};
  BOOST_REQUIRE_MESSAGE(run(segmenter(), a, seg / "log") == 0, text(seg / "log"));
  for (double v : train_losses(seg)) BOOST_TEST(std::isfinite(v));
  BOOST_TEST(hw1::SafeTensors::read((seg / "optimizer.safetensors").string()).metadata.count("loss_scale") == 1u);
}
