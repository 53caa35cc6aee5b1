// Fully connected layer as gemm() calls: y = x w^T + b with torch's [out, in] weight layout (row-major).
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

#include "hw1/backend/cpu/gemm.hpp"

namespace hw1::cpu {

template <class T>
void linear_forward(int n, int in, int out, const T* x, const T* w, const T* b, T* y) {
  const auto X = mat(x, n, in), W = mat(w, out, in);
  auto Y = mat(y, n, out);
  gemm(Y, X, W.transpose(), false);
  if (b) Y.rowwise() += Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>(b, out);
}

template <class T>
void linear_backward(int n, int in, int out, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db) {
  const auto X = mat(x, n, in), W = mat(w, out, in), DY = mat(dy, n, out);
  if (dx) gemm(mat(dx, n, in), DY, W, false);
  if (dw) gemm(mat(dw, out, in), DY.transpose(), X, true);
  if (db) Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>>(db, out) += DY.colwise().sum();
}

}  // namespace hw1::cpu
