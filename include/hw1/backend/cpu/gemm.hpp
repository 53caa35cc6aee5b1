// The CPU kernels' matrix layer: views of row-major buffers as Eigen matrices, one GEMM entry point, per-thread
// scratch buffers and OpenMP helpers. Every heavy kernel (convolutions, linear) funnels through gemm(), so that a
// hand-tuned micro-kernel can later replace Eigen's here without touching the kernels.
#pragma once
#include <Eigen/Core>
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "hw1/backend/cpu/blas.hpp"
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
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

namespace detail {

// A GEMM operand as BLAS sees it: a row-major matrix at p with rows ld apart, read transposed or not.
template <class T>
struct BlasOperand {
  const T* p;
  Index ld;
  bool trans;
};
template <class X>
struct blas_view : std::false_type {};
template <class T, class S>
struct blas_view<Eigen::Map<RowMatrix<T>, Eigen::Unaligned, S>> : std::true_type {
  static BlasOperand<T> get(const Eigen::Map<RowMatrix<T>, Eigen::Unaligned, S>& m) {
    return {m.data(), m.outerStride(), false};
  }
};
template <class T, class S>
struct blas_view<Eigen::Map<const RowMatrix<T>, Eigen::Unaligned, S>> : std::true_type {
  static BlasOperand<T> get(const Eigen::Map<const RowMatrix<T>, Eigen::Unaligned, S>& m) {
    return {m.data(), m.outerStride(), false};
  }
};
template <class M>
struct blas_view<Eigen::Transpose<M>> : std::bool_constant<blas_view<std::remove_const_t<M>>::value> {
  static auto get(const Eigen::Transpose<M>& t) {
    auto o = blas_view<std::remove_const_t<M>>::get(t.nestedExpression());
    o.trans = !o.trans;
    return o;
  }
};

template <class T>
inline bool blas_gemm(bool ta, bool tb, Index m, Index n, Index k, const T* a, Index lda, const T* b, Index ldb,
                      T beta, T* c, Index ldc) {
  const auto& lib = blas::library();
  const auto f = [&] {
    if constexpr (std::is_same_v<T, float>)
      return lib.sgemm;
    else
      return lib.dgemm;
  }();
  if (!f) return false;
  f(blas::RowMajor, ta ? blas::Trans : blas::NoTrans, tb ? blas::Trans : blas::NoTrans, int(m), int(n), int(k), T(1),
    a, int(lda), b, int(ldb), beta, c, int(ldc));
  return true;
}

}  // namespace detail

// The GEMM behind gemm(), e.g. "OpenBLAS 0.3.21 (SkylakeX)" or "Eigen (no OpenBLAS found; ...)".
inline std::string blas_name() { return blas::library().name; }

// c = a * b, or c += a * b. Row-major maps (and their transposes) of float or double go to OpenBLAS where it was
// loaded (blas.hpp); anything else, or no OpenBLAS, to Eigen. Both run single-threaded inside a parallel region
// and use all OpenMP threads outside one, so a kernel picks its parallelism by where it calls this.
template <class C, class A, class B>
void gemm(C&& c, const A& a, const B& b, bool accumulate) {
  using CT = std::remove_cvref_t<C>;
  using Scalar = typename CT::Scalar;
  if constexpr ((std::is_same_v<Scalar, float> || std::is_same_v<Scalar, double>) && detail::blas_view<CT>::value &&
                detail::blas_view<A>::value && detail::blas_view<B>::value) {
    if (c.rows() == 0 || c.cols() == 0) return;
    if (a.cols() == 0) {
      if (!accumulate) c.setZero();
      return;
    }
    const auto oa = detail::blas_view<A>::get(a), ob = detail::blas_view<B>::get(b);
    const auto oc = detail::blas_view<CT>::get(c);
    if (detail::blas_gemm(oa.trans, ob.trans, c.rows(), c.cols(), a.cols(), oa.p, oa.ld, ob.p, ob.ld,
                          accumulate ? Scalar(1) : Scalar(0), const_cast<Scalar*>(oc.p), oc.ld))
      return;
  }
  if (accumulate)
    c.noalias() += a * b;
  else
    c.noalias() = a * b;
}

#if defined(__AVX512F__)
// The first n of 16 lanes (none for n <= 0, all for n >= 16): the mask of a vector loop's partial last step.
inline __mmask16 lane_mask(Index n) {
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}
#endif

// dst[0, n) = src[0, n) for the short runs of the convolution kernels (a 2x2 plane, a 32-column panel row), where
// a memcpy call costs more than the copy; AVX-512 float copies 16 lanes at a time with a masked tail.
template <class T>
inline void copy_short(const T* src, Index n, T* dst) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    for (; n >= 16; n -= 16, src += 16, dst += 16) _mm512_storeu_ps(dst, _mm512_loadu_ps(src));
    if (n > 4) {
      _mm512_mask_storeu_ps(dst, lane_mask(n), _mm512_maskz_loadu_ps(lane_mask(n), src));
    } else {  // 1-4 values (1x1 and 2x2 planes): plain moves, cheaper than a masked store
      for (Index i = 0; i < n; ++i) dst[i] = src[i];
    }
    return;
  }
#endif
  std::copy_n(src, n, dst);
}

// dst[i] = src[stride * i] for i in [0, n): a strided convolution's im2col rows. AVX-512 float at stride 2 merges
// the even lanes of two loads with one permute per 16 values (the scalar loop cost a stride-2 layer's forward
// about a third of its time).
template <class T>
inline void copy_strided(const T* src, int stride, Index n, T* dst) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    if (stride == 2) {
      const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
      // A full step reads src[0, 32): src[31] is needed no more, but lies before src[32], which the next value
      // needs. So the last 1-16 values go masked, reading src[0, 2n - 1) only (no read past the row's end).
      for (; n > 16; n -= 16, src += 32, dst += 16)
        _mm512_storeu_ps(dst, _mm512_permutex2var_ps(_mm512_loadu_ps(src), even, _mm512_loadu_ps(src + 16)));
      if (n > 0) {
        const __m512 lo = _mm512_maskz_loadu_ps(lane_mask(2 * n - 1), src),
                     hi = _mm512_maskz_loadu_ps(lane_mask(2 * n - 1 - 16), src + 16);
        _mm512_mask_storeu_ps(dst, lane_mask(n), _mm512_permutex2var_ps(lo, even, hi));
      }
      return;
    }
  }
#endif
  for (Index i = 0; i < n; ++i) dst[i] = src[Index(stride) * i];
}

// dst[stride * i] += src[i] for i in [0, n) (col2im of a strided convolution): AVX-512 float at stride 2 spreads 8
// values over the even lanes of a vector and adds 16 lanes (the odd ones + 0).
template <class T>
inline void add_strided(const T* src, int stride, Index n, T* dst) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    if (stride == 2) {
      // A full step reads and writes back dst[0, 16) (dst[15] + 0), which lies before dst[16], the next value's.
      // So the last 1-8 values go masked, touching dst[0, 2n - 1) only: nothing past the row's end, which may be
      // another thread's channel.
      for (; n > 8; n -= 8, src += 8, dst += 16) {
        const __m512 v = _mm512_maskz_expand_ps(0x5555, _mm512_castps256_ps512(_mm256_loadu_ps(src)));
        _mm512_storeu_ps(dst, _mm512_add_ps(_mm512_loadu_ps(dst), v));
      }
      if (n > 0) {
        const __mmask16 m = lane_mask(2 * n - 1);
        const __m512 v = _mm512_maskz_expand_ps(0x5555, _mm512_maskz_loadu_ps(lane_mask(n), src));
        _mm512_mask_storeu_ps(dst, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, dst), v));
      }
      return;
    }
  }
#endif
  for (Index i = 0; i < n; ++i) dst[Index(stride) * i] += src[i];
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

// The scratch buffers of the CPU kernels: one per use, so that two buffers alive at the same time never share
// one (each (element type, Slot) pair is its own per-thread buffer).
enum class Slot : int {
  col,              // a block of a column matrix (conv2d, conv_transpose2d)
  group_out,        // a batched group's GEMM output, before it is copied into y (conv2d forward)
  dw_partial,       // a thread's partial weight gradient (conv2d / conv_transpose2d backward)
  group_dy,         // a batched group's dY side by side (conv2d backward, a thread's own groups)
  group_table,      // a batched group's index table (conv/im2col.hpp)
  shared_col,       // a group's column matrix that the whole team builds (conv2d forward)
  shared_dy,        // a group's dY that the whole team gathers (conv2d backward)
  panel_row,        // one column-matrix row before it is copied into B panels (conv/im2col.hpp)
  pgemm_a_copy,     // pgemm's copy of an A block whose rows alias in cache (pgemm.hpp)
  shifted_planes,   // a channel's planes of a group side by side (im2col_shifted, col2im_shifted)
  dense_panels,     // conv3x3_dense_2x2's packed weights, or its weight gradient's packed dY (conv/dense2x2.hpp)
  dense_products,   // its weight gradient's products before the fold into taps
  winograd_u,       // Winograd's transformed weights (winograd.hpp, winograd4.hpp)
  winograd_groups,  // Winograd's tile groups
  winograd_v,       // Winograd's transformed input tiles
  winograd_m,       // Winograd's products per point (forward), or the weight gradient's Q
  winograd_s,       // Winograd's weight-gradient partial sums
  trimmed_w,        // a kernel with its dead taps dropped (conv/trim.hpp)
  trimmed_dw,       // its gradient
  w_copy,           // W copied to rows that do not alias in cache (conv/gemm_forward.hpp)
  w_transposed,     // W^T for the packed 1x1 input gradient (conv/packed1x1.hpp)
};

// A buffer of at least n elements owned by the calling thread and reused by later calls (no allocation in the
// steady state). It starts on a 64-byte boundary (for
// element sizes that divide 64): a vector store into it then fills whole cache lines instead of straddling two
// (malloc gives large blocks 16-byte alignment only).
template <class T, Slot S>
T* scratch(std::size_t n) {
  thread_local std::vector<T> buf;
  if constexpr (64 % sizeof(T) == 0 && alignof(T) < 64) {
    constexpr std::size_t extra = 64 / sizeof(T);
    if (buf.size() < n + extra) buf.resize(n + extra);
    const std::uintptr_t at = reinterpret_cast<std::uintptr_t>(buf.data());
    return reinterpret_cast<T*>((at + 63) & ~std::uintptr_t(63));
  } else {
    if (buf.size() < n) buf.resize(n);
    return buf.data();
  }
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
