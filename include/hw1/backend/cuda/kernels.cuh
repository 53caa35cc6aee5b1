// The CUDA backend's own kernels: only what cuDNN / cuBLAS have no call for (element-wise ops whose rule must
// match the CPU's bit for bit, max pooling with stored indices, bilinear resize, crop, channel concatenation is
// done with 2-D copies elsewhere, eval-mode batch-norm backward, softmax cross-entropy, optimizer steps).
// Contains __global__ code: include only from translation units compiled by nvcc (.cu).
#pragma once
#ifndef __CUDACC__
#error "hw1/backend/cuda/kernels.cuh holds CUDA kernels: compile this translation unit with nvcc (a .cu file)"
#endif
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "hw1/backend/cuda/runtime.hpp"

namespace hw1::gpu::kernels {

using Index = std::ptrdiff_t;
constexpr int threads = 256;
inline unsigned blocks_for(Index n) {
  const Index b = (n + threads - 1) / threads;
  return unsigned(b < 1 ? 1 : (b > 65535 * 8 ? 65535 * 8 : b));
}
#define HW1_GRID_LOOP(i, n) \
  for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < Index(n); i += Index(gridDim.x) * blockDim.x)

// Launch on the backend's stream and check the launch.
template <class K, class... A>
void launch(const char* name, Index n, K kernel, A... args) {
  if (n <= 0) return;
  kernel<<<blocks_for(n), threads, 0, device().stream()>>>(args...);
  check_cuda(cudaGetLastError(), name);
}

template <class T>
__global__ void relu_fwd(Index n, const T* x, T* y) {
  HW1_GRID_LOOP(i, n) y[i] = x[i] > T(0) ? x[i] : T(0);
}
template <class T>
__global__ void relu_bwd(Index n, const T* y, const T* dy, T* dx) {
  HW1_GRID_LOOP(i, n) dx[i] = y[i] > T(0) ? dy[i] : T(0);
}
template <class T>
__global__ void add(Index n, const T* a, const T* b, T* y) {
  HW1_GRID_LOOP(i, n) y[i] = a[i] + b[i];
}
template <class T>
__global__ void mul(Index n, const T* a, const T* b, T* y) {
  HW1_GRID_LOOP(i, n) y[i] = a[i] * b[i];
}

// The CPU backend's SplitMix64 stream (backend/cpu/elementwise.hpp), so masks are identical on both backends.
__device__ inline double uniform01(std::uint64_t seed, std::uint64_t i) {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ull * (i + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z = z ^ (z >> 31);
  return double(z >> 11) * 0x1.0p-53;
}
template <class T>
__global__ void dropout_mask(Index n, double p, T keep, std::uint64_t seed, T* mask) {
  HW1_GRID_LOOP(i, n) mask[i] = uniform01(seed, std::uint64_t(i)) >= p ? keep : T(0);
}
template <class T>
__global__ void dropout2d_mask(Index n, Index hw, double p, T keep, std::uint64_t seed, T* mask) {
  HW1_GRID_LOOP(i, n) mask[i] = uniform01(seed, std::uint64_t(i / hw)) >= p ? keep : T(0);
}

// Max pooling as the CPU kernel: padding is -inf, first maximum wins, NaN wins; index into the input plane.
template <class T>
__global__ void maxpool_fwd(Index n, int h, int w, int oh, int ow, int kh, int kw, int sh, int sw, int ph, int pw,
                            const T* x, T* y, std::int64_t* argmax) {
  HW1_GRID_LOOP(i, n) {
    const Index pl = i / (Index(oh) * ow);
    const int r = int(i / ow % oh), q = int(i % ow);
    const int h0 = r * sh - ph, w0 = q * sw - pw, h1 = min(h0 + kh, h), w1 = min(w0 + kw, w);
    const T* xp = x + pl * h * w;
    T best = -INFINITY;
    std::int64_t at = std::int64_t(max(h0, 0)) * w + max(w0, 0);
    for (int a = max(h0, 0); a < h1; ++a)
      for (int b = max(w0, 0); b < w1; ++b) {
        const T v = xp[Index(a) * w + b];
        if (v > best || isnan(v)) {
          best = v;
          at = std::int64_t(a) * w + b;
        }
      }
    y[i] = best;
    if (argmax) argmax[i] = at;  // nullptr: no backward follows
  }
}
template <class T>
__global__ void maxpool_bwd(Index n, Index in_plane, Index out_plane, const std::int64_t* argmax, const T* dy, T* dx) {
  HW1_GRID_LOOP(i, n) atomicAdd(dx + i / out_plane * in_plane + argmax[i], dy[i]);
}

// One block per (image, channel) plane: mean in double.
template <class T>
__global__ void plane_mean(int hw, const T* x, T* y) {
  __shared__ double part[threads];
  const T* p = x + Index(blockIdx.x) * hw;
  double s = 0;
  for (int i = threadIdx.x; i < hw; i += blockDim.x) s += p[i];
  part[threadIdx.x] = s;
  __syncthreads();
  for (int k = blockDim.x / 2; k > 0; k /= 2) {
    if (threadIdx.x < k) part[threadIdx.x] += part[threadIdx.x + k];
    __syncthreads();
  }
  if (threadIdx.x == 0) y[blockIdx.x] = T(part[0] / hw);
}
template <class T>
__global__ void plane_broadcast(Index n, Index hw, const T* dy, T* dx) {
  HW1_GRID_LOOP(i, n) dx[i] = T(dy[i / hw] / T(hw));
}

// Bilinear resize (align_corners=False), weights formed as in backend/cpu/resize.hpp.
template <class T>
__device__ inline void tap(int in, int out, int d, int& i0, int& i1, T& l0, T& l1) {
  const T scale = T(in) / T(out);
  const double src = fmax(double(scale) * (d + 0.5) - 0.5, 0.0);
  i0 = min(int(src), in - 1);
  l1 = T(src - i0);
  l0 = T(1) - l1;
  i1 = min(i0 + 1, in - 1);
}
// Output element i of an [planes, oh, ow] resize of [planes, h, w]: its plane, the two source rows / columns and
// their weights (a: rows, b: columns).
template <class T>
struct Bilinear {
  Index plane;
  int y0, y1, x0, x1;
  T a0, a1, b0, b1;
};
template <class T>
__device__ inline Bilinear<T> bilinear_at(Index i, int h, int w, int oh, int ow) {
  Bilinear<T> t;
  t.plane = i / (Index(oh) * ow);
  tap(h, oh, int(i / ow % oh), t.y0, t.y1, t.a0, t.a1);
  tap(w, ow, int(i % ow), t.x0, t.x1, t.b0, t.b1);
  return t;
}
template <class T>
__global__ void resize_fwd(Index n, int h, int w, int oh, int ow, const T* x, T* y) {
  HW1_GRID_LOOP(i, n) {
    const auto t = bilinear_at<T>(i, h, w, oh, ow);
    const T* p = x + t.plane * h * w;
    const T top = t.b0 * p[Index(t.y0) * w + t.x0] + t.b1 * p[Index(t.y0) * w + t.x1];
    const T bot = t.b0 * p[Index(t.y1) * w + t.x0] + t.b1 * p[Index(t.y1) * w + t.x1];
    y[i] = t.a0 * top + t.a1 * bot;
  }
}
template <class T>
__global__ void resize_bwd(Index n, int h, int w, int oh, int ow, const T* dy, T* dx) {
  HW1_GRID_LOOP(i, n) {
    const auto t = bilinear_at<T>(i, h, w, oh, ow);
    T* p = dx + t.plane * h * w;
    const T g = dy[i];
    atomicAdd(p + Index(t.y0) * w + t.x0, t.a0 * t.b0 * g);
    atomicAdd(p + Index(t.y0) * w + t.x1, t.a0 * t.b1 * g);
    atomicAdd(p + Index(t.y1) * w + t.x0, t.a1 * t.b0 * g);
    atomicAdd(p + Index(t.y1) * w + t.x1, t.a1 * t.b1 * g);
  }
}

// y planes [oh, ow] cut from x planes [h, w] at (oy, ox); the backward writes dy into a zeroed dx.
template <class T>
__global__ void crop_fwd(Index n, int h, int w, int oy, int ox, int oh, int ow, const T* x, T* y) {
  HW1_GRID_LOOP(i, n) {
    const Index pl = i / (Index(oh) * ow);
    y[i] = x[(pl * h + oy + i / ow % oh) * w + ox + i % ow];
  }
}
template <class T>
__global__ void crop_bwd(Index n, int h, int w, int oy, int ox, int oh, int ow, const T* dy, T* dx) {
  HW1_GRID_LOOP(i, n) {
    const Index pl = i / (Index(oh) * ow);
    dx[(pl * h + oy + i / ow % oh) * w + ox + i % ow] = dy[i];
  }
}

// Linear: y[r, j] += b[j]; db[j] += sum_r dy[r, j].
template <class T>
__global__ void add_row_bias(Index n, int cols, const T* b, T* y) {
  HW1_GRID_LOOP(i, n) y[i] += b[i % cols];
}
// One block per channel c of [n, C, hw]: s1[c] += sum dy; with x: s2[c] += sum dy * (x - mean[c]) * invstd[c].
template <class T>
__global__ void channel_sums(int n, int c, int hw, const T* dy, const T* x, const T* mean, const T* invstd, T* s1,
                             T* s2) {
  __shared__ double a[threads], b[threads];
  const int ch = blockIdx.x;
  double sa = 0, sb = 0;
  const double m = x ? double(mean[ch]) : 0.0, is = x ? double(invstd[ch]) : 0.0;
  for (Index i = threadIdx.x; i < Index(n) * hw; i += blockDim.x) {
    const Index at = (i / hw * c + ch) * hw + i % hw;
    sa += dy[at];
    if (x) sb += double(dy[at]) * ((double(x[at]) - m) * is);
  }
  a[threadIdx.x] = sa;
  b[threadIdx.x] = sb;
  __syncthreads();
  for (int k = blockDim.x / 2; k > 0; k /= 2) {
    if (threadIdx.x < k) {
      a[threadIdx.x] += a[threadIdx.x + k];
      b[threadIdx.x] += b[threadIdx.x + k];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    if (s1) s1[ch] += T(a[0]);
    if (s2) s2[ch] += T(b[0]);
  }
}
// invstd[c] = 1 / sqrt(var[c] + eps)
template <class T>
__global__ void inv_std(int c, const T* var, double eps, T* out) {
  HW1_GRID_LOOP(i, c) out[i] = T(1.0 / sqrt(double(var[i]) + eps));
}
// Eval batch norm: dx = dy * gamma * invstd.
template <class T>
__global__ void bn_eval_dx(Index n, int c, Index hw, const T* dy, const T* gamma, const T* invstd, T* dx) {
  HW1_GRID_LOOP(i, n) {
    const int ch = int(i / hw % c);
    dx[i] = dy[i] * T(double(gamma ? gamma[ch] : T(1)) * double(invstd[ch]));
  }
}

// Softmax cross-entropy, pass 1 (one thread per position): log-sum-exp, loss and weight sums (double atomics),
// the first bad target's position in *bad.
template <class T>
__global__ void ce_forward(Index n, int k, int hw, const T* z, const std::int64_t* target, const T* weight,
                           std::int64_t ignore, double* lse, double* sums, unsigned long long* bad) {
  HW1_GRID_LOOP(i, n) {
    const Index b = i / hw, p = i % hw;
    const T* zp = z + b * k * hw + p;
    double m = zp[0];
    for (int j = 1; j < k; ++j) m = fmax(m, double(zp[Index(j) * hw]));
    double s = 0;
    for (int j = 0; j < k; ++j) s += double(T(exp(T(zp[Index(j) * hw] - T(m)))));
    const double l = m + log(s);
    lse[i] = l;
    const std::int64_t t = target[i];
    if (t == ignore) continue;
    if (t < 0 || t >= k) {
      atomicMin(bad, (unsigned long long)i);
      continue;
    }
    const double wt = weight ? double(weight[t]) : 1.0;
    atomicAdd(sums, wt * (l - double(zp[t * hw])));
    atomicAdd(sums + 1, wt);
  }
}
// Pass 2 (one thread per logit): (softmax - one-hot) * w[t] / sum w.
template <class T>
__global__ void ce_backward(Index n, int k, int hw, const T* z, const std::int64_t* target, const T* weight,
                            std::int64_t ignore, const double* lse, const double* sums, T* dz) {
  HW1_GRID_LOOP(i, n) {
    const Index p = i % hw, j = i / hw % k, b = i / (Index(k) * hw), pos = b * hw + p;
    const std::int64_t t = target[pos];
    if (sums[1] == 0 || t == ignore || t < 0 || t >= k) {
      dz[i] = T(0);
      continue;
    }
    const double sm = exp(double(z[i]) - lse[pos]);
    dz[i] = T((sm - (j == t ? 1.0 : 0.0)) * (weight ? double(weight[t]) : 1.0) / sums[1]);
  }
}

// ---- mixed precision: float32 <-> 16-bit copies around the convolutions ------------------------------------------
template <class H>
__device__ inline H narrow(float v) {
  if constexpr (std::is_same_v<H, __half>) return __float2half_rn(v);
  else return __float2bfloat16_rn(v);
}
__device__ inline float widen(__half v) { return __half2float(v); }
__device__ inline float widen(__nv_bfloat16 v) { return __bfloat162float(v); }
template <class H>
__global__ void to_16bit(Index n, const float* x, H* y) {
  HW1_GRID_LOOP(i, n) y[i] = narrow<H>(x[i]);
}
// y = widen(x), or y += widen(x) with accumulate (weight gradients add into the float32 ones).
template <class H>
__global__ void from_16bit(Index n, const H* x, float* y, bool accumulate) {
  HW1_GRID_LOOP(i, n) y[i] = accumulate ? __fadd_rn(y[i], widen(x[i])) : widen(x[i]);
}

// ---- training: loss-gradient scale, fp16 gradient check, optimizers, segmentation counts ----------------------------
template <class T>
__global__ void scale_inplace(Index n, T s, T* x) {
  HW1_GRID_LOOP(i, n) x[i] *= s;
}
// g *= inv_scale; *bad = 1 if any result is inf or nan (torch.cuda.amp.GradScaler's unscale_ + found_inf).
// (Templates, float only, like every kernel here: a header's non-template kernel would be defined in every .cu.)
template <class F>
__global__ void unscale_check(Index n, F inv_scale, F* g, int* bad) {
  HW1_GRID_LOOP(i, n) {
    const F v = g[i] * inv_scale;
    g[i] = v;
    if (!isfinite(v)) *bad = 1;
  }
}

// The optimizers of hw1/train/optimizer.hpp, element for element in the same order of float operations; the _rn
// intrinsics keep nvcc from contracting a multiply and an add into one FMA, which the CPU build does not do either.
template <class F>
__global__ void sgd_plain(Index n, F* p, const F* g, F wd, F neg_lr) {
  HW1_GRID_LOOP(i, n) p[i] = __fadd_rn(p[i], __fmul_rn(neg_lr, __fadd_rn(g[i], __fmul_rn(wd, p[i]))));
}
template <class F>
__global__ void sgd_momentum(Index n, F* p, const F* g, F* buf, F wd, F keep, F damp, F cd, F cb, F neg_lr) {
  HW1_GRID_LOOP(i, n) {
    const float d = __fadd_rn(g[i], __fmul_rn(wd, p[i]));
    const float b = __fadd_rn(__fmul_rn(buf[i], keep), __fmul_rn(damp, d));
    buf[i] = b;
    p[i] = __fadd_rn(p[i], __fmul_rn(neg_lr, __fadd_rn(__fmul_rn(cd, d), __fmul_rn(cb, b))));
  }
}
template <class F>
__global__ void adam_step(Index n, F* p, const F* g, F* m, F* v, F b1, F a1, F b2, F a2, F neg_step, F bc2_sqrt,
                          F eps, F l2, F shrink) {
  HW1_GRID_LOOP(i, n) {
    const float pi = __fmul_rn(p[i], shrink);
    const float gi = __fadd_rn(g[i], __fmul_rn(l2, pi));
    const float mi = __fadd_rn(__fmul_rn(m[i], b1), __fmul_rn(a1, gi));
    const float vi = __fadd_rn(__fmul_rn(v[i], b2), __fmul_rn(__fmul_rn(a2, gi), gi));
    m[i] = mi;
    v[i] = vi;
    p[i] = __fadd_rn(pi, __fdiv_rn(__fmul_rn(neg_step, mi), __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), bc2_sqrt), eps)));
  }
}

// The course's mIoU counts of one batch: per position the arg-max class of logits [n, k, hw] (lowest index on a
// tie, as hw1::argmax_classes) against the target; counts[c] = #pred==c, counts[6+c] = #target==c, counts[12+c] =
// #both, for c in 0..5 (hw1::MeanIoU). Per-block tallies in shared memory, one global atomic per counter and block.
template <class T>
__global__ void miou_counts(Index n, int k, int hw, const T* z, const std::int64_t* target,
                            unsigned long long* counts) {
  __shared__ unsigned long long local[18];
  if (threadIdx.x < 18) local[threadIdx.x] = 0;
  __syncthreads();
  HW1_GRID_LOOP(i, n) {
    const Index b = i / hw, p = i % hw;
    const T* zp = z + b * k * hw + p;
    int best = 0;
    for (int j = 1; j < k; ++j)
      if (zp[Index(j) * hw] > zp[Index(best) * hw]) best = j;
    const std::int64_t t = target[i];
    if (best < 6) atomicAdd(local + best, 1ull);
    if (t >= 0 && t < 6) atomicAdd(local + 6 + t, 1ull);
    if (t == best && best < 6) atomicAdd(local + 12 + best, 1ull);
  }
  __syncthreads();
  if (threadIdx.x < 18 && local[threadIdx.x]) atomicAdd(counts + threadIdx.x, local[threadIdx.x]);
}

}  // namespace hw1::gpu::kernels
