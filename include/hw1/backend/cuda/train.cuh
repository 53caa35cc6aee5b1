// The trainers' work on the GPU: TrainOps<hw1::cuda> (see hw1/train/backend_ops.hpp) and DeviceOptimizer, the
// optimizers of hw1/train/optimizer.hpp as kernels over the device parameter and gradient arrays. A batch is
// copied in once; loss, loss gradient, fp16 gradient check and the mIoU counts are computed on the device, and
// only scalars (and the classifier's [N, K] logits for accuracy) come back.
// Contains kernels (through backend/cuda.hpp): include from .cu translation units only.
#pragma once
#include <array>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "hw1/backend/cuda.hpp"
#include "hw1/train/backend_ops.hpp"
#include "hw1/train/optimizer.hpp"

namespace hw1::gpu {

// SGD (momentum, dampening, Nesterov, weight decay), Adam and AdamW with the exact update rules of the CPU
// classes (same float operations in the same order; see kernels::sgd_momentum / adam_step). The state tensors
// and their names are the CPU optimizer's, so optimizer.safetensors moves freely between devices.
class DeviceOptimizer final : public Optimizer {
 public:
  explicit DeviceOptimizer(const OptimizerConfig& c)
      : Optimizer(buffer_names(c)), c_(c), dev_(state_.size()) {
    (void)hw1::make_optimizer(c);  // the CPU factory's validation, with its messages
  }
  std::string name() const override { return c_.name; }

  // p and g are device arrays of count floats (ParamSet::value(0) / grad(0) of a CUDA model).
  void step(float* p, const float* g, std::size_t count, double lr) override {
    check_lr(lr);
    for (std::size_t i = 0; i < dev_.size(); ++i) {
      if (dev_[i].size() == 0 && steps_ == 0) {
        dev_[i].resize(count);
        dev_[i].zero();
      } else if (dev_[i].size() != count) {
        throw Error(name() + " optimizer: state buffer " + state_[i].first + " holds " +
                    std::to_string(dev_[i].size()) + " values but step() got " + std::to_string(count) +
                    " parameters; use one optimizer per model");
      }
    }
    const auto n = kernels::Index(count);
    if (c_.name == "sgd") {
      const float wd = float(c_.weight_decay), neg_lr = float(-lr);
      if (c_.momentum == 0) {
        kernels::launch("sgd_plain", n, kernels::sgd_plain<float>, n, p, g, wd, neg_lr);
      } else {
        const bool first = steps_ == 0;
        const float mom = float(c_.momentum), keep = first ? 0.0f : mom,
                    damp = first ? 1.0f : float(1 - c_.dampening), cd = c_.nesterov ? 1.0f : 0.0f,
                    cb = c_.nesterov ? mom : 1.0f;
        kernels::launch("sgd_momentum", n, kernels::sgd_momentum<float>, n, p, g, dev_[0].data(), wd, keep, damp, cd, cb,
                        neg_lr);
      }
    } else {
      const bool decoupled = c_.name == "adamw";
      const std::int64_t t = steps_ + 1;
      const double bc1 = 1 - std::pow(c_.beta1, double(t)), bc2 = 1 - std::pow(c_.beta2, double(t));
      const float b1 = float(c_.beta1), a1 = float(1 - c_.beta1), b2 = float(c_.beta2), a2 = float(1 - c_.beta2),
                  neg_step = float(-(lr / bc1)), bc2_sqrt = float(std::sqrt(bc2)), eps = float(c_.eps),
                  l2 = decoupled ? 0.0f : float(c_.weight_decay),
                  shrink = decoupled ? float(1 - lr * c_.weight_decay) : 1.0f;
      kernels::launch("adam_step", n, kernels::adam_step<float>, n, p, g, dev_[0].data(), dev_[1].data(), b1, a1, b2, a2,
                      neg_step, bc2_sqrt, eps, l2, shrink);
    }
    ++steps_;
  }

  // The CPU layout: metadata "optimizer", optimizer.step, then each state buffer (copied to the host).
  void save_state(SafeTensorsWriter& w) const override {
    w.metadata["optimizer"] = name();
    const std::int64_t s = steps_;
    w.add("optimizer.step", Shape{1}, &s);
    for (std::size_t i = 0; i < dev_.size(); ++i)
      if (dev_[i].size()) {
        const std::vector<float> h = dev_[i].to_vector();
        w.add("optimizer." + state_[i].first, Shape{h.size()}, h.data());
      }
  }
  // The CPU class validates and reads into its host buffers; they go to the device and are dropped.
  void load_state(const SafeTensors& f, std::size_t count) override {
    Optimizer::load_state(f, count);
    for (std::size_t i = 0; i < dev_.size(); ++i) {
      auto& host = state_[i].second;
      if (host.empty()) dev_[i] = DeviceBuffer<float>();
      else dev_[i].upload(host.data(), host.size());
      std::vector<float>().swap(host);
    }
  }

 private:
  static std::vector<std::string> buffer_names(const OptimizerConfig& c) {
    if (c.name == "sgd") return c.momentum != 0 ? std::vector<std::string>{"momentum_buffer"} : std::vector<std::string>{};
    return {"exp_avg", "exp_avg_sq"};
  }
  OptimizerConfig c_;
  std::vector<DeviceBuffer<float>> dev_;
};

}  // namespace hw1::gpu

namespace hw1 {

template <>
struct TrainOps<backend::cuda_t<float>> {
  using tensor = gpu::DeviceTensor<float>;
  static tensor input(const HostTensor<float>& x) { return gpu::to_device(x); }
  static gpu::DeviceBuffer<std::int64_t> targets(const std::vector<std::int64_t>& t) {
    gpu::DeviceBuffer<std::int64_t> d;
    d.upload(t.data(), t.size());
    return d;
  }
  static HostTensor<float> to_host(const tensor& y) { return y.to_host(); }

  static LossAndGrad<tensor> cross_entropy(const tensor& logits, const gpu::DeviceBuffer<std::int64_t>& target,
                                           const std::vector<float>& weights, double grad_scale = 1,
                                           bool want_grad = true, std::int64_t ignore_index = -100) {
    if (logits.dimension() != 2 && logits.dimension() != 4)
      throw Error("cross_entropy: logits must be [N, K] or [N, K, H, W], got " + shape_str(logits.shape()));
    const int n = int(logits.shape()[0]), k = int(logits.shape()[1]);
    const int hw = logits.dimension() == 4 ? int(logits.shape()[2] * logits.shape()[3]) : 1;
    if (target.size() != std::size_t(n) * hw)
      throw Error("cross_entropy: " + std::to_string(target.size()) + " targets for logits " +
                  shape_str(logits.shape()));
    if (!weights.empty() && weights.size() != std::size_t(k))
      throw Error("cross_entropy: " + std::to_string(weights.size()) + " class weights for " + std::to_string(k) +
                  " classes");
    gpu::DeviceBuffer<float> w;
    if (!weights.empty()) w.upload(weights.data(), weights.size());
    LossAndGrad<tensor> r;
    if (want_grad) r.grad = tensor(logits.shape());
    r.loss = double(gpu::ops::softmax_cross_entropy<float>(n, k, hw, logits.data(), target.data(),
                                                           weights.empty() ? nullptr : w.data(), ignore_index,
                                                           want_grad ? r.grad.data() : nullptr));
    if (want_grad && grad_scale != 1)
      gpu::kernels::launch("scale_inplace", gpu::kernels::Index(r.grad.size()), gpu::kernels::scale_inplace<float>,
                           gpu::kernels::Index(r.grad.size()), float(grad_scale), r.grad.data());
    return r;
  }
  static std::vector<std::int64_t> argmax(const tensor& logits) { return argmax_classes(logits.to_host()); }
  static void update_miou(MeanIoU& m, const tensor& logits, const gpu::DeviceBuffer<std::int64_t>& target) {
    if (logits.dimension() != 4) throw Error("mIoU: logits must be [N, K, H, W], got " + shape_str(logits.shape()));
    const int n = int(logits.shape()[0]), k = int(logits.shape()[1]), hw = int(logits.shape()[2] * logits.shape()[3]);
    const auto positions = gpu::kernels::Index(n) * hw;
    if (std::size_t(positions) != target.size())
      throw Error("mIoU: " + std::to_string(positions) + " predictions for " + std::to_string(target.size()) +
                  " targets");
    gpu::DeviceBuffer<unsigned long long> counts(18);
    counts.zero();
    gpu::kernels::launch("miou_counts", positions, gpu::kernels::miou_counts<float>, positions, k, hw,
                         logits.data(), target.data(), counts.data());
    const auto c = counts.to_vector();
    std::array<std::uint64_t, 6> pred{}, actual{}, both{};
    for (int i = 0; i < 6; ++i) pred[i] = c[i], actual[i] = c[6 + i], both[i] = c[12 + i];
    m.add_counts(pred, actual, both);
  }

  static std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& c) {
    return std::make_unique<gpu::DeviceOptimizer>(c);
  }
  static bool unscale_grads(ParamSet<float>& ps, double inv_scale) {
    gpu::DeviceBuffer<int> bad(1);
    bad.zero();
    const auto n = gpu::kernels::Index(ps.flat_size());
    gpu::kernels::launch("unscale_check", n, gpu::kernels::unscale_check<float>, n, float(inv_scale), ps.grad(0), bad.data());
    return bad.to_vector()[0] == 0;
  }
};

}  // namespace hw1
