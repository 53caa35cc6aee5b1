// A live progress bar for long loops: done/total, a bar, caller's stats (loss, ...), items/s and ETA.
// On a terminal it redraws one line (at most 10 times a second); in a log (not a TTY) it prints a line at
// every 10% so CI logs stay short.
#pragma once
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace hw1 {

class ProgressBar {
 public:
  // out null: draws nothing (the ranks other than 0 of a data-parallel run).
  ProgressBar(std::string label, std::size_t total, std::string unit = "img", FILE* out = stderr)
      : label_(std::move(label)), unit_(std::move(unit)), total_(total), out_(out), tty_(out && isatty(fileno(out))),
        start_(clock::now()), last_(start_) {}

  // `done` items finished (images), `stats` e.g. "loss 0.512".
  void update(std::size_t done, const std::string& stats = "") {
    const auto now = clock::now();
    done_ = done;
    if (tty_) {
      if (now - last_ < std::chrono::milliseconds(100) && done < total_) return;
    } else {
      const std::size_t decile = total_ ? done * 10 / total_ : 10;
      if (decile == last_decile_ && done < total_) return;
      last_decile_ = decile;
    }
    last_ = now;
    draw(stats, done >= total_);
  }
  void finish(const std::string& stats = "") {
    if (finished_) return;
    done_ = total_;
    draw(stats, true);
  }
  double seconds() const { return std::chrono::duration<double>(clock::now() - start_).count(); }

 private:
  using clock = std::chrono::steady_clock;
  void draw(const std::string& stats, bool final) {
    const double t = seconds();
    const double rate = t > 0 ? double(done_) / t : 0;
    const double eta = rate > 0 && total_ > done_ ? double(total_ - done_) / rate : 0;
    const int width = 24;
    const int fill = total_ ? int(double(done_) / double(total_) * width) : width;
    std::string bar(std::size_t(fill), '#');
    bar.resize(width, '.');
    char timing[96];
    if (final)
      std::snprintf(timing, sizeof timing, "%.1f %s/s, %s", rate, unit_.c_str(), fmt_time(t).c_str());
    else
      std::snprintf(timing, sizeof timing, "%.1f %s/s, ETA %s", rate, unit_.c_str(), fmt_time(eta).c_str());
    finished_ = final;
    if (!out_) return;
    std::fprintf(out_, "%s%s [%s] %zu/%zu %s%s%s%s", tty_ ? "\r\033[K" : "", label_.c_str(), bar.c_str(), done_,
                 total_, stats.c_str(), stats.empty() ? "" : "  ", timing, (final || !tty_) ? "\n" : "");
    std::fflush(out_);
  }
  static std::string fmt_time(double s) {
    char b[32];
    const long v = long(s + 0.5);
    if (v >= 3600)
      std::snprintf(b, sizeof b, "%ld:%02ld:%02ld", v / 3600, v / 60 % 60, v % 60);
    else
      std::snprintf(b, sizeof b, "%ld:%02ld", v / 60, v % 60);
    return b;
  }

  std::string label_, unit_;
  std::size_t total_, done_ = 0, last_decile_ = std::size_t(-1);
  FILE* out_;
  bool tty_, finished_ = false;
  clock::time_point start_, last_;
};

}  // namespace hw1
