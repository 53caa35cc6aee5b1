// BatchNorm2d kernels with PyTorch's semantics: training normalises with the biased batch variance but feeds the
// unbiased one into running_var; eval uses the running statistics. Sums run in double; each thread takes a share
// of the channels.
// In training, what follows a batch norm can run in its passes instead of its own (CPU): the forwards take a
// BnAfter (a residual add, then ReLU, whose mask they write), and the backwards a ReLU mask that they apply to dy
// as they read it. Each saves whole passes over activation-sized tensors (ResNet101 at 224x224: hundreds of MB
// a step).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "hw1/backend/cpu/elementwise.hpp"
#include "hw1/backend/cpu/shapes.hpp"
#include "hw1/core/error.hpp"

namespace hw1::cpu {

namespace detail {
// gamma/beta may be nullptr (affine=False): read as 1 and 0.
template <class T>
inline T gamma_at(const T* gamma, int ch) { return gamma ? gamma[ch] : T(1); }
template <class T>
inline T beta_at(const T* beta, int ch) { return beta ? beta[ch] : T(0); }

// The loops of every batch-norm kernel, over a thread's channels [c0, c1) of an [n, c, hw] tensor. Per-channel
// values are read through "slots": with small planes (hw < kSmallPlane; ResNet's last stages hold 1-16 values per
// image and channel) a thread's channels of one image are one contiguous run, walked in a single flat loop with
// the per-channel values expanded to one slot per element (slot = element's index in the run); with larger
// planes each channel is walked image by image and its values sit in one slot. Both loops vectorise, and sums
// run in double in a fixed order, so a given thread count always gives the same bits.
struct ChannelLoop {
  static constexpr int kSmallPlane = 16;
  int n, hw, c0, c1;
  std::ptrdiff_t cs;  // c * hw
  bool small() const { return hw < kSmallPlane; }
  std::ptrdiff_t run() const { return std::ptrdiff_t(c1 - c0) * hw; }
  std::size_t slots() const { return std::size_t(small() ? run() : c1 - c0); }
  // out[slot] = v(ch) for the slots of channels [c0, c1).
  template <class V, class F>
  void expand(V* out, F&& v) const {
    for (int ch = c0; ch < c1; ++ch) {
      const V x = V(v(ch));
      if (small())
        std::fill_n(out + std::ptrdiff_t(ch - c0) * hw, hw, x);
      else
        out[ch - c0] = x;
    }
  }
  // f(e, len, slot, per_element) for every stretch of the thread's channels' elements: [e, e + len) take slots
  // slot, slot + 1, ... when per_element (small planes), else all slot `slot`. per_element is std::true_type or
  // std::false_type, so that the stretch loops are compiled for each.
  template <class F>
  void each_run(F&& f) const {
    if (small()) {
      for (int b = 0; b < n; ++b) f(b * cs + std::ptrdiff_t(c0) * hw, run(), std::ptrdiff_t(0), std::true_type{});
    } else {
      for (int ch = c0; ch < c1; ++ch)
        for (int b = 0; b < n; ++b)
          f(b * cs + std::ptrdiff_t(ch) * hw, std::ptrdiff_t(hw), std::ptrdiff_t(ch - c0), std::false_type{});
    }
  }
  // Two per-channel sums in one pass, in double: out1[ch - c0] = sum of f1(e, slot) over the channel's elements
  // e, out2 likewise for f2; acc: 2 * slots() doubles of scratch.
  template <class F1, class F2>
  void sums(F1&& f1, F2&& f2, double* out1, double* out2, double* acc) const {
    if (small()) {
      const std::ptrdiff_t len = run();
      double *a1 = acc, *a2 = acc + len;
      std::fill_n(acc, 2 * len, 0.0);
      for (int b = 0; b < n; ++b) {
        const std::ptrdiff_t base = b * cs + std::ptrdiff_t(c0) * hw;
        for (std::ptrdiff_t j = 0; j < len; ++j) {
          a1[j] += f1(base + j, j);
          a2[j] += f2(base + j, j);
        }
      }
      for (int ch = c0; ch < c1; ++ch) {
        double s1 = 0, s2 = 0;
        for (int i = 0; i < hw; ++i) {
          s1 += a1[std::ptrdiff_t(ch - c0) * hw + i];
          s2 += a2[std::ptrdiff_t(ch - c0) * hw + i];
        }
        out1[ch - c0] = s1;
        out2[ch - c0] = s2;
      }
    } else {
      // kLanes partial sums per channel: enough independent chains (four AVX-512 registers of doubles each) that
      // the loop runs at load speed rather than at the latency of one chain of additions.
      constexpr int kLanes = 32;
      for (int ch = c0; ch < c1; ++ch) {
        const std::ptrdiff_t k = ch - c0;
        double l1[kLanes] = {}, l2[kLanes] = {};
        for (int b = 0; b < n; ++b) {
          const std::ptrdiff_t base = b * cs + std::ptrdiff_t(ch) * hw;
          int i = 0;
          for (; i + kLanes <= hw; i += kLanes)
            for (int l = 0; l < kLanes; ++l) {
              l1[l] += f1(base + i + l, k);
              l2[l] += f2(base + i + l, k);
            }
          for (; i < hw; ++i) {
            l1[i % kLanes] += f1(base + i, k);
            l2[i % kLanes] += f2(base + i, k);
          }
        }
        for (int w = kLanes / 2; w > 0; w /= 2)  // pairwise, in a fixed order
          for (int l = 0; l < w; ++l) {
            l1[l] += l1[l + w];
            l2[l] += l2[l + w];
          }
        out1[k] = l1[0];
        out2[k] = l2[0];
      }
    }
  }
};

// Runs body(loop, scratch) on every thread with its share of the channels; scratch has room for 8 arrays of
// loop.slots() doubles (each at least c1 - c0 long).
template <class F>
void for_channels(int n, int c, int hw, F&& body) {
  [[maybe_unused]] const std::ptrdiff_t work = std::ptrdiff_t(n) * c * hw;
#pragma omp parallel if (work > (std::ptrdiff_t(1) << 14))
  {
#ifdef _OPENMP
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
    const int t = 0, nt = 1;
#endif
    const int c0 = int(std::ptrdiff_t(c) * t / nt), c1 = int(std::ptrdiff_t(c) * (t + 1) / nt);
    if (c0 < c1) {
      const ChannelLoop loop{n, hw, c0, c1, std::ptrdiff_t(c) * hw};
      thread_local std::vector<double> buf;
      if (buf.size() < 8 * loop.slots()) buf.resize(8 * loop.slots());
      body(loop, buf.data());
    }
  }
}

// f(std::true_type{}) or f(std::false_type{}): a run-time switch made a compile-time one, so that the element
// loops below hold no branch on it.
template <class F>
decltype(auto) with_flag(bool on, F&& f) {
  return on ? f(std::true_type{}) : f(std::false_type{});
}

// The sums behind both batch-norm backwards, in one pass over a thread's channels: sdy[k] = sum of g and
// sdyx[k] = sum of g * (x - mean[ch]), g(e) being the incoming gradient; uses buf[0, 3 * slots()) as scratch.
template <class T, class G>
void dy_sums(const ChannelLoop& L, double* buf, const T* x, G&& g, const T* mean, double* sdy, double* sdyx) {
  double *acc = buf, *mean_s = buf + 2 * L.slots();
  L.expand(mean_s, [&](int ch) { return double(mean[ch]); });
  L.sums([&](std::ptrdiff_t e, std::ptrdiff_t) { return double(g(e)); },
         [&](std::ptrdiff_t e, std::ptrdiff_t k) { return double(g(e)) * (double(x[e]) - mean_s[k]); }, sdy, sdyx,
         acc);
}

// body(g) with g(e) = dy[e], or 0 where relu_mask[e] is 0 (the backward of a ReLU that followed the batch norm).
template <class T, class F>
void with_grad(const T* dy, const std::uint8_t* relu_mask, F&& body) {
  if (relu_mask)
    body([&](std::ptrdiff_t e) -> T { return keep_if(dy[e], relu_mask[e]); });
  else
    body([&](std::ptrdiff_t e) -> T { return dy[e]; });
}

// Both backwards' first pass: body(L, buf, sdy, sdyx) runs on every thread's channels after dy_sums over them,
// with dy read through relu_mask where that is not null; buf[5 * slots(), 8 * slots()) is the body's scratch.
template <class T, class F>
void after_dy_sums(int n, int c, int hw, const T* x, const T* dy, const std::uint8_t* relu_mask, const T* mean,
                   F&& body) {
  for_channels(n, c, hw, [&](const ChannelLoop& L, double* buf) {
    const std::size_t S = L.slots();
    double *sdy = buf + 3 * S, *sdyx = buf + 4 * S;
    with_grad(dy, relu_mask, [&](auto g) { dy_sums(L, buf, x, g, mean, sdy, sdyx); });
    body(L, buf, sdy, sdyx);
  });
}

// The backwards' output passes over one stretch (pointers unaliased where they cannot alias, so that the loops
// vectorise with a mask in them); g = dy, or 0 where m[i] is 0 (m null: no mask). Slot s = i when PerElement.
template <bool PerElement, class T>
void bn_train_dx_run(std::ptrdiff_t len, const T* __restrict x, const T* __restrict dy,
                     const std::uint8_t* __restrict m, const T* __restrict a, const T* __restrict b,
                     const T* __restrict c, T* __restrict dx) {
  if (m) {
    for (std::ptrdiff_t i = 0; i < len; ++i) {
      const std::ptrdiff_t s = PerElement ? i : 0;
      dx[i] = a[s] * keep_if(dy[i], m[i]) + b[s] * x[i] + c[s];
    }
  } else {
    for (std::ptrdiff_t i = 0; i < len; ++i) {
      const std::ptrdiff_t s = PerElement ? i : 0;
      dx[i] = a[s] * dy[i] + b[s] * x[i] + c[s];
    }
  }
}
// dx may alias dy here (element by element).
template <bool PerElement, class T>
void bn_eval_dx_run(std::ptrdiff_t len, const T* dy, const std::uint8_t* __restrict m, const T* __restrict a, T* dx) {
  if (m) {
    for (std::ptrdiff_t i = 0; i < len; ++i) dx[i] = keep_if(dy[i], m[i]) * a[PerElement ? i : 0];
  } else {
    for (std::ptrdiff_t i = 0; i < len; ++i) dx[i] = dy[i] * a[PerElement ? i : 0];
  }
}
}  // namespace detail


namespace detail {
// One stretch of bn_output, its pointers declared unaliased: the mask's bytes could otherwise alias everything,
// and the loop would not vectorise. a[s], b[s] with s = i when PerElement, else 0.
template <bool Res, bool Relu, bool Mask, bool PerElement, class T>
void bn_output_run(std::ptrdiff_t len, const T* __restrict x, const T* __restrict a, const T* __restrict b,
                   const T* __restrict r, T* __restrict y, std::uint8_t* __restrict m) {
  for (std::ptrdiff_t i = 0; i < len; ++i) {
    const std::ptrdiff_t s = PerElement ? i : 0;
    T v = x[i] * a[s] + b[s];
    if constexpr (Res) v += r[i];
    if constexpr (Relu) {
      bool positive;
      v = relu_value(v, positive);
      if constexpr (Mask) m[i] = std::uint8_t(positive);
    }
    y[i] = v;
  }
}

// y[e] = after(x[e] * scale[slot] + shift[slot]) over a thread's channels.
template <class T>
void bn_output(const ChannelLoop& L, const T* x, const T* scale, const T* shift, const BnAfter<T>& after, T* y) {
  with_flag(after.residual != nullptr, [&](auto res) {
    with_flag(after.relu, [&](auto relu) {
      with_flag(relu && after.mask != nullptr, [&](auto mask) {
        L.each_run([&](std::ptrdiff_t e, std::ptrdiff_t len, std::ptrdiff_t k, auto per_element) {
          const T* r = res ? after.residual + e : nullptr;
          std::uint8_t* m = mask ? after.mask + e : nullptr;
          bn_output_run<res, relu, mask, per_element>(len, x + e, scale + k, shift + k, r, y + e, m);
        });
      });
    });
  });
}
}  // namespace detail

template <class T>
void batchnorm_forward_train(int n, int c, int hw, const T* x, const T* gamma, const T* beta, T eps, T momentum,
                             T* running_mean, T* running_var, T* y, T* save_mean, T* save_invstd,
                             const BnAfter<T>& after = {}) {
  const std::ptrdiff_t count = std::ptrdiff_t(n) * hw;
  if (count <= 1)
    throw Error("BatchNorm2d in training mode needs more than one value per channel, got input [" +
                std::to_string(n) + "," + std::to_string(c) + ",h,w] with h*w=" + std::to_string(hw) +
                "; use a batch larger than 1 or switch the model to eval mode");
  detail::for_channels(n, c, hw, [&](const detail::ChannelLoop& L, double* buf) {
    const std::size_t S = L.slots();
    double *acc = buf, *shift_s = buf + 2 * S, *sum = buf + 3 * S, *sq = buf + 4 * S;
    // One pass over x for sum(x - s) and sum((x - s)^2), shifted by the channel's first value s so that the
    // variance sum((x-s)^2) - sum(x-s)^2 / count does not cancel catastrophically when |mean| >> std.
    L.expand(shift_s, [&](int ch) { return double(x[std::ptrdiff_t(ch) * hw]); });
    L.sums([&](std::ptrdiff_t e, std::ptrdiff_t k) { return double(x[e]) - shift_s[k]; },
            [&](std::ptrdiff_t e, std::ptrdiff_t k) { const double d = double(x[e]) - shift_s[k]; return d * d; },
            sum, sq, acc);
    for (int ch = L.c0; ch < L.c1; ++ch) {  // sum -> sum of x, sq -> sum of (x - mean)^2
      const std::size_t k = std::size_t(ch - L.c0);
      const double s0 = double(x[std::ptrdiff_t(ch) * hw]), d = sum[k];
      sq[k] = std::max(0.0, sq[k] - d * d / double(count));
      sum[k] = d + s0 * double(count);
    }
    T* scale = reinterpret_cast<T*>(buf + 5 * S);
    T* shift = reinterpret_cast<T*>(buf + 6 * S);
    for (int ch = L.c0; ch < L.c1; ++ch) {
      const std::size_t k = std::size_t(ch - L.c0);
      const double mean = sum[k] / double(count), var = sq[k] / double(count);
      const double invstd = 1.0 / std::sqrt(var + double(eps));
      save_mean[ch] = T(mean);
      save_invstd[ch] = T(invstd);
      if (running_mean) running_mean[ch] = T((1.0 - momentum) * running_mean[ch] + double(momentum) * mean);
      if (running_var)
        running_var[ch] = T((1.0 - momentum) * running_var[ch] + double(momentum) * sq[k] / double(count - 1));
    }
    L.expand(scale, [&](int ch) { return double(detail::gamma_at(gamma, ch)) * double(save_invstd[ch]); });
    L.expand(shift, [&](int ch) {
      return double(detail::beta_at(beta, ch)) - double(save_mean[ch]) * double(detail::gamma_at(gamma, ch)) *
                                                     double(save_invstd[ch]);
    });
    detail::bn_output(L, x, scale, shift, after, y);
  });
}

// dx = gamma*invstd/N * (N*dy - sum(dy) - xhat*sum(dy*xhat)); the batch statistics depend on x, hence the sums.
// Per channel that is dx = a*dy + b*x + c, applied in one pass. relu_mask (may be null): a ReLU's mask (BnAfter)
// applied to dy on the way in. eps is the forward's (the backend contract passes it, cuDNN needs it); the saved
// inverse standard deviations already hold it, so it is not read here.
template <class T>
void batchnorm_backward_train(int n, int c, int hw, const T* x, const T* gamma, const T* save_mean,
                              const T* save_invstd, T /*eps*/, const T* dy, T* dx, T* dgamma, T* dbeta,
                              const std::uint8_t* relu_mask = nullptr) {
  const double count = double(n) * hw;
  detail::after_dy_sums(n, c, hw, x, dy, relu_mask, save_mean, [&](const detail::ChannelLoop& L, double* buf,
                                                                   double* sdy, double* sdyx) {
    const std::size_t S = L.slots();
    for (int ch = L.c0; ch < L.c1; ++ch) {
      const std::size_t k = std::size_t(ch - L.c0);
      sdyx[k] *= double(save_invstd[ch]);  // sum(dy * xhat)
      if (dgamma) dgamma[ch] += T(sdyx[k]);
      if (dbeta) dbeta[ch] += T(sdy[k]);
    }
    if (!dx) return;
    T* a = reinterpret_cast<T*>(buf + 5 * S);
    T* b = reinterpret_cast<T*>(buf + 6 * S);
    T* cc = reinterpret_cast<T*>(buf + 7 * S);
    auto coef = [&](int ch, int which) {
      const std::size_t k = std::size_t(ch - L.c0);
      const double invstd = save_invstd[ch], kk = double(detail::gamma_at(gamma, ch)) * invstd;
      const double mdy = sdy[k] / count, mdyx = sdyx[k] / count;
      // dx = kk * (dy - mdy - (x - mean) * invstd * mdyx)
      if (which == 0) return kk;
      if (which == 1) return -kk * invstd * mdyx;
      return -kk * mdy + kk * invstd * mdyx * double(save_mean[ch]);
    };
    L.expand(a, [&](int ch) { return coef(ch, 0); });
    L.expand(b, [&](int ch) { return coef(ch, 1); });
    L.expand(cc, [&](int ch) { return coef(ch, 2); });
    L.each_run([&](std::ptrdiff_t e, std::ptrdiff_t len, std::ptrdiff_t k, auto per_element) {
      const std::uint8_t* m = relu_mask ? relu_mask + e : nullptr;
      detail::bn_train_dx_run<per_element>(len, x + e, dy + e, m, a + k, b + k, cc + k, dx + e);
    });
  });
}

template <class T>
void batchnorm_forward_eval(int n, int c, int hw, const T* x, const T* gamma, const T* beta, const T* running_mean,
                            const T* running_var, T eps, T* y, const BnAfter<T>& after = {}) {
  detail::for_channels(n, c, hw, [&](const detail::ChannelLoop& L, double* buf) {
    T* scale = reinterpret_cast<T*>(buf);
    T* shift = reinterpret_cast<T*>(buf + L.slots());
    auto sc = [&](int ch) {
      return double(detail::gamma_at(gamma, ch)) / std::sqrt(double(running_var[ch]) + double(eps));
    };
    L.expand(scale, sc);
    L.expand(shift, [&](int ch) { return double(detail::beta_at(beta, ch)) - double(running_mean[ch]) * sc(ch); });
    detail::bn_output(L, x, scale, shift, after, y);
  });
}

// In eval the statistics are constants: dx = dy * gamma * invstd.
template <class T>
void batchnorm_backward_eval(int n, int c, int hw, const T* x, const T* gamma, const T* running_mean,
                             const T* running_var, T eps, const T* dy, T* dx, T* dgamma, T* dbeta,
                             const std::uint8_t* relu_mask = nullptr) {
  detail::after_dy_sums(n, c, hw, x, dy, relu_mask, running_mean, [&](const detail::ChannelLoop& L, double* buf,
                                                                      double* sdy, double* sdyx) {
    const std::size_t S = L.slots();
    for (int ch = L.c0; ch < L.c1; ++ch) {
      const std::size_t k = std::size_t(ch - L.c0);
      const double invstd = 1.0 / std::sqrt(double(running_var[ch]) + double(eps));
      if (dgamma) dgamma[ch] += T(sdyx[k] * invstd);
      if (dbeta) dbeta[ch] += T(sdy[k]);
    }
    if (!dx) return;
    T* a = reinterpret_cast<T*>(buf + 5 * S);
    L.expand(a, [&](int ch) {
      return double(detail::gamma_at(gamma, ch)) / std::sqrt(double(running_var[ch]) + double(eps));
    });
    L.each_run([&](std::ptrdiff_t e, std::ptrdiff_t len, std::ptrdiff_t k, auto per_element) {
      const std::uint8_t* m = relu_mask ? relu_mask + e : nullptr;  // after the sums: dx may alias dy
      detail::bn_eval_dx_run<per_element>(len, dy + e, m, a + k, dx + e);
    });
  });
}

}  // namespace hw1::cpu
