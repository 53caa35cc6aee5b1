// Running a program from a test: exit code and its stdout + stderr together, optionally with a SIGINT sent once a
// file exists (a Ctrl-C at a known point of a training run).
#pragma once
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace hw1::test {

struct Proc {
  int rc = -1;
  std::string out;
};

inline std::string file_text(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// exe (a path, or a name looked up on PATH) with args; `tag` names the scratch folder of the logs.
inline Proc run_process(const std::string& exe, const std::vector<std::string>& args,
                        const std::filesystem::path& interrupt_when = {}, const std::string& tag = "hw1-test") {
  namespace fs = std::filesystem;
  static int n = 0;
  const fs::path log =
      fs::temp_directory_path() / (tag + "-" + std::to_string(getpid())) / ("proc-" + std::to_string(++n) + ".log");
  fs::create_directories(log.parent_path());
  const pid_t pid = fork();
  if (pid == 0) {
    FILE* f = std::freopen(log.c_str(), "w", stdout);
    if (!f || dup2(fileno(stdout), 2) < 0) _exit(127);
    std::vector<char*> argv{const_cast<char*>(exe.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp(exe.c_str(), argv.data());
    _exit(127);
  }
  int status = 0;
  bool sent = false;
  for (;;) {
    const pid_t w = waitpid(pid, &status, interrupt_when.empty() || sent ? 0 : WNOHANG);
    if (w == pid) break;
    if (!sent && fs::exists(interrupt_when)) {
      kill(pid, SIGINT);
      sent = true;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  Proc p;
  p.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  p.out = file_text(log);
  return p;
}

}  // namespace hw1::test
