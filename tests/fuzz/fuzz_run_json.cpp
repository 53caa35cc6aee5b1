// --resume RUN_DIR: parse_run_args reads RUN_DIR/run.json and rebuilds the run's options from it. The input is
// written to run.json in a scratch directory and read through the real entry point.
#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include "fuzz_common.hpp"
#include "hw1/train/run_args.hpp"

namespace {
const std::set<std::string> kOptions{"--out", "--resume", "--epochs", "--workers", "--lr", "--model", "--train"};
const std::set<std::string> kFlags{"--force", "--amp"};
const std::filesystem::path& scratch() {
  static const std::filesystem::path dir = [] {
    // tmpfs where there is one: rewriting a file on ext4 waits for the disk (its truncate heuristic).
    std::error_code ec;
    const auto base = std::filesystem::is_directory("/dev/shm", ec) ? std::filesystem::path("/dev/shm")
                                                                    : std::filesystem::temp_directory_path();
    // libFuzzer may end the process without running atexit handlers: sweep the folders of dead earlier runs.
    for (const auto& e : std::filesystem::directory_iterator(base, ec)) {
      const std::string n = e.path().filename().string();
      if (!n.starts_with("hw1-fuzz-run-json-")) continue;
      const long pid = std::strtol(n.c_str() + 18, nullptr, 10);
      if (pid > 0 && ::kill(pid_t(pid), 0) != 0 && errno == ESRCH) std::filesystem::remove_all(e.path(), ec);
    }
    auto d = base / ("hw1-fuzz-run-json-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    std::atexit([] { std::error_code ec; std::filesystem::remove_all(scratch(), ec); });
    return d;
  }();
  return dir;
}
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
