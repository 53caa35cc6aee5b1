// CUDA runtime pieces of the CUDA backend (no kernels, so any C++ compiler with the CUDA headers can include it):
// status checks that name the failing call, device discovery, a caching allocator over cudaMalloc, the per-device
// stream with its cuDNN / cuBLAS handles, device buffers and DeviceTensor<T>, and the ParamMirror that keeps a
// model's parameters on the device.
#pragma once
#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <cudnn.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "hw1/core/error.hpp"
#include "hw1/core/params.hpp"
#include "hw1/core/tensor.hpp"

namespace hw1::gpu {

// ---- status checks ------------------------------------------------------------------------------------------
inline void check_cuda(cudaError_t e, const char* call) {
  if (e != cudaSuccess)
    throw Error(std::string(call) + " failed: " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}
// cuDNN 9 keeps a sentence about the last failure (which descriptor or pointer was wrong): it goes into the
// message beside the status name.
inline void check_cudnn(cudnnStatus_t e, const char* call) {
  if (e == CUDNN_STATUS_SUCCESS) return;
  std::string msg = std::string(call) + " failed: " + cudnnGetErrorString(e);
  char last[1024] = {0};
  cudnnGetLastErrorString(last, sizeof last);
  if (last[0]) msg += std::string(" (") + last + ")";
  throw Error(msg);
}
inline void check_cublas(cublasStatus_t e, const char* call) {
  if (e != CUBLAS_STATUS_SUCCESS)
    throw Error(std::string(call) + " failed: cuBLAS status " + std::to_string(int(e)));
}
#define HW1_CUDA_CHECK(call) ::hw1::gpu::check_cuda((call), #call)
#define HW1_CUDNN_CHECK(call) ::hw1::gpu::check_cudnn((call), #call)
#define HW1_CUBLAS_CHECK(call) ::hw1::gpu::check_cublas((call), #call)

// Whether the kernel driver exposes an NVIDIA device node (/dev/nvidia0, /dev/nvidiactl, ...).
inline bool nvidia_device_node_present() {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/dev", ec)) {
    const auto n = e.path().filename().string();
    if (n.starts_with("nvidia") && n != "nvidia-caps") return true;
  }
  return false;
}

// What cudaGetDeviceCount's status means for "is there a GPU here". No GPU at all is 0 devices: error 100 (no
// device), or 35 (no driver new enough) on a machine with no NVIDIA device node, i.e. no NVIDIA driver at all. A
// machine that has a GPU which cannot run (35 with a device node: the driver is older than the toolkit hw1 was built
// with; any other error) is an error, never "no GPU", so a GPU test there fails and says why instead of skipping.
inline int device_count_from(cudaError_t e, int n, bool device_node_present) {
  if (e == cudaSuccess) return n;
  if (e == cudaErrorNoDevice || (e == cudaErrorInsufficientDriver && !device_node_present)) return 0;
  if (e == cudaErrorInsufficientDriver) {
    int driver = 0;
    cudaDriverGetVersion(&driver);
    throw Error("this machine has an NVIDIA device but its driver (CUDA " + std::to_string(driver / 1000) + "." +
                std::to_string(driver % 1000 / 10) + ") is older than the CUDA " + std::to_string(CUDART_VERSION / 1000) +
                "." + std::to_string(CUDART_VERSION % 1000 / 10) +
                " runtime hw1 was built with (cudaGetDeviceCount: cudaErrorInsufficientDriver); update the driver, "
                "or build hw1 with the toolkit the driver supports");
  }
  check_cuda(e, "cudaGetDeviceCount");
  return n;
}
// Number of usable devices (0 only where there truly is no GPU; see device_count_from).
inline int device_count() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) cudaGetLastError();  // clear the sticky error
  return device_count_from(e, n, e == cudaSuccess || nvidia_device_node_present());
}

// Precision of the convolutions (and, for tf32, the GEMMs). fp32 (default): no tensor-core TF32, so results match
// the CPU backend to rounding. tf32: cuDNN and cuBLAS may use TF32 tensor cores. fp16 / bf16: mixed precision,
// convolutions only (forward, backward-data, backward-filter, transposed convolutions): their inputs are rounded to
// 16 bits, cuDNN accumulates in float32 on tensor cores, results are widened back to float32. Everything else
// (activations in memory, batch norm, ReLU, pooling, resize, linear, loss, weights, gradients, optimizer) stays
// float32; fp16 training needs loss scaling (hw1::LossScaler) because small gradients underflow 16 bits.
enum class Precision { fp32, tf32, fp16, bf16 };
inline Precision& precision() {
  static Precision p = Precision::fp32;
  return p;
}
inline bool mixed_precision() { return precision() == Precision::fp16 || precision() == Precision::bf16; }
// "float32" (or "fp32") | "tf32" | "fp16" | "bf16"
inline Precision parse_precision(const std::string& s) {
  if (s == "fp32" || s == "float32") return Precision::fp32;
  if (s == "tf32") return Precision::tf32;
  if (s == "fp16") return Precision::fp16;
  if (s == "bf16") return Precision::bf16;
  throw Error("--precision must be float32, tf32, fp16 or bf16, got '" + s + "'");
}
inline const char* precision_name(Precision p) {
  switch (p) {
    case Precision::tf32: return "tf32";
    case Precision::fp16: return "fp16";
    case Precision::bf16: return "bf16";
    default: return "float32";
  }
}

// ---- device, stream, handles, allocator ----------------------------------------------------------------------
// One per device: its stream (every op of the backend runs on it, in order), cuDNN and cuBLAS handles bound to it,
// and a cache of freed blocks. Blocks are reused in stream order, so no synchronisation is needed on reuse.
class Device {
 public:
  explicit Device(int id) : id_(id) {
    const int n = device_count();
    if (n == 0) throw Error("CUDA backend: no CUDA device (no GPU or no driver on this machine); use --device cpu");
    if (id < 0 || id >= n)
      throw Error("CUDA backend: device " + std::to_string(id) + " asked for, this machine has " + std::to_string(n) +
                  " (cuda:0 .. cuda:" + std::to_string(n - 1) + ")");
    HW1_CUDA_CHECK(cudaSetDevice(id));
    HW1_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    HW1_CUDNN_CHECK(cudnnCreate(&dnn_));
    HW1_CUDNN_CHECK(cudnnSetStream(dnn_, stream_));
    HW1_CUBLAS_CHECK(cublasCreate(&blas_));
    HW1_CUBLAS_CHECK(cublasSetStream(blas_, stream_));
    HW1_CUBLAS_CHECK(cublasSetPointerMode(blas_, CUBLAS_POINTER_MODE_HOST));
  }
  Device(const Device&) = delete;
  ~Device() {
    cudaSetDevice(id_);
    cudaStreamSynchronize(stream_);
    release_cache();
    cublasDestroy(blas_);
    cudnnDestroy(dnn_);
    cudaStreamDestroy(stream_);
  }

  int id() const { return id_; }
  cudaStream_t stream() const { return stream_; }
  cudnnHandle_t dnn() const { return dnn_; }
  cublasHandle_t blas() {
    HW1_CUBLAS_CHECK(cublasSetMathMode(
        blas_, precision() == Precision::tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH));
    return blas_;
  }
  void synchronize() { HW1_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

  // Caching allocator: sizes round up (512 B below 1 MiB, 1 MiB above); a cached block is reused when it is
  // at most twice the request. Out of memory: drop the cache and retry once, then say what was asked and free.
  void* allocate(std::size_t bytes) {
    if (bytes == 0) return nullptr;
    bytes = bytes < (1u << 20) ? (bytes + 511) / 512 * 512 : (bytes + (1u << 20) - 1) >> 20 << 20;
    std::lock_guard lock(mutex_);
    auto it = free_.lower_bound(bytes);
    if (it != free_.end() && it->first <= 2 * bytes) {
      void* p = it->second;
      live_[p] = it->first;
      cached_ -= it->first;
      note_live(it->first);
      free_.erase(it);
      return p;
    }
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      release_cache_locked();
      e = cudaMalloc(&p, bytes);
    }
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      std::size_t fr = 0, total = 0;
      cudaMemGetInfo(&fr, &total);
      throw Error("CUDA out of memory: asked for " + mib(bytes) + " on cuda:" + std::to_string(id_) + ", " +
                  mib(fr) + " free of " + mib(total) + " (" + mib(in_use_) +
                  " held by hw1 tensors); use a smaller batch or crop size");
    }
    check_cuda(e, "cudaMalloc");
    live_[p] = bytes;
    in_use_ += bytes;
    peak_reserved_ = std::max(peak_reserved_, in_use_);
    note_live(bytes);
    return p;
  }
  void deallocate(void* p) {
    if (!p) return;
    std::lock_guard lock(mutex_);
    auto it = live_.find(p);
    if (it == live_.end()) return;
    free_.emplace(it->second, p);
    cached_ += it->second;
    live_bytes_ -= it->second;
    live_.erase(it);
  }
  void release_cache() {
    std::lock_guard lock(mutex_);
    release_cache_locked();
  }
  // Memory statistics (bytes, rounded as allocated): held by live buffers now / at most since reset_peaks(), and
  // obtained from cudaMalloc at most (live + cached; torch.cuda.max_memory_allocated / max_memory_reserved).
  std::size_t live_bytes() const { return live_bytes_; }
  std::size_t peak_live_bytes() const { return peak_live_; }
  std::size_t peak_reserved_bytes() const { return peak_reserved_; }
  void reset_peaks() {
    std::lock_guard lock(mutex_);
    peak_live_ = live_bytes_;
    peak_reserved_ = in_use_;
  }

 private:
  static std::string mib(std::size_t b) { return std::to_string(b >> 20) + " MiB"; }
  void note_live(std::size_t bytes) {
    live_bytes_ += bytes;
    peak_live_ = std::max(peak_live_, live_bytes_);
  }
  void release_cache_locked() {
    cudaStreamSynchronize(stream_);
    for (auto& [bytes, p] : free_) {
      cudaFree(p);
      in_use_ -= bytes;
    }
    free_.clear();
    cached_ = 0;
  }
  int id_;
  cudaStream_t stream_{};
  cudnnHandle_t dnn_{};
  cublasHandle_t blas_{};
  std::mutex mutex_;
  std::multimap<std::size_t, void*> free_;
  std::map<void*, std::size_t> live_;
  std::size_t in_use_ = 0, cached_ = 0, live_bytes_ = 0, peak_live_ = 0, peak_reserved_ = 0;
};

// The device the backend uses (cuda:0 unless select_device() chose another before first use).
inline int& selected_device() {
  static int id = 0;
  return id;
}
inline Device& device() {
  static std::map<int, std::unique_ptr<Device>> devices;
  static std::mutex m;
  std::lock_guard lock(m);
  auto& d = devices[selected_device()];
  if (!d) d = std::make_unique<Device>(selected_device());
  HW1_CUDA_CHECK(cudaSetDevice(d->id()));
  return *d;
}
inline void select_device(int id) { selected_device() = id; }

// What a program's --device cuda:N --precision P does: checks that device N exists (one clear error when there is
// no GPU or no driver, cudaGetDeviceCount 100 / 35), makes it the backend's device and sets the precision.
inline void use_device(int index, const std::string& precision_option) {
  const int n = device_count();
  if (n == 0)
    throw Error("--device cuda: no usable CUDA device on this machine (no NVIDIA GPU, or no driver); use --device cpu");
  if (index < 0 || index >= n)
    throw Error("--device cuda:" + std::to_string(index) + ": this machine has " + std::to_string(n) +
                " CUDA device" + (n > 1 ? "s (cuda:0 .. cuda:" + std::to_string(n - 1) + ")" : " (cuda:0)"));
  select_device(index);
  precision() = parse_precision(precision_option);
  (void)device();  // stream and library handles now, so their errors come before any work
}

// "cuda" -> 0, "cuda:N" -> N; anything else is not a CUDA device (returns -1).
inline int parse_device(const std::string& s) {
  if (s == "cuda") return 0;
  if (s.rfind("cuda:", 0) == 0 && s.size() > 5 && s.find_first_not_of("0123456789", 5) == std::string::npos)
    return std::stoi(s.substr(5));
  return -1;
}

// ---- device memory ---------------------------------------------------------------------------------------------
// A typed device array from the caching allocator; copies are deep (device to device, on the stream).
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t n) { resize(n); }
  DeviceBuffer(const DeviceBuffer& o) { *this = o; }
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  DeviceBuffer& operator=(const DeviceBuffer& o) {
    if (this == &o) return *this;
    resize(o.n_);
    if (n_)
      HW1_CUDA_CHECK(cudaMemcpyAsync(p_, o.p_, n_ * sizeof(T), cudaMemcpyDeviceToDevice, device().stream()));
    return *this;
  }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      release();
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  ~DeviceBuffer() { release(); }

  // Contents are not kept.
  void resize(std::size_t n) {
    if (n == n_) return;
    release();
    p_ = static_cast<T*>(device().allocate(n * sizeof(T)));
    n_ = n;
  }
  void zero() {
    if (n_) HW1_CUDA_CHECK(cudaMemsetAsync(p_, 0, n_ * sizeof(T), device().stream()));
  }
  void upload(const T* host, std::size_t n) {
    resize(n);
    if (n) HW1_CUDA_CHECK(cudaMemcpyAsync(p_, host, n * sizeof(T), cudaMemcpyHostToDevice, device().stream()));
    device().synchronize();  // the host array may go away right after
  }
  void download(T* host) const {
    if (n_) HW1_CUDA_CHECK(cudaMemcpyAsync(host, p_, n_ * sizeof(T), cudaMemcpyDeviceToHost, device().stream()));
    device().synchronize();
  }
  std::vector<T> to_vector() const {
    std::vector<T> v(n_);
    download(v.data());
    return v;
  }
  T* data() { return p_; }
  const T* data() const { return p_; }
  std::size_t size() const { return n_; }

 private:
  void release() {
    if (p_) device().deallocate(p_);
    p_ = nullptr;
    n_ = 0;
  }
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

// An NCHW row-major tensor in device memory: what the CUDA backend's layers pass around. Shape queries mirror
// xtensor's (shape(), size(), dimension(), data()); to_host() / from_host() are the explicit copies.
template <class T>
class DeviceTensor {
 public:
  using value_type = T;
  DeviceTensor() = default;
  explicit DeviceTensor(const Shape& s) : shape_(s), buf_(count(s)) {}
  const Shape& shape() const { return shape_; }
  std::size_t size() const { return buf_.size(); }
  std::size_t dimension() const { return shape_.size(); }
  T* data() { return buf_.data(); }
  const T* data() const { return buf_.data(); }
  void zero() { buf_.zero(); }

  static DeviceTensor from_host(const HostTensor<T>& h) {
    DeviceTensor d;
    d.shape_ = Shape(h.shape().begin(), h.shape().end());
    d.buf_.upload(h.data(), h.size());
    return d;
  }
  HostTensor<T> to_host() const {
    HostTensor<T> h = hw1::empty<T>(shape_);
    buf_.download(h.data());
    return h;
  }
  // Same data, new shape of equal size.
  void reshape(const Shape& s) {
    if (count(s) != size()) throw Error("DeviceTensor::reshape: " + shape_str(s) + " has a different size");
    shape_ = s;
  }

 private:
  static std::size_t count(const Shape& s) {
    std::size_t n = 1;
    for (auto d : s) n *= d;
    return n;
  }
  Shape shape_;
  DeviceBuffer<T> buf_;
};

template <class T>
DeviceTensor<T> to_device(const HostTensor<T>& h) {
  return DeviceTensor<T>::from_host(h);
}

// A model's values, gradients and running statistics on the device.
template <class T>
class DeviceParams final : public ParamMirror<T> {
 public:
  DeviceParams(std::size_t nv, std::size_t nb) : v_(nv), g_(nv), b_(nb) {}
  T* values() override { return v_.data(); }
  T* grads() override { return g_.data(); }
  T* buffers() override { return b_.data(); }
  void upload(const T* v, const T* g, const T* b) override {
    v_.upload(v, v_.size());
    g_.upload(g, g_.size());
    b_.upload(b, b_.size());
  }
  void download(T* v, T* g, T* b) override {
    v_.download(v);
    g_.download(g);
    b_.download(b);
  }
  void zero_grads() override { g_.zero(); }

 private:
  DeviceBuffer<T> v_, g_, b_;
};

}  // namespace hw1::gpu
