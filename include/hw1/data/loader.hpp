// A multi-threaded, reproducible batch loader, and the two HW1 data sets on top of the folder readers.
//
// Reproducibility: an epoch's sample order depends only on (seed, epoch), and every sample's augmentation seed
// only on (seed, epoch, sample index). Workers just decide *when* a batch is built, never *what* is in it, so
// batches are bit-identical for any num_workers, and start_epoch(e) re-runs (or resumes) epoch e exactly.
//
// Usage:
//   hw1::Loader loader(hw1::SegmentationDataset(hw1::list_segmentation_dir("train"), aug),
//                      {.batch_size = 8, .shuffle = true, .num_workers = 2, .seed = 1});
//   for (std::uint64_t e = 0; e < epochs; ++e) {
//     loader.start_epoch(e);
//     while (auto batch = loader.next()) train_step(batch->images, batch->targets);
//   }
#pragma once
#include <algorithm>
#include <array>
#include <concepts>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "hw1/core/error.hpp"
#include "hw1/core/tensor.hpp"
#include "hw1/data/augment.hpp"
#include "hw1/data/image.hpp"
#include "hw1/data/image_io.hpp"
#include "hw1/data/layout.hpp"

namespace hw1 {

// What Loader needs of a data set: get() must be safe to call from several threads at once, collate() too
// (static, or a const member).
template <class D>
concept LoaderDataset = requires(const D& d, std::size_t i, std::uint64_t s) {
  { d.size() } -> std::convertible_to<std::size_t>;
  d.get(i, s);
  d.collate(std::vector<std::remove_cvref_t<decltype(d.get(i, s))>>{});
};

struct LoaderOptions {
  std::size_t batch_size = 1;
  bool shuffle = false;
  bool drop_last = false;    // drop a last batch smaller than batch_size
  int num_workers = 0;       // loading threads; 0 loads in the thread that calls next()
  std::size_t prefetch = 4;  // batches being built or waiting to be taken, at most (keep >= num_workers)
  std::uint64_t seed = 0;
  bool skip_bad = false;  // drop samples whose get() throws (counted by skipped()) instead of failing next()
  // Data-parallel runs: batch b of the epoch (batch_size samples of the one order every rank draws) is split in
  // `world` consecutive shards as even as the count allows (the first batch_size % world get one more), and
  // this loader yields shard `rank`. Batches and samples are those of one process for any world.
  int rank = 0, world = 1;
};

// Positions [lo, hi) of the epoch order that `rank` of `world` takes from the batch at positions [begin, end).
inline std::pair<std::size_t, std::size_t> shard_range(std::size_t begin, std::size_t end, int rank, int world) {
  const std::size_t n = end - begin, w = std::size_t(world), r = std::size_t(rank);
  const std::size_t base = n / w, extra = n % w;
  const std::size_t lo = begin + r * base + std::min(r, extra);
  return {lo, lo + base + (r < extra ? 1 : 0)};
}

// The augmentation seed of sample `index` in `epoch`.
inline std::uint64_t sample_seed(std::uint64_t seed, std::uint64_t epoch, std::size_t index) {
  return mix_seed(mix_seed(mix_seed(seed, 0x5a3c9e11u), epoch), index);
}

// Positions -> sample indices for one epoch: 0..n-1, or a Fisher-Yates shuffle seeded by (seed, epoch).
inline std::vector<std::size_t> epoch_order(std::size_t n, bool shuffle, std::uint64_t seed, std::uint64_t epoch) {
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  if (shuffle) {
    std::mt19937_64 rng(mix_seed(mix_seed(seed, 0x0bd3e7f1u), epoch));
    for (std::size_t i = n; i > 1; --i) std::swap(order[i - 1], order[rand_below(rng, i)]);
  }
  return order;
}

template <LoaderDataset Dataset>
class Loader {
 public:
  using Sample = std::remove_cvref_t<decltype(std::declval<const Dataset&>().get(0, 0))>;
  using Batch = std::remove_cvref_t<decltype(std::declval<const Dataset&>().collate(std::vector<Sample>{}))>;

  Loader(Dataset dataset, LoaderOptions options) : ds_(std::move(dataset)), opt_(options) {
    if (opt_.batch_size == 0) throw Error("Loader: batch_size must be at least 1");
    if (opt_.num_workers < 0)
      throw Error("Loader: num_workers must be >= 0 (0 loads in the calling thread), got " +
                  std::to_string(opt_.num_workers));
    if (opt_.prefetch == 0) throw Error("Loader: prefetch must be at least 1 batch");
    if (opt_.world < 1 || opt_.rank < 0 || opt_.rank >= opt_.world)
      throw Error("Loader: rank " + std::to_string(opt_.rank) + " of world " + std::to_string(opt_.world) +
                  " (0 <= rank < world)");
  }
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;
  ~Loader() { stop(); }

  const Dataset& dataset() const { return ds_; }
  const LoaderOptions& options() const { return opt_; }
  std::size_t num_batches() const {
    const std::size_t n = ds_.size(), b = opt_.batch_size;
    return opt_.drop_last ? n / b : (n + b - 1) / b;
  }

  // Begins (or restarts) epoch `epoch` at batch `first_batch` (resume); a running epoch is abandoned.
  void start_epoch(std::uint64_t epoch, std::size_t first_batch = 0) {
    stop();
    epoch_ = epoch;
    order_ = epoch_order(ds_.size(), opt_.shuffle, opt_.seed, epoch);
    nb_ = num_batches();
    if (first_batch > nb_)
      throw Error("Loader::start_epoch: first_batch " + std::to_string(first_batch) + " is past the epoch's " +
                  std::to_string(nb_) + " batches");
    cursor_ = claim_ = first_batch;
    skipped_ = 0;
    slots_.clear();
    slots_.resize(nb_);
    started_ = true;
    stop_ = false;
    for (int t = 0; t < opt_.num_workers; ++t) threads_.emplace_back([this] { work(); });
  }

  // The next batch of the epoch, or nullopt at its end. A failed sample throws here, in batch order (the
  // message names the sample and carries get()'s own message, e.g. the file); next() then goes on after it.
  std::optional<Batch> next() {
    if (!started_) throw Error("Loader::next: call start_epoch(epoch) before next()");
    for (;;) {
      Slot s;
      if (cursor_ >= nb_) return std::nullopt;
      if (threads_.empty()) {
        s = build(cursor_++);
      } else {
        std::unique_lock lk(m_);
        ready_cv_.wait(lk, [&] { return slots_[cursor_].ready; });
        s = std::move(slots_[cursor_]);
        slots_[cursor_++] = Slot{};
        lk.unlock();
        work_cv_.notify_all();
      }
      skipped_ += s.skipped;
      if (s.error) std::rethrow_exception(s.error);
      if (s.batch) return last_ = cursor_ - 1, std::move(s.batch);
      // every sample of this batch was skipped: go on to the next one
    }
  }

  // The index in the epoch of the batch next() returned last (batches whose samples were all skipped, or whose
  // shard is empty, are passed over, so indices may jump).
  std::size_t batch_index() const { return last_; }
  // Positions of the epoch order covered by the batches up to and including batch b (all ranks together).
  std::size_t positions_through(std::size_t b) const {
    return std::min(order_.size(), (b + 1) * opt_.batch_size);
  }

  // Samples dropped by skip_bad in the batches taken so far this epoch.
  std::size_t skipped() const { return skipped_; }
  // This epoch's order of sample indices.
  const std::vector<std::size_t>& order() const { return order_; }

 private:
  struct Slot {
    std::optional<Batch> batch;  // empty when every sample was skipped, or on error
    std::exception_ptr error;
    std::size_t skipped = 0;
    bool ready = false;
  };

  Slot build(std::size_t b) const {
    Slot s;
    s.ready = true;
    const auto [lo, hi] = shard_range(b * opt_.batch_size, std::min((b + 1) * opt_.batch_size, order_.size()),
                                      opt_.rank, opt_.world);
    try {
      std::vector<Sample> samples;
      samples.reserve(hi - lo);
      for (std::size_t p = lo; p < hi; ++p) {
        const std::size_t index = order_[p];
        try {
          samples.push_back(ds_.get(index, sample_seed(opt_.seed, epoch_, index)));
        } catch (const std::exception& e) {
          if (!opt_.skip_bad)
            throw Error("data loader: sample " + std::to_string(index) + " (epoch " + std::to_string(epoch_) +
                        ", batch " + std::to_string(b) + ") failed: " + e.what() +
                        " (LoaderOptions::skip_bad drops such samples instead)");
          ++s.skipped;
        }
      }
      if (!samples.empty()) s.batch.emplace(ds_.collate(std::move(samples)));
    } catch (...) {
      s.error = std::current_exception();
    }
    return s;
  }

  void work() {
    for (;;) {
      std::size_t b;
      {
        std::unique_lock lk(m_);
        work_cv_.wait(lk, [&] { return stop_ || claim_ >= nb_ || claim_ < cursor_ + opt_.prefetch; });
        if (stop_ || claim_ >= nb_) return;
        b = claim_++;
      }
      Slot s = build(b);
      {
        std::lock_guard lk(m_);
        slots_[b] = std::move(s);
      }
      ready_cv_.notify_all();
    }
  }

  void stop() {
    {
      std::lock_guard lk(m_);
      stop_ = true;
    }
    work_cv_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  Dataset ds_;
  LoaderOptions opt_;
  std::uint64_t epoch_ = 0;
  std::vector<std::size_t> order_;
  std::size_t nb_ = 0, cursor_ = 0, claim_ = 0, skipped_ = 0, last_ = 0;
  bool started_ = false, stop_ = false;
  std::vector<Slot> slots_;  // one per batch of the epoch; filled by workers, emptied by next()
  std::mutex m_;
  std::condition_variable work_cv_, ready_cv_;
  std::vector<std::thread> threads_;
};

// ---- the HW1 data sets --------------------------------------------------------------------------------------

namespace detail {

// Stacks CHW images of one size into [N,3,H,W]; a size mismatch names both files.
template <class Sample>
Tensor stack_chw(const std::vector<Sample>& samples) {
  if (samples.empty()) throw Error("collate: a batch needs at least one sample");
  const Sample& first = samples.front();
  for (const auto& s : samples)
    if (s.height != first.height || s.width != first.width)
      throw Error("collate: " + s.name + " is " + std::to_string(s.height) + "x" + std::to_string(s.width) + " but " +
                  first.name + " in the same batch is " + std::to_string(first.height) + "x" +
                  std::to_string(first.width) +
                  "; give every image one size with AugmentConfig::out_h/out_w (resize) or crop_h/crop_w, "
                  "or use batch_size 1");
  Tensor t = empty<float>({samples.size(), 3, std::size_t(first.height), std::size_t(first.width)});
  const std::size_t per = 3 * std::size_t(first.height) * first.width;
  for (std::size_t i = 0; i < samples.size(); ++i) std::copy_n(samples[i].chw.data(), per, t.data() + i * per);
  return t;
}

}  // namespace detail

struct ClassificationSample {
  std::vector<float> chw;  // normalised 3 x height x width
  int height = 0, width = 0;
  std::int64_t label = -1;  // -1 for an unlabelled folder
  std::string name;         // file name, e.g. "0_450.png"
};
struct ClassificationBatch {
  Tensor images;                     // [N,3,H,W]
  std::vector<std::int64_t> labels;  // N
  std::vector<std::string> names;    // N file names
};

// Problem 1: images listed by list_classification_dir, read as RGB, augmented, normalised.
class ClassificationDataset {
 public:
  using Sample = ClassificationSample;
  using Batch = ClassificationBatch;

  explicit ClassificationDataset(std::vector<ClassSample> files, AugmentConfig augment = {},
                                 std::array<float, 3> mean = kImageNetMean, std::array<float, 3> std = kImageNetStd)
      : files_(std::move(files)), aug_(augment), mean_(mean), std_(std) {}

  std::size_t size() const { return files_.size(); }
  const ClassSample& file(std::size_t i) const { return files_.at(i); }

  Sample get(std::size_t index, std::uint64_t seed) const {
    if (index >= files_.size())
      throw Error("ClassificationDataset: index " + std::to_string(index) + " is past its " +
                  std::to_string(files_.size()) + " files");
    const ClassSample& f = files_[index];
    Image img = read_image(f.path, 3);
    std::mt19937_64 rng(seed);
    augment_pair(img, nullptr, aug_, rng);
    Sample s{std::vector<float>(3 * std::size_t(img.height) * img.width), img.height, img.width, f.label,
             f.file_name.empty() ? std::filesystem::path(f.path).filename().string() : f.file_name};
    to_tensor_normalized(img, mean_, std_, s.chw.data());
    return s;
  }

  static Batch collate(std::vector<Sample>&& samples) {
    Batch b{detail::stack_chw(samples), {}, {}};
    for (auto& s : samples) {
      b.labels.push_back(s.label);
      b.names.push_back(std::move(s.name));
    }
    return b;
  }

 private:
  std::vector<ClassSample> files_;
  AugmentConfig aug_;
  std::array<float, 3> mean_, std_;
};

struct SegmentationSample {
  std::vector<float> chw;             // normalised 3 x height x width
  std::vector<std::int64_t> target;   // height x width class indices 0..6; empty when the pair has no mask
  int height = 0, width = 0;
  std::string name;                   // the pair's id, e.g. "0010" (prediction file: "0010.png")
};
struct SegmentationBatch {
  Tensor images;                      // [N,3,H,W]
  std::vector<std::int64_t> targets;  // N*H*W, row-major [N,H,W]; empty for images without masks
  std::vector<std::string> names;     // N ids
};

// Problem 2: pairs listed by list_segmentation_dir; masks read as RGB and mapped with mask_to_classes, then
// augmented together with their images (mask pixels from outside the image get AugmentConfig::mask_fill).
class SegmentationDataset {
 public:
  using Sample = SegmentationSample;
  using Batch = SegmentationBatch;

  explicit SegmentationDataset(std::vector<SegSample> pairs, AugmentConfig augment = {},
                               std::array<float, 3> mean = kImageNetMean, std::array<float, 3> std = kImageNetStd)
      : pairs_(std::move(pairs)), aug_(augment), mean_(mean), std_(std) {}

  std::size_t size() const { return pairs_.size(); }
  const SegSample& pair(std::size_t i) const { return pairs_.at(i); }

  Sample get(std::size_t index, std::uint64_t seed) const {
    if (index >= pairs_.size())
      throw Error("SegmentationDataset: index " + std::to_string(index) + " is past its " +
                  std::to_string(pairs_.size()) + " pairs");
    const SegSample& p = pairs_[index];
    Image img = read_image(p.image_path, 3);
    const bool has_mask = !p.mask_path.empty();
    Image mask;
    if (has_mask) {
      mask = mask_to_classes(read_image(p.mask_path, 3));
      if (mask.height != img.height || mask.width != img.width)
        throw Error(p.image_path + " is " + std::to_string(img.height) + "x" + std::to_string(img.width) +
                    " but its mask " + p.mask_path + " is " + std::to_string(mask.height) + "x" +
                    std::to_string(mask.width) + "; image and mask must have the same size");
    }
    std::mt19937_64 rng(seed);
    augment_pair(img, has_mask ? &mask : nullptr, aug_, rng);
    Sample s{std::vector<float>(3 * std::size_t(img.height) * img.width), {}, img.height, img.width,
             p.id.empty() ? std::filesystem::path(p.image_path).stem().string() : p.id};
    to_tensor_normalized(img, mean_, std_, s.chw.data());
    if (has_mask) s.target.assign(mask.pixels.begin(), mask.pixels.end());
    return s;
  }

  static Batch collate(std::vector<Sample>&& samples) {
    Batch b{detail::stack_chw(samples), {}, {}};
    const bool masks = !samples.front().target.empty();
    for (const auto& s : samples)
      if (s.target.empty() == masks)
        throw Error("collate: " + s.name + " and " + samples.front().name +
                    " are in one batch but only one of them has a mask; list the folder with or without masks");
    for (auto& s : samples) {
      b.targets.insert(b.targets.end(), s.target.begin(), s.target.end());
      b.names.push_back(std::move(s.name));
    }
    return b;
  }

 private:
  std::vector<SegSample> pairs_;
  AugmentConfig aug_;
  std::array<float, 3> mean_, std_;
};

}  // namespace hw1
