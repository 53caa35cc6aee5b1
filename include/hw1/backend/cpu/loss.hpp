// Softmax cross-entropy, as torch.nn.functional.cross_entropy(logits, target, weight, ignore_index,
// reduction="mean"): the weighted mean of -log softmax(logits)[target] over the non-ignored positions.
// When every position is ignored (or the weights of all targets sum to 0) this returns 0 with a zero gradient,
// where torch returns nan: an all-void crop should not poison a training run.
// Max and sums run in double, exp in T. One image per thread; image partial sums are added in order, so the
// result does not depend on the thread count.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "hw1/core/error.hpp"

namespace hw1::cpu {

template <class T>
T softmax_cross_entropy(int n, int k, int hw, const T* logits, const std::int64_t* target, const T* weight,
                        std::int64_t ignore_index, T* dlogits) {
  const std::ptrdiff_t plane = std::ptrdiff_t(k) * hw;
  for (std::ptrdiff_t i = 0; i < std::ptrdiff_t(n) * hw; ++i) {
    const std::int64_t t = target[i];
    if (t != ignore_index && (t < 0 || t >= k))
      throw Error("cross_entropy: target " + std::to_string(t) + " at image " + std::to_string(i / hw) +
                  ", position " + std::to_string(i % hw) + " is outside the " + std::to_string(k) +
                  " classes [0," + std::to_string(k) + ") and is not ignore_index " + std::to_string(ignore_index) +
                  "; check the label map or the number of classes");
  }
  // lse: log-sum-exp per position; rs: 1 / sum exp(z - max). With dlogits, exp(z - max) is kept there for pass 2.
  std::vector<double> lse(std::size_t(n) * hw), rs(lse.size()), loss(n), wsum(n);
#pragma omp parallel for schedule(static)
  for (int b = 0; b < n; ++b) {
    const T* z = logits + b * plane;
    T* e = dlogits ? dlogits + b * plane : nullptr;
    double* m = lse.data() + std::ptrdiff_t(b) * hw;
    double* r = rs.data() + std::ptrdiff_t(b) * hw;
    // Class-major loops: logits of one pixel are hw apart, so sweep whole class planes for locality.
    std::copy(z, z + hw, m);
    for (int j = 1; j < k; ++j)
      for (int p = 0; p < hw; ++p) m[p] = std::max(m[p], double(z[std::ptrdiff_t(j) * hw + p]));
    std::fill_n(r, hw, 0.0);
    for (int j = 0; j < k; ++j)
      for (int p = 0; p < hw; ++p) {
        const T v = std::exp(T(z[std::ptrdiff_t(j) * hw + p] - m[p]));  // exp in T (float: ~1 ulp), summed in double
        r[p] += v;
        if (e) e[std::ptrdiff_t(j) * hw + p] = v;
      }
    double l = 0, ws = 0;
    for (int p = 0; p < hw; ++p) {
      const double sum = r[p];
      r[p] = 1.0 / sum;
      m[p] += std::log(sum);
      const std::int64_t t = target[std::ptrdiff_t(b) * hw + p];
      if (t == ignore_index) continue;
      const double wt = weight ? double(weight[t]) : 1.0;
      l += wt * (m[p] - double(z[t * hw + p]));
      ws += wt;
    }
    loss[b] = l;
    wsum[b] = ws;
  }
  double total = 0, wtotal = 0;
  for (int b = 0; b < n; ++b) total += loss[b], wtotal += wsum[b];
  const bool none = wtotal == 0;
  if (dlogits) {
#pragma omp parallel for schedule(static)
    for (int b = 0; b < n; ++b) {
      T* g = dlogits + b * plane;
      const double* r = rs.data() + std::ptrdiff_t(b) * hw;
      const std::int64_t* tb = target + std::ptrdiff_t(b) * hw;
      for (int j = 0; j < k; ++j)
        for (int p = 0; p < hw; ++p) {
          const std::int64_t t = tb[p];
          const std::ptrdiff_t at = std::ptrdiff_t(j) * hw + p;
          if (none || t == ignore_index) {
            g[at] = T(0);
            continue;
          }
          const double scale = (weight ? double(weight[t]) : 1.0) / wtotal;
          g[at] = T((g[at] * r[p] - (j == t ? 1.0 : 0.0)) * scale);  // softmax - one-hot, weighted
        }
    }
  }
  return none ? T(0) : T(total / wtotal);
}

}  // namespace hw1::cpu
