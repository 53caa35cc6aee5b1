// hw1-bench-ddp: data-parallel training steps of one benchmark row, for bench/scaling. Started alone it is one
// rank; under mpirun -np N each rank takes batch/N images of the row's global batch, and the gradients are summed
// over the ranks in buckets while backward runs (hw1/distributed/mpi.hpp), as hw1-train-* do.
//   [mpirun -np N] hw1-bench-ddp --row resnet101-train-32 [--iters N] [--warmup W] [--bucket-mb MB]
// Rank 0 prints one JSON line: global images/s, the median step, and for N > 1 the all-reduce: the time waited
// after backward per step (exposed), the time the same buckets take alone (blocking, nothing else running) and the
// share of it hidden behind backward, 1 - exposed / alone.
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <string>

#include "bench_common.hpp"
#include "cpu_rows.hpp"
#include "hw1/core/broadcast.hpp"
#include "hw1/distributed/mpi.hpp"
#include "hw1/models.hpp"
#include "hw1/train/cli.hpp"
#include "hw1/train/loss.hpp"
#include "hw1/train/optimizer.hpp"

namespace {

template <class Net>
void run(Net& net, hw1::mpi::Session& s, const std::string& row, std::size_t batch, std::size_t size, int classes,
         int warmup, int iters, double bucket_mb) {
  const int world = s.size(), rank = s.rank();
  if (batch % std::size_t(world) != 0)
    throw hw1::UsageError("the row's batch " + std::to_string(batch) + " does not divide over " +
                          std::to_string(world) + " ranks");
  const std::size_t local = batch / std::size_t(world);
  hw1::Tensor x = hw1::empty({local, 3, size, size});
  std::mt19937 rng{std::uint32_t(rank)};
  std::normal_distribution<float> d;
  for (auto& v : x) v = d(rng);
  net.train(true);
  net.set_record(true);
  net.set_input_grad(false);
  auto& ps = net.params();
  std::unique_ptr<hw1::mpi::Communicator> comm;
  std::unique_ptr<hw1::mpi::GradReducer<float>> red;
  if (world > 1) {
    comm = std::make_unique<hw1::mpi::Communicator>();
    red = std::make_unique<hw1::mpi::GradReducer<float>>(
        hw1::BucketPlan::make(ps.entries(), ps.flat_size(), sizeof(float), std::size_t(bucket_mb * (1 << 20))),
        ps.grad(0));
    hw1::broadcast_state(ps, *comm);
  }
  hw1::OptimizerConfig oc;
  oc.name = "sgd";
  oc.momentum = 0.9;
  auto opt = hw1::make_optimizer(oc);
  std::vector<std::int64_t> target;
  auto step = [&] {
    net.zero_grad();
    hw1::Tensor y = net.forward(x);
    if (target.empty()) target = hw1::bench::cyclic_targets(y, classes, std::size_t(rank));
    auto l = hw1::cross_entropy(y, target);
    for (auto& g : l.grad) g /= float(world);
    if (red) red->begin_step();
    net.set_grad_reducer(red.get());
    net.backward(l.grad);
    net.set_grad_reducer(nullptr);
    if (red) red->finish();
    opt->step(ps.values().data(), ps.grads().data(), ps.values().size(), 1e-4);
  };
  for (int i = 0; i < warmup; ++i) step();
  if (red) red->reset_stats();
  const auto t = hw1::bench::time_it(step, 0, iters);
  double exposed = 0, alone = 0;
  std::size_t buckets = 0, mb = 0;
  if (red) {
    exposed = red->stats().wait_seconds / double(red->stats().steps);
    buckets = red->plan().buckets.size();
    mb = red->stats().bytes_per_step >> 20;
    // The same buckets with nothing to overlap: started and waited for back to back.
    const auto ta = hw1::bench::time_it(
        [&] {
          red->begin_step();
          red->finish();
        },
        1, std::max(3, iters));
    alone = ta[ta.size() / 2];
  }
  if (rank != 0) return;
  const double med = t[t.size() / 2];
  std::printf(
      "{\"row\": \"%s\", \"impl\": \"hw1\", \"ranks\": %d, \"threads\": %d, \"batch\": %zu, \"median_s\": %.5f, "
      "\"img_per_s\": %.3f, \"allreduce_mib\": %zu, \"buckets\": %zu, \"exposed_s\": %.5f, \"alone_s\": %.5f, "
      "\"hidden\": %.3f}\n",
      row.c_str(), world, omp_get_max_threads(), batch, med, double(batch) / med, mb, buckets, exposed, alone,
      alone > 0 ? std::clamp(1.0 - exposed / alone, 0.0, 1.0) : 0.0);
}

}  // namespace

int main(int argc, char** argv) {
  hw1::mpi::Session session;
  const std::string usage =
      "usage: [mpirun -np N] hw1-bench-ddp --row NAME [--iters N] [--warmup W] [--bucket-mb MB]\n"
      "  NAME: <net>-train-<size>[-b<batch>] (global batch; default as hw1-bench)\n";
  const int rc = hw1::run_main("hw1-bench-ddp", usage, [&] {
    hw1::Cli cli(argc, argv, {"--row", "--iters", "--warmup", "--bucket-mb"}, {}, usage);
    const std::string row = cli.required("--row");
    const auto r = hw1::bench::parse_row(row);
    if (!r.train) throw hw1::UsageError("hw1-bench-ddp times training rows (<net>-train-<size>)");
    const hw1::ModelInfo* info = hw1::find_model(r.net);
    if (!info) throw hw1::UsageError("unknown network in row '" + row + "' (networks: " + hw1::model_names(", ") + ")");
    const bool classifier = info->task == hw1::Task::classification;
    const std::size_t batch = hw1::bench::cpu_row_batch(r, classifier);
    const int k = hw1::bench::cpu_row_classes(classifier);
    const int iters = int(cli.integer("--iters", 5, 1, 1000000)), warmup = int(cli.integer("--warmup", 1, 0, 1000000));
    const double bucket_mb = cli.real("--bucket-mb", 25, 0.001, 1e6);
    hw1::with_model<hw1::backend::cpu, int>(r.net, [&]<class Net>(std::type_identity<Net>) {
      Net net(hw1::ModelOptions{.num_classes = k});
      run(net, session, row, batch, r.size, k, warmup, iters, bucket_mb);
      return 0;
    });
    return 0;
  });
  if (rc != 0 && session.size() > 1) session.abort(rc);
  return rc;
}
