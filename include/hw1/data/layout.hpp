// The two HW1 folder layouts and the segmentation colour code.
// Problem 1: a folder of "{label}_{id}.png" (e.g. train_50/0_450.png is class 0); test folders carry no labels.
// Problem 2: a folder of "xxxx_sat.jpg" images with "xxxx_mask.png" masks in seven colours.
#pragma once
#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "hw1/core/error.hpp"
#include "hw1/data/image.hpp"

namespace hw1 {

namespace detail {

inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

inline bool ends_with_nocase(const std::string& s, const std::string& suffix) {
  if (s.size() < suffix.size()) return false;
  for (std::size_t i = 0; i < suffix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[s.size() - suffix.size() + i])) != suffix[i]) return false;
  return true;
}

inline void require_dir(const std::string& dir, const char* who) {
  std::error_code ec;
  const auto st = std::filesystem::status(dir, ec);
  if (!std::filesystem::exists(st)) throw Error(std::string(who) + ": " + dir + ": no such directory");
  if (!std::filesystem::is_directory(st)) throw Error(std::string(who) + ": " + dir + ": not a directory");
}

// Regular files (or links to them) directly in dir whose names pass keep(), sorted by name.
template <class Keep>
std::vector<std::string> list_names(const std::string& dir, Keep keep) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    std::string n = e.path().filename().string();
    std::error_code ec2;
    if (keep(n) && std::filesystem::is_regular_file(e.path(), ec2)) names.push_back(std::move(n));
  }
  if (ec) throw Error(dir + ": cannot list directory: " + ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

inline std::string join_path(const std::string& dir, const std::string& name) {
  return (std::filesystem::path(dir) / name).string();
}

}  // namespace detail

// ---------------- Problem 1: classification ----------------

struct ClassSample {
  std::string path;       // dir/file_name
  std::string file_name;  // "0_450.png", what the output CSV's image_id column holds
  int label = -1;         // -1 when the folder is unlabelled
};

// All *.png files of dir (extension in any case), sorted by file name. With labelled = true every name must
// start with "{label}_" where 0 <= label < num_classes.
inline std::vector<ClassSample> list_classification_dir(const std::string& dir, int num_classes, bool labelled = true) {
  detail::require_dir(dir, "classification folder");
  if (labelled && num_classes <= 0)
    throw Error("classification folder " + dir + ": num_classes must be positive, got " + std::to_string(num_classes));
  const auto names = detail::list_names(dir, [](const std::string& n) { return detail::ends_with_nocase(n, ".png"); });
  if (names.empty()) throw Error("classification folder " + dir + ": holds no *.png files");
  std::vector<ClassSample> out;
  out.reserve(names.size());
  for (const auto& n : names) {
    ClassSample s{detail::join_path(dir, n), n, -1};
    if (labelled) {
      const auto us = n.find('_');
      const char* b = n.data();
      int label = -1;
      const auto [p, ec] = std::from_chars(b, b + (us == std::string::npos ? 0 : us), label);
      if (us == std::string::npos || us == 0 || ec != std::errc() || p != b + us)
        throw Error(s.path + ": file name does not start with a numeric \"{label}_\" prefix (expected e.g. 3_17.png); "
                    "pass labelled = false for a folder without labels");
      if (label < 0 || label >= num_classes)
        throw Error(s.path + ": label " + std::to_string(label) + " is outside 0.." + std::to_string(num_classes - 1) +
                    " (num_classes = " + std::to_string(num_classes) + ")");
      s.label = label;
    }
    out.push_back(std::move(s));
  }
  return out;
}

// ---------------- Problem 2: segmentation ----------------

struct SegSample {
  std::string id;          // "0010"
  std::string image_path;  // dir/0010_sat.jpg
  std::string mask_path;   // dir/0010_mask.png, empty if there is none
};

// All "xxxx_sat.jpg" of dir sorted by id, each with its "xxxx_mask.png". With require_masks every image needs
// its mask and every mask its image (a half-copied folder is an error, not a smaller data set).
inline std::vector<SegSample> list_segmentation_dir(const std::string& dir, bool require_masks = true) {
  detail::require_dir(dir, "segmentation folder");
  const auto images = detail::list_names(dir, [](const std::string& n) { return detail::ends_with(n, "_sat.jpg"); });
  const auto masks = detail::list_names(dir, [](const std::string& n) { return detail::ends_with(n, "_mask.png"); });
  if (images.empty()) throw Error("segmentation folder " + dir + ": holds no xxxx_sat.jpg images");
  std::vector<SegSample> out;
  out.reserve(images.size());
  for (const auto& n : images) {
    const std::string id = n.substr(0, n.size() - 8), mask = id + "_mask.png";
    const bool has_mask = std::binary_search(masks.begin(), masks.end(), mask);
    if (require_masks && !has_mask)
      throw Error("segmentation folder " + dir + ": image " + n + " has no mask " + mask +
                  "; pass require_masks = false for a folder of images only");
    out.push_back({id, detail::join_path(dir, n), has_mask ? detail::join_path(dir, mask) : std::string()});
  }
  if (require_masks)
    for (const auto& m : masks) {
      const std::string img = m.substr(0, m.size() - 9) + "_sat.jpg";
      if (!std::binary_search(images.begin(), images.end(), img))
        throw Error("segmentation folder " + dir + ": mask " + m + " has no image " + img);
    }
  return out;
}

inline constexpr int kSegClasses = 7;

// Index -> mask colour: Urban, Agriculture, Rangeland, Forest, Water, Barren, Unknown.
inline std::array<std::array<std::uint8_t, 3>, 7> seg_palette() {
  return {{{0, 255, 255}, {255, 255, 0}, {255, 0, 255}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}, {0, 0, 0}}};
}

inline const std::array<const char*, 7>& seg_class_names() {
  static const std::array<const char*, 7> names{"Urban", "Agriculture", "Rangeland", "Forest",
                                                "Water", "Barren",      "Unknown"};
  return names;
}

// The course reader: each channel thresholded at 128, code = 4R + 2G + B, then a fixed code -> class table.
// Code 4 (pure red) is not in the course table (its pixels keep np.empty garbage there); here it is Unknown (6).
inline constexpr std::array<std::uint8_t, 8> kSegCodeToClass{6, 4, 3, 0, 6, 2, 1, 5};

// RGB mask -> 1-channel class indices 0..6.
inline Image mask_to_classes(const Image& rgb_mask) {
  if (rgb_mask.channels != 3)
    throw Error("mask_to_classes: expects an RGB mask (3 channels), got " + std::to_string(rgb_mask.channels) +
                " channels; read masks with read_png(path, 3)");
  Image out(rgb_mask.height, rgb_mask.width, 1);
  const std::uint8_t* s = rgb_mask.pixels.data();
  for (std::size_t i = 0; i < out.pixels.size(); ++i, s += 3)
    out.pixels[i] = kSegCodeToClass[(s[0] >= 128) * 4 + (s[1] >= 128) * 2 + (s[2] >= 128)];
  return out;
}

// 1-channel class indices -> RGB mask in the course colours.
inline Image classes_to_mask(const Image& classes) {
  if (classes.channels != 1)
    throw Error("classes_to_mask: expects a 1-channel class-index image, got " + std::to_string(classes.channels) +
                " channels");
  const auto pal = seg_palette();
  Image out(classes.height, classes.width, 3);
  for (std::size_t i = 0; i < classes.pixels.size(); ++i) {
    const int c = classes.pixels[i];
    if (c >= kSegClasses)
      throw Error("classes_to_mask: pixel (" + std::to_string(i / classes.width) + "," +
                  std::to_string(i % classes.width) + ") holds class " + std::to_string(c) + ", valid classes are 0..6");
    std::copy(pal[c].begin(), pal[c].end(), out.pixels.begin() + 3 * i);
  }
  return out;
}

}  // namespace hw1
