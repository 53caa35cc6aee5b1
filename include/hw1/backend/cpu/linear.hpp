// Fully connected layer over Eigen maps: y = x w^T + b with torch's [out, in] weight layout (row-major).
#pragma once
// GCC 12 flags Eigen's AVX-512 transposes (-march=native) with a false -Wmaybe-uninitialized; Eigen's own code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <Eigen/Core>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

namespace hw1::cpu {

namespace detail {
template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using CMap = Eigen::Map<const RowMat<T>>;
template <class T>
using MMap = Eigen::Map<RowMat<T>>;
}  // namespace detail

template <class T>
void linear_forward(int n, int in, int out, const T* x, const T* w, const T* b, T* y) {
  detail::CMap<T> X(x, n, in), W(w, out, in);
  detail::MMap<T> Y(y, n, out);
  Y.noalias() = X * W.transpose();
  if (b) Y.rowwise() += Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>(b, out);
}

template <class T>
void linear_backward(int n, int in, int out, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db) {
  detail::CMap<T> X(x, n, in), W(w, out, in), DY(dy, n, out);
  if (dx) detail::MMap<T>(dx, n, in).noalias() = DY * W;
  if (dw) detail::MMap<T>(dw, out, in).noalias() += DY.transpose() * X;
  if (db) Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>>(db, out) += DY.colwise().sum();
}

}  // namespace hw1::cpu
