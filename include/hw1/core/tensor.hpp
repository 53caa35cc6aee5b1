// Host tensors: xtensor containers, float32 by default, NCHW row-major.
// Kernels work on raw pointers (tensor.data()); xtensor does the element-wise work in the layers.
#pragma once
#include <xtensor/xarray.hpp>
#include <xtensor/xadapt.hpp>
#include <xtensor/xview.hpp>
#include <xtensor/xmath.hpp>
#include <cstddef>
#include <vector>

#include "hw1/core/error.hpp"

namespace hw1 {

template <class T>
using HostTensor = xt::xarray<T, xt::layout_type::row_major>;
using Tensor = HostTensor<float>;
using Shape = std::vector<std::size_t>;

// An uninitialised tensor of the given shape.
template <class T = float>
HostTensor<T> empty(const Shape& s) {
  HostTensor<T> t = HostTensor<T>::from_shape(s);
  return t;
}
template <class T = float>
HostTensor<T> zeros(const Shape& s) {
  HostTensor<T> t = HostTensor<T>::from_shape(s);
  std::fill(t.begin(), t.end(), T(0));
  return t;
}

template <class E>
Shape shape_of(const E& t) {
  return Shape(t.shape().begin(), t.shape().end());
}

// N, C, H, W of a rank-4 tensor (with a sentence when it is not rank 4).
struct Dims4 {
  int n, c, h, w;
};
template <class E>
Dims4 dims4(const E& t, const char* who) {
  if (t.dimension() != 4)
    throw Error(std::string(who) + ": expected a 4-d NCHW tensor, got shape " + shape_str(t.shape()));
  return {int(t.shape()[0]), int(t.shape()[1]), int(t.shape()[2]), int(t.shape()[3])};
}

}  // namespace hw1
