// The backend contract, as a concept: what a layer may assume of its backend B (backend::cpu_t<T>, hw1::cuda).
// A backend is a tag type with static functions over raw pointers of its scalar type into its tensors' storage;
// layers call B::op(...) and never look inside. HW1_BACKEND_OPS (below) is the full op list each backend
// forwards; this concept spells out the types and a representative call of each kind of op (shape-struct ops,
// per-channel ops, element-wise ops, GEMM-shaped ops, resampling, concatenation, masks), so that a new backend is
// checked by `static_assert(hw1::Backend<MyBackend>)` before any layer is instantiated with it.
#pragma once
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "hw1/backend/cpu/shapes.hpp"
#include "hw1/core/tensor.hpp"

// The ops every backend provides as static functions (the layers call B::op(...)); each backend expands this list
// with its own forwarding macro, so the CPU and CUDA backends cannot drift apart.
#define HW1_BACKEND_OPS(X) \
  X(conv2d_forward) X(conv2d_backward) X(conv_transpose2d_forward) X(conv_transpose2d_backward) \
  X(batchnorm_forward_train) X(batchnorm_backward_train) X(batchnorm_forward_eval) X(batchnorm_backward_eval) \
  X(maxpool2d_forward) X(maxpool2d_backward) X(global_avgpool_forward) X(global_avgpool_backward) \
  X(linear_forward) X(linear_backward) X(bilinear_resize_forward) X(bilinear_resize_backward) \
  X(softmax_cross_entropy) X(relu_forward) X(relu_backward) X(add_forward) X(concat_channels_forward) \
  X(concat_channels_backward) X(dropout_mask) X(dropout2d_mask) X(mul_forward) X(crop2d_forward) \
  X(crop2d_backward)

namespace hw1 {

template <class B>
concept Backend = requires {
  typename B::scalar;
  typename B::tensor;
  typename B::template buffer<std::int64_t>;  // scratch arrays a layer keeps (max-pool indices)
  { B::name } -> std::convertible_to<const char*>;
} && std::floating_point<typename B::scalar> &&
    requires(const Shape& s, typename B::tensor t, const typename B::scalar* c, typename B::scalar* m,
             typename B::scalar v, const Conv2dShape& cs, std::size_t count, int i, std::uint64_t seed,
             const std::vector<const typename B::scalar*>& parts, const std::vector<typename B::scalar*>& outs,
             const std::vector<int>& channels) {
      { B::empty(s) } -> std::same_as<typename B::tensor>;
      { B::zeros(s) } -> std::same_as<typename B::tensor>;
      { t.data() } -> std::convertible_to<const typename B::scalar*>;
      { t.size() } -> std::convertible_to<std::size_t>;
      t.shape();
      B::conv2d_forward(cs, c, c, c, m);
      B::conv2d_backward(cs, c, c, c, m, m, m);
      B::batchnorm_forward_eval(i, i, i, c, c, c, c, c, v, m);
      B::global_avgpool_forward(i, i, i, c, m);
      B::linear_forward(i, i, i, c, c, c, m);
      B::linear_backward(i, i, i, c, c, c, m, m, m);
      B::bilinear_resize_forward(i, i, i, i, i, i, c, m);
      B::add_forward(count, c, c, m);
      B::relu_forward(count, c, m);
      B::relu_backward(count, c, c, m);
      B::concat_channels_forward(i, i, parts, channels, m);
      B::concat_channels_backward(i, i, c, outs, channels);
      B::crop2d_forward(i, i, i, i, i, i, i, c, m);
      B::dropout_mask(count, v, seed, m);
    };

}  // namespace hw1
