// Helpers shared by the GPU tests: random host vectors, uploads, and the relative L2 difference used to compare a
// device result with the CPU backend's.
#pragma once
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "hw1/backend/cuda/runtime.hpp"

namespace hw1::gpu_test {

using V = std::vector<float>;

inline V rnd(std::size_t n, unsigned seed, float lo = -1, float hi = 1) {
  std::mt19937 r(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  V v(n);
  for (auto& x : v) x = d(r);
  return v;
}

inline hw1::gpu::DeviceBuffer<float> dev(const V& v) {
  hw1::gpu::DeviceBuffer<float> b;
  b.upload(v.data(), v.size());
  return b;
}

// ||a - b|| / max(||a||, tiny)
inline double rel(const V& a, const V& b) {
  BOOST_REQUIRE_EQUAL(a.size(), b.size());
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) num += double(a[i] - b[i]) * (a[i] - b[i]), den += double(a[i]) * a[i];
  return std::sqrt(num / std::max(den, 1e-30));
}

}  // namespace hw1::gpu_test
