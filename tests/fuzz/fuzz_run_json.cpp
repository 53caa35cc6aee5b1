// --resume RUN_DIR: parse_run_args reads RUN_DIR/run.json and rebuilds the run's options from it. The input is
// written to run.json in a scratch directory and read through the real entry point.
#include "fuzz_common.hpp"
#include "hw1/train/run_args.hpp"

namespace {
const std::set<std::string> kOptions{"--out", "--resume", "--epochs", "--workers", "--lr", "--model", "--train"};
const std::set<std::string> kFlags{"--force", "--amp"};
const std::filesystem::path& scratch() { return hw1::fuzz::scratch_dir("hw1-fuzz-run-json-"); }
}  // namespace

void hw1_fuzz_seeds(const std::filesystem::path& dir) {
  char prog[] = "hw1-fuzz", out[] = "--out", run[] = "run", ep[] = "--epochs", three[] = "3", lr[] = "--lr",
       val[] = "0.01", force[] = "--force";
  char* argv[] = {prog, out, run, ep, three, lr, val, force};
  hw1::RunArgs r = hw1::parse_run_args("hw1-fuzz", 8, argv, kOptions, kFlags, "usage");
  r.run_dir = dir.string();
  hw1::write_run_json("hw1-fuzz", r);
  std::filesystem::rename(dir / "run.json", dir / "seed.json");
  hw1::fuzz::write_seed(dir, "minimal.json", std::string(R"({"program":"hw1-fuzz","args":[]})"));
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string dir = scratch().string();
  {
    std::ofstream f(scratch() / "run.json", std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data), std::streamsize(size));
  }
  return hw1::fuzz::run([&] {
    char prog[] = "hw1-fuzz", resume[] = "--resume", ep[] = "--epochs", five[] = "5";
    std::string d = dir;
    char* argv[] = {prog, resume, d.data(), ep, five};
    hw1::parse_run_args("hw1-fuzz", 5, argv, kOptions, kFlags, "usage");
  });
}
