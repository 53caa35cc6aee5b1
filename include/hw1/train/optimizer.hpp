// Optimizers over one flat float array (ParamSet::values() / grads()), with torch.optim's exact update rules
// (torch 1.13, single-tensor path): every element-wise step is done in float in torch's order of operations, with
// the scalar coefficients computed in double and rounded to float once, as ATen does for float tensors.
// State (moment buffers, step count) goes into the checkpoint as "optimizer.*" tensors.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "hw1/core/error.hpp"
#include "hw1/core/safetensors.hpp"

#if defined(__SSE__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

namespace hw1 {

struct OptimizerConfig {
  std::string name = "adamw";  // "sgd" | "adam" | "adamw"
  double lr = 1e-3, momentum = 0.9, dampening = 0, weight_decay = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  bool nesterov = false;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // One update of values[0, count) from grads; lr is passed per step so that a schedule can drive it.
  virtual void step(float* values, const float* grads, std::size_t count, double lr) = 0;
  virtual std::string name() const = 0;
  std::int64_t steps() const { return steps_; }

  // Tensors "optimizer.<buffer>" (F32 [count]) and "optimizer.step" (I64 [1]); metadata "optimizer" = name().
  virtual void save_state(SafeTensorsWriter& w) const {
    w.metadata["optimizer"] = name();
    const std::int64_t s = steps_;
    w.add("optimizer.step", Shape{1}, &s);
    for (auto& [key, buf] : state_)
      if (!buf.empty()) w.add("optimizer." + key, Shape{buf.size()}, buf.data());
  }

  virtual void load_state(const SafeTensors& f, std::size_t count) {
    const std::string where = f.path().empty() ? "checkpoint" : "checkpoint " + f.path();
    auto it = f.metadata.find("optimizer");
    if (it == f.metadata.end() || !f.has("optimizer.step"))
      throw Error(where + " holds no optimizer state (no \"optimizer\" metadata or optimizer.step tensor); "
                  "resume from a checkpoint written by a trainer, or start the optimizer afresh");
    if (it->second != name())
      throw Error(where + " holds state of optimizer '" + it->second + "', but this run uses '" + name() +
                  "'; pass the same optimizer (--optimizer " + it->second + ") or start the optimizer afresh");
    if (f.info("optimizer.step").shape != Shape{1})
      throw Error(where + ": optimizer.step has shape " + shape_str(f.info("optimizer.step").shape) +
                  ", expected [1]");
    std::int64_t s = 0;
    f.copy_to("optimizer.step", &s);
    if (s < 0) throw Error(where + ": optimizer.step is negative (" + std::to_string(s) + ")");
    // Validate everything before touching any buffer, so a failed load leaves this optimizer unchanged.
    if (s > 0)
      for (auto& [key, buf] : state_) {
        const std::string n = "optimizer." + key;
        if (!f.has(n))
          throw Error(where + " has no tensor " + n + " that " + name() + " needs (was it saved with other "
                      "settings, e.g. SGD without momentum?)");
        if (f.info(n).shape != Shape{count})
          throw Error(where + ": " + n + " has shape " + shape_str(f.info(n).shape) + ", but the model has " +
                      std::to_string(count) + " trainable parameters; the checkpoint belongs to another model");
      }
    for (auto& [key, buf] : state_) {
      if (s > 0) {
        buf.resize(count);
        f.copy_to("optimizer." + key, buf.data());
      } else {
        buf.clear();
      }
    }
    steps_ = s;
  }

 protected:
  // The named state buffers this optimizer keeps (set by the constructor; empty until the first step).
  explicit Optimizer(std::vector<std::string> buffers) {
    for (auto& b : buffers) state_.emplace_back(std::move(b), std::vector<float>{});
  }
  float* buffer(std::size_t i) { return state_[i].second.data(); }

  // Allocates zeroed buffers on the first step and refuses a parameter count that changed under the state.
  void prepare(std::size_t count) {
    for (auto& [key, buf] : state_) {
      if (buf.empty() && steps_ == 0) buf.assign(count, 0.0f);
      else if (buf.size() != count)
        throw Error(name() + " optimizer: state buffer " + key + " holds " + std::to_string(buf.size()) +
                    " values but step() got " + std::to_string(count) + " parameters; use one optimizer per model");
    }
  }

  static void check_lr(double lr) {
    if (!(lr >= 0)) throw Error("optimizer: learning rate must be >= 0, got " + std::to_string(lr));
  }

  std::int64_t steps_ = 0;
  std::vector<std::pair<std::string, std::vector<float>>> state_;
};

namespace cpu {
// out[i] = sqrt(in[i]), correctly rounded on every path: std::sqrt may set errno, which keeps GCC from vectorising
// a loop around it, and Eigen's AVX-512 sqrt is an approximation, while the hardware instruction is exact.
inline void sqrt_n(float* out, const float* in, std::int64_t n) {
  std::int64_t i = 0;
#if defined(__AVX512F__)
  // maskz with a full mask = _mm512_sqrt_ps, without the "undefined" operand GCC 12 warns about
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(out + i, _mm512_maskz_sqrt_ps(__mmask16(0xffff), _mm512_loadu_ps(in + i)));
#elif defined(__AVX__)
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_sqrt_ps(_mm256_loadu_ps(in + i)));
#elif defined(__SSE__)
  for (; i + 4 <= n; i += 4) _mm_storeu_ps(out + i, _mm_sqrt_ps(_mm_loadu_ps(in + i)));
#elif defined(__aarch64__)
  for (; i + 4 <= n; i += 4) vst1q_f32(out + i, vsqrtq_f32(vld1q_f32(in + i)));
#endif
  for (; i < n; ++i) out[i] = std::sqrt(in[i]);
}
}  // namespace cpu

// Below this many elements the OpenMP fork costs more than the loop.
inline constexpr std::int64_t omp_min_elements = 1 << 15;

class SGD final : public Optimizer {
 public:
  explicit SGD(const OptimizerConfig& c)
      : Optimizer(c.momentum != 0 ? std::vector<std::string>{"momentum_buffer"} : std::vector<std::string>{}), c_(c) {}
  std::string name() const override { return "sgd"; }

  void step(float* p, const float* g, std::size_t count, double lr) override {
    check_lr(lr);
    prepare(count);
    const std::int64_t n = std::int64_t(count);
    const float wd = float(c_.weight_decay), neg_lr = float(-lr);
    if (c_.momentum == 0) {
#pragma omp parallel for simd schedule(static) if (n >= omp_min_elements)
      for (std::int64_t i = 0; i < n; ++i) p[i] = p[i] + neg_lr * (g[i] + wd * p[i]);
    } else {
      // Branch-free so that the loop vectorises, with coefficients that make each case exact: the first step
      // sets buf = 0 * 0 + 1 * d (torch starts the buffer as the decayed gradient, undamped); plain momentum
      // steps along 0 * d + 1 * buf, nesterov along d + momentum * buf.
      const bool first = steps_ == 0;
      const float mom = float(c_.momentum), keep = first ? 0.0f : mom, damp = first ? 1.0f : float(1 - c_.dampening),
                  cd = c_.nesterov ? 1.0f : 0.0f, cb = c_.nesterov ? mom : 1.0f;
      float* buf = buffer(0);
#pragma omp parallel for simd schedule(static) if (n >= omp_min_elements)
      for (std::int64_t i = 0; i < n; ++i) {
        const float d = g[i] + wd * p[i];
        const float b = buf[i] * keep + damp * d;
        buf[i] = b;
        p[i] = p[i] + neg_lr * (cd * d + cb * b);
      }
    }
    ++steps_;
  }

 private:
  OptimizerConfig c_;
};

// Adam (L2 decay added to the gradient) and AdamW (decoupled decay p *= 1 - lr * wd before the Adam step).
class Adam final : public Optimizer {
 public:
  Adam(const OptimizerConfig& c, bool decoupled)
      : Optimizer({"exp_avg", "exp_avg_sq"}), c_(c), decoupled_(decoupled) {}
  std::string name() const override { return decoupled_ ? "adamw" : "adam"; }

  void step(float* p, const float* g, std::size_t count, double lr) override {
    check_lr(lr);
    prepare(count);
    const std::int64_t n = std::int64_t(count), t = steps_ + 1;
    const double bc1 = 1 - std::pow(c_.beta1, double(t)), bc2 = 1 - std::pow(c_.beta2, double(t));
    const float b1 = float(c_.beta1), a1 = float(1 - c_.beta1), b2 = float(c_.beta2), a2 = float(1 - c_.beta2),
                neg_step = float(-(lr / bc1)), bc2_sqrt = float(std::sqrt(bc2)), eps = float(c_.eps),
                l2 = decoupled_ ? 0.0f : float(c_.weight_decay),
                shrink = decoupled_ ? float(1 - lr * c_.weight_decay) : 1.0f;
    float *m = buffer(0), *v = buffer(1);
    // Chunks of simd loops with the exact vector square root in between (see cpu::sqrt_n); every element takes
    // the same arithmetic whatever its position or alignment, so a resumed run repeats the original bit for bit.
    constexpr std::int64_t chunk = 1024;
#pragma omp parallel for schedule(static) if (n >= omp_min_elements)
    for (std::int64_t b = 0; b < n; b += chunk) {
      const std::int64_t k = std::min(chunk, n - b);
      float *pb = p + b, *mb = m + b, *vb = v + b, root[chunk];
      const float* gb = g + b;
#pragma omp simd
      for (std::int64_t i = 0; i < k; ++i) {
        const float pi = pb[i] * shrink;   // AdamW's decoupled decay (exactly 1 for Adam)
        const float gi = gb[i] + l2 * pi;  // Adam's L2 term (exactly 0 for AdamW)
        pb[i] = pi;
        mb[i] = mb[i] * b1 + a1 * gi;
        vb[i] = vb[i] * b2 + a2 * gi * gi;
      }
      cpu::sqrt_n(root, vb, k);
#pragma omp simd
      for (std::int64_t i = 0; i < k; ++i) pb[i] = pb[i] + neg_step * mb[i] / (root[i] / bc2_sqrt + eps);
    }
    ++steps_;
  }

 private:
  OptimizerConfig c_;
  bool decoupled_;
};

inline std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& c) {
  auto bad = [&](const std::string& what) { return Error("optimizer '" + c.name + "': " + what); };
  if (!(c.lr >= 0)) throw bad("lr must be >= 0, got " + std::to_string(c.lr));
  if (!(c.weight_decay >= 0)) throw bad("weight_decay must be >= 0, got " + std::to_string(c.weight_decay));
  if (c.name == "sgd") {
    if (!(c.momentum >= 0)) throw bad("momentum must be >= 0, got " + std::to_string(c.momentum));
    if (c.nesterov && (c.momentum <= 0 || c.dampening != 0))
      throw bad("nesterov momentum needs momentum > 0 and dampening = 0 (as in torch.optim.SGD)");
    return std::make_unique<SGD>(c);
  }
  if (c.name == "adam" || c.name == "adamw") {
    if (!(c.beta1 >= 0 && c.beta1 < 1) || !(c.beta2 >= 0 && c.beta2 < 1))
      throw bad("beta1 and beta2 must lie in [0, 1), got " + std::to_string(c.beta1) + ", " + std::to_string(c.beta2));
    if (!(c.eps >= 0)) throw bad("eps must be >= 0, got " + std::to_string(c.eps));
    return std::make_unique<Adam>(c, c.name == "adamw");
  }
  throw Error("unknown optimizer '" + c.name + "'; valid names are: sgd, adam, adamw");
}

}  // namespace hw1
