// What both trainers share beyond fit.hpp: their common --help lines, the run configuration every run starts
// from, and the last steps (fit, Ctrl-C, the best epoch's line).
#pragma once
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <type_traits>

#include "hw1/core/collective.hpp"
#include "hw1/train/backend_ops.hpp"
#include "hw1/train/fit.hpp"
#ifdef HW1_WITH_MPI
#include "hw1/distributed/mpi.hpp"
#endif
#ifdef HW1_WITH_NCCL  // the trainers' CUDA translation units, in a build with MPI and NCCL
#include "hw1/distributed/nccl.hpp"
#endif

namespace hw1::examples {

// The ranks of this run: MPI in a build with hw1::distributed whose process mpirun started, else one process.
// Ranks other than 0 print nothing on stdout (errors still go to stderr, prefixed with the rank).
class Ranks {
 public:
  static Ranks& get() {
    static Ranks r;
    return r;
  }
  int rank() const { return rank_; }
  int size() const { return size_; }
  int local_rank() const { return local_rank_; }
  bool lead() const { return rank_ == 0; }
  Collective* comm() { return size_ > 1 ? comm_.get() : nullptr; }
  // "hw1-train-classifier", or "hw1-train-classifier (rank 1 of 2)" in a data-parallel run.
  const char* program(const char* name) {
    label_ = size_ > 1 ? std::string(name) + " (rank " + std::to_string(rank_) + " of " + std::to_string(size_) + ")"
                       : std::string(name);
    return label_.c_str();
  }
  // The gradient reducer of a data-parallel run of net (null in one process). HW1_FORCE_ALLREDUCE=1 makes one in
  // a 1-rank run too: MPI's under mpirun -np 1, NCCL's on the GPU even without mpirun (scripts/gpu-check.sh: a
  // 1-rank NCCL run must end with the same checkpoint as the run without it).
  template <class Net>
  std::unique_ptr<GradReducer> reducer(Net& net) {
    const char* force = std::getenv("HW1_FORCE_ALLREDUCE");
    bool forced = force && std::string(force) == "1";
#ifdef HW1_WITH_MPI
    if constexpr (detail::FusingBackend<typename Net::backend_type>) forced = forced && session_.active();
#else
    forced = false;
#endif
    if (size_ == 1 && !forced) return nullptr;
    auto& ps = net.params();
    using T = std::remove_reference_t<decltype(*ps.grad(0))>;
    std::size_t bytes = kDefaultBucketBytes;
    if (const char* mb = std::getenv("HW1_BUCKET_MB")) bytes = std::size_t(std::max(1.0, std::atof(mb)) * (1 << 20));
    BucketPlan plan = BucketPlan::make(ps.entries(), ps.flat_size(), sizeof(T), bytes);
#ifdef HW1_WITH_MPI
    if constexpr (detail::FusingBackend<typename Net::backend_type>) {
      return std::make_unique<mpi::GradReducer<T>>(std::move(plan), ps.grad(0));
    } else {
#ifdef HW1_WITH_NCCL
      return std::make_unique<nccl::GradReducer<T>>(std::move(plan), ps.grad(0));
#else
      throw Error("a data-parallel run on the GPU needs a build with NCCL (the CUDA toolkit's libnccl)");
#endif
    }
#else
    (void)plan;
    return nullptr;
#endif
  }
  // The exit code of main: after an error in a run over several ranks, MPI_Abort stops the others (exit code
  // rc), so that none waits for this one forever. 130 (Ctrl-C) is agreed on by every rank in fit().
  int finish(int rc) {
#ifdef HW1_WITH_MPI
    if (rc != 0 && rc != 130 && size_ > 1) {
      std::cerr.flush();
      session_.abort(rc);
    }
#endif
    return rc;
  }

 private:
  Ranks() {
#ifdef HW1_WITH_MPI
    if (session_.active()) {
      rank_ = session_.rank();
      size_ = session_.size();
      local_rank_ = session_.local_rank();
      comm_ = std::make_unique<mpi::Communicator>();
    }
#endif
    if (rank_ != 0) std::cout.setstate(std::ios::badbit);
  }
#ifdef HW1_WITH_MPI
  mpi::Session session_;
#endif
  std::unique_ptr<Collective> comm_;
  int rank_ = 0, size_ = 1, local_rank_ = 0;
  std::string label_;
};

// --batch-size is the global batch: it has to split evenly over the ranks.
inline void check_global_batch(int batch) {
  const int n = Ranks::get().size();
  if (batch % n != 0)
    throw UsageError("--batch-size " + std::to_string(batch) + " is the global batch and must divide evenly over the " +
                     std::to_string(n) + " ranks (give a multiple of " + std::to_string(n) + ")");
}

// `what`: what an unreadable item is ("images", "pairs").
inline std::string common_trainer_options(const std::string& what) {
  return R"(  --seed N                 weights, data order, augmentation and dropout: 0..2^63-1 (default 0)
  --workers N              loading threads, 0..256 (default 2; results do not depend on it)
  --skip-bad               skip unreadable )" +
         what + R"( (and report how many) instead of stopping
  --keep-epochs N          0..100000: keep only the newest N epoch-NNN.safetensors (best.safetensors always stays);
                           default 0 = keep every epoch (the ensemble of hw1-predict picks among them)
  --force                  reuse a RUN_DIR that holds files (removes the previous run's files only)
  --device D               cpu (default) | cuda | cuda:N (a build with the CUDA backend); checkpoints are the
                           same files on either device, and --resume may change the device
  --sync-bn                data-parallel runs (mpirun -np N): batch-norm statistics over the global batch
                           (torch's SyncBatchNorm; CPU only); default: each rank's own, as PyTorch DDP
  --precision P            cuda only: float32 (default; TF32 off) | tf32 (TF32 tensor cores) | fp16 | bf16
                           (mixed precision: convolutions in 16 bits with float32 accumulation, the rest float32,
                           float32 master weights; fp16 with dynamic loss scaling)
)";
}

// --lr, --weight-decay, --momentum (after --optimizer is in oc.name): finite, in their meaningful ranges.
inline void read_optimizer_numbers(const Cli& cli, OptimizerConfig& oc, double default_lr) {
  oc.lr = cli.real("--lr", default_lr, 0, kNoBound, true);
  oc.weight_decay = cli.real("--weight-decay", oc.name == "adamw" ? 0.01 : 0.0, 0);
  oc.momentum = cli.real("--momentum", 0.9, 0, 1, false, true);
  oc.nesterov = cli.flag("--nesterov");
}

// The options every run has; the caller adds the model's CheckpointInfo fields. Reads --keep-epochs, so it is
// called before start_run (nothing is written before every option passed).
inline FitConfig base_fit_config(const RunArgs& ra, int epochs, std::uint64_t seed, const OptimizerConfig& oc,
                                 const ScheduleConfig& sc, double chance, const DeviceOption& dev,
                                 const std::string& metric_name) {
  FitConfig fc;
  fc.run_dir = ra.run_dir;
  fc.epochs = epochs;
  fc.seed = seed;
  fc.resume = ra.resume;
  fc.optimizer = oc;
  fc.schedule = sc;
  fc.info.metric_name = metric_name;
  fc.chance = chance;
  fc.loss_scaling = dev.cuda && dev.precision == "fp16";
  fc.keep_epochs = int(ra.cli.integer("--keep-epochs", 0, 0, kMaxEpochs));
  fc.sync_bn = ra.cli.flag("--sync-bn");
  if (fc.sync_bn && dev.cuda && Ranks::get().size() > 1)
    throw UsageError("--sync-bn runs on the CPU only: drop it on --device cuda (each GPU then normalises its own batch)");
  return fc;
}

// --device cuda in a run over several ranks: rank r takes GPU local_rank % (GPUs on its host).
inline int device_index(const DeviceOption& dev, int device_count) {
  const Ranks& r = Ranks::get();
  return r.size() > 1 && device_count > 0 ? r.local_rank() % device_count : dev.index;
}

// "cpu" or "cuda:N (precision)", for the start-up line.
inline std::string device_label(const DeviceOption& dev) {
  return dev.cuda ? "cuda:" + std::to_string(dev.index) + " (" + dev.precision + ")" : std::string("cpu");
}

// Trains, then prints the resume hint (exit 130) after Ctrl-C or the best epoch's line (exit 0).
template <class Net, class Train, class Val, class Task>
int fit_and_report(Net& net, Train& train, Val& val, Task& task, FitConfig fc) {
  install_interrupt_handler();
  Ranks& ranks = Ranks::get();
  const std::unique_ptr<GradReducer> reducer = ranks.reducer(net);
  if (reducer) {
    fc.comm = ranks.comm();
    fc.grad_reducer = reducer.get();
  }
  const FitResult r = fit(net, train, val, task, fc);
  if (reducer && ranks.lead()) {
    const GradReduceStats& s = reducer->stats();
    std::cout << "all-reduce over " << ranks.size() << " ranks: " << detail::fmt("%.1f", double(s.bytes_per_step) / 1e6)
              << " MB per step in " << reducer->plan().buckets.size() << " buckets, "
              << detail::fmt("%.1f", s.early + s.late ? 100.0 * double(s.early) / double(s.early + s.late) : 0.0)
              << "% started during backward; waited "
              << detail::fmt("%.1f", s.steps ? 1e3 * s.wait_seconds / double(s.steps) : 0.0)
              << " ms per step after backward" << std::endl;
  }
  if (r.interrupted) {
    std::cout << "interrupted: resume with --resume " << fc.run_dir << std::endl;
    return 130;
  }
  print_best(std::cout, fc.info.metric_name, r, fc.chance);
  return 0;
}

}  // namespace hw1::examples
