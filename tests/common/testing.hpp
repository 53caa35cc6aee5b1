// Small helpers the tests share: a scratch directory, the message of an hw1::Error, file bytes.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "hw1/core/error.hpp"

namespace hw1::test {

// A directory under the system temp dir, unique per test program and name, removed when done.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& name, bool create = true)
      : path(std::filesystem::temp_directory_path() /
             ("hw1-test-" + name + "-" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path);
    if (create) std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string str() const { return path.string(); }
  void touch(const std::string& name) const { std::ofstream(path / name) << "x"; }
};

// The hw1::Error message of f(), or "" when it does not throw one.
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const hw1::Error& e) {
    return e.what();
  }
  return "";
}

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

inline std::string bytes_of(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

}  // namespace hw1::test
