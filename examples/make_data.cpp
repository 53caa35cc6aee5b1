// hw1-make-data: writes the built-in synthetic data sets (include/hw1/data/synthetic.hpp) to disk in the HW1
// layouts, so the trainers and hw1-predict read them with the same folder readers as the course data.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "hw1/data/image_io.hpp"
#include "hw1/data/synthetic.hpp"
#include "hw1/train/cli.hpp"

namespace {

const char* kUsage =
    "usage: hw1-make-data --kind classification|segmentation --out DIR --seed S [--force]\n"
    "         classification: [--classes K] [--train-per-class N] [--val-per-class N]\n"
    "                         -> DIR/train_50/{label}_{id}.png, DIR/val_50/{label}_{id}.png (32x32 RGB)\n"
    "         segmentation:   [--train N] [--val N] [--size S]\n"
    "                         -> DIR/train/xxxx_sat.jpg + xxxx_mask.png, DIR/validation/... (S x S)\n"
    "  Defaults: --classes 8 --train-per-class 150 --val-per-class 30; --train 48 --val 14 --size 96.\n"
    "  The same seed gives the same bytes. DIR must be new or empty; --force replaces the *.png / *.jpg files of\n"
    "  the two split folders (other files there are kept, and then the run is refused).\n";

namespace fs = std::filesystem;

// --force: remove only the images this program would write, never other files.
void clear_images(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string ext = hw1::detail::lower_ext(e.path().string());
    if (e.is_regular_file() && (ext == ".png" || ext == ".jpg")) fs::remove(e.path(), ec);
  }
}

int run(int argc, char** argv) {
  const hw1::Cli cli(argc, argv,
                     {"--kind", "--out", "--seed", "--classes", "--train-per-class", "--val-per-class", "--train",
                      "--val", "--size"},
                     {"--force"}, kUsage, {{"--train", "an integer"}, {"--val", "an integer"}});
  const std::string kind = cli.choice("--kind", "", {"classification", "segmentation"});
  const std::string out = cli.required("--out");
  if (!cli.has("--seed")) throw hw1::UsageError("--seed is required (the data are a function of it)");
  const auto seed = std::uint64_t(cli.integer("--seed", 0, 0, hw1::kMaxSeed));
  const bool cls = kind == "classification";
  const std::vector<std::string> other = cls ? std::vector<std::string>{"--train", "--val", "--size"}
                                              : std::vector<std::string>{"--classes", "--train-per-class", "--val-per-class"};
  for (const auto& k : other)
    if (cli.has(k)) throw hw1::UsageError(k + " does not apply to --kind " + kind);
  // The counts and the size, read before --force removes anything. Labels are file-name prefixes and the
  // classes are drawn shapes, so 2..1000; tiles from 16 (the synthetic shapes need room) to 8192.
  const int k = int(cli.integer("--classes", 8, 2, 1000));
  const int ntr = int(cli.integer(cls ? "--train-per-class" : "--train", cls ? 150 : 48, 1, 100000));
  const int nva = int(cli.integer(cls ? "--val-per-class" : "--val", cls ? 30 : 14, 0, 100000));
  const int size = int(cli.integer("--size", 96, 16, hw1::kMaxImageSide));

  std::error_code ec;
  if (fs::exists(out, ec) && !fs::is_directory(out, ec)) throw hw1::Error(out + ": exists and is not a directory");
  if (fs::is_directory(out, ec) && !fs::is_empty(out, ec)) {
    if (!cli.flag("--force")) throw hw1::Error(out + ": already holds files; pass --force to replace its data set");
    for (const char* sub : {cls ? "train_50" : "train", cls ? "val_50" : "validation"})
      clear_images(fs::path(out) / sub);
  }

  const auto t0 = std::chrono::steady_clock::now();
  std::string summary;
  if (cls) {
    hw1::make_classification_set(out, k, ntr, nva, seed);
    summary = std::to_string(k) + " classes: " + std::to_string(k * ntr) + " training images in " +
              (fs::path(out) / "train_50").string() + ", " + std::to_string(k * nva) + " validation images in " +
              (fs::path(out) / "val_50").string();
  } else {
    hw1::make_segmentation_set(out, ntr, nva, size, seed);
    summary = std::to_string(ntr) + " training pairs in " + (fs::path(out) / "train").string() + ", " +
              std::to_string(nva) + " validation pairs in " + (fs::path(out) / "validation").string() + " (" +
              std::to_string(size) + "x" + std::to_string(size) + ")";
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("hw1-make-data: %s; %.1f s\n", summary.c_str(), s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return hw1::run_main("hw1-make-data", kUsage, [&] { return run(argc, argv); });
}
