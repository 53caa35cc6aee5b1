// A file that appears under its name complete or not at all, and stays so across a power cut: the bytes go to a
// temporary next to it, which is fsync'ed, renamed over the name, and then the directory is fsync'ed so the
// rename itself is durable (POSIX; without the two fsyncs a crash soon after a "successful" checkpoint write may
// leave an empty or missing file, since rename alone orders nothing on disk).
#pragma once
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>

#include "hw1/core/error.hpp"

namespace hw1 {

namespace detail {
// fsync calls made by AtomicFile (file and directory), so a test can see that a write made them.
inline std::atomic<std::uint64_t> atomic_file_fsyncs{0};

inline bool fsync_fd(int fd) {
  ++atomic_file_fsyncs;
  while (::fsync(fd) != 0)
    if (errno != EINTR) return false;
  return true;
}
}  // namespace detail

class AtomicFile {
 public:
  // `tmp`: the temporary's name (default: path + ".tmp"); it is created exclusively, so two writers never share it.
  explicit AtomicFile(std::string path, std::string tmp = {}) : path_(std::move(path)), tmp_(std::move(tmp)) {
    if (tmp_.empty()) tmp_ = path_ + ".tmp";
    ::unlink(tmp_.c_str());  // a leftover of an interrupted write
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ < 0) throw Error(path_ + ": cannot create: " + std::strerror(errno));
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }

  void write(const void* data, std::size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      const ::ssize_t k = ::write(fd_, p, n);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) fail("write failed");
      p += k;
      n -= std::size_t(k);
    }
  }
  void write(const std::string& s) { write(s.data(), s.size()); }

  // Makes the file durable under its real name.
  void commit() {
    if (!detail::fsync_fd(fd_)) fail("write failed (fsync)");
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail("write failed (close)");
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) fail("cannot move the written file into place");
    committed_ = true;
    std::string dir = std::filesystem::path(path_).parent_path().string();
    if (dir.empty()) dir = ".";
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) throw Error(path_ + ": written, but its directory cannot be opened to sync it: " + std::strerror(errno));
    const bool ok = detail::fsync_fd(dfd);
    const int err = errno;
    ::close(dfd);
    // Some file systems refuse fsync on a directory (EINVAL); the rename is then as durable as they make it.
    if (!ok && err != EINVAL) throw Error(path_ + ": written, but syncing its directory failed: " + std::strerror(err));
  }

 private:
  [[noreturn]] void fail(const char* what) {
    const int err = errno;
    throw Error(path_ + ": " + what + ": " + std::strerror(err));
  }
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace hw1
