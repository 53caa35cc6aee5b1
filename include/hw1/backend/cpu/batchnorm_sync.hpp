// Batch norm over a batch split across ranks (--sync-bn, torch.nn.SyncBatchNorm): the per-channel sums each rank
// contributes, and the input gradient from the sums over all ranks. The layer (layers/batchnorm2d.hpp) sums them
// with Context::comm between these calls; the output pass is batchnorm_forward_eval with the global mean and
// (biased) variance, so the fused residual / ReLU of the usual pass stay as they are.
// Sums are in double, channel by channel, in a fixed order (no dependence on the thread count).
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace hw1::cpu {

// s1[ch] = sum x, s2[ch] = sum x^2 over the n images and hw positions of channel ch.
template <class T>
void batchnorm_channel_moments(int n, int c, int hw, const T* x, double* s1, double* s2) {
#pragma omp parallel for schedule(static)
  for (int ch = 0; ch < c; ++ch) {
    double a = 0, b = 0;
    for (int i = 0; i < n; ++i) {
      const T* p = x + (std::size_t(i) * c + ch) * std::size_t(hw);
      for (int e = 0; e < hw; ++e) {
        const double v = double(p[e]);
        a += v;
        b += v * v;
      }
    }
    s1[ch] = a;
    s2[ch] = b;
  }
}

// sdy[ch] = sum g, sdyx[ch] = sum g * (x - mean[ch]) * invstd[ch], g = dy (0 where relu_mask is 0; may be null).
template <class T>
void batchnorm_grad_sums(int n, int c, int hw, const T* x, const T* dy, const std::uint8_t* relu_mask,
                         const T* mean, const T* invstd, double* sdy, double* sdyx) {
#pragma omp parallel for schedule(static)
  for (int ch = 0; ch < c; ++ch) {
    double a = 0, b = 0;
    const double m = double(mean[ch]);
    for (int i = 0; i < n; ++i) {
      const std::size_t o = (std::size_t(i) * c + ch) * std::size_t(hw);
      for (int e = 0; e < hw; ++e) {
        const double g = relu_mask && !relu_mask[o + e] ? 0.0 : double(dy[o + e]);
        a += g;
        b += g * (double(x[o + e]) - m);
      }
    }
    sdy[ch] = a;
    sdyx[ch] = b * double(invstd[ch]);
  }
}

// dx = gamma * invstd * (g - mean_dy - xhat * mean_dyx), with the means over the global batch (count values per
// channel), g as in batchnorm_grad_sums.
template <class T>
void batchnorm_dx_from_sums(int n, int c, int hw, const T* x, const T* dy, const std::uint8_t* relu_mask,
                            const T* gamma, const T* mean, const T* invstd, const double* sdy, const double* sdyx,
                            double count, T* dx) {
#pragma omp parallel for schedule(static)
  for (int ch = 0; ch < c; ++ch) {
    const double is = double(invstd[ch]), k = (gamma ? double(gamma[ch]) : 1.0) * is;
    const double mdy = sdy[ch] / count, mdyx = sdyx[ch] / count, m = double(mean[ch]);
    for (int i = 0; i < n; ++i) {
      const std::size_t o = (std::size_t(i) * c + ch) * std::size_t(hw);
      for (int e = 0; e < hw; ++e) {
        const double g = relu_mask && !relu_mask[o + e] ? 0.0 : double(dy[o + e]);
        dx[o + e] = T(k * (g - mdy - (double(x[o + e]) - m) * is * mdyx));
      }
    }
  }
}

}  // namespace hw1::cpu
