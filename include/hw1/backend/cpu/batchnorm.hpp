// BatchNorm2d kernels with PyTorch's semantics: training normalises with the biased batch variance but feeds the
// unbiased one into running_var; eval uses the running statistics. Sums run in double, one channel per thread.
#pragma once
#include <cmath>
#include <cstddef>
#include <string>

#include "hw1/core/error.hpp"

namespace hw1::cpu {

namespace detail {
// gamma/beta may be nullptr (affine=False): read as 1 and 0.
template <class T>
inline T gamma_at(const T* gamma, int ch) { return gamma ? gamma[ch] : T(1); }
template <class T>
inline T beta_at(const T* beta, int ch) { return beta ? beta[ch] : T(0); }
}  // namespace detail

template <class T>
void batchnorm_forward_train(int n, int c, int hw, const T* x, const T* gamma, const T* beta, T eps, T momentum,
                             T* running_mean, T* running_var, T* y, T* save_mean, T* save_invstd) {
  const std::ptrdiff_t count = std::ptrdiff_t(n) * hw;
  if (count <= 1)
    throw Error("BatchNorm2d in training mode needs more than one value per channel, got input [" +
                std::to_string(n) + "," + std::to_string(c) + ",h,w] with h*w=" + std::to_string(hw) +
                "; use a batch larger than 1 or switch the model to eval mode");
  const std::ptrdiff_t cs = std::ptrdiff_t(c) * hw;
#pragma omp parallel for schedule(static)
  for (int ch = 0; ch < c; ++ch) {
    double sum = 0;
    for (int b = 0; b < n; ++b) {
      const T* p = x + b * cs + std::ptrdiff_t(ch) * hw;
      for (int i = 0; i < hw; ++i) sum += p[i];
    }
    const double mean = sum / double(count);
    double sq = 0;  // second pass: no cancellation from E[x^2] - E[x]^2
    for (int b = 0; b < n; ++b) {
      const T* p = x + b * cs + std::ptrdiff_t(ch) * hw;
      for (int i = 0; i < hw; ++i) sq += (p[i] - mean) * (p[i] - mean);
    }
    const double var = sq / double(count);
    const double invstd = 1.0 / std::sqrt(var + double(eps));
    save_mean[ch] = T(mean);
    save_invstd[ch] = T(invstd);
    if (running_mean) running_mean[ch] = T((1.0 - momentum) * running_mean[ch] + double(momentum) * mean);
    if (running_var)
      running_var[ch] =
          T((1.0 - momentum) * running_var[ch] + double(momentum) * sq / double(count - 1));
    const double g = detail::gamma_at(gamma, ch), bt = detail::beta_at(beta, ch);
    const double scale = g * invstd, shift = bt - mean * scale;
    for (int b = 0; b < n; ++b) {
      const T* p = x + b * cs + std::ptrdiff_t(ch) * hw;
      T* q = y + b * cs + std::ptrdiff_t(ch) * hw;
      for (int i = 0; i < hw; ++i) q[i] = T(p[i] * scale + shift);
    }
  }
}

// dx = gamma*invstd/N * (N*dy - sum(dy) - xhat*sum(dy*xhat)); the batch statistics depend on x, hence the sums.
template <class T>
void batchnorm_backward_train(int n, int c, int hw, const T* x, const T* gamma, const T* save_mean,
                              const T* save_invstd, const T* dy, T* dx, T* dgamma, T* dbeta) {
  const double count = double(n) * hw;
  const std::ptrdiff_t cs = std::ptrdiff_t(c) * hw;
#pragma omp parallel for schedule(static)
  for (int ch = 0; ch < c; ++ch) {
    const double mean = save_mean[ch], invstd = save_invstd[ch];
    double sdy = 0, sdyx = 0;
    for (int b = 0; b < n; ++b) {
      const T* p = x + b * cs + std::ptrdiff_t(ch) * hw;
      const T* d = dy + b * cs + std::ptrdiff_t(ch) * hw;
      for (int i = 0; i < hw; ++i) {
        sdy += d[i];
        sdyx += d[i] * ((p[i] - mean) * invstd);
      }
    }
    if (dgamma) dgamma[ch] += T(sdyx);
    if (dbeta) dbeta[ch] += T(sdy);
    if (!dx) continue;
    const double k = detail::gamma_at(gamma, ch) * invstd;
    const double mdy = sdy / count, mdyx = sdyx / count;
    for (int b = 0; b < n; ++b) {
      const T* p = x + b * cs + std::ptrdiff_t(ch) * hw;
      const T* d = dy + b * cs + std::ptrdiff_t(ch) * hw;
      T* q = dx + b * cs + std::ptrdiff_t(ch) * hw;
      for (int i = 0; i < hw; ++i) q[i] = T(k * (d[i] - mdy - (p[i] - mean) * invstd * mdyx));
    }
  }
}

template <class T>
void batchnorm_forward_eval(int n, int c, int hw, const T* x, const T* gamma, const T* beta, const T* running_mean,
                            const T* running_var, T eps, T* y) {
  const std::ptrdiff_t cs = std::ptrdiff_t(c) * hw;
#pragma omp parallel for schedule(static)
  for (int ch = 0; ch < c; ++ch) {
    const double invstd = 1.0 / std::sqrt(double(running_var[ch]) + double(eps));
    const double scale = detail::gamma_at(gamma, ch) * invstd;
    const double shift = detail::beta_at(beta, ch) - running_mean[ch] * scale;
    const T ts = T(scale), tsh = T(shift);
    for (int b = 0; b < n; ++b) {
      const T* p = x + b * cs + std::ptrdiff_t(ch) * hw;
      T* q = y + b * cs + std::ptrdiff_t(ch) * hw;
      for (int i = 0; i < hw; ++i) q[i] = p[i] * ts + tsh;
    }
  }
}

// In eval the statistics are constants: dx = dy * gamma * invstd.
template <class T>
void batchnorm_backward_eval(int n, int c, int hw, const T* x, const T* gamma, const T* running_mean,
                             const T* running_var, T eps, const T* dy, T* dx, T* dgamma, T* dbeta) {
  const std::ptrdiff_t cs = std::ptrdiff_t(c) * hw;
#pragma omp parallel for schedule(static)
  for (int ch = 0; ch < c; ++ch) {
    const double mean = running_mean[ch];
    const double invstd = 1.0 / std::sqrt(double(running_var[ch]) + double(eps));
    const T k = T(detail::gamma_at(gamma, ch) * invstd);
    double sdy = 0, sdyx = 0;
    for (int b = 0; b < n; ++b) {
      const T* p = x + b * cs + std::ptrdiff_t(ch) * hw;
      const T* d = dy + b * cs + std::ptrdiff_t(ch) * hw;
      T* q = dx ? dx + b * cs + std::ptrdiff_t(ch) * hw : nullptr;
      for (int i = 0; i < hw; ++i) {
        sdy += d[i];
        sdyx += d[i] * ((p[i] - mean) * invstd);
        if (q) q[i] = d[i] * k;  // after reading d[i]: dx may alias dy
      }
    }
    if (dgamma) dgamma[ch] += T(sdyx);
    if (dbeta) dbeta[ch] += T(sdy);
  }
}

}  // namespace hw1::cpu
