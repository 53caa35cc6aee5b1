// Checkpoints: a safetensors file with the model's tensors under torchvision's names plus the metadata needed
// to rebuild the model and its preprocessing (so hw1-predict needs nothing but the file). A run directory holds
// epoch-NNN.safetensors, best.safetensors, optimizer.safetensors (optimizer state + where the run stands),
// metrics.csv and curves.png; every file is written atomically and durably (hw1::AtomicFile: temporary file,
// fsync, rename, fsync of the directory).
#pragma once
#include <array>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "hw1/core/atomic_file.hpp"
#include "hw1/core/safetensors.hpp"

namespace hw1 {

struct CheckpointInfo {
  std::string model;        // resnet101 | fcn32s | deeplabv3
  int num_classes = 0;
  bool aux_loss = false;    // deeplabv3 with aux_classifier.*
  int input_size = 0;       // classifier: images resized to input_size^2; segmenter: 0 = full resolution
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f}, std{0.229f, 0.224f, 0.225f};
  int epoch = 0;
  std::string metric_name;  // val_accuracy | val_miou
  double metric = 0;

  std::map<std::string, std::string> to_metadata() const {
    auto trip = [](const std::array<float, 3>& a) {
      std::ostringstream o;
      o.precision(9);
      o << a[0] << ',' << a[1] << ',' << a[2];
      return o.str();
    };
    std::ostringstream m;
    m.precision(17);
    m << metric;
    return {{"format", "hw1-checkpoint-1"},  {"model", model},
            {"num_classes", std::to_string(num_classes)}, {"aux_loss", aux_loss ? "1" : "0"},
            {"input_size", std::to_string(input_size)},   {"mean", trip(mean)},
            {"std", trip(std)},                            {"epoch", std::to_string(epoch)},
            {"metric_name", metric_name},                  {"metric", m.str()}};
  }

  static CheckpointInfo from(const SafeTensors& f) {
    const auto& md = f.metadata;
    auto get = [&](const char* k) -> std::string {
      auto it = md.find(k);
      if (it == md.end())
        throw Error(f.path() + ": not an hw1 checkpoint (its metadata has no '" + std::string(k) +
                    "'; plain weight files go to --init-weights)");
      return it->second;
    };
    if (get("format") != "hw1-checkpoint-1") throw Error(f.path() + ": unknown checkpoint format '" + get("format") + "'");
    CheckpointInfo c;
    try {
      c.model = get("model");
      c.num_classes = std::stoi(get("num_classes"));
      c.aux_loss = get("aux_loss") == "1";
      c.input_size = std::stoi(get("input_size"));
      c.epoch = std::stoi(get("epoch"));
      c.metric_name = get("metric_name");
      c.metric = std::stod(get("metric"));
      auto parse3 = [&](const std::string& s, std::array<float, 3>& out) {
        std::istringstream in(s);
        char comma;
        in >> out[0] >> comma >> out[1] >> comma >> out[2];
        if (!in) throw Error("bad triple '" + s + "'");
      };
      parse3(get("mean"), c.mean);
      parse3(get("std"), c.std);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Error(f.path() + ": corrupt checkpoint metadata (" + e.what() + ")");
    }
    return c;
  }

  // A checkpoint of the wrong network is a clear error, never a pile of shape mismatches.
  void expect_model(const std::vector<std::string>& allowed, const std::string& path) const {
    for (const auto& a : allowed)
      if (a == model) return;
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : " or ") + a;
    throw Error(path + ": is a " + model + " checkpoint, this program needs " + list);
  }
};

template <class Net>
void save_checkpoint(const std::string& path, const Net& net, const CheckpointInfo& info) {
  net.save(path, info.to_metadata());
}

// Writes text to `path` atomically and durably (hw1::AtomicFile).
inline void write_text_atomic(const std::string& path, const std::string& text) {
  AtomicFile f(path);
  f.write(text);
  f.commit();
}

// The metrics log: one CSV row per epoch, rewritten atomically after every epoch.
struct MetricsLog {
  std::vector<std::string> columns;
  std::vector<std::vector<double>> rows;

  void write(const std::string& path) const {
    std::ostringstream o;
    o.precision(8);
    for (std::size_t i = 0; i < columns.size(); ++i) o << (i ? "," : "") << columns[i];
    o << '\n';
    for (const auto& r : rows) {
      for (std::size_t i = 0; i < r.size(); ++i) o << (i ? "," : "") << r[i];
      o << '\n';
    }
    write_text_atomic(path, o.str());
  }
  // Reads a log written by write(); keeps rows whose first column (epoch) is <= max_epoch. Every row holds
  // exactly one number per column, so whoever reads the rows may index them by column.
  static MetricsLog read(const std::string& path, double max_epoch) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error(path + ": cannot read the metrics log of the run to resume");
    std::ostringstream text;
    text << f.rdbuf();
    return parse(text.str(), path, max_epoch);
  }
  // The same from the file's text (`path` only labels errors).
  static MetricsLog parse(const std::string& text, const std::string& path, double max_epoch) {
    MetricsLog m;
    std::istringstream in(text);
    std::string line;
    auto split = [](std::string l) {
      if (!l.empty() && l.back() == '\r') l.pop_back();
      std::vector<std::string> out;
      std::istringstream ls(l);
      std::string v;
      while (std::getline(ls, v, ',')) out.push_back(v);
      return out;
    };
    if (!std::getline(in, line) || (m.columns = split(line)).empty() || m.columns[0] != "epoch")
      throw Error(path + ": corrupt metrics log (its first line is not a header starting with 'epoch')");
    for (std::size_t n = 2; std::getline(in, line); ++n) {
      const auto cells = split(line);
      if (cells.empty()) continue;
      if (cells.size() != m.columns.size())
        throw Error(path + ": corrupt metrics log (line " + std::to_string(n) + " holds " +
                    std::to_string(cells.size()) + " values, the header names " + std::to_string(m.columns.size()) +
                    " columns)");
      std::vector<double> r;
      for (const auto& c : cells) {
        char* end = nullptr;
        const double v = std::strtod(c.c_str(), &end);
        if (c.empty() || end != c.c_str() + c.size())
          throw Error(path + ": corrupt metrics log (line " + std::to_string(n) + ": '" + c + "' is not a number)");
        r.push_back(v);
      }
      if (r[0] <= max_epoch) m.rows.push_back(std::move(r));
    }
    return m;
  }
};

// Prepares RUN_DIR: a new run refuses a directory that already holds files unless `force`; a resumed run needs
// the directory of an earlier run.
inline void prepare_run_dir(const std::string& dir, bool resume, bool force) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (resume) {
    if (!fs::is_directory(dir, ec)) throw Error(dir + ": --resume needs the RUN_DIR of an earlier run; no such directory");
    if (!fs::exists(fs::path(dir) / "optimizer.safetensors", ec))
      throw Error(dir + ": nothing to resume (no optimizer.safetensors: the run did not finish an epoch)");
    return;
  }
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec)) throw Error(dir + ": exists and is not a directory");
    if (!fs::is_empty(dir, ec) && !force)
      throw Error(dir + ": already holds files; use --resume " + dir + " to continue that run or --force to overwrite");
  }
  fs::create_directories(dir, ec);
  if (ec) throw Error(dir + ": cannot create: " + ec.message());
}

inline std::string epoch_file(int epoch) {
  char b[32];
  std::snprintf(b, sizeof b, "epoch-%03d.safetensors", epoch);
  return b;
}

// Ctrl-C: the trainers finish nothing half-way; they stop at the next batch and leave the last epoch's files.
inline volatile std::sig_atomic_t g_interrupted = 0;
inline void install_interrupt_handler() {
  std::signal(SIGINT, [](int) { g_interrupted = 1; });
  std::signal(SIGTERM, [](int) { g_interrupted = 1; });
}

}  // namespace hw1
