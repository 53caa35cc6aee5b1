// The CPU backend: a tag type that says how each op is computed (the kernels in backend/cpu/), and which tensor
// type carries activations. Layers are written against this interface, so a CUDA backend with the same static
// functions (over device tensors) plugs in without touching them. This header never includes a CUDA header.
#pragma once
#include <utility>
#include <vector>

#include "hw1/backend/backend.hpp"
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

  HW1_BACKEND_OPS(HW1_CPU_OP)

  // CPU only, outside the shared list: a convolution with batch norm (inference) and ReLU in its output pass.
  // Layers fuse through it where this flag exists (see fusable() in core/compose.hpp).
  // The same flag gives ReLU layers a byte mask in place of a copy of their output (relu_*_mask), and batch norm
  // the residual add and ReLU in its own passes (BnAfter in cpu/batchnorm.hpp).
  static constexpr bool fuses_conv = true;
  HW1_CPU_OP(conv2d_forward_fused)
  HW1_CPU_OP(relu_forward_mask)
  HW1_CPU_OP(relu_backward_mask)
};
#undef HW1_CPU_OP

using cpu = cpu_t<float>;
static_assert(Backend<cpu> && Backend<cpu_t<double>>, "the CPU backend must meet the backend contract (backend.hpp)");

}  // namespace hw1::backend

