// Optimizers against hand-computed torch.optim updates on a 3-element vector, checkpoint round trips (a resumed
// optimizer must continue bit for bit), load_state's refusals, and (when Debian's python3 has torch) 5 steps of
// each optimizer against torch.optim itself.
#define BOOST_TEST_MODULE optimizer
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <unistd.h>

#include "hw1/train/optimizer.hpp"

using namespace hw1;
namespace fs = std::filesystem;

namespace {

// p0 and the gradients of steps 1..3 shared by the hand computations.
const std::vector<float> P0 = {1.0f, -2.0f, 0.5f};
const std::vector<std::vector<float>> G = {{0.5f, -1.0f, 2.0f}, {1.0f, 0.0f, -1.0f}, {-0.5f, 0.25f, 0.0f}};

OptimizerConfig config(std::string name, double momentum = 0, double dampening = 0, double wd = 0,
                       bool nesterov = false) {
  OptimizerConfig c;
  c.name = std::move(name);
  c.momentum = momentum;
  c.dampening = dampening;
  c.weight_decay = wd;
  c.nesterov = nesterov;
  return c;
}

// Runs `steps` steps at lr 0.1 and returns p after each.
std::vector<std::vector<float>> run(const OptimizerConfig& c, int steps) {
  auto opt = make_optimizer(c);
  std::vector<float> p = P0;
  std::vector<std::vector<float>> out;
  for (int s = 0; s < steps; ++s) {
    opt->step(p.data(), G[s].data(), p.size(), 0.1);
    out.push_back(p);
  }
  BOOST_TEST(opt->steps() == steps);
  return out;
}

// float arithmetic over a handful of operations: a few ulps of values of order 1
void check_near(const std::vector<float>& got, const std::vector<double>& want, double tol = 2e-6) {
  BOOST_REQUIRE_EQUAL(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    BOOST_TEST(std::abs(got[i] - want[i]) <= tol, "element " << i << ": got " << got[i] << ", want " << want[i]);
}

auto message_has(const std::string& part) {
  return [part](const Error& e) {
    const bool ok = std::string(e.what()).find(part) != std::string::npos;
    if (!ok) BOOST_TEST_MESSAGE("message was: " << e.what());
    return ok;
  };
}

struct TempDir {
  fs::path dir = fs::temp_directory_path() / ("hw1_optim_" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(dir); }
  ~TempDir() { fs::remove_all(dir); }
  std::string file(const std::string& n) const { return (dir / n).string(); }
};

std::vector<float> random_floats(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

std::string save(const Optimizer& opt, const std::string& path) {
  SafeTensorsWriter w;
  opt.save_state(w);
  w.write(path);
  return path;
}

}  // namespace

BOOST_AUTO_TEST_CASE(sgd_momentum_three_steps) {
  // lr 0.1, momentum 0.9. Step 1: buf = g1 = [0.5,-1,2] (first buffer is the gradient itself);
  // p = [1,-2,0.5] - 0.1 buf = [0.95,-1.9,0.3].
  // Step 2: buf = 0.9 [0.5,-1,2] + [1,0,-1] = [1.45,-0.9,0.8]; p = [0.95-0.145, -1.9+0.09, 0.3-0.08].
  // Step 3: buf = 0.9 [1.45,-0.9,0.8] + [-0.5,0.25,0] = [0.805,-0.56,0.72]; p -= 0.1 buf.
  auto p = run(config("sgd", 0.9), 3);
  check_near(p[0], {0.95, -1.9, 0.3});
  check_near(p[1], {0.805, -1.81, 0.22});
  check_near(p[2], {0.7245, -1.754, 0.148});
}

BOOST_AUTO_TEST_CASE(sgd_dampening_skips_the_first_step) {
  // momentum 0.9, dampening 0.5. Step 1: buf = g1 undamped, p = [0.95,-1.9,0.3].
  // Step 2: buf = 0.9 [0.5,-1,2] + 0.5 [1,0,-1] = [0.95,-0.9,1.3]; p = [0.95-0.095, -1.9+0.09, 0.3-0.13].
  auto p = run(config("sgd", 0.9, 0.5), 2);
  check_near(p[0], {0.95, -1.9, 0.3});
  check_near(p[1], {0.855, -1.81, 0.17});
}

BOOST_AUTO_TEST_CASE(sgd_nesterov_with_weight_decay) {
  // momentum 0.9, wd 0.1, nesterov. Step 1: d = g1 + 0.1 p0 = [0.6,-1.2,2.05]; buf = d;
  // d' = d + 0.9 buf = [1.14,-2.28,3.895]; p = p0 - 0.1 d' = [0.886,-1.772,0.1105].
  // Step 2: d = g2 + 0.1 p = [1.0886,-0.1772,-0.98895]; buf = 0.9 [0.6,-1.2,2.05] + d = [1.6286,-1.2572,0.85605];
  // d' = d + 0.9 buf = [2.55434,-1.30868,-0.218505]; p -= 0.1 d'.
  auto p = run(config("sgd", 0.9, 0, 0.1, true), 2);
  check_near(p[0], {0.886, -1.772, 0.1105});
  check_near(p[1], {0.630566, -1.641132, 0.1323505});
}

BOOST_AUTO_TEST_CASE(sgd_without_momentum_keeps_no_buffer) {
  // wd 0.1, no momentum: p = p0 - 0.1 (g1 + 0.1 p0) = [1-0.06, -2+0.12, 0.5-0.205].
  auto opt = make_optimizer(config("sgd", 0, 0, 0.1));
  std::vector<float> p = P0;
  opt->step(p.data(), G[0].data(), 3, 0.1);
  check_near(p, {0.94, -1.88, 0.295});
  TempDir tmp;
  auto f = SafeTensors::read(save(*opt, tmp.file("s.safetensors")));
  BOOST_TEST(f.names() == std::vector<std::string>{"optimizer.step"});
  BOOST_TEST(f.metadata.at("optimizer") == "sgd");
}

// Adam, lr 0.1, betas (0.9, 0.999), eps 1e-8. Step 1: m = 0.1 g1, v = 0.001 g1^2; the bias corrections 0.1 and 0.001
// give m^ = g1, v^ = g1^2, so p moves by lr * g / (|g| + 1e-8) = 0.1 sign(g) (to float precision).
// Step 2: m = 0.9 (0.1 g1) + 0.1 g2 = [0.145,-0.09,0.08]; v = 0.999 (0.001 g1^2) + 0.001 g2^2
// = [0.00124975, 0.000999, 0.004996]; bc1 = 1 - 0.9^2 = 0.19, bc2 = 1 - 0.999^2 = 0.001999;
// p -= (0.1 / 0.19) m / (sqrt(v) / sqrt(0.001999) + 1e-8).
static double adam_step2(double m, double v) { return (0.1 / 0.19) * m / (std::sqrt(v / 0.001999) + 1e-8); }

BOOST_AUTO_TEST_CASE(adam_bias_correction) {
  auto p = run(config("adam"), 2);
  check_near(p[0], {0.9, -1.9, 0.4});
  check_near(p[1], {0.9 - adam_step2(0.145, 0.00124975), -1.9 - adam_step2(-0.09, 0.000999),
                    0.4 - adam_step2(0.08, 0.004996)});
  // the same numbers to 7 digits, worked out with a calculator
  check_near(p[1], {0.8034818, -1.8329942, 0.3733663}, 3e-6);
}

BOOST_AUTO_TEST_CASE(adam_l2_weight_decay) {
  // wd 0.1 enters the gradient. Step 1: g' = g1 + 0.1 p0 = [0.6,-1.2,2.05]; still p = p0 - 0.1 sign(g').
  // Step 2: g' = g2 + 0.1 [0.9,-1.9,0.4] = [1.09,-0.19,-0.96]; m = 0.9 (0.1 [0.6,-1.2,2.05]) + 0.1 g'
  // = [0.163,-0.127,0.0885]; v = 0.999 (0.001 [0.36,1.44,4.2025]) + 0.001 [1.1881,0.0361,0.9216]
  // = [0.00154774, 0.00147466, 0.0051198975].
  auto p = run(config("adam", 0, 0, 0.1), 2);
  check_near(p[0], {0.9, -1.9, 0.4});
  check_near(p[1], {0.9 - adam_step2(0.163, 0.00154774), -1.9 - adam_step2(-0.127, 0.00147466),
                    0.4 - adam_step2(0.0885, 0.0051198975)});
}

BOOST_AUTO_TEST_CASE(adamw_decoupled_weight_decay) {
  // wd 0.1: p *= 1 - 0.1 * 0.1 = 0.99 before each Adam step; the moments see the raw gradients, so the Adam
  // moves are those of the plain Adam test. Step 1: 0.99 p0 - 0.1 sign(g1) = [0.89,-1.88,0.395].
  // Step 2: 0.99 [0.89,-1.88,0.395] = [0.8811,-1.8612,0.39105], minus the plain Adam step-2 move.
  auto p = run(config("adamw", 0, 0, 0.1), 2);
  check_near(p[0], {0.89, -1.88, 0.395});
  check_near(p[1], {0.8811 - adam_step2(0.145, 0.00124975), -1.8612 - adam_step2(-0.09, 0.000999),
                    0.39105 - adam_step2(0.08, 0.004996)});
}

BOOST_AUTO_TEST_CASE(lr_is_taken_per_step) {
  // plain SGD: p = p0 - 0.1 g1 - 0.05 g2 = [1-0.05-0.05, -2+0.1-0, 0.5-0.2+0.05]
  auto opt = make_optimizer(config("sgd"));
  std::vector<float> p = P0;
  opt->step(p.data(), G[0].data(), 3, 0.1);
  opt->step(p.data(), G[1].data(), 3, 0.05);
  check_near(p, {0.9, -1.9, 0.35});
}

BOOST_AUTO_TEST_CASE(resume_is_bit_identical) {
  TempDir tmp;
  // above the OpenMP threshold, so the parallel loop is the one exercised
  const std::size_t n = 40000;
  const auto p0 = random_floats(n, 1);
  std::vector<std::vector<float>> grads;
  for (int s = 0; s < 6; ++s) grads.push_back(random_floats(n, 100 + s));
  for (auto c : {config("sgd", 0.9, 0.1, 1e-2), config("sgd", 0.9, 0, 1e-2, true), config("sgd", 0, 0, 1e-2),
                 config("adam", 0, 0, 1e-2), config("adamw", 0, 0, 5e-2)}) {
    BOOST_TEST_CONTEXT("optimizer " << c.name << " momentum " << c.momentum << " nesterov " << c.nesterov) {
      auto a = make_optimizer(c);
      std::vector<float> pa = p0;
      for (int s = 0; s < 3; ++s) a->step(pa.data(), grads[s].data(), n, 0.01 * (s + 1));
      const auto path = save(*a, tmp.file(c.name + ".safetensors"));
      auto b = make_optimizer(c);
      b->load_state(SafeTensors::read(path), n);
      BOOST_TEST(b->steps() == 3);
      std::vector<float> pb = pa;
      for (int s = 3; s < 6; ++s) {
        a->step(pa.data(), grads[s].data(), n, 0.02);
        b->step(pb.data(), grads[s].data(), n, 0.02);
      }
      BOOST_TEST(std::memcmp(pa.data(), pb.data(), n * sizeof(float)) == 0);
      // the parallel loop computes what a serial run on a prefix computes
      auto small = make_optimizer(c);
      const std::size_t k = 1000;
      std::vector<float> ps(p0.begin(), p0.begin() + k);
      for (int s = 0; s < 6; ++s) small->step(ps.data(), grads[s].data(), k, s < 3 ? 0.01 * (s + 1) : 0.02);
      BOOST_TEST(std::memcmp(ps.data(), pa.data(), k * sizeof(float)) == 0);
    }
  }
}

BOOST_AUTO_TEST_CASE(load_state_refuses_mismatches) {
  TempDir tmp;
  std::vector<float> p = P0;
  auto adam = make_optimizer(config("adam"));
  adam->step(p.data(), G[0].data(), 3, 0.1);
  const auto adam_file = save(*adam, tmp.file("adam.safetensors"));
  const auto f = SafeTensors::read(adam_file);
  BOOST_TEST(f.info("optimizer.exp_avg").shape == Shape{3});
  BOOST_TEST(f.info("optimizer.exp_avg_sq").dtype == "F32");
  BOOST_TEST(f.info("optimizer.step").dtype == "I64");

  auto fresh = make_optimizer(config("adam"));
  BOOST_CHECK_EXCEPTION(fresh->load_state(f, 4), Error, message_has("4 trainable parameters"));
  BOOST_TEST(fresh->steps() == 0);  // a refused load changes nothing
  auto adamw = make_optimizer(config("adamw"));
  BOOST_CHECK_EXCEPTION(adamw->load_state(f, 3), Error, message_has("optimizer 'adam', but this run uses 'adamw'"));

  // SGD saved without momentum has no buffer that SGD with momentum could resume from
  auto plain = make_optimizer(config("sgd"));
  plain->step(p.data(), G[0].data(), 3, 0.1);
  const auto plain_file = SafeTensors::read(save(*plain, tmp.file("sgd.safetensors")));
  auto momentum = make_optimizer(config("sgd", 0.9));
  BOOST_CHECK_EXCEPTION(momentum->load_state(plain_file, 3), Error, message_has("optimizer.momentum_buffer"));

  // a weights-only file
  SafeTensorsWriter w;
  w.add("fc.bias", Shape{3}, P0.data());
  w.write(tmp.file("weights.safetensors"));
  BOOST_CHECK_EXCEPTION(fresh->load_state(SafeTensors::read(tmp.file("weights.safetensors")), 3), Error,
                        message_has("no optimizer state"));

  // a state of 3 values cannot be stepped with 4
  std::vector<float> p4 = {1, 2, 3, 4}, g4 = {1, 1, 1, 1};
  BOOST_CHECK_EXCEPTION(adam->step(p4.data(), g4.data(), 4, 0.1), Error, message_has("one optimizer per model"));
}

BOOST_AUTO_TEST_CASE(config_errors) {
  BOOST_CHECK_EXCEPTION(make_optimizer(config("rmsprop")), Error, message_has("sgd, adam, adamw"));
  BOOST_CHECK_EXCEPTION(make_optimizer(config("sgd", 0.9, 0.1, 0, true)), Error, message_has("nesterov"));
  BOOST_CHECK_EXCEPTION(make_optimizer(config("sgd", 0, 0, 0, true)), Error, message_has("nesterov"));
  auto c = config("adam");
  c.beta2 = 1.0;
  BOOST_CHECK_EXCEPTION(make_optimizer(c), Error, message_has("beta"));
  auto opt = make_optimizer(config("sgd"));
  std::vector<float> p = P0;
  BOOST_CHECK_EXCEPTION(opt->step(p.data(), G[0].data(), 3, -1.0), Error, message_has("learning rate"));
}

// ---- torch.optim itself (Debian's python3 with torch 1.13), if present ----

namespace {
// HW1_TORCH_PYTHON overrides the interpreter (e.g. one without torch, to see this case reported skipped).
std::string torch_python() {
  const char* p = std::getenv("HW1_TORCH_PYTHON");
  return p && *p ? p : "/usr/bin/python3";
}
bool torch_available() { return std::system((torch_python() + " -c 'import torch' >/dev/null 2>&1").c_str()) == 0; }

std::string list(const std::vector<float>& v) {
  std::ostringstream o;
  o.precision(9);
  o << '[';
  for (float x : v) o << x << ',';
  o << ']';
  return o.str();
}
}  // namespace

BOOST_AUTO_TEST_CASE(matches_torch_optim, *boost::unit_test::label("needs_torch") * boost::unit_test::precondition([](auto) { return torch_available(); })) {
  TempDir tmp;
  const std::size_t n = 7;
  const auto p0 = random_floats(n, 5);
  std::vector<std::vector<float>> grads;
  for (int s = 0; s < 5; ++s) grads.push_back(random_floats(n, 50 + s));
  const double lrs[5] = {0.1, 0.05, 0.08, 0.02, 0.1};
  struct Case {
    OptimizerConfig c;
    std::string torch;
  };
  const std::vector<Case> cases = {
      {config("sgd", 0.9, 0.2, 0.01), "torch.optim.SGD([p], lr=1, momentum=0.9, dampening=0.2, weight_decay=0.01)"},
      {config("sgd", 0.8, 0, 0.05, true), "torch.optim.SGD([p], lr=1, momentum=0.8, weight_decay=0.05, nesterov=True)"},
      {config("adam", 0, 0, 0.01), "torch.optim.Adam([p], lr=1, weight_decay=0.01)"},
      {config("adamw", 0, 0, 0.05), "torch.optim.AdamW([p], lr=1, weight_decay=0.05)"}};
  for (const auto& k : cases) {
    BOOST_TEST_CONTEXT("torch: " << k.torch) {
      std::ostringstream py;
      py << "import torch\np = torch.tensor(" << list(p0) << ", requires_grad=True)\nopt = " << k.torch << "\n"
         << "for g, lr in zip([";
      for (auto& g : grads) py << list(g) << ',';
      py << "], [";
      for (double lr : lrs) py << lr << ',';
      py << "]):\n"
         << "    opt.param_groups[0]['lr'] = lr\n    p.grad = torch.tensor(g)\n    opt.step()\n"
         << "print(' '.join(repr(x) for x in p.tolist()))\n";
      const auto script = tmp.file("ref.py");
      std::ofstream(script) << py.str();
      FILE* pipe = popen((torch_python() + " " + script).c_str(), "r");
      BOOST_REQUIRE(pipe);
      std::string out;
      char buf[4096];
      while (std::fgets(buf, sizeof buf, pipe)) out += buf;
      BOOST_REQUIRE_EQUAL(pclose(pipe), 0);
      std::istringstream in(out);
      std::vector<double> want;
      for (double x; in >> x;) want.push_back(x);
      BOOST_REQUIRE_EQUAL(want.size(), n);

      auto opt = make_optimizer(k.c);
      std::vector<float> p = p0;
      for (int s = 0; s < 5; ++s) opt->step(p.data(), grads[s].data(), n, lrs[s]);
      double worst = 0;
      for (std::size_t i = 0; i < n; ++i)
        worst = std::max(worst, std::abs(p[i] - want[i]) / std::max(1.0, std::abs(want[i])));
      BOOST_TEST_MESSAGE(k.c.name << ": max difference to torch " << worst);
      // same float operations in the same order; only FMA contraction inside ATen's vector kernels may differ
      BOOST_TEST(worst <= 1e-6);
    }
  }
}
