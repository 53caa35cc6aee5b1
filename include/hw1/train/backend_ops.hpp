// What a trainer does around the model, on the backend the model lives on: bring a host batch in, the loss and
// its gradient, predictions and the course's mIoU counts, the optimizer, and the gradient check of fp16 loss
// scaling. TrainOps<backend::cpu_t<float>> is here; hw1/backend/cuda/train.cuh specialises it for hw1::cuda
// (device kernels; only scalars and small arrays come back to the host). Tasks and fit() are written against
// TrainOps<typename Net::backend_type>, so one trainer body serves both backends.
//
// Also here, free of any CUDA header: the --device / --precision options, and LossScaler.
#pragma once
#include <array>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hw1/backend/cpu.hpp"
#include "hw1/core/params.hpp"
#include "hw1/data/metrics.hpp"
#include "hw1/train/cli.hpp"
#include "hw1/train/loss.hpp"
#include "hw1/train/optimizer.hpp"

namespace hw1 {

template <class B>
struct TrainOps;

// d loss / d logits on the model's backend, and the mean loss.
template <class Tensor>
struct LossAndGrad {
  double loss = 0;
  Tensor grad;
};

template <>
struct TrainOps<backend::cpu_t<float>> {
  using tensor = HostTensor<float>;
  static const tensor& input(const HostTensor<float>& x) { return x; }
  static const std::vector<std::int64_t>& targets(const std::vector<std::int64_t>& t) { return t; }
  static const tensor& to_host(const tensor& y) { return y; }

  // Mean softmax cross-entropy over [N, K] or [N, K, H, W] (class weights, ignore_index); the gradient, if asked,
  // multiplied by grad_scale (an auxiliary loss weight, an fp16 loss scale).
  static LossAndGrad<tensor> cross_entropy(const tensor& logits, const std::vector<std::int64_t>& target,
                                           const std::vector<float>& weights, double grad_scale = 1,
                                           bool want_grad = true, std::int64_t ignore_index = -100) {
    auto r = hw1::cross_entropy(logits, target, weights, ignore_index, want_grad);
    if (want_grad && grad_scale != 1) r.grad *= float(grad_scale);
    return {r.loss, std::move(r.grad)};
  }
  static std::vector<std::int64_t> argmax(const tensor& logits) { return argmax_classes(logits); }
  static void update_miou(MeanIoU& m, const tensor& logits, const std::vector<std::int64_t>& target) {
    const auto pred = argmax_classes(logits);
    if (pred.size() != target.size())
      throw Error("mIoU: " + std::to_string(pred.size()) + " predictions for " + std::to_string(target.size()) +
                  " targets");
    std::vector<std::uint8_t> p(pred.size()), g(target.size());
    for (std::size_t i = 0; i < p.size(); ++i) {
      p[i] = std::uint8_t(std::min<std::int64_t>(pred[i], 255));
      g[i] = std::uint8_t(target[i] < 0 || target[i] > 255 ? 255 : target[i]);
    }
    m.update(p.data(), g.data(), p.size());
  }

  static std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& c) { return hw1::make_optimizer(c); }
  // grads *= inv_scale; whether every result is finite.
  static bool unscale_grads(ParamSet<float>& ps, double inv_scale) {
    bool finite = true;
    const float s = float(inv_scale);
    for (auto& g : ps.grads()) {
      g *= s;
      finite = finite && std::isfinite(g);
    }
    return finite;
  }
};

// fp16 dynamic loss scaling, torch.cuda.amp.GradScaler's rule and defaults: the loss gradient is multiplied by
// `scale` before backward; after it the gradients are divided by it and checked. A step with an inf or nan
// gradient is skipped and the scale halved; after `interval` good steps in a row it doubles.
struct LossScaler {
  bool enabled = false;
  double scale = 65536.0;
  std::int64_t good_steps = 0, skipped = 0;
  static constexpr double growth = 2.0, backoff = 0.5;
  static constexpr std::int64_t interval = 2000;

  double grad_scale() const { return enabled ? scale : 1.0; }
  // Called after the gradients were unscaled and checked; returns whether to apply them.
  bool update(bool finite) {
    if (!finite) {
      scale *= backoff;
      good_steps = 0;
      ++skipped;
      return false;
    }
    if (++good_steps == interval) {
      scale *= growth;
      good_steps = 0;
    }
    return true;
  }
};

// --device cpu | cuda | cuda:N and --precision float32 | tf32 | fp16 | bf16, checked against what the build has.
struct DeviceOption {
  bool cuda = false;
  int index = 0;
  std::string precision = "float32";
};

inline constexpr bool built_with_cuda =
#ifdef HW1_WITH_CUDA
    true;
#else
    false;
#endif

inline DeviceOption parse_device_option(const Cli& cli) {
  DeviceOption d;
  const std::string s = cli.str("--device", "cpu");
  if (s == "cuda" || (s.rfind("cuda:", 0) == 0 && s.size() > 5 &&
                      s.find_first_not_of("0123456789", 5) == std::string::npos && s.size() < 12)) {
    d.cuda = true;
    d.index = s == "cuda" ? 0 : std::stoi(s.substr(5));
  } else if (s != "cpu") {
    throw UsageError("--device must be cpu, cuda or cuda:N, got '" + s + "'");
  }
  d.precision = cli.choice("--precision", "float32", {"float32", "tf32", "fp16", "bf16"});
  if (d.cuda && !built_with_cuda)
    throw Error("--device " + s + ": this hw1 was built without CUDA support (CMake found no nvcc, CUDA toolkit "
                "or cuDNN); use --device cpu");
  if (!d.cuda && d.precision != "float32")
    throw UsageError("--precision " + d.precision + " needs --device cuda; the CPU backend computes in float32 only");
  return d;
}

}  // namespace hw1
