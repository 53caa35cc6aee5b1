// A small command-line parser for the example programs: --name value options, --flag switches, repeatable
// options, typed getters with one clear error line each ("--epochs needs an integer in 1..100000, got 'x'").
// Every number is read with its range, so a value cannot wrap (4294967296 as an int is 0) or be NaN.
// (Debian's Boost.Program_options would do too; this keeps the trainers to the packages the library uses.)
#pragma once
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "hw1/core/error.hpp"

namespace hw1 {

// The ranges the programs share. kNoBound: a real range without that end. Image sides: the networks take any
// size from 32 up (ResNet101 ends in an adaptive pool, FCN32s crops its upsampled map back to the input,
// DeepLabv3 upsamples to it; 32 = five stride-2 steps down to a 1x1 map), so no multiple is needed; 8192 is far
// beyond the course's 512x512 tiles (a larger side is a typo, not a run a CPU could finish).
inline constexpr double kNoBound = std::numeric_limits<double>::infinity();
inline constexpr long long kMaxEpochs = 100000, kMaxBatch = 65536, kMaxWorkers = 256, kMaxClasses = 100000,
                           kMinImageSide = 32, kMaxImageSide = 8192, kMaxSeed = std::numeric_limits<long long>::max();

class Cli {
 public:
  // `flags`: options without a value; every other --name takes one value. Unknown names are errors. `nouns`:
  // what an option's value is, for the error when it is missing ("--out needs a folder, got the flag --force");
  // names not in it use default_noun().
  Cli(int argc, char** argv, const std::set<std::string>& options, const std::set<std::string>& flags,
      const std::string& usage, const std::map<std::string, std::string>& nouns = {})
      : usage_(usage) {
    for (int i = 1; i < argc; ++i) {
      std::string k = argv[i];
      if (k == "-h" || k == "--help") {
        std::cout << usage_;
        std::exit(0);
      }
      if (flags.count(k)) {
        flags_.insert(k);
        continue;
      }
      if (!options.count(k)) throw UsageError("unknown option '" + k + "'");
      const auto n = nouns.find(k);
      const std::string noun = n != nouns.end() ? n->second : default_noun(k);
      if (i + 1 >= argc) throw UsageError(k + " needs " + noun + ", got nothing");
      // A value never starts with "--": `--out --force` is a forgotten value, not a folder named "--force"
      // (negative numbers start with a single dash; a file named --x can be given as ./--x).
      const std::string v = argv[i + 1];
      if (v.rfind("--", 0) == 0) throw UsageError(k + " needs " + noun + ", got the flag " + v);
      values_[k].push_back(v);
      ++i;
    }
  }
  // What the value of an option of the example programs is, by its usual meaning there; a program where a name
  // means something else passes `nouns`.
  static std::string default_noun(const std::string& k) {
    static const std::map<std::string, std::string> m{
        {"--out", "a folder"},           {"--resume", "a folder"},        {"--train", "a folder"},
        {"--val", "a folder"},           {"--images", "a folder"},        {"--masks", "a folder"},
        {"--gt", "a folder"},            {"--pred", "a folder"},          {"--csv", "a file name"},
        {"--checkpoint", "a file"},      {"--init-weights", "a file"},    {"--epochs", "an integer"},
        {"--batch-size", "an integer"},  {"--workers", "an integer"},     {"--seed", "an integer"},
        {"--input-size", "an integer"},  {"--crop", "an integer"},        {"--keep-epochs", "an integer"},
        {"--warmup-steps", "an integer"}, {"--step-epochs", "an integer"}, {"--num-classes", "an integer"},
        {"--limit", "an integer"},       {"--iterations", "an integer"},  {"--classes", "an integer"},
        {"--size", "an integer"},        {"--train-per-class", "an integer"}, {"--val-per-class", "an integer"},
        {"--lr", "a number"},            {"--weight-decay", "a number"},  {"--momentum", "a number"},
        {"--gamma", "a number"},         {"--rotate", "a number"},        {"--aux-loss", "a number"},
        {"--perplexity", "a number"},    {"--device", "a device"},        {"--precision", "a precision"},
        {"--optimizer", "a name"},       {"--schedule", "a name"},        {"--model", "a name"},
        {"--kind", "a name"},            {"--class-weights", "a name"},   {"--snapshot-images", "a list of ids"},
        {"--snapshot-epochs", "a list of epochs"}, {"--pth-key", "a key"}};
    const auto it = m.find(k);
    return it == m.end() ? "a value" : it->second;
  }
  bool flag(const std::string& k) const { return flags_.count(k) != 0; }
  bool has(const std::string& k) const { return values_.count(k) != 0; }
  std::string str(const std::string& k, const std::string& def = "") const {
    auto it = values_.find(k);
    return it == values_.end() ? def : it->second.back();
  }
  std::string required(const std::string& k) const {
    if (!has(k)) throw UsageError(k + " is required");
    return str(k);
  }
  std::vector<std::string> all(const std::string& k) const {
    auto it = values_.find(k);
    return it == values_.end() ? std::vector<std::string>{} : it->second;
  }
  // An integer in [min, max]. Only plain decimal is read: an optional '-' and digits (std::stoll would also take
  // leading spaces and a '+'; refused, like anything after the digits, so a value means one thing).
  long long integer(const std::string& k, long long def, long long min, long long max) const {
    if (!has(k)) return def;
    const std::string v = str(k);
    const std::size_t d = !v.empty() && v[0] == '-';
    if (v.size() > d && v[d] >= '0' && v[d] <= '9') {
      try {
        std::size_t pos = 0;
        const long long n = std::stoll(v, &pos);
        if (pos == v.size() && n >= min && n <= max) return n;
      } catch (...) {  // out of long long's range: refused below
      }
    }
    throw UsageError(k + " needs an integer " +
                     (max == std::numeric_limits<long long>::max() ? ">= " + std::to_string(min)
                                                                   : "in " + std::to_string(min) + ".." + std::to_string(max)) +
                     ", got '" + v + "'");
  }
  // A finite number in the range [lo, hi] (an end is excluded when its *_open is set; infinite ends say "no
  // bound"). std::stod also reads "nan", "inf" and leading spaces: refused, so no rate or weight is NaN.
  double real(const std::string& k, double def, double lo = -kNoBound, double hi = kNoBound, bool lo_open = false,
              bool hi_open = false) const {
    if (!has(k)) return def;
    const std::string v = str(k);
    if (!v.empty() && (v[0] == '-' || v[0] == '.' || (v[0] >= '0' && v[0] <= '9'))) {
      try {
        std::size_t pos = 0;
        const double x = std::stod(v, &pos);
        if (pos == v.size() && std::isfinite(x) && (lo_open ? x > lo : x >= lo) && (hi_open ? x < hi : x <= hi))
          return x;
      } catch (...) {  // out of double's range: refused below
      }
    }
    auto num = [](double x) {
      char b[32];
      std::snprintf(b, sizeof b, "%g", x);
      return std::string(b);
    };
    const bool has_lo = std::isfinite(lo), has_hi = std::isfinite(hi);
    std::string range = "a finite number";
    if (has_lo && has_hi)
      range = std::string("a number in ") + (lo_open ? "(" : "[") + num(lo) + ", " + num(hi) + (hi_open ? ")" : "]");
    else if (has_lo)
      range = "a number " + std::string(lo_open ? "> " : ">= ") + num(lo);
    else if (has_hi)
      range = "a number " + std::string(hi_open ? "< " : "<= ") + num(hi);
    throw UsageError(k + " needs " + range + ", got '" + v + "'");
  }
  std::string choice(const std::string& k, const std::string& def, const std::vector<std::string>& allowed) const {
    const std::string v = str(k, def);
    for (const auto& a : allowed)
      if (a == v) return v;
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : "|") + a;
    throw UsageError(k + " must be " + list + ", got '" + v + "'");
  }
  // "0010,0097,0107" -> {"0010","0097","0107"}
  static std::vector<std::string> split(const std::string& s, char sep = ',') {
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
      if (c == sep) {
        if (!cur.empty()) out.push_back(cur);
        cur.clear();
      } else {
        cur += c;
      }
    }
    if (!cur.empty()) out.push_back(cur);
    return out;
  }
  const std::string& usage() const { return usage_; }

 private:
  std::string usage_;
  std::map<std::string, std::vector<std::string>> values_;
  std::set<std::string> flags_;
};

// Runs a program's main body: every error is one line on stderr; usage errors exit 2 (the line points to --help
// rather than repeating the whole usage, so the reason is not lost above it), other errors exit 1.
template <class F>
int run_main(const char* prog, const std::string& usage, F&& body) {
  try {
    return body();
  } catch (const UsageError& e) {
    (void)usage;
    std::cerr << prog << ": " << e.what() << " (" << prog << " --help lists the options)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << prog << ": error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace hw1
