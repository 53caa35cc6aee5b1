// Softmax cross-entropy on model outputs: logits [N, K] with N targets, or [N, K, H, W] with N*H*W targets
// (torch.nn.functional.cross_entropy, mean reduction, optional class weights, ignore_index).
#pragma once
#include <cstdint>
#include <vector>

#include "hw1/backend/cpu.hpp"

namespace hw1 {

template <class T>
struct LossResult {
  double loss = 0;
  HostTensor<T> grad;  // d loss / d logits, shaped like the logits
};

template <class T>
LossResult<T> cross_entropy(const HostTensor<T>& logits, const std::vector<std::int64_t>& target,
                            const std::vector<T>& class_weight = {}, std::int64_t ignore_index = -100,
                            bool want_grad = true) {
  if (logits.dimension() != 2 && logits.dimension() != 4)
    throw Error("cross_entropy: logits must be [N, K] or [N, K, H, W], got " + shape_str(logits.shape()));
  const int n = int(logits.shape()[0]), k = int(logits.shape()[1]);
  const int hw = logits.dimension() == 4 ? int(logits.shape()[2] * logits.shape()[3]) : 1;
  if (target.size() != std::size_t(n) * hw)
    throw Error("cross_entropy: " + std::to_string(target.size()) + " targets for logits " + shape_str(logits.shape()));
  if (!class_weight.empty() && class_weight.size() != std::size_t(k))
    throw Error("cross_entropy: " + std::to_string(class_weight.size()) + " class weights for " + std::to_string(k) +
                " classes");
  LossResult<T> r;
  if (want_grad) r.grad = hw1::empty<T>(shape_of(logits));
  r.loss = double(cpu::softmax_cross_entropy<T>(n, k, hw, logits.data(), target.data(),
                                                class_weight.empty() ? nullptr : class_weight.data(), ignore_index,
                                                want_grad ? r.grad.data() : nullptr));
  return r;
}

// Index of the largest logit per sample ([N, K] -> N) or per pixel ([N, K, H, W] -> N*H*W); ties: lowest index.
template <class T>
std::vector<std::int64_t> argmax_classes(const HostTensor<T>& logits) {
  const std::size_t n = logits.shape()[0], k = logits.shape()[1];
  const std::size_t hw = logits.dimension() == 4 ? logits.shape()[2] * logits.shape()[3] : 1;
  std::vector<std::int64_t> out(n * hw);
  const T* p = logits.data();
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < hw; ++j) {
      std::size_t best = 0;
      for (std::size_t c = 1; c < k; ++c)
        if (p[(i * k + c) * hw + j] > p[(i * k + best) * hw + j]) best = c;
      out[i * hw + j] = std::int64_t(best);
    }
  return out;
}

}  // namespace hw1
