// NCCL for data-parallel training on GPUs (CUDA translation units of a build with hw1::distributed and NCCL):
// the gradient buckets of hw1/core/collective.hpp summed with ncclAllReduce on a stream of their own. MPI starts
// the job and hands NCCL its unique id (rank 0 draws it, MPI_Bcast sends it); each rank drives one GPU.
// libnccl is loaded when the first communicator is made (dlopen, as backend/cpu/blas.hpp loads OpenBLAS), so a
// program built with this header runs where NCCL is missing until a multi-GPU run asks for it; nccl.h is only
// needed to compile.
//
// Order of work, all asynchronous to the host: a bucket's gradients are written by kernels queued on the
// backend's compute stream, so starting the bucket records an event there and the NCCL stream waits for it
// before its all-reduce; finish() makes the compute stream wait for the NCCL stream, so the optimizer step
// queued after it sees the sums. Backward keeps queueing kernels while NCCL runs.
#pragma once
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <mpi.h>
#include <nccl.h>

#include <string>
#include <type_traits>
#include <vector>

#include "hw1/backend/cuda/runtime.hpp"
#include "hw1/core/collective.hpp"
#include "hw1/core/error.hpp"

namespace hw1::nccl {

// The NCCL entry points hw1 uses, from libnccl.so.2 (or libnccl.so).
struct Api {
  decltype(&::ncclGetUniqueId) get_unique_id = nullptr;
  decltype(&::ncclCommInitRank) comm_init_rank = nullptr;
  decltype(&::ncclCommDestroy) comm_destroy = nullptr;
  decltype(&::ncclAllReduce) all_reduce = nullptr;
  decltype(&::ncclGetErrorString) error_string = nullptr;
};
inline const Api& api() {
  static const Api a = [] {
    void* h = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!h) h = dlopen("libnccl.so", RTLD_NOW | RTLD_LOCAL);
    if (!h)
      throw Error("a data-parallel GPU run needs NCCL, and libnccl.so.2 was not found (" + std::string(dlerror()) +
                  "); install NCCL or add its folder to LD_LIBRARY_PATH");
    Api r;
    const auto sym = [&](auto& f, const char* name) {
      f = reinterpret_cast<std::remove_reference_t<decltype(f)>>(dlsym(h, name));
      if (!f) throw Error(std::string("libnccl: no symbol ") + name);
    };
    sym(r.get_unique_id, "ncclGetUniqueId");
    sym(r.comm_init_rank, "ncclCommInitRank");
    sym(r.comm_destroy, "ncclCommDestroy");
    sym(r.all_reduce, "ncclAllReduce");
    sym(r.error_string, "ncclGetErrorString");
    return r;
  }();
  return a;
}

inline void check(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) throw Error(std::string(what) + ": " + api().error_string(r));
}

template <class T>
ncclDataType_t datatype() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "hw1::nccl: float or double gradients");
  return std::is_same_v<T, float> ? ncclFloat : ncclDouble;
}

// A communicator over the ranks of MPI_COMM_WORLD, one GPU each (the backend's current device); without MPI
// initialised, one rank alone (the 1-GPU check: NCCL's all-reduce of one rank must change nothing).
class Communicator {
 public:
  Communicator() {
    int rank = 0, size = 1, initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) {
      MPI_Comm_rank(MPI_COMM_WORLD, &rank);
      MPI_Comm_size(MPI_COMM_WORLD, &size);
    }
    ncclUniqueId id;
    if (rank == 0) check(api().get_unique_id(&id), "ncclGetUniqueId");
    if (size > 1) MPI_Bcast(&id, int(sizeof id), MPI_BYTE, 0, MPI_COMM_WORLD);
    (void)gpu::device();  // cudaSetDevice to the backend's device first
    check(api().comm_init_rank(&comm_, size, id, rank), "ncclCommInitRank");
  }
  ~Communicator() {
    if (comm_) api().comm_destroy(comm_);
  }
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;
  ncclComm_t get() const { return comm_; }

 private:
  ncclComm_t comm_ = nullptr;
};

template <class T>
class GradReducer final : public hw1::GradReducer {
 public:
  // grads: the device array of the gradients (ParamSet::grad(0) with the CUDA mirror attached).
  GradReducer(BucketPlan plan, T* grads) : hw1::GradReducer(std::move(plan), sizeof(T)), grads_(grads) {
    compute_ = gpu::device().stream();
    HW1_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    ready_.resize(this->plan().buckets.size());
    for (auto& e : ready_) HW1_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    HW1_CUDA_CHECK(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
  }
  ~GradReducer() override {
    for (auto& e : ready_) cudaEventDestroy(e);
    cudaEventDestroy(done_);
    cudaStreamDestroy(stream_);
  }

 protected:
  void start(std::size_t i, const GradBucket& b) override {
    HW1_CUDA_CHECK(cudaEventRecord(ready_[i], compute_));
    HW1_CUDA_CHECK(cudaStreamWaitEvent(stream_, ready_[i], 0));
    check(api().all_reduce(grads_ + b.begin, grads_ + b.begin, b.end - b.begin, datatype<T>(), ncclSum, comm_.get(),
                        stream_),
          "ncclAllReduce");
  }
  void wait_all() override {
    HW1_CUDA_CHECK(cudaEventRecord(done_, stream_));
    HW1_CUDA_CHECK(cudaStreamWaitEvent(compute_, done_, 0));
  }

 private:
  T* grads_;
  Communicator comm_;
  cudaStream_t compute_ = nullptr, stream_ = nullptr;
  std::vector<cudaEvent_t> ready_;
  cudaEvent_t done_ = nullptr;
};

}  // namespace hw1::nccl
