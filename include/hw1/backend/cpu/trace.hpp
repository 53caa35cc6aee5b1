// Which algorithm each convolution call took, counted per process: the kernel selector's choices depend on the
// shape, the thread count and the CPU, so a test that means to check an algorithm asks these counters whether it
// really ran (hw1-forward --trace-algorithms prints them; tests/parity asserts on them). One relaxed atomic add
// per convolution call.
#pragma once
#include <array>
#include <atomic>
#include <string>

namespace hw1::cpu {

enum class Algo : int {
  fwd_gemm,      // im2col (or 1x1) + GEMM, any type
  fwd_dense2x2,  // 3x3 on 2x2 maps as one GEMM over whole images (float)
  fwd_f2,        // Winograd F(2x2,3x3) (float)
  fwd_f4,        // Winograd F(4x4,3x3) (float)
  dx_gemm,
  dx_dense2x2,
  dx_packed1x1,  // 1x1 dX as the forward of W^T on the packed GEMM
  dx_f2,
  dx_f4,         // only under HW1_WINOGRAD4=train (winograd4.hpp)
  dw_gemm,
  dw_dense2x2,
  dw_packed1x1,
  dw_f2,         // Winograd weight gradient (F(3x3,2x2) form)
  count_
};

inline constexpr std::array<const char*, std::size_t(Algo::count_)> kAlgoNames = {
    "fwd_gemm", "fwd_dense2x2", "fwd_f2", "fwd_f4", "dx_gemm", "dx_dense2x2", "dx_packed1x1",
    "dx_f2",    "dx_f4",        "dw_gemm", "dw_dense2x2", "dw_packed1x1", "dw_f2"};

inline std::array<std::atomic<long>, std::size_t(Algo::count_)>& algo_counts() {
  static std::array<std::atomic<long>, std::size_t(Algo::count_)> c{};
  return c;
}
inline void count(Algo a) { algo_counts()[std::size_t(a)].fetch_add(1, std::memory_order_relaxed); }
inline long algo_count(Algo a) { return algo_counts()[std::size_t(a)].load(std::memory_order_relaxed); }
inline void reset_algo_counts() {
  for (auto& c : algo_counts()) c.store(0, std::memory_order_relaxed);
}
// "fwd_gemm=12 fwd_f4=3 ...": every algorithm, zeros included, in enum order.
inline std::string algo_counts_str() {
  std::string s;
  for (std::size_t i = 0; i < kAlgoNames.size(); ++i) {
    if (i) s += ' ';
    s.append(kAlgoNames[i]).append("=").append(std::to_string(algo_counts()[i].load()));
  }
  return s;
}

}  // namespace hw1::cpu
