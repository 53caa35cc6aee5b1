// What data-parallel training needs of a group of processes (ranks), as interfaces: the core headers, the layers
// and fit() see only these, never mpi.h or nccl.h. hw1/distributed/mpi.hpp implements them with MPI (target
// hw1::distributed), hw1/distributed/nccl.hpp the gradient reduction with NCCL on a CUDA stream.
//
// - Collective: blocking sums and broadcasts of small host arrays (batch-norm statistics with --sync-bn, the
//   per-step sample counts, the validation counts, rank 0's weights at the start).
// - GradReducer: the flat gradient array cut into buckets (BucketPlan, about 25 MB each, the last parameters
//   first, in the order backward writes them). Layers report each parameter whose gradient is final
//   (Context::grad_ready); a bucket whose parameters are all final starts a non-blocking all-reduce at once, and
//   finish() (before the optimizer step) starts what is left and waits for all of them.
#pragma once
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "hw1/core/error.hpp"

namespace hw1 {

class Collective {
 public:
  virtual ~Collective() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // In place, every rank gets the sum over ranks. Every rank must make the same calls in the same order.
  virtual void allreduce_sum(double* data, std::size_t n) = 0;
  virtual void broadcast(void* data, std::size_t bytes, int root) = 0;
  template <class T>
  void broadcast_array(T* data, std::size_t n, int root = 0) {
    broadcast(static_cast<void*>(data), n * sizeof(T), root);
  }
};

// One process: sums and broadcasts are the identity.
class SingleProcess final : public Collective {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allreduce_sum(double*, std::size_t) override {}
  void broadcast(void*, std::size_t, int) override {}
};

// A contiguous range [begin, end) of the flat gradient array, reduced as one message.
struct GradBucket {
  std::size_t begin = 0, end = 0;
  std::size_t expected = 0;  // elements of the parameters inside (padding excluded)
};

// Buckets over a ParamSet's entries (offset, size in elements): from the last parameter backwards, a bucket
// closes once it holds at least bucket_bytes; bucket 0 covers the end of the array, the last one reaches offset
// 0, and together they cover [0, flat_size) (padding between parameters included), no parameter split.
struct BucketPlan {
  std::vector<GradBucket> buckets;
  template <class Entries>
  static BucketPlan make(const Entries& entries, std::size_t flat_size, std::size_t elem_bytes,
                         std::size_t bucket_bytes) {
    struct Span {
      std::size_t offset, size;
    };
    std::vector<Span> spans;
    for (const auto& e : entries)
      if (e.trainable) spans.push_back({e.offset, e.size});
    std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.offset > b.offset; });
    BucketPlan p;
    GradBucket cur{0, flat_size, 0};
    for (const Span& s : spans) {
      cur.begin = s.offset;
      cur.expected += s.size;
      if ((cur.end - cur.begin) * elem_bytes >= bucket_bytes) {
        p.buckets.push_back(cur);
        cur = GradBucket{0, s.offset, 0};
      }
    }
    if (cur.expected > 0 || p.buckets.empty()) {
      cur.begin = 0;
      p.buckets.push_back(cur);
    } else {
      p.buckets.back().begin = 0;  // only padding below the last bucket
    }
    return p;
  }
  // The bucket holding flat offset `off` (buckets are in decreasing order of offset).
  std::size_t find(std::size_t off) const {
    std::size_t lo = 0, hi = buckets.size();
    while (lo + 1 < hi) {
      const std::size_t mid = (lo + hi) / 2;
      if (buckets[mid].end > off) lo = mid;
      else hi = mid;
    }
    return lo;
  }
};

// How much of the all-reduce the last steps hid behind backward.
struct GradReduceStats {
  std::int64_t steps = 0;
  double wait_seconds = 0;     // finish(): time spent waiting after backward, summed over steps
  std::int64_t early = 0;      // buckets started while backward ran
  std::int64_t late = 0;       // buckets started by finish()
  std::size_t bytes_per_step = 0;
};

// The bucket bookkeeping; a transport (MPI, NCCL) supplies start(), poll() and wait_all().
class GradReducer {
 public:
  GradReducer(BucketPlan plan, std::size_t elem_bytes) : plan_(std::move(plan)), elem_bytes_(elem_bytes) {
    pending_.resize(plan_.buckets.size());
    started_.resize(plan_.buckets.size());
    for (const auto& b : plan_.buckets) stats_.bytes_per_step += (b.end - b.begin) * elem_bytes_;
  }
  virtual ~GradReducer() = default;
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  const BucketPlan& plan() const { return plan_; }
  const GradReduceStats& stats() const { return stats_; }
  void reset_stats() {
    const std::size_t b = stats_.bytes_per_step;
    stats_ = {};
    stats_.bytes_per_step = b;
  }

  // Before backward: every bucket waits for all of its parameters again.
  void begin_step() {
    for (std::size_t i = 0; i < plan_.buckets.size(); ++i) {
      pending_[i] = plan_.buckets[i].expected;
      started_[i] = false;
    }
    in_step_ = true;
  }
  // The gradient of the parameter at [offset, offset + n) is final for this step.
  void ready(std::size_t offset, std::size_t n) {
    if (!in_step_) return;
    const std::size_t i = plan_.find(offset);
    std::size_t& p = pending_[i];
    p = n >= p ? 0 : p - n;
    if (p == 0 && !started_[i]) {
      started_[i] = true;
      ++stats_.early;
      start(i, plan_.buckets[i]);
    }
    poll();
  }
  // After backward: starts the buckets not started yet (a parameter no layer reported, e.g. unused), in bucket
  // order, and waits for every one. The gradients are then the sums over ranks.
  void finish() {
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < plan_.buckets.size(); ++i)
      if (!started_[i]) {
        started_[i] = true;
        ++stats_.late;
        start(i, plan_.buckets[i]);
      }
    wait_all();
    in_step_ = false;
    stats_.wait_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ++stats_.steps;
  }

 protected:
  virtual void start(std::size_t index, const GradBucket& b) = 0;
  virtual void poll() {}
  virtual void wait_all() = 0;
  std::size_t elem_bytes() const { return elem_bytes_; }

 private:
  BucketPlan plan_;
  std::size_t elem_bytes_;
  std::vector<std::size_t> pending_;
  std::vector<bool> started_;
  bool in_step_ = false;
  GradReduceStats stats_;
};

// 25 MB, PyTorch DDP's default bucket_cap_mb.
inline constexpr std::size_t kDefaultBucketBytes = std::size_t(25) << 20;

}  // namespace hw1
