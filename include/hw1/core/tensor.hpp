// Host tensors: xtensor containers, float32 by default, NCHW row-major.
// Kernels work on raw pointers (tensor.data()); xtensor does the element-wise work in the layers.
#pragma once
#include <xtensor/xarray.hpp>
#include <xtensor/xadapt.hpp>
#include <xtensor/xview.hpp>
#include <xtensor/xmath.hpp>
#include <cstddef>
#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include "hw1/core/error.hpp"

namespace hw1 {

namespace detail {
// A training step allocates the same activation sizes every iteration. Large blocks from malloc come from fresh
// mmap()s whose pages the kernel must fault in and zero each time (measured: most of a ResNet101 32x32 step
// spent outside the kernels), so freed blocks of 64 KiB and more are kept, keyed by exact size, and handed out
// again. At most `kMaxCached` bytes are kept; beyond that a freed block goes back to the system.
class BlockCache {
 public:
  static constexpr std::size_t kMinBytes = std::size_t(64) << 10;
  static constexpr std::size_t kMaxCached = std::size_t(4) << 30;
  static constexpr std::size_t kAlign = 64;

  static BlockCache& instance() {
    static BlockCache* cache = new BlockCache;  // never destroyed: tensors may outlive static destruction order
    return *cache;
  }
  void* get(std::size_t bytes) {
    if (bytes >= kMinBytes) {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(bytes);
      if (it != free_.end()) {
        void* p = it->second;
        free_.erase(it);
        cached_ -= bytes;
        return p;
      }
    }
    void* p = std::aligned_alloc(kAlign, (bytes + kAlign - 1) / kAlign * kAlign);
    if (!p) throw std::bad_alloc();
    return p;
  }
  void put(void* p, std::size_t bytes) {
    if (bytes >= kMinBytes) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_ + bytes <= kMaxCached) {
        free_.emplace(bytes, p);
        cached_ += bytes;
        return;
      }
    }
    std::free(p);
  }
  // Returns every cached block to the system (e.g. between a training run and a large inference job).
  void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [b, p] : free_) std::free(p);
    free_.clear();
    cached_ = 0;
  }

 private:
  std::mutex mutex_;
  std::unordered_multimap<std::size_t, void*> free_;
  std::size_t cached_ = 0;
};
}  // namespace detail

// The allocator of host tensors: 64-byte aligned blocks, large ones recycled through detail::BlockCache.
template <class T>
struct TensorAllocator {
  using value_type = T;
  TensorAllocator() = default;
  template <class U>
  TensorAllocator(const TensorAllocator<U>&) {}
  T* allocate(std::size_t n) { return static_cast<T*>(detail::BlockCache::instance().get(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) { detail::BlockCache::instance().put(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const TensorAllocator<U>&) const { return true; }
  template <class U>
  bool operator!=(const TensorAllocator<U>&) const { return false; }
};

inline void release_cached_memory() { detail::BlockCache::instance().release(); }

template <class T>
using HostTensor = xt::xarray<T, xt::layout_type::row_major, TensorAllocator<T>>;
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
