// The CPU backend: a tag type that says how each op is computed (the kernels in backend/cpu/), and which tensor
// type carries activations. Layers are written against this interface, so a CUDA backend with the same static
// functions (over device tensors) plugs in without touching them. This header never includes a CUDA header.
#pragma once
#include <utility>
#include <vector>

#include "hw1/core/tensor.hpp"
#include "hw1/backend/cpu/batchnorm.hpp"
#include "hw1/backend/cpu/conv2d.hpp"
#include "hw1/backend/cpu/conv_transpose2d.hpp"
#include "hw1/backend/cpu/crop.hpp"
#include "hw1/backend/cpu/elementwise.hpp"
#include "hw1/backend/cpu/linear.hpp"
#include "hw1/backend/cpu/loss.hpp"
#include "hw1/backend/cpu/pooling.hpp"
#include "hw1/backend/cpu/resize.hpp"

namespace hw1::backend {

#define HW1_CPU_OP(name)                                        \
  template <class... A>                                         \
  static decltype(auto) name(A&&... a) {                        \
    return ::hw1::cpu::name<T>(std::forward<A>(a)...);          \
  }

template <class T>
struct cpu_t {
  using scalar = T;
  using tensor = HostTensor<T>;
  static constexpr const char* name = "cpu";
  static tensor empty(const Shape& s) { return hw1::empty<T>(s); }
  static tensor zeros(const Shape& s) { return hw1::zeros<T>(s); }
  template <class U>
  using buffer = std::vector<U>;  // scratch arrays a layer keeps (max-pool indices)

  HW1_CPU_OP(conv2d_forward)
  HW1_CPU_OP(conv2d_backward)
  HW1_CPU_OP(conv_transpose2d_forward)
  HW1_CPU_OP(conv_transpose2d_backward)
  HW1_CPU_OP(batchnorm_forward_train)
  HW1_CPU_OP(batchnorm_backward_train)
  HW1_CPU_OP(batchnorm_forward_eval)
  HW1_CPU_OP(batchnorm_backward_eval)
  HW1_CPU_OP(maxpool2d_forward)
  HW1_CPU_OP(maxpool2d_backward)
  HW1_CPU_OP(global_avgpool_forward)
  HW1_CPU_OP(global_avgpool_backward)
  HW1_CPU_OP(linear_forward)
  HW1_CPU_OP(linear_backward)
  HW1_CPU_OP(bilinear_resize_forward)
  HW1_CPU_OP(bilinear_resize_backward)
  HW1_CPU_OP(softmax_cross_entropy)
  HW1_CPU_OP(relu_forward)
  HW1_CPU_OP(relu_backward)
  HW1_CPU_OP(add_forward)
  HW1_CPU_OP(concat_channels_forward)
  HW1_CPU_OP(concat_channels_backward)
  HW1_CPU_OP(dropout_mask)
  HW1_CPU_OP(dropout2d_mask)
  HW1_CPU_OP(mul_forward)
  HW1_CPU_OP(crop2d_forward)
  HW1_CPU_OP(crop2d_backward)
};
#undef HW1_CPU_OP

using cpu = cpu_t<float>;

}  // namespace hw1::backend

namespace hw1 {
using Conv2dShape = cpu::Conv2dShape;
using ConvTranspose2dShape = cpu::ConvTranspose2dShape;
using Pool2dShape = cpu::Pool2dShape;
}  // namespace hw1
