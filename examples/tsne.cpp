// hw1-tsne: the report's t-SNE figure. A classifier checkpoint's penultimate (2048-d, after global average pooling)
// features of a labelled folder ({label}_{id}.png), embedded in 2-D by Barnes-Hut t-SNE (hw1/plot/tsne.hpp) and
// drawn as a scatter coloured by class. The 2-D coordinates go to a CSV next to the PNG.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "hw1/data/augment.hpp"
#include "hw1/data/image_io.hpp"
#include "hw1/data/layout.hpp"
#include "hw1/models.hpp"
#include "hw1/plot/plot.hpp"
#include "hw1/plot/tsne.hpp"
#include "hw1/train/checkpoint.hpp"
#include "hw1/train/cli.hpp"
#include "hw1/train/progress.hpp"

namespace {

namespace fs = std::filesystem;

const char* kUsage =
    "usage: hw1-tsne --checkpoint C --images DIR --out tsne.png [--limit N] [--perplexity P] [--seed S]\n"
    "                [--iterations N] [--batch-size N] [--skip-bad] [--force]\n"
    "  C: a resnet101 or resnet50 checkpoint; DIR: labelled images {label}_{id}.png (e.g. val_50).\n"
    "  Writes tsne.png (scatter coloured by class) and tsne.csv (image_id,label,x,y).\n"
    "  --limit N       embed a seeded random subset of N >= 2 images (default: all)\n"
    "  --perplexity P  t-SNE perplexity > 0 (default 30); --iterations 1..1000000 (default 1000); --seed S\n"
    "                  (default 0); --batch-size 1..65536 (default 32)\n"
    "  --skip-bad      leave out unreadable images instead of stopping; --force overwrites existing outputs.\n";

int run(int argc, char** argv) {
  using clock = std::chrono::steady_clock;
  const hw1::Cli cli(argc, argv,
                     {"--checkpoint", "--images", "--out", "--limit", "--perplexity", "--seed", "--iterations",
                      "--batch-size"},
                     {"--skip-bad", "--force"}, kUsage, {{"--out", "a .png file name"}});
  const std::string ckpt = cli.required("--checkpoint"), dir = cli.required("--images"), out = cli.required("--out");
  const auto seed = std::uint64_t(cli.integer("--seed", 0, 0, hw1::kMaxSeed));
  const double perplexity = cli.real("--perplexity", 30, 0, hw1::kNoBound, true);
  const int iterations = int(cli.integer("--iterations", 1000, 1, 1000000));
  const auto batch = std::size_t(cli.integer("--batch-size", 32, 1, hw1::kMaxBatch));
  // (a sample of fewer than 2 points has no neighbours; read here, before anything is written)
  const auto limit = std::size_t(cli.integer("--limit", 0, 2, hw1::kMaxSeed));
  if (hw1::detail::lower_ext(out) != ".png") throw hw1::UsageError("--out must name a .png file, got '" + out + "'");
  const std::string csv_path = fs::path(out).replace_extension(".csv").string();

  const hw1::SafeTensors file = hw1::SafeTensors::read(ckpt);
  const hw1::CheckpointInfo info = hw1::CheckpointInfo::from(file);
  const std::vector<std::string> classifiers = hw1::model_names_of(hw1::Task::classification);
  info.expect_model(classifiers, ckpt);
  auto files = hw1::list_classification_dir(dir, info.num_classes, true);
  if (cli.has("--limit")) {
    if (limit < files.size()) {
      std::vector<std::size_t> idx(files.size());
      std::iota(idx.begin(), idx.end(), 0);
      std::mt19937_64 rng(seed);
      for (std::size_t i = 0; i < limit; ++i) std::swap(idx[i], idx[i + rng() % (idx.size() - i)]);
      idx.resize(limit);
      std::sort(idx.begin(), idx.end());
      std::vector<hw1::ClassSample> pick;
      for (auto i : idx) pick.push_back(files[i]);
      files.swap(pick);
    }
  }
  // The checkpoint is loaded (a tensor of the wrong shape is an error) before the output folder is created.
  std::shared_ptr<void> holder;
  std::function<hw1::Tensor(const hw1::Tensor&)> features;
  const std::size_t d = hw1::with_model<hw1::backend::cpu, std::size_t>(
      info.model, [&]<class Net>(std::type_identity<Net>) requires(Net::task == hw1::Task::classification) {
        auto net = std::make_shared<Net>(hw1::ModelOptions{.num_classes = info.num_classes});
        net->load(file);
        net->eval();
        net->set_record(false);
        holder = net;
        features = [net](const hw1::Tensor& x) { return net->features(x); };
        return std::size_t(Net::feature_channels);
      });
  std::error_code ec;
  for (const auto& p : {out, csv_path}) {
    if (fs::exists(p, ec) && !cli.flag("--force")) throw hw1::Error(p + ": already exists; pass --force to overwrite it");
  }
  if (const auto parent = fs::path(out).parent_path(); !parent.empty()) fs::create_directories(parent, ec);

  // Features, batch by batch, preprocessed as the classifier's trainer did.
  const int s = info.input_size;
  std::vector<float> feats;
  std::vector<int> labels;
  std::vector<std::string> names, skipped;
  hw1::ProgressBar bar("features", files.size());
  for (std::size_t lo = 0; lo < files.size(); lo += batch) {
    const std::size_t hi = std::min(lo + batch, files.size());
    std::vector<hw1::Image> imgs(hi - lo);
    std::vector<std::string> errors(hi - lo);
#pragma omp parallel for schedule(dynamic)
    for (std::ptrdiff_t i = 0; i < std::ptrdiff_t(hi - lo); ++i) {
      try {
        hw1::Image img = hw1::read_image(files[lo + i].path, 3);
        imgs[i] = s > 0 && (img.height != s || img.width != s) ? hw1::resize_bilinear(img, s, s) : std::move(img);
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    }
    std::vector<std::size_t> ok;
    for (std::size_t i = 0; i < hi - lo; ++i) {
      if (errors[i].empty()) {
        ok.push_back(i);
      } else if (cli.flag("--skip-bad")) {
        skipped.push_back(errors[i]);
      } else {
        throw hw1::Error(errors[i] + " (--skip-bad leaves unreadable images out)");
      }
    }
    // Images without a fixed input_size may differ in size: one forward per run of equal size.
    for (std::size_t a = 0; a < ok.size();) {
      std::size_t b = a + 1;
      const hw1::Image& first = imgs[ok[a]];
      while (b < ok.size() && imgs[ok[b]].height == first.height && imgs[ok[b]].width == first.width) ++b;
      const std::size_t h = first.height, w = first.width, per = 3 * h * w;
      hw1::Tensor x = hw1::empty({b - a, 3, h, w});
      for (std::size_t j = a; j < b; ++j) hw1::to_tensor_normalized(imgs[ok[j]], info.mean, info.std, x.data() + (j - a) * per);
      const hw1::Tensor f = features(x);
      feats.insert(feats.end(), f.data(), f.data() + f.size());
      for (std::size_t j = a; j < b; ++j) {
        labels.push_back(files[lo + ok[j]].label);
        names.push_back(files[lo + ok[j]].file_name);
      }
      a = b;
    }
    bar.update(hi);
  }
  bar.finish();
  const double t_features = bar.seconds();
  const std::size_t n = labels.size();
  if (n < 2) throw hw1::Error(dir + ": fewer than 2 readable images; t-SNE needs at least 2 points");

  const auto t0 = clock::now();
  hw1::TsneOptions opt;
  opt.perplexity = perplexity;
  opt.iterations = iterations;
  opt.seed = seed;
  hw1::TsneStats stats;
  const std::vector<float> xy = hw1::tsne(feats.data(), n, d, opt, &stats);
  const double t_tsne = std::chrono::duration<double>(clock::now() - t0).count();

  std::vector<std::string> class_names;
  for (int c = 0; c < info.num_classes; ++c) class_names.push_back("class " + std::to_string(c));
  const std::string title = "t-SNE of " + fs::path(ckpt).filename().string() + " penultimate features, " +
                            std::to_string(n) + " points";
  hw1::scatter_plot(out, xy, labels, class_names, title);
  std::ostringstream csv;
  csv.precision(7);
  csv << "image_id,label,x,y\n";
  for (std::size_t i = 0; i < n; ++i) csv << names[i] << ',' << labels[i] << ',' << xy[2 * i] << ',' << xy[2 * i + 1] << '\n';
  hw1::write_text_atomic(csv_path, csv.str());

  std::printf("hw1-tsne: %zu points x %zu features; features %.1f s, t-SNE %.1f s (KL %.3f); wrote %s and %s\n", n, d,
              t_features, t_tsne, stats.final_kl(), out.c_str(), csv_path.c_str());
  if (!skipped.empty()) {
    std::fprintf(stderr, "hw1-tsne: skipped %zu unreadable image%s:\n", skipped.size(), skipped.size() > 1 ? "s" : "");
    for (const auto& e : skipped) std::fprintf(stderr, "  %s\n", e.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return hw1::run_main("hw1-tsne", kUsage, [&] { return run(argc, argv); });
}
