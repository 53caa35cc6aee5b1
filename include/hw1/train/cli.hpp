// A small command-line parser for the example programs: --name value options, --flag switches, repeatable
// options, typed getters with one clear error line each ("--epochs needs an integer, got 'x'").
// (Debian's Boost.Program_options would do too; this keeps the trainers to the packages the library uses.)
#pragma once
#include <cstdlib>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "hw1/core/error.hpp"

namespace hw1 {

struct UsageError : Error {
  using Error::Error;
};

class Cli {
 public:
  // `flags`: options without a value; every other --name takes one value. Unknown names are errors.
  Cli(int argc, char** argv, const std::set<std::string>& options, const std::set<std::string>& flags,
      const std::string& usage)
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
      if (i + 1 >= argc) throw UsageError("option " + k + " needs a value");
      values_[k].push_back(argv[++i]);
    }
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
  long long integer(const std::string& k, long long def, long long min = 0) const {
    if (!has(k)) return def;
    const std::string v = str(k);
    try {
      std::size_t pos = 0;
      long long n = std::stoll(v, &pos);
      if (pos == v.size() && n >= min) return n;
    } catch (...) {
    }
    throw UsageError(k + " needs an integer >= " + std::to_string(min) + ", got '" + v + "'");
  }
  double real(const std::string& k, double def) const {
    if (!has(k)) return def;
    const std::string v = str(k);
    try {
      std::size_t pos = 0;
      double x = std::stod(v, &pos);
      if (pos == v.size()) return x;
    } catch (...) {
    }
    throw UsageError(k + " needs a number, got '" + v + "'");
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

// Runs a program's main body: usage errors print the usage and exit 2, other errors one line and exit 1.
template <class F>
int run_main(const char* prog, const std::string& usage, F&& body) {
  try {
    return body();
  } catch (const UsageError& e) {
    std::cerr << prog << ": " << e.what() << "\n" << usage;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << prog << ": error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace hw1
