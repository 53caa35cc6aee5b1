// run.json: the options a run was started with, written by a trainer and read back by --resume (which restores
// them). Apart from fit.hpp so that its reader can be tested and fuzzed (tests/fuzz/fuzz_run_json.cpp) alone.
#pragma once
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hw1/train/checkpoint.hpp"
#include "hw1/train/cli.hpp"

namespace hw1 {

struct RunArgs {
  Cli cli;                        // the effective options
  std::vector<std::string> args;  // the same, as stored in run.json
  std::string run_dir;
  bool resume = false;
};

namespace detail {
inline Cli make_cli(const std::string& program, const std::vector<std::string>& args, const std::set<std::string>& options,
                    const std::set<std::string>& flags, const std::string& usage) {
  std::vector<std::string> a{program};
  a.insert(a.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : a) argv.push_back(s.data());
  return Cli(int(argv.size()), argv.data(), options, flags, usage);
}
inline bool same_path(const std::string& a, const std::string& b) {
  std::error_code ec;
  return std::filesystem::weakly_canonical(a, ec) == std::filesystem::weakly_canonical(b, ec);
}
}  // namespace detail

// Parses the command line. A new run needs --out; `--resume RUN_DIR` restores the options of RUN_DIR/run.json,
// where options in `free_on_resume` (e.g. --epochs) may take new values and any other option given must repeat
// the original value. `options` must hold --out and --resume; `flags` --force.
inline RunArgs parse_run_args(const std::string& program, int argc, char** argv, const std::set<std::string>& options,
                              const std::set<std::string>& flags, const std::string& usage,
                              const std::set<std::string>& free_on_resume = {"--epochs", "--workers"}) {
  std::vector<std::string> given_args(argv + 1, argv + argc);
  Cli given = detail::make_cli(program, given_args, options, flags, usage);
  if (!given.has("--resume")) {
    const std::string dir = given.required("--out");
    return {given, given_args, dir, false};
  }
  const std::string dir = given.str("--resume");
  if (given.has("--out") && !detail::same_path(given.str("--out"), dir))
    throw UsageError("--out " + given.str("--out") + " and --resume " + dir + " name different run directories");
  const std::string json_path = (std::filesystem::path(dir) / "run.json").string();
  std::ifstream f(json_path);
  if (!f) throw Error(dir + ": not a run directory to resume (no run.json; was it written by " + program + "?)");
  std::vector<std::string> orig;
  std::string stored_program;
  try {  // nlohmann's type errors included: "program": 1 is a corrupt file too
    const nlohmann::json j = nlohmann::json::parse(f);
    orig = j.at("args").get<std::vector<std::string>>();
    stored_program = j.value("program", std::string());
  } catch (const std::exception& e) {
    throw Error(json_path + ": corrupt run description (" + e.what() + ")");
  }
  if (stored_program != program)
    throw Error(dir + ": is a run of " + (stored_program.empty() ? std::string("another program") : stored_program) +
                ", not of " + program);
  // The stored options are data, not a command line: --help there would print the usage and exit 0 (a resume
  // that "succeeds" without training), and an unknown option is a corrupt file, not a usage error.
  for (const auto& a : orig)
    if (a == "-h" || a == "--help")
      throw Error(json_path + ": corrupt run description (" + a + " among the run's stored options)");
  Cli before = [&] {
    try {
      return detail::make_cli(program, orig, options, flags, usage);
    } catch (const UsageError& e) {
      throw Error(json_path + ": corrupt run description (" + e.what() + ")");
    }
  }();
  for (const auto& k : options) {
    if (k == "--resume" || k == "--out" || free_on_resume.count(k) || !given.has(k)) continue;
    if (!before.has(k) || before.all(k) != given.all(k))
      throw UsageError("--resume: " + k + " " + given.str(k) + " differs from the run's " +
                       (before.has(k) ? k + " " + before.str(k) : "default") +
                       "; a resumed run keeps its options (only " + [&] {
                         std::string s;
                         for (const auto& x : free_on_resume) s += (s.empty() ? "" : ", ") + x;
                         return s;
                       }() + " may change)");
  }
  for (const auto& k : flags)
    if (k != "--force" && given.flag(k) && !before.flag(k))
      throw UsageError("--resume: " + k + " was not set when the run started; a resumed run keeps its options");
  // Effective arguments: the original ones with the free options replaced by the values given now.
  std::vector<std::string> args;
  for (std::size_t i = 0; i < orig.size(); ++i) {
    if (free_on_resume.count(orig[i]) && given.has(orig[i]) && i + 1 < orig.size()) {
      ++i;
      continue;
    }
    args.push_back(orig[i]);
  }
  for (const auto& k : free_on_resume)
    if (given.has(k)) args.insert(args.end(), {k, given.str(k)});
  return {detail::make_cli(program, args, options, flags, usage), args, dir, true};
}

inline void write_run_json(const std::string& program, const RunArgs& r) {
  nlohmann::json j{{"program", program}, {"args", r.args}};
  write_text_atomic((std::filesystem::path(r.run_dir) / "run.json").string(), j.dump(2) + "\n");
}

}  // namespace hw1
