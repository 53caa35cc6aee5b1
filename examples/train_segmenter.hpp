// The body of hw1-train-segmenter, a template over the backend: train_segmenter.cpp runs it on the CPU and, in a
// build with the CUDA backend, calls train_segmenter_cuda_*.cu, which instantiate it for hw1::cuda (so the CPU
// translation unit never includes a CUDA header).
#pragma once
#include <algorithm>
#include <filesystem>
#include <iostream>

#include "trainer_common.hpp"
#include "hw1/data/loader.hpp"
#include "hw1/data/metrics.hpp"
#include "hw1/models.hpp"
#include "hw1/plot/plot.hpp"
#include "hw1/train/backend_ops.hpp"
#include "hw1/train/fit.hpp"
#include "hw1/train/loss.hpp"

namespace segmenter {


inline const char* kProgram = "hw1-train-segmenter";
inline const std::string kUsage = std::string(R"USAGE(usage: hw1-train-segmenter --model fcn32s|deeplabv3|deeplabv3_resnet50 --train DIR --val DIR --out RUN_DIR [options]
       hw1-train-segmenter --resume RUN_DIR [--epochs N] [--workers N] [--device D] [--precision P] [--keep-epochs N]
Trains a 7-class segmenter on DIR/xxxx_sat.jpg + xxxx_mask.png pairs; validation mIoU (the course's) every epoch.
  --model NAME             fcn32s (VGG16-FCN32s) | deeplabv3 (DeepLabv3-ResNet101) | deeplabv3_resnet50
                           (DeepLabv3-ResNet50, about half the cost); default fcn32s
  --train DIR, --val DIR   the course's train/ and validation/ folders
  --out RUN_DIR            run directory: epoch-NNN.safetensors, best.safetensors, optimizer.safetensors,
                           metrics.csv, curves.png, run.json, snapshots/; refused if it holds files (unless --force)
  --resume RUN_DIR         continue an interrupted run with its original options (Ctrl-C included); the result
                           equals an uninterrupted run. Only --epochs, --workers, --device,
                           --precision and --keep-epochs may change.
  --epochs N               1..100000, default 25
  --batch-size N           1..65536, default 8
  --optimizer NAME         sgd | adam | adamw (default adamw)
  --lr X                   > 0; default 1e-4
  --weight-decay X         >= 0; default 0.01 for adamw (torch's default), else 0
  --momentum X             SGD momentum in [0, 1), default 0.9;  --nesterov: Nesterov momentum
  --schedule NAME          constant | step | cosine | poly (default constant); --warmup-steps N (default 0);
                           --step-epochs N and --gamma X for step (default 10, 0.1); poly uses power 0.9
  --input-size S           resize every image (and mask, nearest) to S x S (32..8192) before cropping; 0 = keep (default)
  --crop S                 random S x S training crops, S in 32..8192 (0 = the full image, default; report: 448)
  --hflip, --vflip, --rot90  random flips and quarter turns of training pairs
  --class-weights W        none (default) | inverse-frequency: 1/pixel count over the --train masks, normalised
                           to mean 1; Unknown (class 6) gets weight 0 (it is not scored, and as the rarest class
                           its inverse frequency would dominate the loss)
  --aux-loss W             deeplabv3*: weight >= 0 of the auxiliary FCN head on layer3 (0 = no auxiliary head, default)
  --init-weights FILE      start from a weights file (e.g. torchvision vgg16 features for fcn32s); loads every
                           tensor that fits and lists the ones skipped; .safetensors or a PyTorch .pth as
                           downloaded (vgg16-397923af.pth)
  --pth-key K              the state_dict under key K of a .pth checkpoint dict (default: the only one there)
  --snapshot-images IDS    validation ids, e.g. 0010,0097,0107 ...
  --snapshot-epochs LIST   ... drawn at these epochs, e.g. 1,16,25, into snapshots/epoch-NNN.png
                           (rows: images; columns: image | ground truth | prediction, in the course colours)
)USAGE") + hw1::examples::common_trainer_options("pairs") + R"USAGE(Report setups: --model fcn32s --batch-size 8 --optimizer adamw --lr 1e-4 --class-weights inverse-frequency
               --model deeplabv3 --crop 448 --hflip --vflip --rot90 --optimizer sgd --lr 0.01 --schedule poly
                 --aux-loss 0.4
The last line printed is "best val_miou M at epoch E (chance C)", C = the mIoU of predicting the most frequent
class of --val everywhere.
)USAGE";

// Class-index image of one sample's predicted logits [1, K, H, W].
inline hw1::Image predicted_classes(const hw1::Tensor& logits) {
  const auto pred = hw1::argmax_classes(logits);
  hw1::Image out(int(logits.shape()[2]), int(logits.shape()[3]), 1);
  std::copy(pred.begin(), pred.end(), out.pixels.begin());
  return out;
}

template <class B>
struct SegmenterTask {
  using Ops = hw1::TrainOps<B>;
  std::vector<float> weights;  // empty: unweighted
  float aux_weight = 0;
  const hw1::SegmentationDataset* val = nullptr;
  std::vector<std::size_t> snapshot_index;  // positions in `val`
  std::vector<int> snapshot_epochs;
  std::string run_dir;
  hw1::MeanIoU miou;

  // grad_scale: the fp16 loss scale (1 otherwise), applied to both outputs' loss gradients.
  template <class Net>
  double train_step(Net& net, const hw1::SegmentationBatch& b, double grad_scale) {
    const auto y = net.forward(Ops::input(b.images));
    const auto t = Ops::targets(b.targets);
    auto r = Ops::cross_entropy(y, t, weights, grad_scale);
    net.set_input_grad(false);  // nothing reads the images' gradient
    if constexpr (requires { net.aux_output(); }) {
      if (aux_weight > 0) {
        auto a = Ops::cross_entropy(net.aux_output(), t, weights, double(aux_weight) * grad_scale);
        net.backward(r.grad, a.grad);
        return r.loss + aux_weight * a.loss;
      }
    }
    net.backward(r.grad);
    return r.loss;
  }
  void eval_begin() { miou.reset(); }
  template <class Net>
  double eval_batch(Net& net, const hw1::SegmentationBatch& b) {
    const auto y = net.forward(Ops::input(b.images));
    const auto t = Ops::targets(b.targets);
    Ops::update_miou(miou, y, t);
    return Ops::cross_entropy(y, t, weights, 1, false).loss;  // the main output's loss
  }
  double eval_metric() const { return miou.mean(); }
  // A data-parallel run sums these over the ranks (fit.hpp).
  std::vector<double> eval_counts() const {
    std::vector<double> v;
    for (const auto* a : {&miou.predicted(), &miou.actual(), &miou.true_positive()})
      for (std::uint64_t x : *a) v.push_back(double(x));
    return v;
  }
  void set_eval_counts(const std::vector<double>& v) {
    constexpr int K = hw1::MeanIoU::kClasses;
    std::array<std::uint64_t, K> p{}, a{}, t{};
    for (int i = 0; i < K; ++i) p[i] = std::uint64_t(v.at(i)), a[i] = std::uint64_t(v.at(K + i)), t[i] = std::uint64_t(v.at(2 * K + i));
    miou.reset();
    miou.add_counts(p, a, t);
  }

  template <class Net>
  void epoch_end(Net& net, int epoch) {
    if (snapshot_index.empty() || std::find(snapshot_epochs.begin(), snapshot_epochs.end(), epoch) == snapshot_epochs.end())
      return;
    std::vector<std::vector<hw1::Image>> rows;
    std::vector<std::string> titles;
    for (std::size_t i : snapshot_index) {
      const auto& pair = val->pair(i);
      const auto s = val->get(i, 0);
      hw1::Tensor x = hw1::empty<float>({1, 3, std::size_t(s.height), std::size_t(s.width)});
      std::copy(s.chw.begin(), s.chw.end(), x.data());
      rows.push_back({hw1::read_image(pair.image_path, 3), hw1::classes_to_mask(hw1::mask_to_classes(hw1::read_image(pair.mask_path, 3))),
                      hw1::classes_to_mask(predicted_classes(Ops::to_host(net.forward(Ops::input(x)))))});
      titles.push_back(pair.id);
    }
    const auto dir = std::filesystem::path(run_dir) / "snapshots";
    std::filesystem::create_directories(dir);
    char name[32];
    std::snprintf(name, sizeof name, "epoch-%03d.png", epoch);
    hw1::image_grid((dir / name).string(), rows, {"image", "ground truth", "prediction (epoch " + std::to_string(epoch) + ")"},
                    titles, 256);
  }
};

// Per-class pixel counts of every mask of `pairs` (read once, on all cores). A mask that cannot be read is an
// error naming it, or skipped with --skip-bad.
inline std::vector<std::int64_t> count_classes(const std::vector<hw1::SegSample>& pairs, bool skip_bad, std::size_t& skipped) {
  std::vector<std::int64_t> counts(hw1::kSegClasses, 0);
  std::string error;
  skipped = 0;
#pragma omp parallel
  {
    std::vector<std::int64_t> local(hw1::kSegClasses, 0);
#pragma omp for schedule(dynamic)
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      try {
        const hw1::Image m = hw1::mask_to_classes(hw1::read_image(pairs[i].mask_path, 3));
        for (auto c : m.pixels) ++local[c];
      } catch (const std::exception& e) {
#pragma omp critical(hw1_count_classes)
        {
          if (!skip_bad && error.empty()) error = e.what();
          ++skipped;
        }
      }
    }
#pragma omp critical(hw1_count_classes)
    for (int c = 0; c < hw1::kSegClasses; ++c) counts[c] += local[c];
  }
  if (!error.empty()) throw hw1::Error(error + " (--skip-bad skips unreadable pairs)");
  return counts;
}

// The mIoU of predicting class c everywhere, given the per-class pixel counts of the ground truth: IoU_c = n_c /
// all pixels, IoU_i = 0 for every other class present, classes absent from both skipped (as MeanIoU does).
inline double constant_miou(const std::vector<std::int64_t>& counts, int c) {
  std::int64_t total = 0;
  for (auto n : counts) total += n;
  double sum = 0;
  int present = 0;
  for (int i = 0; i < hw1::MeanIoU::kClasses; ++i) {
    if (i == c) sum += total ? double(counts[i]) / double(total) : 0.0, ++present;
    else if (counts[i] > 0) ++present;
  }
  return present ? sum / present : 0.0;
}

template <class Net>
int train(Net& net, const hw1::RunArgs& ra, const std::string& model, bool aux, const hw1::DeviceOption& dev) {
  using B = typename Net::backend_type;
  const hw1::Cli& cli = ra.cli;
  const std::string train_dir = cli.required("--train"), val_dir = cli.required("--val");
  // Every option is read (and range-checked) before start_run creates RUN_DIR or writes run.json.
  const int epochs = int(cli.integer("--epochs", 25, 1, hw1::kMaxEpochs));
  const int batch = int(cli.integer("--batch-size", 8, 1, hw1::kMaxBatch));
  hw1::examples::check_global_batch(batch);
  auto& ranks = hw1::examples::Ranks::get();
  const auto seed = std::uint64_t(cli.integer("--seed", 0, 0, hw1::kMaxSeed));
  const int workers = int(cli.integer("--workers", 2, 0, hw1::kMaxWorkers));
  const bool skip_bad = cli.flag("--skip-bad");
  const int size = int(cli.integer("--input-size", 0, 0, hw1::kMaxImageSide));
  const int crop = int(cli.integer("--crop", 0, 0, hw1::kMaxImageSide));
  if (size != 0 && size < hw1::kMinImageSide)
    throw hw1::UsageError("--input-size must be 0 (keep) or in 32..8192, got " + std::to_string(size));
  if (crop != 0 && crop < hw1::kMinImageSide)
    throw hw1::UsageError("--crop must be 0 (full image) or in 32..8192, got " + std::to_string(crop));

  hw1::OptimizerConfig oc;
  oc.name = cli.choice("--optimizer", "adamw", {"sgd", "adam", "adamw"});
  hw1::examples::read_optimizer_numbers(cli, oc, 1e-4);

  // Inputs first: listing (missing or empty folder, image without mask), every mask read once (class counts,
  // chance level), snapshot ids; nothing is written before all of that passed.
  auto train_pairs = hw1::list_segmentation_dir(train_dir, true);
  auto val_pairs = hw1::list_segmentation_dir(val_dir, true);
  std::size_t bad_val = 0, bad_train = 0;
  const auto val_counts = count_classes(val_pairs, skip_bad, bad_val);
  int majority = 0;
  for (int c = 1; c < hw1::MeanIoU::kClasses; ++c)
    if (val_counts[c] > val_counts[majority]) majority = c;
  const double chance = constant_miou(val_counts, majority);
  std::vector<float> weights;
  const std::string cw = cli.choice("--class-weights", "none", {"none", "inverse-frequency"});
  if (cw == "inverse-frequency") {
    weights = hw1::inverse_frequency_weights(count_classes(train_pairs, skip_bad, bad_train), 6);
    std::cout << "class weights (inverse frequency over " << train_pairs.size() - bad_train << " train masks):";
    for (int c = 0; c < hw1::kSegClasses; ++c) std::cout << " " << hw1::seg_class_names()[c] << " " << weights[c];
    std::cout << "\n";
  }
  if (bad_val || bad_train)
    std::cout << "skipping unreadable masks: " << bad_train << " train, " << bad_val << " val\n";

  SegmenterTask<B> task;
  task.weights = weights;
  task.aux_weight = float(cli.real("--aux-loss", 0, 0));
  task.run_dir = ra.run_dir;
  for (const auto& id : hw1::Cli::split(cli.str("--snapshot-images"))) {
    auto it = std::find_if(val_pairs.begin(), val_pairs.end(), [&](const hw1::SegSample& p) { return p.id == id; });
    if (it == val_pairs.end())
      throw hw1::Error("--snapshot-images: " + val_dir + " holds no pair " + id + " (" + id + "_sat.jpg)");
    task.snapshot_index.push_back(std::size_t(it - val_pairs.begin()));
  }
  for (const auto& e : hw1::Cli::split(cli.str("--snapshot-epochs"))) {
    // (not bounded by --epochs: a resumed run may change --epochs and keep its snapshot list)
    const bool digits = e.find_first_not_of("0123456789") == std::string::npos && e.size() <= 6;
    const int epoch = digits ? std::stoi(e) : 0;
    if (epoch < 1 || epoch > hw1::kMaxEpochs)
      throw hw1::UsageError("--snapshot-epochs needs a comma-separated list of epochs in 1..100000, got '" +
                            cli.str("--snapshot-epochs") + "'");
    task.snapshot_epochs.push_back(epoch);
  }
  if (task.snapshot_index.empty() != task.snapshot_epochs.empty())
    throw hw1::UsageError("--snapshot-images and --snapshot-epochs go together");

  // (DeepLabv3's image pooling could not train batch norm on a single-pair last batch)
  const auto [sc, drop_last, batches] = hw1::plan_epochs(cli, train_pairs.size(), batch, epochs, 10, ranks.size());

  hw1::FitConfig fc = hw1::examples::base_fit_config(ra, epochs, seed, oc, sc, chance, dev, "val_miou");
  fc.info.model = model;
  fc.info.num_classes = hw1::kSegClasses;
  fc.info.aux_loss = aux;
  fc.info.input_size = size;

  hw1::start_run(net, ra, kProgram, model, ranks.lead());

  hw1::AugmentConfig train_aug, val_aug;
  train_aug.out_h = train_aug.out_w = val_aug.out_h = val_aug.out_w = size;
  train_aug.crop_h = train_aug.crop_w = crop;
  train_aug.hflip = cli.flag("--hflip");
  train_aug.vflip = cli.flag("--vflip");
  train_aug.rot90 = cli.flag("--rot90");
  const std::size_t prefetch = std::size_t(std::max(2, workers + 1));
  hw1::Loader train(hw1::SegmentationDataset(std::move(train_pairs), train_aug),
                    {.batch_size = std::size_t(batch), .shuffle = true, .drop_last = drop_last, .num_workers = workers,
                     .prefetch = prefetch,
                     .seed = seed, .skip_bad = skip_bad, .rank = ranks.rank(), .world = ranks.size()});
  hw1::Loader val(hw1::SegmentationDataset(val_pairs, val_aug),
                  {.batch_size = std::size_t(batch), .shuffle = false, .num_workers = workers, .prefetch = prefetch,
                   .seed = seed, .skip_bad = skip_bad, .rank = ranks.rank(), .world = ranks.size()});
  task.val = &val.dataset();
  std::cout << model << (aux ? " (auxiliary head)" : "") << ", " << train.dataset().size() << " train / "
            << val.dataset().size() << " val pairs" << (crop ? ", crops " + std::to_string(crop) : std::string()) << ", "
            << oc.name << " lr " << oc.lr << ", batch " << batch << ", " << epochs << " epochs on "
            << hw1::examples::device_label(dev)
            << " -> " << ra.run_dir << std::endl;

  return hw1::examples::fit_and_report(net, train, val, task, fc);
}

// The network Net (a segmenter of the registry) on its backend, trained.
template <class Net>
int train_net(const hw1::RunArgs& ra, const hw1::DeviceOption& dev) {
  const bool aux = Net::has_aux_head && ra.cli.real("--aux-loss", 0, 0) > 0;
  Net net(hw1::ModelOptions{.num_classes = hw1::kSegClasses, .aux_loss = aux,
                            .seed = std::uint64_t(ra.cli.integer("--seed", 0, 0, hw1::kMaxSeed))});
  return train(net, ra, Net::model_name, aux, dev);
}
// The segmenter named --model on backend B.
template <class B>
int train_model(const std::string& model, const hw1::RunArgs& ra, const hw1::DeviceOption& dev) {
  return hw1::with_model<B, int>(model, [&]<class Net>(std::type_identity<Net>)
                                            requires(Net::task == hw1::Task::segmentation) {
                                              return train_net<Net>(ra, dev);
                                            });
}

// On the GPU: train_segmenter_cuda_<family>.cu, built with the CUDA backend (HW1_WITH_CUDA), one network family
// per translation unit so that each compiles in reasonable time under nvcc.
int train_fcn32s_cuda(const hw1::RunArgs& ra, const hw1::DeviceOption& dev);
int train_deeplab_cuda(const std::string& model, const hw1::RunArgs& ra, const hw1::DeviceOption& dev);

}  // namespace segmenter
