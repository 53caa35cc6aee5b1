// The CPU kernels' matrix layer: views of row-major buffers as Eigen matrices, one GEMM entry point, per-thread
// scratch buffers and OpenMP helpers. Every heavy kernel (convolutions, linear) funnels through gemm(), so that a
// hand-tuned micro-kernel can later replace Eigen's here without touching the kernels.
#pragma once
#include <Eigen/Core>
#include <algorithm>
#include <cstddef>
#include <vector>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace hw1::cpu {

using Index = Eigen::Index;

template <class T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
// A rows x cols row-major matrix whose rows lie `ld` elements apart (a column block of a wider matrix when ld > cols).
template <class T>
using MatMap = Eigen::Map<RowMatrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <class T>
using ConstMatMap = Eigen::Map<const RowMatrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <class T>
using VecMap = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>>;
template <class T>
using ConstVecMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>;

template <class T>
MatMap<T> mat(T* p, Index rows, Index cols, Index ld = 0) {
  return MatMap<T>(p, rows, cols, Eigen::OuterStride<>(ld > 0 ? ld : cols));
}
template <class T>
ConstMatMap<T> mat(const T* p, Index rows, Index cols, Index ld = 0) {
  return ConstMatMap<T>(p, rows, cols, Eigen::OuterStride<>(ld > 0 ? ld : cols));
}
template <class T>
VecMap<T> vec(T* p, Index n) { return VecMap<T>(p, n); }
template <class T>
ConstVecMap<T> vec(const T* p, Index n) { return ConstVecMap<T>(p, n); }

// c = a * b, or c += a * b. Eigen's blocked GEMM uses all OpenMP threads when called outside a parallel region
// and runs single-threaded inside one, so a kernel picks its parallelism by where it calls this.
template <class C, class A, class B>
void gemm(C&& c, const A& a, const B& b, bool accumulate) {
  if (accumulate)
    c.noalias() += a * b;
  else
    c.noalias() = a * b;
}

inline int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}
inline int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}
inline int team_size() {
#ifdef _OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}

// A buffer of at least n elements owned by the calling thread and reused by later calls (no allocation in the
// steady state). Buffers in use at the same time need different Slots.
template <class T, int Slot>
T* scratch(std::size_t n) {
  thread_local std::vector<T> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

// Deterministic reduction of per-thread partial sums: call inside a parallel region after every thread has
// filled partial[thread_id()] (n elements); out[i] += partial[0][i] + partial[1][i] + ... in thread order.
template <class T>
void reduce_partials(std::vector<T*>& partial, T* out, Index n) {
  const int nt = team_size();
#pragma omp barrier
#pragma omp for schedule(static)
  for (Index i = 0; i < n; ++i) {
    T s = 0;
    for (int t = 0; t < nt; ++t) s += partial[t][i];
    out[i] += s;
  }
}

}  // namespace hw1::cpu
