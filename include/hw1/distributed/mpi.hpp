// MPI for data-parallel training (target hw1::distributed; the only hw1 header that includes mpi.h):
//   hw1::mpi::Session        MPI_Init when the process was started by mpirun / mpiexec, else one rank
//   hw1::mpi::Communicator   hw1::Collective over MPI_COMM_WORLD (sums, broadcasts)
//   hw1::mpi::GradReducer<T> the gradient buckets (hw1/core/collective.hpp) summed with MPI_Iallreduce, each
//                            started as soon as backward has written all of its parameters' gradients
// Works with OpenMPI and MPICH. OpenMPI progresses a non-blocking collective inside MPI calls, so the reducer
// tests its requests whenever a layer reports a finished gradient.
#pragma once
#include <mpi.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "hw1/core/collective.hpp"
#include "hw1/core/error.hpp"

namespace hw1::mpi {

template <class T>
MPI_Datatype datatype() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "hw1::mpi: float or double gradients");
  return std::is_same_v<T, float> ? MPI_FLOAT : MPI_DOUBLE;
}

inline void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    throw Error(std::string(what) + ": " + std::string(msg, std::size_t(len)));
  }
}

// True when a launcher started this process as one rank of a job (OpenMPI, MPICH / Hydra, PMIx).
inline bool launched_by_mpirun() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(v)) return true;
  return false;
}

// MPI_Init_thread (FUNNELED: only the main thread calls MPI) in a process started by mpirun; a process started
// on its own stays one rank without touching MPI. finish(): MPI_Finalize, or MPI_Abort after an error so that
// no other rank waits for this one forever.
class Session {
 public:
  Session() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!launched_by_mpirun() || initialized) return;
    int provided = 0;
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    active_ = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
    MPI_Comm_rank(local, &local_rank_);
    MPI_Comm_size(local, &local_size_);
    MPI_Comm_free(&local);
  }
  ~Session() {
    if (active_) MPI_Finalize();
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  bool active() const { return active_; }
  int rank() const { return rank_; }
  int size() const { return size_; }
  int local_rank() const { return local_rank_; }  // among the ranks on this host
  int local_size() const { return local_size_; }
  // After an error on this rank (exit code rc != 0): stops every rank of the job with rc.
  [[noreturn]] void abort(int rc) {
    MPI_Abort(MPI_COMM_WORLD, rc);
    std::_Exit(rc);
  }

 private:
  bool active_ = false;
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
};

class Communicator final : public Collective {
 public:
  Communicator() { MPI_Comm_dup(MPI_COMM_WORLD, &comm_); }
  ~Communicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const override {
    int r = 0;
    MPI_Comm_rank(comm_, &r);
    return r;
  }
  int size() const override {
    int s = 1;
    MPI_Comm_size(comm_, &s);
    return s;
  }
  void allreduce_sum(double* data, std::size_t n) override {
    for (std::size_t at = 0; at < n; at += kChunk)
      check(MPI_Allreduce(MPI_IN_PLACE, data + at, int(std::min(kChunk, n - at)), MPI_DOUBLE, MPI_SUM, comm_),
            "MPI_Allreduce");
  }
  void broadcast(void* data, std::size_t bytes, int root) override {
    auto* p = static_cast<char*>(data);
    for (std::size_t at = 0; at < bytes; at += kChunk)
      check(MPI_Bcast(p + at, int(std::min(kChunk, bytes - at)), MPI_BYTE, root, comm_), "MPI_Bcast");
  }
  MPI_Comm comm() const { return comm_; }

 private:
  static constexpr std::size_t kChunk = std::size_t(1) << 30;  // MPI counts are int
  MPI_Comm comm_ = MPI_COMM_NULL;
};

// Sums the flat gradient array over the ranks, bucket by bucket, on a communicator of its own (so its
// non-blocking collectives never interleave with the batch-norm sums of --sync-bn).
template <class T>
class GradReducer final : public hw1::GradReducer {
 public:
  GradReducer(BucketPlan plan, T* grads) : hw1::GradReducer(std::move(plan), sizeof(T)), grads_(grads) {
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
    requests_.assign(this->plan().buckets.size(), MPI_REQUEST_NULL);
  }
  ~GradReducer() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }

 protected:
  void start(std::size_t i, const GradBucket& b) override {
    check(MPI_Iallreduce(MPI_IN_PLACE, grads_ + b.begin, int(b.end - b.begin), datatype<T>(), MPI_SUM, comm_,
                         &requests_[i]),
          "MPI_Iallreduce");
  }
  void poll() override {
    int done = 0;
    MPI_Testall(int(requests_.size()), requests_.data(), &done, MPI_STATUSES_IGNORE);
  }
  void wait_all() override {
    check(MPI_Waitall(int(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE), "MPI_Waitall");
  }

 private:
  T* grads_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  std::vector<MPI_Request> requests_;
};

}  // namespace hw1::mpi
