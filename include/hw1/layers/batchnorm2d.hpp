// BatchNorm2d<C>: torch.nn.BatchNorm2d(C) (eps 1e-5, momentum 0.1). Training mode normalises with the batch
// statistics and updates the running ones (unbiased variance); eval mode uses the running statistics.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "hw1/backend/cpu/batchnorm_sync.hpp"
#include "hw1/backend/cpu/shapes.hpp"
#include "hw1/core/compose.hpp"
#include "hw1/layers/activation.hpp"

namespace hw1 {

template <int C, class B>
class BatchNorm2dLayer : public LayerBase<C, C, B> {
  using Base = LayerBase<C, C, B>;

 public:
  using typename Base::context;
  using typename Base::params;
  using typename Base::scalar;
  using typename Base::tensor;
  static constexpr double eps = 1e-5, momentum = 0.1;
  using NoRelu = ReLULayer<dynamic, B>;  // forward_then(c, x, (NoRelu*)nullptr): no ReLU after

  void set_channels(int c) requires(C == dynamic) { c_ = c; }

  void visit(params& ps, const std::string& prefix) {
    name_ = layer_name(prefix, "bn");
    const Shape s{std::size_t(c_)};
    gamma_ = ps.add(prefix + "weight", s, true, {Init::ones, 0});
    beta_ = ps.add(prefix + "bias", s, true, {Init::zeros, 0});
    mean_ = ps.add(prefix + "running_mean", s, false, {Init::zeros, 0});
    var_ = ps.add(prefix + "running_var", s, false, {Init::ones, 0});
  }

  tensor forward(context& c, tensor x) { return forward_then(c, std::move(x), static_cast<NoRelu*>(nullptr)); }

  // This batch norm, then + residual (may be null; shaped like the output), then the ReLU layer relu (may be
  // null), in the batch norm's own output pass where the backend can (B::fuses_conv, the CPU): in a recording run
  // the ReLU's mask is written there too, and without a residual this layer's backward applies it. Elsewhere the
  // three run one after the other.
  template <class Relu>
  tensor forward_then(context& c, tensor x, Relu* relu, const tensor* residual = nullptr) {
    const Dims4 d = checked_input(x, name_, c_);
    if (residual && residual->shape() != x.shape())
      throw Error(name_ + ": output " + shape_str(x.shape()) + " and the residual added to it " +
                  shape_str(residual->shape()) + " differ");
    tensor y = B::empty(shape_of(x));
    train_ = c.training;
    relu_mask_ = nullptr;
    [[maybe_unused]] auto after = [&] {
      if constexpr (detail::FusingBackend<B>) {
        std::uint8_t* mask = relu && c.record ? relu->record_mask(x.size(), residual == nullptr) : nullptr;
        if (mask && !residual) relu_mask_ = mask;
        return cpu::BnAfter<scalar>{residual ? residual->data() : nullptr, relu != nullptr, mask};
      } else {
        return cpu::BnAfter<scalar>{residual ? residual->data() : nullptr};
      }
    };
    const auto run = [&](auto... fused) {
      if (train_) {
        if (d.n * d.h * d.w <= 1)
          throw Error(name_ + ": batch norm in training mode needs more than one value per channel, got input " +
                      shape_str(x.shape()));
        save_mean_ = B::empty({std::size_t(c_)});
        save_invstd_ = B::empty({std::size_t(c_)});
        synced_ = c.synced_batchnorm();
        if (synced_) return synced_forward(c, d, x, y, fused...);
        B::batchnorm_forward_train(d.n, c_, d.h * d.w, x.data(), c.w(gamma_), c.w(beta_), scalar(eps),
                                   scalar(momentum), c.buf(mean_), c.buf(var_), y.data(), save_mean_.data(),
                                   save_invstd_.data(), fused...);
      } else {
        B::batchnorm_forward_eval(d.n, c_, d.h * d.w, x.data(), c.w(gamma_), c.w(beta_), c.buf(mean_), c.buf(var_),
                                  scalar(eps), y.data(), fused...);
      }
    };
    if constexpr (detail::FusingBackend<B>) {
      run(after());
    } else {
      run();
      if (residual) B::add_forward(y.size(), y.data(), residual->data(), y.data());
      if (relu) y = relu->forward(c, std::move(y));
    }
    if (c.record) x_ = std::move(x);
    return y;
  }

  static constexpr bool fusable_bn = true;  // see conv_bn_relu() in core/compose.hpp

  // Inference batch norm as y = x * scale + shift per channel (computed in double, as the eval kernel does), for
  // a producer of `channels` channels that applies it to its own output (Conv2dLayer::forward_fused).
  void inference_affine(context& c, int channels, std::vector<scalar>& scale, std::vector<scalar>& shift) {
    if (channels != c_)
      throw Error(name_ + ": expected " + std::to_string(c_) + " channels, got " + std::to_string(channels));
    train_ = false;
    scale.resize(std::size_t(c_));
    shift.resize(std::size_t(c_));
    const scalar *g = c.w(gamma_), *b = c.w(beta_), *m = c.buf(mean_), *v = c.buf(var_);
    for (int ch = 0; ch < c_; ++ch) {
      const double sc = double(g[ch]) / std::sqrt(double(v[ch]) + eps);
      scale[std::size_t(ch)] = scalar(sc);
      shift[std::size_t(ch)] = scalar(double(b[ch]) - double(m[ch]) * sc);
    }
  }

  // dy is only read (a residual block's shortcut reads it too).
  tensor backward(context& c, const tensor& dy) {
    const Dims4 d = dims4(x_, name_.c_str());
    tensor dx = B::empty(shape_of(x_));
    // The ReLU after this layer, when its mask was left to this backward (forward_then), is applied to dy here.
    const auto run = [&](auto... mask) {
      if (train_ && synced_)
        synced_backward(c, d, dy, dx, mask...);
      else if (train_)
        B::batchnorm_backward_train(d.n, c_, d.h * d.w, x_.data(), c.w(gamma_), save_mean_.data(),
                                    save_invstd_.data(), scalar(eps), dy.data(), dx.data(), c.g(gamma_), c.g(beta_), mask...);
      else
        B::batchnorm_backward_eval(d.n, c_, d.h * d.w, x_.data(), c.w(gamma_), c.buf(mean_), c.buf(var_),
                                   scalar(eps), dy.data(), dx.data(), c.g(gamma_), c.g(beta_), mask...);
    };
    if constexpr (detail::FusingBackend<B>)
      run(static_cast<const std::uint8_t*>(relu_mask_));
    else
      run();
    c.grad_ready(gamma_, std::size_t(c_));
    c.grad_ready(beta_, std::size_t(c_));
    x_ = tensor();
    relu_mask_ = nullptr;
    return dx;
  }

 private:
  // --sync-bn (Context::synced_batchnorm()): the statistics of the batch over every rank. The mean and biased
  // variance come from the summed per-channel sums, the output pass is the eval kernel with them, and the
  // running statistics are updated as torch's SyncBatchNorm does (unbiased variance of the global batch).
  template <class... Fused>
  void synced_forward(context& c, const Dims4& d, const tensor& x, tensor& y, Fused... fused) {
    if constexpr (!detail::FusingBackend<B>) {
      throw Error(name_ + ": synchronised batch norm (--sync-bn) runs on the CPU backend only");
    } else {
      const std::size_t C_ = std::size_t(c_);
      std::vector<double> s(2 * C_ + 1);
      cpu::batchnorm_channel_moments(d.n, c_, d.h * d.w, x.data(), s.data(), s.data() + C_);
      s[2 * C_] = double(d.n) * double(d.h * d.w);
      c.comm->allreduce_sum(s.data(), s.size());
      const double count = s[2 * C_];
      if (count <= 1)
        throw Error(name_ + ": batch norm in training mode needs more than one value per channel over all ranks");
      sync_count_ = count;
      std::vector<scalar> mean(C_), var(C_);
      scalar *rm = c.buf(mean_), *rv = c.buf(var_), *sm = save_mean_.data(), *si = save_invstd_.data();
      for (std::size_t ch = 0; ch < C_; ++ch) {
        const double mu = s[ch] / count, v = std::max(0.0, s[C_ + ch] / count - mu * mu);
        mean[ch] = scalar(mu);
        var[ch] = scalar(v);
        sm[ch] = scalar(mu);
        si[ch] = scalar(1.0 / std::sqrt(v + eps));
        rm[ch] = scalar((1 - momentum) * double(rm[ch]) + momentum * mu);
        rv[ch] = scalar((1 - momentum) * double(rv[ch]) + momentum * v * count / (count - 1));
      }
      B::batchnorm_forward_eval(d.n, c_, d.h * d.w, x.data(), c.w(gamma_), c.w(beta_), mean.data(), var.data(),
                                scalar(eps), y.data(), fused...);
    }
  }
  // The weight and bias gradients are this rank's sums (the gradient all-reduce adds the ranks' up); the input
  // gradient needs the sums of dy and dy * xhat over every rank.
  template <class... Mask>
  void synced_backward(context& c, const Dims4& d, const tensor& dy, tensor& dx, Mask... mask) {
    if constexpr (detail::FusingBackend<B>) {
      const std::uint8_t* m = nullptr;
      ((m = mask), ...);
      const std::size_t C_ = std::size_t(c_);
      std::vector<double> s(2 * C_);
      cpu::batchnorm_grad_sums(d.n, c_, d.h * d.w, x_.data(), dy.data(), m, save_mean_.data(), save_invstd_.data(),
                               s.data(), s.data() + C_);
      scalar *dg = c.g(gamma_), *db = c.g(beta_);
      for (std::size_t ch = 0; ch < C_; ++ch) {
        dg[ch] += scalar(s[C_ + ch]);
        db[ch] += scalar(s[ch]);
      }
      c.comm->allreduce_sum(s.data(), s.size());
      cpu::batchnorm_dx_from_sums(d.n, c_, d.h * d.w, x_.data(), dy.data(), m, c.w(gamma_), save_mean_.data(),
                                  save_invstd_.data(), s.data(), s.data() + C_, sync_count_, dx.data());
    }
  }

  int c_ = C;
  bool synced_ = false;
  double sync_count_ = 0;
  std::size_t gamma_ = 0, beta_ = 0, mean_ = 0, var_ = 0;
  bool train_ = false;
  std::string name_;
  tensor x_, save_mean_, save_invstd_;
  const std::uint8_t* relu_mask_ = nullptr;  // the next ReLU's mask, applied in backward (see forward_then)
};

template <int C>
struct BatchNorm2d {
  template <int InBound, class B>
  using bind = std::conditional_t<channels_match<InBound, C>::value, BatchNorm2dLayer<C, B>, void>;
};

}  // namespace hw1
