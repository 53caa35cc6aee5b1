// The CUDA backend: hw1::backend::cuda_t<T> has the CPU backend's static op functions (same arguments, pointers
// into device memory) and DeviceTensor<T> as its tensor, so every layer and model template runs on the GPU
// unchanged: hw1::DeepLabV3<7, hw1::cuda>. Convolutions (forward, backward-data, backward-filter; transposed
// convolution as backward-data) and batch norm are cuDNN's legacy API, fully connected layers cuBLAS, the rest
// small kernels (backend/cuda/kernels.cuh). Descriptors and the algorithm found for each convolution shape are
// cached; the workspace is one growing buffer. All work runs in order on one stream per device.
// Parameters: Model attaches a DeviceParams mirror (attach_params); values/grads/running statistics live on the
// device, params().to_host() / to_device() copy them for checkpoints and host-side tools.
// Float32 by default with TF32 off (gpu::precision()), so results agree with the CPU backend to rounding; tf32,
// and fp16 / bf16 mixed precision for the convolutions (see Precision in backend/cuda/runtime.hpp), for speed.
// This header contains kernels: a program that uses it is compiled by nvcc (.cu) and links hw1::cuda.
#pragma once
#include <array>
#include <map>
#include <vector>

#include "hw1/backend/backend.hpp"
#include "hw1/backend/cpu/shapes.hpp"  // shape structs and their validation, shared with the CPU backend
#include "hw1/core/tensor.hpp"
#include "hw1/backend/cuda/kernels.cuh"
#include "hw1/backend/cuda/runtime.hpp"

namespace hw1::gpu {

template <class T>
constexpr cudnnDataType_t dnn_type() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "CUDA backend: float or double only");
  return std::is_same_v<T, float> ? CUDNN_DATA_FLOAT : CUDNN_DATA_DOUBLE;
}

// Owns one cuDNN descriptor.
struct TensorDesc {
  cudnnTensorDescriptor_t d{};
  TensorDesc() { HW1_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d)); }
  TensorDesc(const TensorDesc&) = delete;
  ~TensorDesc() { cudnnDestroyTensorDescriptor(d); }
  void set(cudnnDataType_t t, int n, int c, int h, int w) {
    HW1_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, t, n, c, h, w));
  }
};

// Workspace shared by all cuDNN calls of a device (ops run in stream order, so one is enough).
inline void* workspace(std::size_t bytes) {
  static std::map<int, DeviceBuffer<unsigned char>> ws;
  auto& b = ws[device().id()];
  if (b.size() < bytes) b.resize(bytes);
  return b.data();
}

// One convolution geometry, as cuDNN sees a forward convolution x [n,c,h,w] * w [k,c,r,s] -> y [n,k,p,q]; the
// algorithm of each direction is looked up with cudnnFind*Ex the first time that direction runs.
// Mixed precision (Precision::fp16 / bf16, float T only): the x / w / y descriptors are 16-bit with float32
// accumulation on tensor cores; every call rounds its float32 inputs into 16-bit scratch buffers and widens the
// result back into the caller's float32 array (a weight gradient is added to the float32 one), so the layers
// around it see float32 as always. Bias terms use the float32 descriptors xf / yf.
template <class T>
struct ConvPlan {
  TensorDesc x, y, xf, yf, bias;
  cudnnFilterDescriptor_t w{};
  cudnnConvolutionDescriptor_t conv{};
  Precision mode;
  std::size_t nx, nw, ny;  // element counts
  bool have_fwd = false, have_bwd_data = false, have_bwd_filter = false;
  cudnnConvolutionFwdAlgo_t fwd{};
  cudnnConvolutionBwdDataAlgo_t bwd_data{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter{};
  std::size_t ws_fwd = 0, ws_bwd_data = 0, ws_bwd_filter = 0;

  ConvPlan(std::array<int, 4> xd, std::array<int, 4> wd, std::array<int, 4> yd, int ph, int pw, int sh, int sw,
           int dh, int dw, Precision m)
      : mode(std::is_same_v<T, float> ? m : Precision::fp32),
        nx(std::size_t(xd[0]) * xd[1] * xd[2] * xd[3]),
        nw(std::size_t(wd[0]) * wd[1] * wd[2] * wd[3]),
        ny(std::size_t(yd[0]) * yd[1] * yd[2] * yd[3]) {
    const auto t = dnn_type<T>();
    const auto dt = mode == Precision::fp16 ? CUDNN_DATA_HALF : mode == Precision::bf16 ? CUDNN_DATA_BFLOAT16 : t;
    x.set(dt, xd[0], xd[1], xd[2], xd[3]);
    y.set(dt, yd[0], yd[1], yd[2], yd[3]);
    xf.set(t, xd[0], xd[1], xd[2], xd[3]);
    yf.set(t, yd[0], yd[1], yd[2], yd[3]);
    bias.set(t, 1, yd[1], 1, 1);
    HW1_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
    HW1_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w, dt, CUDNN_TENSOR_NCHW, wd[0], wd[1], wd[2], wd[3]));
    HW1_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
    // compute type: float32 accumulation in every mode (double for double)
    HW1_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv, ph, pw, sh, sw, dh, dw, CUDNN_CROSS_CORRELATION, t));
    // What Find may consider. fp32: FMA math, no TF32 tensor cores, results comparable with the CPU backend; tf32:
    // cuDNN's default (TF32 tensor cores allowed); fp16 / bf16: tensor cores. Each direction then runs with the math
    // type its Find result names.
    set_math(descriptor_math());
  }
  ConvPlan(const ConvPlan&) = delete;
  ~ConvPlan() {
    cudnnDestroyConvolutionDescriptor(conv);
    cudnnDestroyFilterDescriptor(w);
  }
  bool mixed() const { return mode == Precision::fp16 || mode == Precision::bf16; }

  // The algorithm of each direction is found once per plan with cudnnFind*Ex on the caller's own inputs, a scratch
  // output and a workspace from hw1's caching allocator (the non-Ex Find allocates its own, which fails once the
  // cache holds most of the card). cuDNN returns a math type with each algorithm: it is kept and set on the
  // descriptor before every call of that direction. In float32 mode only CUDNN_FMA_MATH results are taken (a
  // DEFAULT_MATH float result may use TF32 tensor cores).
  static constexpr std::size_t kMaxWorkspace = std::size_t(2) << 30;
  cudnnMathType_t fwd_math = CUDNN_DEFAULT_MATH, bwd_data_math = CUDNN_DEFAULT_MATH,
                  bwd_filter_math = CUDNN_DEFAULT_MATH;
  bool fma_only() const { return std::is_same_v<T, float> && mode == Precision::fp32; }
  std::size_t element_bytes() const { return mixed() ? 2 : sizeof(T); }
  cudnnMathType_t descriptor_math() const {
    return mode == Precision::fp32 ? CUDNN_FMA_MATH : mode == Precision::tf32 ? CUDNN_DEFAULT_MATH : CUDNN_TENSOR_OP_MATH;
  }
  void set_math(cudnnMathType_t m) { HW1_CUDNN_CHECK(cudnnSetConvolutionMathType(conv, m)); }

  // Fastest successful result within kMaxWorkspace (and of FMA math in float32 mode).
  template <class Perf>
  const Perf& pick(const Perf* r, int count, const char* what) const {
    std::string seen;
    for (int i = 0; i < count; ++i) {
      if (r[i].status == CUDNN_STATUS_SUCCESS && r[i].memory <= kMaxWorkspace &&
          (!fma_only() || r[i].mathType == CUDNN_FMA_MATH))
        return r[i];
      seen += (seen.empty() ? "" : ", ") + std::string("algo ") + std::to_string(int(r[i].algo)) + " math " +
              std::to_string(int(r[i].mathType)) + " " + cudnnGetErrorString(r[i].status);
    }
    throw Error(std::string("cuDNN found no usable ") + what + " algorithm for this convolution shape" +
                (fma_only() ? " without TF32 (float32 mode; --precision tf32 allows it)" : "") + "; tried: " +
                (seen.empty() ? "none" : seen));
  }
  // Workspace for a FindEx: the most any algorithm asks for (at most kMaxWorkspace), halved until the caching
  // allocator (which drops its cache and retries when the card is full) can give it.
  template <class SizeOf>
  std::pair<void*, std::size_t> find_workspace(int algo_count, SizeOf size_of) {
    set_math(descriptor_math());
    std::size_t want = 0;
    for (int a = 0; a < algo_count; ++a) {
      std::size_t b = 0;
      if (size_of(a, &b) == CUDNN_STATUS_SUCCESS) want = std::max(want, b);
    }
    char discard[256];
    cudnnGetLastErrorString(discard, sizeof discard);  // reading clears it: unsupported algorithms' sizes failed
    want = std::min(want, kMaxWorkspace);
    for (;;) {
      try {
        return {workspace(want), want};
      } catch (const Error&) {
        if (want == 0) throw;
        want /= 2;
      }
    }
  }
  void find_fwd(const void* xp, const void* wp) {
    if (have_fwd) return;
    DeviceBuffer<unsigned char> out(ny * element_bytes());
    const auto [ws, ws_bytes] = find_workspace(CUDNN_CONVOLUTION_FWD_ALGO_COUNT, [&](int a, std::size_t* b) {
      return cudnnGetConvolutionForwardWorkspaceSize(device().dnn(), x.d, w, conv, y.d,
                                                     cudnnConvolutionFwdAlgo_t(a), b);
    });
    cudnnConvolutionFwdAlgoPerf_t r[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int got = 0;
    HW1_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(device().dnn(), x.d, xp, w, wp, conv, y.d, out.data(),
                                                           CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, r, ws, ws_bytes));
    const auto& p = pick(r, got, "forward");
    fwd = p.algo, ws_fwd = p.memory, fwd_math = p.mathType, have_fwd = true;
  }
  void find_bwd_data(const void* wp, const void* dyp) {
    if (have_bwd_data) return;
    DeviceBuffer<unsigned char> out(nx * element_bytes());
    const auto [ws, ws_bytes] = find_workspace(CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, [&](int a, std::size_t* b) {
      return cudnnGetConvolutionBackwardDataWorkspaceSize(device().dnn(), w, y.d, conv, x.d,
                                                          cudnnConvolutionBwdDataAlgo_t(a), b);
    });
    cudnnConvolutionBwdDataAlgoPerf_t r[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int got = 0;
    HW1_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(device().dnn(), w, wp, y.d, dyp, conv, x.d,
                                                                out.data(), CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                                                                &got, r, ws, ws_bytes));
    const auto& p = pick(r, got, "backward-data");
    bwd_data = p.algo, ws_bwd_data = p.memory, bwd_data_math = p.mathType, have_bwd_data = true;
  }
  // The scratch filter gradient keeps the caller's dw intact (backward-filter accumulates into it).
  void find_bwd_filter(const void* xp, const void* dyp) {
    if (have_bwd_filter) return;
    DeviceBuffer<unsigned char> out(nw * element_bytes());
    const auto [ws, ws_bytes] = find_workspace(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, [&](int a, std::size_t* b) {
      return cudnnGetConvolutionBackwardFilterWorkspaceSize(device().dnn(), x.d, y.d, conv, w,
                                                            cudnnConvolutionBwdFilterAlgo_t(a), b);
    });
    cudnnConvolutionBwdFilterAlgoPerf_t r[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int got = 0;
    HW1_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(device().dnn(), x.d, xp, y.d, dyp, conv, w,
                                                                  out.data(), CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                                                                  &got, r, ws, ws_bytes));
    const auto& p = pick(r, got, "backward-filter");
    bwd_filter = p.algo, ws_bwd_filter = p.memory, bwd_filter_math = p.mathType, have_bwd_filter = true;
  }

  // 16-bit copies (mixed precision only; T is float there).
  using Half = DeviceBuffer<std::uint16_t>;
  Half narrow(const T* src, std::size_t n) const {
    Half h(n);
    if (mode == Precision::fp16)
      kernels::launch("to_16bit", kernels::Index(n), kernels::to_16bit<__half>, kernels::Index(n),
                      reinterpret_cast<const float*>(src), reinterpret_cast<__half*>(h.data()));
    else
      kernels::launch("to_16bit", kernels::Index(n), kernels::to_16bit<__nv_bfloat16>, kernels::Index(n),
                      reinterpret_cast<const float*>(src), reinterpret_cast<__nv_bfloat16*>(h.data()));
    return h;
  }
  void widen(const Half& h, T* dst, bool accumulate) const {
    const auto n = kernels::Index(h.size());
    if (mode == Precision::fp16)
      kernels::launch("from_16bit", n, kernels::from_16bit<__half>, n, reinterpret_cast<const __half*>(h.data()),
                      reinterpret_cast<float*>(dst), accumulate);
    else
      kernels::launch("from_16bit", n, kernels::from_16bit<__nv_bfloat16>, n,
                      reinterpret_cast<const __nv_bfloat16*>(h.data()), reinterpret_cast<float*>(dst), accumulate);
  }

  // The three directions: y = x * w; dx = backward-data(w, dy); dw += backward-filter(x, dy).
  void forward(const T* xp, const T* wp, T* yp) {
    const T one = 1, zero = 0;
    if (!mixed()) {
      find_fwd(xp, wp);
      set_math(fwd_math);
      HW1_CUDNN_CHECK(cudnnConvolutionForward(device().dnn(), &one, x.d, xp, w, wp, conv, fwd, workspace(ws_fwd),
                                              ws_fwd, &zero, y.d, yp));
      return;
    }
    const Half xh = narrow(xp, nx), wh = narrow(wp, nw);
    find_fwd(xh.data(), wh.data());
    set_math(fwd_math);
    Half yh(ny);
    HW1_CUDNN_CHECK(cudnnConvolutionForward(device().dnn(), &one, x.d, xh.data(), w, wh.data(), conv, fwd,
                                            workspace(ws_fwd), ws_fwd, &zero, y.d, yh.data()));
    widen(yh, yp, false);
  }
  void backward_data(const T* wp, const T* dyp, T* dxp) {
    const T one = 1, zero = 0;
    if (!mixed()) {
      find_bwd_data(wp, dyp);
      set_math(bwd_data_math);
      HW1_CUDNN_CHECK(cudnnConvolutionBackwardData(device().dnn(), &one, w, wp, y.d, dyp, conv, bwd_data,
                                                   workspace(ws_bwd_data), ws_bwd_data, &zero, x.d, dxp));
      return;
    }
    const Half wh = narrow(wp, nw), dyh = narrow(dyp, ny);
    find_bwd_data(wh.data(), dyh.data());
    set_math(bwd_data_math);
    Half dxh(nx);
    HW1_CUDNN_CHECK(cudnnConvolutionBackwardData(device().dnn(), &one, w, wh.data(), y.d, dyh.data(), conv, bwd_data,
                                                 workspace(ws_bwd_data), ws_bwd_data, &zero, x.d, dxh.data()));
    widen(dxh, dxp, false);
  }
  void backward_filter(const T* xp, const T* dyp, T* dwp) {
    const T one = 1, zero = 0;
    if (!mixed()) {
      find_bwd_filter(xp, dyp);
      set_math(bwd_filter_math);
      HW1_CUDNN_CHECK(cudnnConvolutionBackwardFilter(device().dnn(), &one, x.d, xp, y.d, dyp, conv, bwd_filter,
                                                     workspace(ws_bwd_filter), ws_bwd_filter, &one, w, dwp));
      return;
    }
    const Half xh = narrow(xp, nx), dyh = narrow(dyp, ny);
    find_bwd_filter(xh.data(), dyh.data());
    set_math(bwd_filter_math);
    Half dwh(nw);
    HW1_CUDNN_CHECK(cudnnConvolutionBackwardFilter(device().dnn(), &one, x.d, xh.data(), y.d, dyh.data(), conv,
                                                   bwd_filter, workspace(ws_bwd_filter), ws_bwd_filter, &zero, w,
                                                   dwh.data()));
    widen(dwh, dwp, true);
  }
  // y += bias (per channel of y); db += sum of dy over n, h, w. Float32 in every mode.
  void add_bias(const T* b, T* yp) {
    const T one = 1;
    HW1_CUDNN_CHECK(cudnnAddTensor(device().dnn(), &one, bias.d, b, &one, yf.d, yp));
  }
  void bias_grad(const T* dyp, T* db) {
    const T one = 1;
    HW1_CUDNN_CHECK(cudnnConvolutionBackwardBias(device().dnn(), &one, yf.d, dyp, &one, bias.d, db));
  }
};

// Plans by (device, precision, geometry).
template <class T>
ConvPlan<T>& conv_plan(std::array<int, 4> xd, std::array<int, 4> wd, std::array<int, 4> yd, int ph, int pw, int sh,
                       int sw, int dh, int dw) {
  static std::map<std::array<int, 20>, std::unique_ptr<ConvPlan<T>>> plans;
  const Precision m = precision();
  const std::array<int, 20> key{device().id(), int(m), xd[0], xd[1], xd[2], xd[3], wd[0], wd[1], wd[2], wd[3],
                                yd[0], yd[1], yd[2], yd[3], ph, pw, sh, sw, dh, dw};
  auto& p = plans[key];
  if (!p) p = std::make_unique<ConvPlan<T>>(xd, wd, yd, ph, pw, sh, sw, dh, dw, m);
  return *p;
}
template <class T>
ConvPlan<T>& plan_of(const hw1::cpu::Conv2dShape& s) {
  return conv_plan<T>({s.n, s.cin, s.h, s.w}, {s.cout, s.cin, s.kh, s.kw}, {s.n, s.cout, s.out_h(), s.out_w()},
                      s.pad_h, s.pad_w, s.stride_h, s.stride_w, s.dil_h, s.dil_w);
}
// A transposed convolution is the backward-data of the convolution that maps its output back to its input.
template <class T>
ConvPlan<T>& plan_of(const hw1::cpu::ConvTranspose2dShape& s) {
  return conv_plan<T>({s.n, s.cout, s.out_h(), s.out_w()}, {s.cin, s.cout, s.kh, s.kw}, {s.n, s.cin, s.h, s.w},
                      s.pad_h, s.pad_w, s.stride_h, s.stride_w, s.dil_h, s.dil_w);
}

// Batch-norm descriptors for [n, c, hw] (viewed as NCHW with w = 1).
template <class T>
struct BnPlan {
  TensorDesc x, p;
  BnPlan(int n, int c, int hw) {
    x.set(dnn_type<T>(), n, c, hw, 1);
    HW1_CUDNN_CHECK(cudnnDeriveBNTensorDescriptor(p.d, x.d, CUDNN_BATCHNORM_SPATIAL));
  }
};
template <class T>
BnPlan<T>& bn_plan(int n, int c, int hw) {
  static std::map<std::array<int, 4>, std::unique_ptr<BnPlan<T>>> plans;
  auto& p = plans[{device().id(), n, c, hw}];
  if (!p) p = std::make_unique<BnPlan<T>>(n, c, hw);
  return *p;
}

// ---- the ops ---------------------------------------------------------------------------------------------------
namespace ops {
using kernels::Index;
using kernels::launch;

template <class T>
void conv2d_forward(const hw1::cpu::Conv2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  hw1::cpu::detail::check(s);
  auto& p = plan_of<T>(s);
  p.forward(x, w, y);
  if (bias) p.add_bias(bias, y);
}
template <class T>
void conv2d_backward(const hw1::cpu::Conv2dShape& s, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db) {
  hw1::cpu::detail::check(s);
  auto& p = plan_of<T>(s);
  if (db) p.bias_grad(dy, db);
  if (dw) p.backward_filter(x, dy, dw);
  if (dx) p.backward_data(w, dy, dx);
}
template <class T>
void conv_transpose2d_forward(const hw1::cpu::ConvTranspose2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  hw1::cpu::detail::check(s);
  auto& p = plan_of<T>(s);
  p.backward_data(w, x, y);
  if (bias) {  // bias is per channel of the transposed output = the plan's x
    const T one = 1;
    TensorDesc bd;
    bd.set(dnn_type<T>(), 1, s.cout, 1, 1);
    HW1_CUDNN_CHECK(cudnnAddTensor(device().dnn(), &one, bd.d, bias, &one, p.xf.d, y));
  }
}
template <class T>
void conv_transpose2d_backward(const hw1::cpu::ConvTranspose2dShape& s, const T* x, const T* w, const T* dy, T* dx,
                               T* dw, T* db) {
  hw1::cpu::detail::check(s);
  auto& p = plan_of<T>(s);
  if (db) {
    const T one = 1;
    TensorDesc bd;
    bd.set(dnn_type<T>(), 1, s.cout, 1, 1);
    HW1_CUDNN_CHECK(cudnnConvolutionBackwardBias(device().dnn(), &one, p.xf.d, dy, &one, bd.d, db));
  }
  if (dw) p.backward_filter(dy, x, dw);
  if (dx) p.forward(dy, w, dx);
}

template <class T>
void batchnorm_forward_train(int n, int c, int hw, const T* x, const T* gamma, const T* beta, T eps, T momentum,
                             T* running_mean, T* running_var, T* y, T* save_mean, T* save_invstd) {
  if (std::ptrdiff_t(n) * hw <= 1)
    throw Error("BatchNorm2d in training mode needs more than one value per channel, got input [" +
                std::to_string(n) + "," + std::to_string(c) + ",h,w] with h*w=" + std::to_string(hw) +
                "; use a batch larger than 1 or switch the model to eval mode");
  if (!gamma || !beta || !running_mean || !running_var)
    throw Error("CUDA batch norm: affine parameters and running statistics are required");
  auto& p = bn_plan<T>(n, c, hw);
  const T one = 1, zero = 0;
  HW1_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(device().dnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, p.x.d,
                                                         x, p.x.d, y, p.p.d, gamma, beta, double(momentum),
                                                         running_mean, running_var, double(eps), save_mean,
                                                         save_invstd));
}
template <class T>
void batchnorm_backward_train(int n, int c, int hw, const T* x, const T* gamma, const T* save_mean,
                              const T* save_invstd, T eps, const T* dy, T* dx, T* dgamma, T* dbeta) {
  if (!dx || !dgamma || !dbeta) throw Error("CUDA batch norm backward: dx, dgamma and dbeta are required");
  auto& p = bn_plan<T>(n, c, hw);
  const T one = 1, zero = 0;
  // The forward's epsilon: cuDNN documents that backward must get the value the forward used (the saved statistics
  // are passed too, but a kernel that recomputes from them needs the same eps).
  HW1_CUDNN_CHECK(cudnnBatchNormalizationBackward(device().dnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &one,
                                                  p.x.d, x, p.x.d, dy, p.x.d, dx, p.p.d, gamma, dgamma, dbeta,
                                                  double(eps), save_mean, save_invstd));
}
template <class T>
void batchnorm_forward_eval(int n, int c, int hw, const T* x, const T* gamma, const T* beta, const T* running_mean,
                            const T* running_var, T eps, T* y) {
  auto& p = bn_plan<T>(n, c, hw);
  const T one = 1, zero = 0;
  HW1_CUDNN_CHECK(cudnnBatchNormalizationForwardInference(device().dnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero,
                                                          p.x.d, x, p.x.d, y, p.p.d, gamma, beta, running_mean,
                                                          running_var, double(eps)));
}
// cuDNN has no eval-mode backward (statistics are constants): dx = dy * gamma * invstd, plus the sums.
template <class T>
void batchnorm_backward_eval(int n, int c, int hw, const T* x, const T* gamma, const T* running_mean,
                             const T* running_var, T eps, const T* dy, T* dx, T* dgamma, T* dbeta) {
  DeviceBuffer<T> invstd(c);
  launch("inv_std", c, kernels::inv_std<T>, c, running_var, double(eps), invstd.data());
  if (dgamma || dbeta) {
    kernels::channel_sums<T><<<c, kernels::threads, 0, device().stream()>>>(n, c, hw, dy, x, running_mean,
                                                                            invstd.data(), dbeta, dgamma);
    check_cuda(cudaGetLastError(), "channel_sums");
  }
  if (dx) launch("bn_eval_dx", Index(n) * c * hw, kernels::bn_eval_dx<T>, Index(n) * c * hw, c, Index(hw), dy, gamma,
                 (const T*)invstd.data(), dx);
}

template <class T>
void maxpool2d_forward(const hw1::cpu::Pool2dShape& s, const T* x, T* y, std::int64_t* argmax) {
  hw1::cpu::detail::check_pool(s);
  const Index n = Index(s.n) * s.c * s.out_h() * s.out_w();
  launch("maxpool_fwd", n, kernels::maxpool_fwd<T>, n, s.h, s.w, s.out_h(), s.out_w(), s.kh, s.kw, s.stride_h,
         s.stride_w, s.pad_h, s.pad_w, x, y, argmax);
}
template <class T>
void maxpool2d_backward(const hw1::cpu::Pool2dShape& s, const std::int64_t* argmax, const T* dy, T* dx) {
  const Index in_plane = Index(s.h) * s.w, out_plane = Index(s.out_h()) * s.out_w(), n = Index(s.n) * s.c * out_plane;
  HW1_CUDA_CHECK(cudaMemsetAsync(dx, 0, sizeof(T) * Index(s.n) * s.c * in_plane, device().stream()));
  launch("maxpool_bwd", n, kernels::maxpool_bwd<T>, n, in_plane, out_plane, argmax, dy, dx);
}
template <class T>
void global_avgpool_forward(int n, int c, int hw, const T* x, T* y) {
  if (n * c == 0) return;
  kernels::plane_mean<T><<<unsigned(n * c), kernels::threads, 0, device().stream()>>>(hw, x, y);
  check_cuda(cudaGetLastError(), "plane_mean");
}
template <class T>
void global_avgpool_backward(int n, int c, int hw, const T* dy, T* dx) {
  launch("plane_broadcast", Index(n) * c * hw, kernels::plane_broadcast<T>, Index(n) * c * hw, Index(hw), dy, dx);
}

// Row-major y[n, out] = x[n, in] w[out, in]^T is column-major y^T = w^T-as-stored x^T: one GEMM without copies.
template <class T>
void gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const T* a, int lda, const T* b, int ldb,
          T beta, T* c, int ldc) {
  const T one = 1;
  if constexpr (std::is_same_v<T, float>)
    HW1_CUBLAS_CHECK(cublasSgemm(device().blas(), ta, tb, m, n, k, &one, a, lda, b, ldb, &beta, c, ldc));
  else
    HW1_CUBLAS_CHECK(cublasDgemm(device().blas(), ta, tb, m, n, k, &one, a, lda, b, ldb, &beta, c, ldc));
}
template <class T>
void linear_forward(int n, int in, int out, const T* x, const T* w, const T* b, T* y) {
  gemm<T>(CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, w, in, x, in, T(0), y, out);
  if (b) launch("add_row_bias", Index(n) * out, kernels::add_row_bias<T>, Index(n) * out, out, b, y);
}
template <class T>
void linear_backward(int n, int in, int out, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db) {
  if (dx) gemm<T>(CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, w, in, dy, out, T(0), dx, in);
  if (dw) gemm<T>(CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, x, in, dy, out, T(1), dw, in);
  if (db && out > 0) {
    kernels::channel_sums<T><<<out, kernels::threads, 0, device().stream()>>>(n, out, 1, dy, nullptr, nullptr,
                                                                              nullptr, db, nullptr);
    check_cuda(cudaGetLastError(), "channel_sums");
  }
}

template <class T>
void bilinear_resize_forward(int n, int c, int h, int w, int out_h, int out_w, const T* x, T* y) {
  const Index m = Index(n) * c * out_h * out_w;
  launch("resize_fwd", m, kernels::resize_fwd<T>, m, h, w, out_h, out_w, x, y);
}
template <class T>
void bilinear_resize_backward(int n, int c, int h, int w, int out_h, int out_w, const T* dy, T* dx) {
  HW1_CUDA_CHECK(cudaMemsetAsync(dx, 0, sizeof(T) * Index(n) * c * h * w, device().stream()));
  const Index m = Index(n) * c * out_h * out_w;
  launch("resize_bwd", m, kernels::resize_bwd<T>, m, h, w, out_h, out_w, dy, dx);
}
template <class T>
void crop2d_forward(int planes, int h, int w, int oy, int ox, int out_h, int out_w, const T* x, T* y) {
  hw1::cpu::detail::check_crop(h, w, oy, ox, out_h, out_w);
  const Index m = Index(planes) * out_h * out_w;
  launch("crop_fwd", m, kernels::crop_fwd<T>, m, h, w, oy, ox, out_h, out_w, x, y);
}
template <class T>
void crop2d_backward(int planes, int h, int w, int oy, int ox, int out_h, int out_w, const T* dy, T* dx) {
  hw1::cpu::detail::check_crop(h, w, oy, ox, out_h, out_w);
  HW1_CUDA_CHECK(cudaMemsetAsync(dx, 0, sizeof(T) * Index(planes) * h * w, device().stream()));
  const Index m = Index(planes) * out_h * out_w;
  launch("crop_bwd", m, kernels::crop_bwd<T>, m, h, w, oy, ox, out_h, out_w, dy, dx);
}

// logits, target and weight are device arrays; the loss comes back to the host (one synchronisation).
template <class T>
T softmax_cross_entropy(int n, int k, int hw, const T* logits, const std::int64_t* target, const T* weight,
                        std::int64_t ignore_index, T* dlogits) {
  const Index positions = Index(n) * hw;
  DeviceBuffer<double> lse{std::size_t(positions)}, sums{2};
  DeviceBuffer<unsigned long long> bad(1);
  sums.zero();
  HW1_CUDA_CHECK(cudaMemsetAsync(bad.data(), 0xff, sizeof(unsigned long long), device().stream()));
  launch("ce_forward", positions, kernels::ce_forward<T>, positions, k, hw, logits, target, weight, ignore_index,
         lse.data(), sums.data(), bad.data());
  if (dlogits)
    launch("ce_backward", positions * k, kernels::ce_backward<T>, positions * k, k, hw, logits, target, weight,
           ignore_index, (const double*)lse.data(), (const double*)sums.data(), dlogits);
  const auto s = sums.to_vector();
  const auto b = bad.to_vector();
  if (b[0] != ~0ull) {
    std::int64_t t = 0;
    HW1_CUDA_CHECK(cudaMemcpy(&t, target + b[0], sizeof t, cudaMemcpyDeviceToHost));
    throw Error("cross_entropy: target " + std::to_string(t) + " at image " + std::to_string(b[0] / hw) +
                ", position " + std::to_string(b[0] % hw) + " is outside the " + std::to_string(k) + " classes [0," +
                std::to_string(k) + ") and is not ignore_index " + std::to_string(ignore_index) +
                "; check the label map or the number of classes");
  }
  return s[1] == 0 ? T(0) : T(s[0] / s[1]);
}

template <class T>
void relu_forward(std::size_t count, const T* x, T* y) {
  launch("relu_fwd", Index(count), kernels::relu_fwd<T>, Index(count), x, y);
}
template <class T>
void relu_backward(std::size_t count, const T* y, const T* dy, T* dx) {
  launch("relu_bwd", Index(count), kernels::relu_bwd<T>, Index(count), y, dy, dx);
}
template <class T>
void add_forward(std::size_t count, const T* a, const T* b, T* y) {
  launch("add", Index(count), kernels::add<T>, Index(count), a, b, y);
}
template <class T>
void mul_forward(std::size_t count, const T* x, const T* m, T* y) {
  launch("mul", Index(count), kernels::mul<T>, Index(count), x, m, y);
}
// parts[i] [n, channels[i], hw] are strided 2-D copies into y [n, sum channels, hw].
template <class T>
void concat_channels_forward(int n, int hw, const std::vector<const T*>& parts, const std::vector<int>& channels,
                             T* y) {
  const std::size_t total = hw1::cpu::detail::check_concat(parts.size(), channels);
  std::size_t off = 0;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::size_t row = sizeof(T) * std::size_t(channels[i]) * hw;
    if (row && n)
      HW1_CUDA_CHECK(cudaMemcpy2DAsync(y + off * hw, sizeof(T) * total * hw, parts[i], row, row, n,
                                       cudaMemcpyDeviceToDevice, device().stream()));
    off += channels[i];
  }
}
template <class T>
void concat_channels_backward(int n, int hw, const T* dy, const std::vector<T*>& dparts,
                              const std::vector<int>& channels) {
  const std::size_t total = hw1::cpu::detail::check_concat(dparts.size(), channels);
  std::size_t off = 0;
  for (std::size_t i = 0; i < dparts.size(); ++i) {
    const std::size_t row = sizeof(T) * std::size_t(channels[i]) * hw;
    if (row && n)
      HW1_CUDA_CHECK(cudaMemcpy2DAsync(dparts[i], row, dy + off * hw, sizeof(T) * total * hw, row, n,
                                       cudaMemcpyDeviceToDevice, device().stream()));
    off += channels[i];
  }
}
template <class T>
void dropout_mask(std::size_t count, T p, std::uint64_t seed, T* mask) {
  hw1::cpu::detail::check_dropout_p(p);
  launch("dropout_mask", Index(count), kernels::dropout_mask<T>, Index(count), double(p), T(T(1) / (T(1) - p)), seed,
         mask);
}
template <class T>
void dropout2d_mask(int n, int c, int hw, T p, std::uint64_t seed, T* mask) {
  hw1::cpu::detail::check_dropout_p(p);
  const Index m = Index(n) * c * hw;
  launch("dropout2d_mask", m, kernels::dropout2d_mask<T>, m, Index(hw), double(p), T(T(1) / (T(1) - p)), seed, mask);
}
}  // namespace ops

}  // namespace hw1::gpu

namespace hw1::backend {

#define HW1_CUDA_OP(name)                                       \
  template <class... A>                                         \
  static decltype(auto) name(A&&... a) {                        \
    return ::hw1::gpu::ops::name<T>(std::forward<A>(a)...);    \
  }

template <class T>
struct cuda_t {
  using scalar = T;
  using tensor = gpu::DeviceTensor<T>;
  template <class U>
  using buffer = gpu::DeviceBuffer<U>;
  static constexpr const char* name = "cuda";
  static tensor empty(const Shape& s) { return tensor(s); }
  static tensor zeros(const Shape& s) {
    tensor t(s);
    t.zero();
    return t;
  }
  // Called by Model once its parameters are initialised on the host: they move to the device.
  static void attach_params(ParamSet<T>& ps) {
    ps.attach_mirror(std::make_unique<gpu::DeviceParams<T>>(ps.values().size(), ps.buffers().size()));
  }

  HW1_BACKEND_OPS(HW1_CUDA_OP)
};
#undef HW1_CUDA_OP

using cuda = cuda_t<float>;
static_assert(Backend<cuda>, "the CUDA backend must meet the backend contract (backend.hpp)");

}  // namespace hw1::backend

namespace hw1 {
using cuda = backend::cuda;  // hw1::DeepLabV3<7, hw1::cuda>
template <class T>
using DeviceTensor = gpu::DeviceTensor<T>;
}  // namespace hw1
