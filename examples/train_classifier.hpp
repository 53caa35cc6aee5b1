// The body of hw1-train-classifier, a template over the backend: train_classifier.cpp runs it on the CPU and, in
// a build with the CUDA backend, calls train_classifier_cuda.cu, which instantiates it for hw1::cuda (so the CPU
// translation unit never includes a CUDA header).
#pragma once
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>

#include "trainer_common.hpp"
#include "hw1/data/loader.hpp"
#include "hw1/models.hpp"
#include "hw1/train/backend_ops.hpp"
#include "hw1/train/fit.hpp"
#include "hw1/train/loss.hpp"

namespace classifier {


inline const char* kProgram = "hw1-train-classifier";
inline const std::string kUsage = std::string(R"USAGE(usage: hw1-train-classifier [--model resnet101|resnet50] --train DIR --val DIR --out RUN_DIR [options]
       hw1-train-classifier --resume RUN_DIR [--epochs N] [--workers N] [--device D] [--precision P] [--keep-epochs N]
Trains ResNet101 (torchvision layout) on DIR/{label}_{id}.png images; validates after every epoch.
  --model NAME             resnet101 (default) | resnet50 (torchvision resnet50, about half the cost)
  --train DIR, --val DIR   labelled folders (train_50/, val_50/)
  --out RUN_DIR            run directory: epoch-NNN.safetensors, best.safetensors, optimizer.safetensors,
                           metrics.csv, curves.png, run.json; refused if it holds files (unless --force)
  --resume RUN_DIR         continue an interrupted run with its original options (Ctrl-C included); the result
                           equals an uninterrupted run. Only --epochs, --workers, --device,
                           --precision and --keep-epochs may change.
  --epochs N               1..100000, default 15
  --batch-size N           1..65536, default 32
  --optimizer NAME         sgd | adam | adamw (default adam)
  --lr X                   > 0; default 2e-5 with --init-weights (the report's fine-tuning), 1e-3 from scratch
  --weight-decay X         >= 0; default 0 (adamw: 0.01, torch's default)
  --momentum X             SGD momentum in [0, 1), default 0.9;  --nesterov: Nesterov momentum
  --schedule NAME          constant | step | cosine | poly (default constant); --warmup-steps N (default 0);
                           --step-epochs N and --gamma X for step (default 5, 0.1)
  --input-size S           images are resized (bilinear) 32 -> S, S in 32..8192; default 224 with --init-weights (ImageNet
                           scale, as the report), 32 from scratch
  --hflip, --rotate DEG    augmentation: horizontal flips, rotations in [-DEG, DEG], DEG in 0..180 (report: --hflip --rotate 15)
  --num-classes K          default: the largest label in --train + 1 (a --val label >= K is an error)
  --init-weights FILE      start from a weights file (e.g. torchvision resnet101 with 1000 classes): loads every
                           tensor that fits and lists the ones skipped (the fc head of another class count);
                           .safetensors or a PyTorch .pth as downloaded (resnet101-63fe2227.pth)
  --pth-key K              the state_dict under key K of a .pth checkpoint dict (default: the only one there)
)USAGE") + hw1::examples::common_trainer_options("images") + R"USAGE(Report recipe: --init-weights resnet101.safetensors --input-size 224 --hflip --rotate 15 --optimizer adam
               --lr 2e-5 --batch-size 32 --epochs 15
The last line printed is "best val_accuracy A at epoch E (chance C)", C = the majority-class rate of --val.
)USAGE";

template <class B>
struct ClassifierTask {
  using Ops = hw1::TrainOps<B>;
  std::vector<float> weights;  // empty: unweighted
  std::size_t correct = 0, total = 0;

  // grad_scale: the fp16 loss scale (1 otherwise).
  template <class Net>
  double train_step(Net& net, const hw1::ClassificationBatch& b, double grad_scale) {
    const auto y = net.forward(Ops::input(b.images));
    auto r = Ops::cross_entropy(y, Ops::targets(b.labels), weights, grad_scale);
    net.set_input_grad(false);  // nothing reads the images' gradient
    net.backward(r.grad);
    return r.loss;
  }
  void eval_begin() { correct = total = 0; }
  template <class Net>
  double eval_batch(Net& net, const hw1::ClassificationBatch& b) {
    const auto y = net.forward(Ops::input(b.images));
    const auto pred = Ops::argmax(y);
    for (std::size_t i = 0; i < pred.size(); ++i) correct += pred[i] == b.labels[i];
    total += pred.size();
    return Ops::cross_entropy(y, Ops::targets(b.labels), weights, 1, false).loss;
  }
  double eval_metric() const { return total ? double(correct) / double(total) : 0.0; }
  // A data-parallel run sums these over the ranks (fit.hpp).
  std::vector<double> eval_counts() const { return {double(correct), double(total)}; }
  void set_eval_counts(const std::vector<double>& v) { correct = std::size_t(v.at(0)), total = std::size_t(v.at(1)); }
};

// The classifier Net (a ResNet of the registry) on its backend, trained.
template <class Net>
int train_net(const hw1::RunArgs& ra, const hw1::DeviceOption& dev) {
  using B = typename Net::backend_type;
  const hw1::Cli& cli = ra.cli;
  const std::string train_dir = cli.required("--train"), val_dir = cli.required("--val");
  const bool pretrained = cli.has("--init-weights");
  // Every option is read (and range-checked) before start_run creates RUN_DIR or writes run.json.
  const int epochs = int(cli.integer("--epochs", 15, 1, hw1::kMaxEpochs));
  const int batch = int(cli.integer("--batch-size", 32, 1, hw1::kMaxBatch));
  hw1::examples::check_global_batch(batch);
  auto& ranks = hw1::examples::Ranks::get();
  const int size = int(cli.integer("--input-size", pretrained ? 224 : 32, hw1::kMinImageSide, hw1::kMaxImageSide));
  const auto seed = std::uint64_t(cli.integer("--seed", 0, 0, hw1::kMaxSeed));
  const int workers = int(cli.integer("--workers", 2, 0, hw1::kMaxWorkers));
  const bool skip_bad = cli.flag("--skip-bad");
  // (a rotation is drawn from [-DEG, DEG]: a negative DEG is no range, beyond 180 repeats angles)
  const auto rotate = float(cli.real("--rotate", 0, 0, 180));

  hw1::OptimizerConfig oc;
  oc.name = cli.choice("--optimizer", "adam", {"sgd", "adam", "adamw"});
  hw1::examples::read_optimizer_numbers(cli, oc, pretrained ? 2e-5 : 1e-3);

  // Folders first: every listing error (missing or empty folder, bad name, label out of range) comes before
  // anything is written.
  auto train_files = hw1::list_classification_dir(train_dir, std::numeric_limits<int>::max());
  int max_label = 0;
  for (const auto& f : train_files) max_label = std::max(max_label, f.label);
  const int k = int(cli.integer("--num-classes", max_label + 1, 1, hw1::kMaxClasses));
  if (max_label >= k)
    throw hw1::Error(train_dir + ": holds label " + std::to_string(max_label) + " but --num-classes is " +
                     std::to_string(k));
  auto val_files = hw1::list_classification_dir(val_dir, k);
  std::map<int, std::size_t> val_counts;
  for (const auto& f : val_files) ++val_counts[f.label];
  std::size_t majority = 0;
  for (auto [label, n] : val_counts) majority = std::max(majority, n);
  const double chance = double(majority) / double(val_files.size());

  // (layer4 is 1x1 at 32x32 input, so a single-image last batch could not train batch norm)
  const auto [sc, drop_last, batches] = hw1::plan_epochs(cli, train_files.size(), batch, epochs, 5, ranks.size());

  hw1::FitConfig fc = hw1::examples::base_fit_config(ra, epochs, seed, oc, sc, chance, dev, "val_accuracy");
  fc.info.model = Net::model_name;
  fc.info.num_classes = k;
  fc.info.input_size = size;

  Net net(hw1::ModelOptions{.num_classes = k, .seed = seed});
  hw1::start_run(net, ra, kProgram, Net::model_name, ranks.lead());

  hw1::AugmentConfig train_aug, val_aug;
  train_aug.out_h = train_aug.out_w = val_aug.out_h = val_aug.out_w = size;
  train_aug.hflip = cli.flag("--hflip");
  train_aug.rotate_degrees = rotate;
  hw1::Loader train(hw1::ClassificationDataset(std::move(train_files), train_aug),
                    {.batch_size = std::size_t(batch), .shuffle = true, .drop_last = drop_last, .num_workers = workers,
                     .prefetch = std::size_t(std::max(4, 2 * workers)), .seed = seed, .skip_bad = skip_bad, .rank = ranks.rank(), .world = ranks.size()});
  hw1::Loader val(hw1::ClassificationDataset(std::move(val_files), val_aug),
                  {.batch_size = std::size_t(batch), .shuffle = false, .num_workers = workers,
                   .prefetch = std::size_t(std::max(4, 2 * workers)), .seed = seed, .skip_bad = skip_bad, .rank = ranks.rank(), .world = ranks.size()});

  std::cout << Net::model_name << ", " << k << " classes, " << train.dataset().size() << " train / " << val.dataset().size()
            << " val images at " << size << "x" << size << ", " << oc.name << " lr " << oc.lr << ", batch " << batch
            << ", " << epochs << " epochs on "
            << hw1::examples::device_label(dev)
            << " -> " << ra.run_dir << std::endl;

  ClassifierTask<B> task;
  return hw1::examples::fit_and_report(net, train, val, task, fc);
}

// The classifier named --model on backend B.
template <class B>
int train_model(const std::string& model, const hw1::RunArgs& ra, const hw1::DeviceOption& dev) {
  return hw1::with_model<B, int>(model, [&]<class Net>(std::type_identity<Net>)
                                            requires(Net::task == hw1::Task::classification) {
                                              return train_net<Net>(ra, dev);
                                            });
}

// On the GPU: train_classifier_cuda.cu, built with the CUDA backend (HW1_WITH_CUDA).
int train_classifier_cuda(const std::string& model, const hw1::RunArgs& ra, const hw1::DeviceOption& dev);

}  // namespace classifier
