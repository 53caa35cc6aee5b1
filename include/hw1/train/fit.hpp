// The epoch loop both trainers share: train, validate, checkpoint, log, plot, resume. Generic over the network
// (any hw1 Model) and the task, which says how one batch is trained and evaluated:
//   double train_step(Net&, const TrainBatch&);  // forward + loss + backward into zeroed grads; returns mean loss
//     (or train_step(Net&, const TrainBatch&, double grad_scale): the loss gradient multiplied by grad_scale, the
//     fp16 loss scale, which fit() divides out of the parameter gradients again before the optimizer step)
//   void eval_begin();
//   double eval_batch(Net&, const ValBatch&);    // eval-mode forward; accumulates the metric; returns mean loss
//   double eval_metric() const;
//   void epoch_end(Net&, int epoch);             // optional (prediction snapshots)
//
// Exact resume: the data order and augmentation are functions of (seed, epoch, index), dropout masks of (seed,
// global step), the learning rate of the global step, and the rest of the state (weights, batch-norm statistics,
// optimizer moments and step) is in the run directory. An epoch's files are written in the order epoch-NNN,
// best, metrics.csv, curves.png, extras, and optimizer.safetensors LAST: optimizer.safetensors names the epoch
// whose checkpoint is complete, so a crash (or Ctrl-C) anywhere leaves a state that --resume repeats exactly.
//
// Data-parallel runs (FitConfig::comm with N > 1 ranks, hw1/distributed/mpi.hpp): every rank draws the same epoch
// order and takes its shard of each global batch; rank 0's weights are broadcast at the start (after --resume
// too); per step the ranks agree on the sample count (and on a Ctrl-C), each scales its loss gradient by its
// share of the global batch, FitConfig::grad_reducer sums the gradients while backward runs, and every rank
// takes the same optimizer step, so the weights stay equal without further broadcasts. Validation is sharded and
// its counts summed (on rank 0's running statistics). Only rank 0 writes files and prints.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hw1/core/broadcast.hpp"
#include "hw1/data/loader.hpp"
#include "hw1/models/model.hpp"  // LoadReport
#include "hw1/plot/plot.hpp"
#include "hw1/train/backend_ops.hpp"
#include "hw1/train/checkpoint.hpp"
#include "hw1/train/cli.hpp"
#include "hw1/train/optimizer.hpp"
#include "hw1/train/progress.hpp"
#include "hw1/train/run_args.hpp"
#include "hw1/train/schedule.hpp"

namespace hw1 {

// --force: removes what an earlier run of a trainer left in `dir` (and nothing else), so stale epochs of a
// longer run cannot mix with the new one.
inline void clear_run_files(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    const bool ours = n == "run.json" || n == "best.safetensors" || n == "optimizer.safetensors" ||
                      n == "metrics.csv" || n == "curves.png" ||
                      (n.starts_with("epoch-") && n.ends_with(".safetensors")) || n.ends_with(".tmp");
    if (ours && e.is_regular_file()) fs::remove(e.path(), ec);
    if (n == "snapshots" && e.is_directory())
      for (const auto& s : fs::directory_iterator(e.path(), ec))
        if (s.path().filename().string().starts_with("epoch-")) fs::remove(s.path(), ec);
  }
}

// --init-weights: loads every tensor of `path` (.safetensors or a PyTorch .pth, whose state_dict --pth-key picks)
// whose name and shape fit, lists the ones skipped. A file that is an hw1 checkpoint of another network, or that
// fits nothing at all, is an error.
template <class Net>
void init_weights(Net& net, const std::string& path, const std::string& model, std::ostream& out = std::cout,
                  const std::string& pth_key = "") {
  SafeTensors f = read_weights(path, pth_key);
  if (f.metadata.count("format")) CheckpointInfo::from(f).expect_model({model}, path);
  const LoadReport r = net.load(f, {.strict = false});
  if (r.loaded.empty())
    throw Error(path + ": none of its " + std::to_string(f.names().size()) + " tensors fits " + model +
                " (no name in common; is it the weights of another network?)");
  out << "init-weights " << path << ": loaded " << r.loaded.size() << " tensors";
  if (r.mismatched.empty() && r.unexpected.empty() && r.missing.empty()) out << " (all)";
  out << "\n";
  for (const auto& s : r.mismatched) out << "  skipped (shape differs): " << s << "\n";
  for (const auto& s : r.unexpected) out << "  skipped (not in the model): " << s << "\n";
  for (const auto& s : r.missing) out << "  not in the file (kept initial value): " << s << "\n";
}

// ---- the loop -------------------------------------------------------------------------------------------------

struct FitConfig {
  std::string run_dir;
  int epochs = 1;
  std::uint64_t seed = 0;
  bool resume = false;
  OptimizerConfig optimizer;
  ScheduleConfig schedule;
  CheckpointInfo info;  // model, classes, preprocessing, metric_name; epoch and metric are filled in per epoch
  bool loss_scaling = false;  // fp16 mixed precision: dynamic loss scaling (LossScaler)
  double chance = 0;    // the metric of the best constant prediction, printed next to the result
  int keep_epochs = 0;  // > 0: only the newest keep_epochs epoch-NNN.safetensors stay (best.safetensors always)
  std::ostream* out = &std::cout;
  // Data-parallel training (null: one process). The loaders are sharded (LoaderOptions::rank / world) and every
  // rank calls fit() with the same configuration; see "Data-parallel runs" below.
  Collective* comm = nullptr;
  GradReducer* grad_reducer = nullptr;  // sums the gradients over the ranks while backward runs
  bool sync_bn = false;                 // batch-norm statistics of the global batch (torch's SyncBatchNorm)
};

struct FitResult {
  double best_metric = std::numeric_limits<double>::quiet_NaN();
  int best_epoch = 0, last_epoch = 0;
  bool interrupted = false;
};

namespace detail {
inline std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}
inline std::string meta(const SafeTensors& f, const char* k) {
  auto it = f.metadata.find(k);
  if (it == f.metadata.end()) throw Error(f.path() + ": has no '" + std::string(k) + "' entry; not written by a trainer");
  return it->second;
}

inline void sum_over(Collective* comm, std::vector<double>& v) {
  if (comm && comm->size() > 1) comm->allreduce_sum(v.data(), v.size());
}
}  // namespace detail

template <class Net, class TrainSet, class ValSet, class Task>
FitResult fit(Net& net, Loader<TrainSet>& train, Loader<ValSet>& val, Task& task, FitConfig cfg) {
  namespace fs = std::filesystem;
  const fs::path dir(cfg.run_dir);
  const auto file = [&](const std::string& n) { return (dir / n).string(); };
  const std::string metric = cfg.info.metric_name;
  // The optimizer works where the parameters live (host arrays, or the device mirror of a CUDA model).
  using Ops = TrainOps<typename Net::backend_type>;
  auto& params = net.params();
  const std::size_t count = params.flat_size();
  auto opt = Ops::make_optimizer(cfg.optimizer);
  LossScaler scaler;
  scaler.enabled = cfg.loss_scaling;

  const int world = cfg.comm ? cfg.comm->size() : 1;
  const bool lead = !cfg.comm || cfg.comm->rank() == 0;
  std::ostream quiet(nullptr);
  std::ostream& out = lead ? *cfg.out : quiet;
  FILE* bar_out = lead ? stderr : nullptr;
  if (world > 1 && !cfg.grad_reducer) throw Error("fit: a run over " + std::to_string(world) + " ranks needs a GradReducer");
  net.set_collective(cfg.comm, cfg.sync_bn);

  FitResult res;
  std::int64_t step = 0;
  int start = 1;
  MetricsLog log{{"epoch", "train_loss", "val_loss", metric, "lr", "seconds", "images_per_s"}, {}};

  if (cfg.resume && fs::exists(file("optimizer.safetensors"))) {
    const SafeTensors st = SafeTensors::read(file("optimizer.safetensors"));
    if (detail::meta(st, "model") != cfg.info.model)
      throw Error(st.path() + ": belongs to a " + detail::meta(st, "model") + " run, this run trains " + cfg.info.model);
    int done = 0;
    try {
      done = std::stoi(detail::meta(st, "epoch"));
      step = std::stoll(detail::meta(st, "global_step"));
      res.best_epoch = std::stoi(detail::meta(st, "best_epoch"));
      res.best_metric = std::stod(detail::meta(st, "best_metric"));
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Error(st.path() + ": corrupt run state (" + e.what() + ")");
    }
    const SafeTensors ck = SafeTensors::read(file(epoch_file(done)));
    const CheckpointInfo ci = CheckpointInfo::from(ck);
    ci.expect_model({cfg.info.model}, ck.path());
    if (ci.num_classes != cfg.info.num_classes || ci.aux_loss != cfg.info.aux_loss || ci.epoch != done)
      throw Error(ck.path() + ": checkpoint of epoch " + std::to_string(ci.epoch) + " with " +
                  std::to_string(ci.num_classes) + " classes" + (ci.aux_loss ? " and the auxiliary head" : "") +
                  " does not match this run (epoch " + std::to_string(done) + ", " +
                  std::to_string(cfg.info.num_classes) + " classes)");
    net.load(ck);
    opt->load_state(st, count);
    if (scaler.enabled && st.metadata.count("loss_scale")) {
      try {
        scaler.scale = std::stod(st.metadata.at("loss_scale"));
        scaler.good_steps = std::stoll(detail::meta(st, "loss_scale_good_steps"));
      } catch (const Error&) {
        throw;
      } catch (const std::exception& e) {
        throw Error(st.path() + ": corrupt loss scale (" + e.what() + ")");
      }
    }
    if (fs::exists(file("metrics.csv"))) {
      MetricsLog read = MetricsLog::read(file("metrics.csv"), done);
      if (read.columns != log.columns)
        throw Error(file("metrics.csv") + ": its columns are not those of this run (" +
                    std::to_string(read.columns.size()) + " columns; was it written by another program?)");
      log = std::move(read);
    }
    start = done + 1;
    out << "resuming " << cfg.run_dir << " after epoch " << done << " (global step " << step << ")\n";
  }
  if (world > 1) broadcast_state(params, *cfg.comm);

  const std::int64_t total_steps = std::int64_t(cfg.epochs) * std::int64_t(train.num_batches());
  for (int epoch = start; epoch <= cfg.epochs; ++epoch) {
    // -- train
    train.start_epoch(std::uint64_t(epoch - 1));
    net.train(true);
    net.set_record(true);
    // (dropout masks: each rank its own, from the run's seed and the rank)
    net.set_seed(world > 1 ? mix_seed(cfg.seed, std::uint64_t(cfg.comm->rank())) : cfg.seed);
    const std::string tag = "epoch " + std::to_string(epoch) + "/" + std::to_string(cfg.epochs);
    ProgressBar bar(tag + " train", train.dataset().size(), "img", bar_out);
    double loss_sum = 0, lr = 0;
    std::size_t seen = 0;
    const std::int64_t skipped_before = scaler.skipped;
    // Batch b of the epoch: this rank's shard of it, or none (every sample of the shard unreadable under
    // --skip-bad, or an empty shard); the loader passes such batches over, so a batch it returns may be a later one.
    std::optional<typename Loader<TrainSet>::Batch> ahead;
    bool loader_done = false;
    for (std::size_t b = 0; b < train.num_batches(); ++b) {
      if (!ahead && !loader_done) {
        ahead = train.next();
        loader_done = !ahead;
      }
      std::optional<typename Loader<TrainSet>::Batch> batch;
      if (ahead && train.batch_index() == b) batch = std::move(ahead), ahead.reset();
      const double n_local = batch ? double(batch->names.size()) : 0.0;
      // The ranks agree on the batch's sample count and on stopping (Ctrl-C reaches them at different moments).
      std::vector<double> agree{n_local, g_interrupted ? 1.0 : 0.0};
      detail::sum_over(cfg.comm, agree);
      if (agree[1] > 0) return res.interrupted = true, res;
      const double n_total = agree[0];
      if (n_total == 0) continue;  // every sample of this batch was skipped as unreadable
      if (!batch && cfg.sync_bn && world > 1)
        throw Error("rank " + std::to_string(cfg.comm->rank()) + ": none of its samples of batch " +
                    std::to_string(b) + " could be read, and --sync-bn needs every rank in each batch-norm layer");
      lr = learning_rate(cfg.schedule, cfg.optimizer.lr, step, total_steps);
      net.zero_grad();
      net.set_step(std::uint64_t(step));
      double loss = 0;
      if (cfg.grad_reducer) cfg.grad_reducer->begin_step();
      if (batch) {
        // This rank's share of the global batch: the summed gradients are those of the global batch's mean loss.
        const double share = n_local / n_total;
        net.set_grad_reducer(cfg.grad_reducer);
        if constexpr (requires { task.train_step(net, *batch, 1.0); }) {
          loss = task.train_step(net, *batch, scaler.grad_scale() * share);
        } else {
          if (scaler.enabled) throw Error("fit: loss scaling needs a task whose train_step takes the gradient scale");
          if (world > 1) throw Error("fit: a data-parallel run needs a task whose train_step takes the gradient scale");
          loss = task.train_step(net, *batch);
        }
        net.set_grad_reducer(nullptr);
      }
      if (cfg.grad_reducer) cfg.grad_reducer->finish();
      std::vector<double> lsum{loss * n_local, batch && !std::isfinite(loss) ? 1.0 : 0.0};
      detail::sum_over(cfg.comm, lsum);
      if (lsum[1] > 0 || !std::isfinite(lsum[0]))
        throw Error("the training loss became " + std::to_string(lsum[0] / n_total) + " at epoch " +
                    std::to_string(epoch) + ", step " + std::to_string(step) + " (lr " + detail::fmt("%g", lr) +
                    "); lower --lr or add --warmup-steps. The files of epoch " + std::to_string(epoch - 1) +
                    " are intact");
      // fp16: unscale and check the gradients; an overflow skips the update (the scale is lowered instead).
      if (!scaler.enabled || scaler.update(Ops::unscale_grads(params, 1.0 / scaler.scale)))
        opt->step(params.value(0), params.grad(0), count, lr);
      ++step;
      loss_sum += lsum[0];
      seen += std::size_t(n_total);
      bar.update(train.positions_through(b), "loss " + detail::fmt("%.4f", loss_sum / double(seen)) + " lr " +
                                                 detail::fmt("%.3g", lr));
    }
    std::vector<double> train_skips{double(train.skipped())};
    detail::sum_over(cfg.comm, train_skips);
    const double train_seconds = bar.seconds();
    const std::size_t skipped = std::size_t(train_skips[0]);
    bar.finish("loss " + detail::fmt("%.4f", seen ? loss_sum / double(seen) : 0.0));
    if (seen == 0) throw Error("epoch " + std::to_string(epoch) + ": every training sample was skipped as unreadable");

    // -- validate (sharded like training; the counts are summed, on rank 0's running statistics)
    if (world > 1) broadcast_state(params, *cfg.comm);
    net.train(false);
    net.set_record(false);
    task.eval_begin();
    val.start_epoch(0);
    ProgressBar vbar(tag + " val  ", val.dataset().size(), "img", bar_out);
    double vloss_sum = 0;
    std::size_t vseen = 0;
    bool stop = false;
    while (auto batch = val.next()) {
      if (g_interrupted) {
        stop = true;
        break;
      }
      const std::size_t n = batch->names.size();
      vloss_sum += task.eval_batch(net, *batch) * double(n);
      vseen += n;
      vbar.update(world > 1 ? val.positions_through(val.batch_index()) : vseen + val.skipped(),
                  "loss " + detail::fmt("%.4f", vloss_sum / double(vseen)));
    }
    std::vector<double> vsum{vloss_sum, double(vseen), double(val.skipped()), stop || g_interrupted ? 1.0 : 0.0};
    if (world > 1) {
      if constexpr (requires { task.eval_counts(); }) {
        const std::vector<double> counts = task.eval_counts();
        vsum.insert(vsum.end(), counts.begin(), counts.end());
        detail::sum_over(cfg.comm, vsum);
        task.set_eval_counts(std::vector<double>(vsum.begin() + 4, vsum.end()));
      } else {
        throw Error("fit: a data-parallel run needs a task with eval_counts() / set_eval_counts()");
      }
    }
    if (vsum[3] > 0) return res.interrupted = true, res;
    vloss_sum = vsum[0];
    vseen = std::size_t(vsum[1]);
    const std::size_t val_skipped = std::size_t(vsum[2]);
    vbar.finish("loss " + detail::fmt("%.4f", vseen ? vloss_sum / double(vseen) : 0.0));
    const double m = task.eval_metric(), val_loss = vseen ? vloss_sum / double(vseen) : std::nan("");

    // -- write (rank 0 only), optimizer state last
    cfg.info.epoch = epoch;
    cfg.info.metric = m;
    if (lead) save_checkpoint(file(epoch_file(epoch)), net, cfg.info);
    const bool improved = res.best_epoch == 0 || m > res.best_metric || (std::isnan(res.best_metric) && !std::isnan(m));
    if (improved) {
      res.best_metric = m;
      res.best_epoch = epoch;
      if (lead) save_checkpoint(file("best.safetensors"), net, cfg.info);
    }
    const double secs = train_seconds + vbar.seconds();
    log.rows.push_back({double(epoch), seen ? loss_sum / double(seen) : 0.0, val_loss, m, lr, secs,
                        double(seen) / train_seconds});
    if (lead) {
      log.write(file("metrics.csv"));
      std::vector<std::vector<double>> curve_rows;
      for (const auto& r : log.rows) curve_rows.push_back({r[0], r[1], r[2], r[3]});
      plot_training_curves(file("curves.png"), {"epoch", "train_loss", "val_loss", metric}, curve_rows, "epoch");
      if constexpr (requires { task.epoch_end(net, epoch); }) task.epoch_end(net, epoch);
      SafeTensorsWriter w;
      opt->save_state(w);
      w.metadata["model"] = cfg.info.model;
      w.metadata["epoch"] = std::to_string(epoch);
      w.metadata["global_step"] = std::to_string(step);
      w.metadata["best_epoch"] = std::to_string(res.best_epoch);
      w.metadata["best_metric"] = detail::fmt("%.17g", res.best_metric);
      if (scaler.enabled) {
        w.metadata["loss_scale"] = detail::fmt("%.17g", scaler.scale);
        w.metadata["loss_scale_good_steps"] = std::to_string(scaler.good_steps);
      }
      w.write(file("optimizer.safetensors"));
      // Older epochs go only now that the run state names this epoch, whose checkpoint --resume reads.
      if (cfg.keep_epochs > 0) {
        std::error_code ec;
        for (int e = 1; e <= epoch - cfg.keep_epochs; ++e) fs::remove(file(epoch_file(e)), ec);
      }
    }

    out << tag << "  train_loss " << detail::fmt("%.4f", log.rows.back()[1]) << "  val_loss "
        << detail::fmt("%.4f", val_loss) << "  " << metric << " " << detail::fmt("%.4f", m) << (improved ? " *" : "")
        << "  lr " << detail::fmt("%.3g", lr) << "  " << detail::fmt("%.1f", double(seen) / train_seconds)
        << " img/s  " << detail::fmt("%.1f", secs) << " s";
    if (skipped || val_skipped) out << "  skipped " << skipped << " train / " << val_skipped << " val unreadable samples";
    if (scaler.skipped > skipped_before)
      out << "  fp16: " << scaler.skipped - skipped_before << " steps skipped on inf/nan gradients (loss scale now "
          << detail::fmt("%g", scaler.scale) << ")";
    out << std::endl;
    res.last_epoch = epoch;
  }
  if (start > cfg.epochs) out << cfg.run_dir << ": all " << cfg.epochs << " epochs are done; pass a larger --epochs to go on\n";
  return res;
}

// The last line of a trainer, for scripts: "best val_accuracy 0.8123 at epoch 7 (chance 0.1000)".
inline void print_best(std::ostream& out, const std::string& metric, const FitResult& r, double chance) {
  out << "best " << metric << " " << detail::fmt("%.4f", r.best_metric) << " at epoch " << r.best_epoch << " (chance "
      << detail::fmt("%.4f", chance) << ")" << std::endl;
}

// The learning-rate schedule from the command line, in optimizer steps, and how an epoch is batched: a last
// batch of a single sample cannot be trained with batch norm in training mode, so it is dropped (the shuffle
// drops a different sample each epoch).
struct EpochPlan {
  ScheduleConfig schedule;
  bool drop_last = false;
  std::size_t batches = 0;  // optimizer steps per epoch
};
// In a data-parallel run over `world` ranks a last batch too small to give every rank two samples is dropped.
inline EpochPlan plan_epochs(const Cli& cli, std::size_t samples, int batch, int epochs, long long default_step_epochs,
                             int world = 1) {
  EpochPlan p;
  ScheduleConfig& sc = p.schedule;
  sc.name = cli.choice("--schedule", "constant", {"constant", "step", "cosine", "poly"});
  sc.warmup_steps = cli.integer("--warmup-steps", 0, 0, 1000000000);
  const std::size_t b = std::size_t(batch);
  const std::size_t rest = samples % b;
  p.drop_last = samples > 1 && rest > 0 && rest < 2 * std::size_t(world);
  p.batches = samples / b + (rest > 0 && !p.drop_last);
  sc.step_size = double(cli.integer("--step-epochs", default_step_epochs, 1, kMaxEpochs)) * double(p.batches);
  sc.gamma = cli.real("--gamma", 0.1, 0, kNoBound, true);
  const std::int64_t total = std::int64_t(epochs) * std::int64_t(p.batches);
  if (sc.name != "constant" && sc.name != "step" && sc.warmup_steps >= total)
    throw UsageError("--warmup-steps " + std::to_string(sc.warmup_steps) + " must be below the run's " +
                     std::to_string(total) + " steps");
  return p;
}

// Starts (or resumes) a run: --init-weights unless a resumed run has finished an epoch (its checkpoint then holds
// the weights), RUN_DIR prepared (refused if it holds files, unless --force), the options saved to run.json.
// lead false (ranks other than 0 of a data-parallel run): only the weights; rank 0 prepares RUN_DIR.
template <class Net>
void start_run(Net& net, const RunArgs& ra, const std::string& program, const std::string& model, bool lead = true) {
  const Cli& cli = ra.cli;
  if (cli.has("--init-weights") &&
      !(ra.resume && std::filesystem::exists(std::filesystem::path(ra.run_dir) / "optimizer.safetensors")))
    init_weights(net, cli.str("--init-weights"), model, std::cout, cli.str("--pth-key"));
  else if (cli.has("--pth-key") && !cli.has("--init-weights"))
    throw UsageError("--pth-key goes with --init-weights FILE.pth");
  if (!lead) return;
  if (ra.resume) {
    std::cout << "resume " << ra.run_dir << ": options restored from run.json\n";
  } else {
    prepare_run_dir(ra.run_dir, false, cli.flag("--force"));
    if (cli.flag("--force")) clear_run_files(ra.run_dir);
  }
  write_run_json(program, ra);
}

}  // namespace hw1
