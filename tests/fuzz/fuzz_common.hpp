// What every libFuzzer harness in tests/fuzz shares. A harness fuzz_<name>.cpp includes this file and defines
//   void hw1_fuzz_seeds(const std::filesystem::path& dir);     // writes a seed corpus with the library's writers
//   extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
// The harness may let an hw1::Error out of the parser (that is the parser refusing an input, the expected outcome)
// and nothing else: any other exception, a crash, a leak, undefined behaviour, a timeout or an allocation past
// -rss_limit_mb is a finding. Seeds are written at test time (HW1_FUZZ_SEEDS=dir, see run_fuzzer.sh), never
// committed.
#pragma once
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "hw1/core/error.hpp"

void hw1_fuzz_seeds(const std::filesystem::path& dir);

namespace hw1::fuzz {

inline void write_seed(const std::filesystem::path& dir, const std::string& name, const void* data, std::size_t n) {
  std::ofstream f(dir / name, std::ios::binary);
  f.write(static_cast<const char*>(data), std::streamsize(n));
  if (!f) {
    std::fprintf(stderr, "cannot write seed %s\n", (dir / name).c_str());
    std::exit(1);
  }
}
template <class Bytes>
void write_seed(const std::filesystem::path& dir, const std::string& name, const Bytes& b) {
  write_seed(dir, name, b.data(), b.size());
}

// Runs the parser: an hw1::Error is a refusal (fine); whatever else escapes reaches libFuzzer as a finding.
template <class F>
int run(F&& parse) {
  try {
    parse();
  } catch (const hw1::Error&) {
  }
  return 0;
}

// A scratch folder for harnesses whose parser takes a path: on tmpfs where there is one (rewriting a file on ext4
// waits for the disk), named <prefix><pid>, removed at exit. libFuzzer may end the process without running atexit
// handlers, so the folders of dead earlier runs are swept first. One folder per process: the first call's prefix
// names it (each harness is its own process and uses one prefix).
inline const std::filesystem::path& scratch_dir(const std::string& prefix) {
  static const std::filesystem::path dir = [&] {
    std::error_code ec;
    const auto base = std::filesystem::is_directory("/dev/shm", ec) ? std::filesystem::path("/dev/shm")
                                                                    : std::filesystem::temp_directory_path();
    for (const auto& e : std::filesystem::directory_iterator(base, ec)) {
      const std::string n = e.path().filename().string();
      if (!n.starts_with(prefix)) continue;
      const long pid = std::strtol(n.c_str() + prefix.size(), nullptr, 10);
      if (pid > 0 && ::kill(pid_t(pid), 0) != 0 && errno == ESRCH) std::filesystem::remove_all(e.path(), ec);
    }
    auto d = base / (prefix + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    std::atexit([] {
      std::error_code e2;
      std::filesystem::remove_all(dir, e2);
    });
    return d;
  }();
  return dir;
}

// What the programs do with a weights file that parsed: every tensor of a convertible dtype read as float
// (ASan checks the reads stay inside the file).
template <class Tensors>
void read_every_tensor(const Tensors& st) {
  for (const auto& name : st.names()) {
    const auto& in = st.info(name);
    if (!Tensors::convertible(in.dtype)) continue;
    std::size_t count = 1;
    for (auto d : in.shape) count *= d;
    std::vector<float> out(count);
    st.copy_to(name, out.data());
  }
}

}  // namespace hw1::fuzz

// HW1_FUZZ_SEEDS=dir: write the seed corpus into dir and exit (before libFuzzer reads any input).
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("HW1_FUZZ_SEEDS")) {
    try {
      std::filesystem::create_directories(dir);
      hw1_fuzz_seeds(dir);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "writing the seeds failed: %s\n", e.what());
      std::exit(1);
    }
    std::exit(0);
  }
  return 0;
}
