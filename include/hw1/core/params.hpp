// One flat buffer per model: every trainable tensor is a named view into `values` (gradients mirror it in
// `grads`), every running statistic a named view into `buffers`. Optimizers, checkpoints and (later) gradient
// all-reduce touch whole arrays. Names are torchvision's state_dict() keys.
// Every view starts on a 256-byte boundary (offsets rounded up to kAlignBytes, host arrays allocated 256-byte
// aligned, cudaMalloc's are too): cuDNN / cuBLAS get pointers as aligned as their own buffers, whatever the
// length of the tensor before (FCN32s' upscore.weight follows score_fr.bias[7]). The padding is zero in values
// and gradients, so optimizers may run over the whole array: flat_size() is its length, num_parameters() the
// number of real parameters (torchvision's sum of numel()).
// A device backend (CUDA) attaches a ParamMirror: the three arrays then live on the device, value()/grad()/
// buffer() (what layers use through Context) hand out device pointers, and the host vectors are a copy brought up
// to date explicitly with to_host() / to_device(). Without a mirror (CPU) nothing changes.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "hw1/core/collective.hpp"
#include "hw1/core/error.hpp"
#include "hw1/core/tensor.hpp"

namespace hw1 {

// How a tensor starts life (torchvision's defaults for the layer that owns it).
struct Init {
  enum Kind { zeros, ones, normal, uniform } kind = zeros;
  double scale = 0;  // std for normal, bound for uniform
};

template <class T>
class ParamSet;

// std::allocator with a larger alignment (the flat parameter arrays).
template <class T, std::size_t Align>
struct AlignedAllocator {
  static_assert(Align >= alignof(T) && (Align & (Align - 1)) == 0, "AlignedAllocator: a power of two");
  using value_type = T;
  template <class U>
  struct rebind {
    using other = AlignedAllocator<U, Align>;
  };
  AlignedAllocator() = default;
  template <class U>
  AlignedAllocator(const AlignedAllocator<U, Align>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(Align))); }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t(Align)); }
  template <class U>
  bool operator==(const AlignedAllocator<U, Align>&) const noexcept {
    return true;
  }
};
inline constexpr std::size_t kAlignBytes = 256;
template <class T>
using FlatArray = std::vector<T, AlignedAllocator<T, kAlignBytes>>;

// Device copy of a ParamSet's arrays (type-erased, so this header never sees a device API).
template <class T>
struct ParamMirror {
  virtual ~ParamMirror() = default;
  virtual T* values() = 0;
  virtual T* grads() = 0;
  virtual T* buffers() = 0;
  virtual void upload(const T* values, const T* grads, const T* buffers) = 0;
  virtual void download(T* values, T* grads, T* buffers) = 0;
  virtual void zero_grads() = 0;
};

template <class T>
class ParamSet {
 public:
  struct Entry {
    std::string name;
    Shape shape;
    bool trainable;
    std::size_t offset, size;
    Init init;
  };

  // Registers a tensor and returns its offset into values() (trainable) or buffers() (running statistics).
  std::size_t add(const std::string& name, const Shape& shape, bool trainable, Init init) {
    if (allocated_) throw Error("ParamSet: cannot register '" + name + "' after allocation");
    if (index_.count(name)) throw Error("ParamSet: parameter name '" + name + "' registered twice");
    std::size_t size = 1;
    for (auto d : shape) size *= d;
    std::size_t& used = trainable ? n_values_ : n_buffers_;
    used = round_up(used);
    entries_.push_back({name, shape, trainable, used, size, init});
    index_[name] = entries_.size() - 1;
    used += size;
    (trainable ? n_trainable_ : n_running_) += size;
    return entries_.back().offset;
  }

  void allocate() {
    n_values_ = round_up(n_values_);
    n_buffers_ = round_up(n_buffers_);
    values_.assign(n_values_, T(0));
    grads_.assign(n_values_, T(0));
    buffers_.assign(n_buffers_, T(0));
    allocated_ = true;
  }

  // Deterministic torchvision-style initialisation from a seed (entry order = registration order).
  void initialize(std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    for (const auto& e : entries_) {
      T* p = data(e);
      switch (e.init.kind) {
        case Init::zeros: std::fill(p, p + e.size, T(0)); break;
        case Init::ones: std::fill(p, p + e.size, T(1)); break;
        case Init::normal: {
          std::normal_distribution<double> d(0.0, e.init.scale);
          for (std::size_t i = 0; i < e.size; ++i) p[i] = T(d(rng));
          break;
        }
        case Init::uniform: {
          std::uniform_real_distribution<double> d(-e.init.scale, e.init.scale);
          for (std::size_t i = 0; i < e.size; ++i) p[i] = T(d(rng));
          break;
        }
      }
    }
  }

  // Where the layers read and write: device memory when a mirror is attached.
  T* value(std::size_t off) { return (mirror_ ? mirror_->values() : values_.data()) + off; }
  T* grad(std::size_t off) { return (mirror_ ? mirror_->grads() : grads_.data()) + off; }
  T* buffer(std::size_t off) { return (mirror_ ? mirror_->buffers() : buffers_.data()) + off; }

  void attach_mirror(std::unique_ptr<ParamMirror<T>> m) {
    mirror_ = std::move(m);
    to_device();
  }
  bool has_mirror() const { return bool(mirror_); }
  // Copies the device arrays into the host vectors (values(), grads(), buffers()), or back. No-ops on the CPU.
  void to_host() const {
    if (mirror_) mirror_->download(values_.data(), grads_.data(), buffers_.data());
  }
  void to_device() {
    if (mirror_) mirror_->upload(values_.data(), grads_.data(), buffers_.data());
  }
  T* data(const Entry& e) { return (e.trainable ? values_.data() : buffers_.data()) + e.offset; }
  const T* data(const Entry& e) const { return (e.trainable ? values_.data() : buffers_.data()) + e.offset; }
  T* grad(const Entry& e) { return grads_.data() + e.offset; }

  const std::vector<Entry>& entries() const { return entries_; }
  // Changes how the tensors whose names start with `prefix` are initialised (before initialize()): convolution and
  // linear weights and biases get `weight_init(fan_in)`; batch-norm tensors keep theirs.
  template <class F>
  void set_init(const std::string& prefix, F&& weight_init) {
    for (auto& e : entries_) {
      if (!e.trainable || !e.name.starts_with(prefix)) continue;
      const auto* w = e.name.ends_with(".bias") ? find(e.name.substr(0, e.name.size() - 4) + "weight") : &e;
      if (!w || w->shape.size() < 2) continue;  // batch norm (1-d weight) or a bias without weight
      std::size_t fan_in = 1;
      for (std::size_t i = 1; i < w->shape.size(); ++i) fan_in *= w->shape[i];
      e.init = weight_init(fan_in);
    }
  }
  const Entry* find(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &entries_[it->second];
  }
  // The whole arrays, padding included (length flat_size() / flat_buffer_size()).
  FlatArray<T>& values() { return values_; }
  FlatArray<T>& grads() { return grads_; }
  FlatArray<T>& buffers() { return buffers_; }
  const FlatArray<T>& values() const { return values_; }
  const FlatArray<T>& grads() const { return grads_; }
  const FlatArray<T>& buffers() const { return buffers_; }
  // Real trainable parameters (no padding) / running statistics; the lengths of the flat arrays.
  std::size_t num_parameters() const { return n_trainable_; }
  std::size_t num_buffers() const { return n_running_; }
  std::size_t flat_size() const { return n_values_; }
  std::size_t flat_buffer_size() const { return n_buffers_; }
  static constexpr std::size_t align_elements() { return kAlign; }
  // With a device mirror the gradients live there (to_host() copies them back), so only the mirror is cleared.
  void zero_grad() {
    if (mirror_)
      mirror_->zero_grads();
    else
      std::fill(grads_.begin(), grads_.end(), T(0));
  }

 private:
  std::vector<Entry> entries_;
  std::unordered_map<std::string, std::size_t> index_;
  static constexpr std::size_t kAlign = kAlignBytes >= sizeof(T) ? kAlignBytes / sizeof(T) : 1;
  static std::size_t round_up(std::size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }
  mutable FlatArray<T> values_, grads_, buffers_;  // mutable: to_host() refreshes them from a const set
  std::shared_ptr<ParamMirror<T>> mirror_;
  std::size_t n_values_ = 0, n_buffers_ = 0;       // array lengths, padding included
  std::size_t n_trainable_ = 0, n_running_ = 0;    // sums of the entries' sizes
  bool allocated_ = false;
};

// What a forward / backward pass needs besides the tensors.
template <class T>
struct Context {
  ParamSet<T>* params = nullptr;
  bool training = false;     // batch norm uses batch statistics and updates running ones; dropout is active
  bool record = true;        // layers keep what backward needs
  bool dropout_off = false;  // treat every dropout probability as 0 (deterministic training-mode runs)
  bool input_grad = true;    // backward computes d loss / d input (false: the first layer skips it)
  std::uint64_t seed = 0;    // dropout masks: derived from (seed, step, call index)
  std::uint64_t step = 0;
  std::uint64_t calls = 0;   // reset by the model at the start of each forward
  // Data-parallel training (hw1/core/collective.hpp; null in one process): layers report each parameter whose
  // gradient backward has finished, and batch norm with sync_bn sums its statistics over the ranks of comm.
  GradReducer* grads = nullptr;
  Collective* comm = nullptr;
  bool sync_bn = false;

  void grad_ready(std::size_t off, std::size_t n) const {
    if (grads) grads->ready(off, n);
  }
  bool synced_batchnorm() const { return sync_bn && comm && comm->size() > 1; }

  T* w(std::size_t off) const { return params->value(off); }
  T* g(std::size_t off) const { return params->grad(off); }
  T* buf(std::size_t off) const { return params->buffer(off); }
  std::uint64_t next_seed() {
    std::uint64_t z = seed ^ (0x9E3779B97F4A7C15ull * (step + 1)) ^ (0xBF58476D1CE4E5B9ull * ++calls);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
};

}  // namespace hw1
