// hw1-predict: the HW1 test-time interface. Problem 1: a folder of *.png -> a CSV "image_id,label"; several
// checkpoints form the report's ensemble (per image a majority vote of the members' labels, ties broken by the
// tied labels' mean softmax probability). Problem 2: a folder of xxxx_sat.jpg -> xxxx.png RGB masks in the course
// colours at full input resolution (several segmenters vote per pixel by the same rule).
// Preprocessing is read from each checkpoint, as its trainer wrote it: classifier = bilinear resize to
// input_size + normalisation with the checkpoint's mean/std; segmenter = full resolution + the same normalisation.
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "hw1/data/augment.hpp"
#include "hw1/data/image_io.hpp"
#include "hw1/data/layout.hpp"
#include "hw1/models.hpp"
#include "hw1/train/checkpoint.hpp"
#include "hw1/train/backend_ops.hpp"
#include "hw1/train/cli.hpp"
#include "hw1/train/progress.hpp"
#ifdef HW1_WITH_CUDA
#include "predict_cuda.hpp"
#endif

namespace {

namespace fs = std::filesystem;

const std::string kUsage = std::string(
    "usage: hw1-predict --checkpoint C [--checkpoint C2 ...] --images DIR (--csv OUT.csv | --masks OUT_DIR)\n"
    "                   [--batch-size N] [--device cpu|cuda|cuda:N] [--precision P] [--skip-bad] [--force]\n"
    "                   [--model M --num-classes K [--input-size S] [--pth-key KEY]]\n"
    "  --csv OUT.csv    problem 1: DIR holds *.png; writes 'image_id,label' then one 'name.png,label' row per\n"
    "                   image (classifier checkpoints: ") + hw1::model_names(hw1::Task::classification, ", ") + ").\n"
    "  --masks OUT_DIR  problem 2: DIR holds xxxx_sat.jpg; writes OUT_DIR/xxxx.png, RGB masks in the course\n"
    "                   colours at the input's resolution (segmenter checkpoints: " +
    hw1::model_names(hw1::Task::segmentation, ", ") + ").\n" +
    "  Several --checkpoint: ensemble, majority vote of the members' labels (per image, or per pixel), ties\n"
    "                   broken by the highest mean softmax probability among the tied labels.\n"
    "  --batch-size N   images per forward pass, 1..65536 (default 32 for classifiers, 2 for segmenters).\n"
    "  --device D       cpu (default) | cuda | cuda:N (a build with the CUDA backend): where the networks run.\n"
    "  --precision P    cuda only: float32 (default; TF32 off) | tf32 | fp16 | bf16 (convolutions in 16 bits with\n"
    "                   float32 accumulation, the rest float32).\n"
    "  --skip-bad       skip unreadable images (reported at the end) instead of stopping at the first.\n"
    "  --force          overwrite an existing OUT.csv, or write into an OUT_DIR that already holds files.\n"
    "  A checkpoint may also be a bare torchvision state_dict (.safetensors without hw1 metadata, or a PyTorch\n"
    "  .pth): then --model M (" + hw1::model_names() + ") and --num-classes K say what it is, and preprocessing is\n"
    "  ImageNet's mean/std (classifier inputs resized to --input-size S, default 224). --pth-key KEY picks the\n"
    "  state_dict under KEY of a .pth checkpoint dict (default: the only one there).\n";

bool is_classifier(const std::string& model) {
  const hw1::ModelInfo* m = hw1::find_model(model);
  return m && m->task == hw1::Task::classification;
}

// One ensemble member: a loaded network behind a type-erased forward (the models are distinct types).
struct Member {
  std::string path;
  hw1::CheckpointInfo info;
  std::shared_ptr<void> net;
  std::function<hw1::Tensor(const hw1::Tensor&)> forward;
};

template <class Net, class... A>
Member make_member(const std::string& path, const hw1::SafeTensors& file, const hw1::CheckpointInfo& info, A... args) {
  auto net = std::make_shared<Net>(args...);
  net->load(file);
  net->eval();
  net->set_record(false);
  return {path, info, net, [net](const hw1::Tensor& x) { return net->forward(x); }};
}

// What a bare state_dict (no hw1 checkpoint metadata) is: --model, --num-classes, --input-size, --pth-key.
struct BareSpec {
  std::string model, pth_key;
  int num_classes = 0, input_size = 224;
};

hw1::CheckpointInfo checkpoint_info(const std::string& path, const hw1::SafeTensors& file, const BareSpec& bare) {
  if (file.metadata.count("format")) {
    hw1::CheckpointInfo info = hw1::CheckpointInfo::from(file);
    if (!bare.model.empty() && bare.model != info.model)
      throw hw1::Error(path + ": an hw1 checkpoint of " + info.model + ", but --model says " + bare.model);
    return info;
  }
  if (bare.model.empty() || bare.num_classes < 1)
    throw hw1::Error(path + ": a bare state_dict (no hw1 checkpoint metadata): give --model " + hw1::model_names() + " "
                     "and --num-classes K to say what it holds");
  hw1::CheckpointInfo info;  // ImageNet's mean and std
  info.model = bare.model;
  info.num_classes = bare.num_classes;
  info.input_size = is_classifier(bare.model) ? bare.input_size : 0;
  for (const auto& n : file.names()) info.aux_loss = info.aux_loss || n.starts_with("aux_classifier.");
  return info;
}

Member load_member(const std::string& path, bool segmentation, bool cuda, const BareSpec& bare) {
  const hw1::SafeTensors file = hw1::read_weights(path, bare.pth_key);
  const hw1::CheckpointInfo info = checkpoint_info(path, file, bare);
  const std::string says = file.metadata.count("format") ? "its metadata says num_classes " : "--num-classes is ";
  if (segmentation)
    info.expect_model(hw1::model_names_of(hw1::Task::segmentation), path + " (--masks)");
  else
    info.expect_model(hw1::model_names_of(hw1::Task::classification), path + " (--csv)");
  const hw1::ModelInfo& model = *hw1::find_model(info.model);
  if (info.num_classes < 1) throw hw1::Error(path + ": checkpoint metadata says num_classes " + std::to_string(info.num_classes));
  // The metadata's class count must be the one the weights were trained with: the last layer's output rows
  // (the registry's head_weight: fc for ResNet, classifier.4 for DeepLabv3, score_fr for FCN32s). A disagreement
  // would otherwise build a network of the metadata's width and fail on a tensor shape, or vote over labels the
  // network never had.
  const std::string last(model.head_weight);
  if (!file.has(last)) throw hw1::Error(path + ": holds no " + last + "; not a " + info.model + " checkpoint");
  if (const auto& shape = file.info(last).shape; shape.empty() || shape[0] != std::size_t(info.num_classes))
    throw hw1::Error(path + ": " + says + std::to_string(info.num_classes) + " but its " + last +
                     " has " + (shape.empty() ? std::string("no") : std::to_string(shape[0])) +
                     " output rows" + (file.metadata.count("format") ? "; the checkpoint is inconsistent (was its metadata edited?)"
                                                                    : ": give the --num-classes it was trained with"));
  if (segmentation && info.num_classes > hw1::kSegClasses)
    throw hw1::Error(path + ": a segmenter with " + std::to_string(info.num_classes) +
                     " classes; the course colours cover " + std::to_string(hw1::kSegClasses));
  if (cuda) {
#ifdef HW1_WITH_CUDA
    Member m{path, info, nullptr, nullptr};
    m.forward = predict_cuda::load(file, info, m.net);
    return m;
#endif
  }
  return hw1::with_model<hw1::backend::cpu, Member>(info.model, [&]<class Net>(std::type_identity<Net>) {
    return make_member<Net>(path, file, info, hw1::ModelOptions{.num_classes = info.num_classes, .aux_loss = info.aux_loss});
  });
}

// In-place softmax over dimension 1 of [N, K] or [N, K, H, W].
void softmax_channels(hw1::Tensor& t) {
  const std::size_t n = t.shape()[0], k = t.shape()[1], hw = t.size() / (n * k);
  float* p = t.data();
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t i = 0; i < std::ptrdiff_t(n * hw); ++i) {
    float* base = p + (std::size_t(i) / hw) * k * hw + std::size_t(i) % hw;
    float m = base[0];
    for (std::size_t c = 1; c < k; ++c) m = std::max(m, base[c * hw]);
    float s = 0;
    for (std::size_t c = 0; c < k; ++c) s += (base[c * hw] = std::exp(base[c * hw] - m));
    for (std::size_t c = 0; c < k; ++c) base[c * hw] /= s;
  }
}

// The ensemble rule for one item. prob(m, k): member m's probability of label k. Each member votes for its
// argmax (lowest label on a tie, as torch.argmax); the most votes win; among equally voted labels the highest
// mean probability wins, and then the lowest label.
template <class Prob>
int vote(int members, int k, Prob prob) {
  std::array<int, 64> small{};
  std::vector<int> large;
  int* votes = k <= 64 ? small.data() : (large.assign(k, 0), large.data());
  for (int m = 0; m < members; ++m) {
    int best = 0;
    for (int c = 1; c < k; ++c)
      if (prob(m, c) > prob(m, best)) best = c;
    ++votes[best];
  }
  const int top = *std::max_element(votes, votes + k);
  int winner = -1;
  double winner_p = -1;
  for (int c = 0; c < k; ++c) {
    if (votes[c] != top) continue;
    double s = 0;
    for (int m = 0; m < members; ++m) s += prob(m, c);
    if (s > winner_p) winner = c, winner_p = s;
  }
  return winner;
}

// Decodes paths[i] for i in [lo, hi) on all cores; a failure is returned as its message (the file and the reason).
std::vector<std::optional<hw1::Image>> decode(const std::vector<std::string>& paths, std::size_t lo, std::size_t hi,
                                              std::vector<std::string>& errors) {
  std::vector<std::optional<hw1::Image>> out(hi - lo);
  errors.assign(hi - lo, "");
#pragma omp parallel for schedule(dynamic)
  for (std::ptrdiff_t i = 0; i < std::ptrdiff_t(hi - lo); ++i) {
    try {
      out[i] = hw1::read_image(paths[lo + i], 3);
    } catch (const std::exception& e) {
      errors[i] = e.what();
    }
  }
  return out;
}

// Member m's softmax probabilities for each image: [K] per image (classifier) or [K, H, W] (segmenter). Images
// are preprocessed as m's trainer did; runs of equal size go through the network together.
std::vector<hw1::Tensor> run_member(const Member& m, const std::vector<const hw1::Image*>& imgs,
                                    const std::vector<std::string>& names) {
  std::vector<hw1::Image> prepared;
  prepared.reserve(imgs.size());
  for (const hw1::Image* img : imgs) {
    const int s = is_classifier(m.info.model) ? m.info.input_size : 0;
    prepared.push_back(s > 0 && (img->height != s || img->width != s) ? hw1::resize_bilinear(*img, s, s) : *img);
  }
  std::vector<hw1::Tensor> probs;
  for (std::size_t lo = 0; lo < prepared.size();) {
    std::size_t hi = lo + 1;
    while (hi < prepared.size() && prepared[hi].height == prepared[lo].height && prepared[hi].width == prepared[lo].width)
      ++hi;
    const std::size_t h = prepared[lo].height, w = prepared[lo].width, per = 3 * h * w;
    hw1::Tensor x = hw1::empty({hi - lo, 3, h, w});
    for (std::size_t i = lo; i < hi; ++i) hw1::to_tensor_normalized(prepared[i], m.info.mean, m.info.std, x.data() + (i - lo) * per);
    hw1::Tensor y;
    try {
      y = m.forward(x);
    } catch (const std::exception& e) {
      throw hw1::Error(m.path + " on " + names[lo] + (hi - lo > 1 ? " .. " + names[hi - 1] : "") + ": " + e.what());
    }
    softmax_channels(y);
    const std::size_t each = y.size() / (hi - lo);
    for (std::size_t i = lo; i < hi; ++i) {
      hw1::Shape s(y.shape().begin() + 1, y.shape().end());
      hw1::Tensor p = hw1::empty(s);
      std::copy_n(y.data() + (i - lo) * each, each, p.data());
      probs.push_back(std::move(p));
    }
    lo = hi;
  }
  return probs;
}

// Refuses to replace user files unless --force; creates what is missing.
void prepare_output(const std::string& out, bool is_dir, bool force) {
  std::error_code ec;
  if (is_dir) {
    if (fs::exists(out, ec) && !fs::is_directory(out, ec)) throw hw1::Error(out + ": exists and is not a directory");
    if (fs::is_directory(out, ec) && !fs::is_empty(out, ec) && !force)
      throw hw1::Error(out + ": already holds files; pass --force to write the masks into it anyway");
    fs::create_directories(out, ec);
    if (ec) throw hw1::Error(out + ": cannot create: " + ec.message());
  } else {
    if (fs::is_directory(out, ec)) throw hw1::Error(out + ": is a directory, --csv needs a file name");
    if (fs::exists(out, ec) && !force) throw hw1::Error(out + ": already exists; pass --force to overwrite it");
    const fs::path parent = fs::path(out).parent_path();
    if (!parent.empty()) fs::create_directories(parent, ec);
    if (ec) throw hw1::Error(parent.string() + ": cannot create: " + ec.message());
  }
}

int run(int argc, char** argv) {
  const hw1::Cli cli(argc, argv,
                     {"--checkpoint", "--images", "--csv", "--masks", "--batch-size", "--device", "--precision",
                      "--model", "--num-classes", "--input-size", "--pth-key"},
                     {"--skip-bad", "--force"}, kUsage);
  BareSpec bare;
  bare.model = cli.str("--model");
  if (!bare.model.empty() && !hw1::find_model(bare.model))
    throw hw1::UsageError("--model must be one of " + hw1::model_names(", ") + ", got '" + bare.model + "'");
  bare.num_classes = int(cli.integer("--num-classes", 0, 1, hw1::kMaxClasses));
  bare.input_size = int(cli.integer("--input-size", 224, hw1::kMinImageSide, hw1::kMaxImageSide));
  bare.pth_key = cli.str("--pth-key");
  if (bare.model.empty() != (bare.num_classes == 0))
    throw hw1::UsageError("--model and --num-classes go together (they describe a bare state_dict)");
  const hw1::DeviceOption dev = hw1::parse_device_option(cli);
#ifdef HW1_WITH_CUDA
  if (dev.cuda) predict_cuda::use_device(dev.index, dev.precision);
#endif
  const auto ckpts = cli.all("--checkpoint");
  if (ckpts.empty()) throw hw1::UsageError("--checkpoint is required");
  const std::string images = cli.required("--images");
  if (cli.has("--csv") == cli.has("--masks")) throw hw1::UsageError("give exactly one of --csv OUT.csv and --masks OUT_DIR");
  const bool seg = cli.has("--masks");
  const std::string out = seg ? cli.str("--masks") : cli.str("--csv");
  const auto batch = std::size_t(cli.integer("--batch-size", seg ? 2 : 32, 1, hw1::kMaxBatch));
  const bool skip_bad = cli.flag("--skip-bad");

  // Everything that can be checked is checked before anything is written.
  std::vector<std::string> paths, names;  // names: CSV image_id, or mask file name
  if (seg) {
    for (const auto& s : hw1::list_segmentation_dir(images, false)) paths.push_back(s.image_path), names.push_back(s.id + ".png");
  } else {
    for (const auto& s : hw1::list_classification_dir(images, 0, false)) paths.push_back(s.path), names.push_back(s.file_name);
  }
  std::vector<Member> members;
  for (const auto& c : ckpts) {
    members.push_back(load_member(c, seg, dev.cuda, bare));
    if (members.back().info.num_classes != members.front().info.num_classes)
      throw hw1::Error(c + ": has " + std::to_string(members.back().info.num_classes) + " classes but " + ckpts.front() +
                       " has " + std::to_string(members.front().info.num_classes) + "; an ensemble needs one label set");
  }
  prepare_output(out, seg, cli.flag("--force"));

  const int k = members.front().info.num_classes, nm = int(members.size());
  std::ostringstream csv;
  csv << "image_id,label\n";
  std::vector<std::string> skipped;
  std::size_t written = 0;
  hw1::ProgressBar bar(seg ? "masks" : "predict", paths.size());
  for (std::size_t lo = 0; lo < paths.size(); lo += batch) {
    const std::size_t hi = std::min(lo + batch, paths.size());
    std::vector<std::string> errors;
    const auto decoded = decode(paths, lo, hi, errors);
    std::vector<const hw1::Image*> imgs;
    std::vector<std::string> ok_names;
    for (std::size_t i = 0; i < hi - lo; ++i) {
      if (!decoded[i]) {
        if (!skip_bad) throw hw1::Error(errors[i] + " (--skip-bad skips unreadable images)");
        skipped.push_back(errors[i]);
        continue;
      }
      imgs.push_back(&*decoded[i]);
      ok_names.push_back(names[lo + i]);
    }
    std::vector<std::vector<hw1::Tensor>> probs;  // [member][image]
    for (const auto& m : members) probs.push_back(run_member(m, imgs, ok_names));
    for (std::size_t i = 0; i < imgs.size(); ++i) {
      if (!seg) {
        csv << ok_names[i] << ',' << vote(nm, k, [&](int m, int c) { return probs[m][i].data()[c]; }) << '\n';
        ++written;
        continue;
      }
      const std::size_t hw = std::size_t(imgs[i]->height) * imgs[i]->width;
      hw1::Image classes(imgs[i]->height, imgs[i]->width, 1);
#pragma omp parallel for schedule(static)
      for (std::ptrdiff_t j = 0; j < std::ptrdiff_t(hw); ++j)
        classes.pixels[j] = std::uint8_t(vote(nm, k, [&](int m, int c) { return probs[m][i].data()[c * hw + j]; }));
      hw1::write_png((fs::path(out) / ok_names[i]).string(), hw1::classes_to_mask(classes));
      ++written;
    }
    bar.update(hi);
  }
  bar.finish();
  if (written == 0) throw hw1::Error(images + ": no image could be read; nothing written to " + out);
  if (!seg) hw1::write_text_atomic(out, csv.str());
  std::printf("hw1-predict: %zu %s written to %s (%s of %d checkpoint%s), %.1f s\n", written,
              seg ? "masks" : "predictions", out.c_str(), nm > 1 ? "majority-vote ensemble" : "one model", nm,
              nm > 1 ? "s" : "", bar.seconds());
  if (!skipped.empty()) {
    std::fprintf(stderr, "hw1-predict: skipped %zu unreadable image%s:\n", skipped.size(), skipped.size() > 1 ? "s" : "");
    for (const auto& s : skipped) std::fprintf(stderr, "  %s\n", s.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return hw1::run_main("hw1-predict", kUsage, [&] { return run(argc, argv); });
}
