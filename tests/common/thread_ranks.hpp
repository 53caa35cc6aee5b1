// Ranks as threads of one process, for testing data-parallel code without MPI: a hw1::Collective and a gradient
// reducer (hw1/core/collective.hpp) over shared memory. Sums go over the ranks in rank order, in double.
#pragma once
#include <barrier>
#include <cstddef>
#include <cstring>
#include <thread>
#include <vector>

#include "hw1/core/collective.hpp"

namespace hw1::test {

class ThreadGroup {
 public:
  explicit ThreadGroup(int n) : n_(n), barrier_(n), slots_(std::size_t(n)) {}
  int size() const { return n_; }

  template <class T>
  void allreduce(int rank, T* data, std::size_t n) {
    slots_[std::size_t(rank)].assign(data, data + n);
    barrier_.arrive_and_wait();
    for (std::size_t i = 0; i < n; ++i) {
      double s = 0;
      for (const auto& slot : slots_) s += slot[i];
      data[i] = T(s);
    }
    barrier_.arrive_and_wait();
  }
  void broadcast(int rank, void* data, std::size_t bytes, int root) {
    if (rank == root) shared_.assign(static_cast<const char*>(data), static_cast<const char*>(data) + bytes);
    barrier_.arrive_and_wait();
    if (rank != root) std::memcpy(data, shared_.data(), bytes);
    barrier_.arrive_and_wait();
  }

 private:
  int n_;
  std::barrier<> barrier_;
  std::vector<std::vector<double>> slots_;
  std::vector<char> shared_;
};

class ThreadCollective final : public Collective {
 public:
  ThreadCollective(ThreadGroup& g, int rank) : g_(g), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return g_.size(); }
  void allreduce_sum(double* data, std::size_t n) override { g_.allreduce(rank_, data, n); }
  void broadcast(void* data, std::size_t bytes, int root) override { g_.broadcast(rank_, data, bytes, root); }

 private:
  ThreadGroup& g_;
  int rank_;
};

// Each bucket is summed when it starts (blocking): the ranks start them in the same order, as with MPI.
template <class T>
class ThreadGradReducer final : public GradReducer {
 public:
  ThreadGradReducer(BucketPlan plan, T* grads, ThreadGroup& g, int rank)
      : GradReducer(std::move(plan), sizeof(T)), grads_(grads), g_(g), rank_(rank) {}
  std::vector<std::size_t> order;  // buckets in the order they started

 protected:
  void start(std::size_t i, const GradBucket& b) override {
    order.push_back(i);
    g_.allreduce(rank_, grads_ + b.begin, b.end - b.begin);
  }
  void wait_all() override {}

 private:
  T* grads_;
  ThreadGroup& g_;
  int rank_;
};

// Runs f(rank) on n threads and waits for them.
template <class F>
void on_ranks(int n, F&& f) {
  std::vector<std::thread> ts;
  for (int r = 0; r < n; ++r) ts.emplace_back([&f, r] { f(r); });
  for (auto& t : ts) t.join();
}

}  // namespace hw1::test
