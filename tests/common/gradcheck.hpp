// Finite-difference gradient checks, run in double precision.
//
// Why double: the kernels are templates on the scalar type, so the check runs the very same code in float64.
// With central differences at eps = 1e-6 the truncation error is O(eps^2) ~ 1e-12 and the rounding error
// ~ 1e-16 / eps ~ 1e-10, so an analytic gradient that is right agrees to ~1e-7 relative; a wrong one
// (a missed term, a transposed index) is off by O(1). We therefore demand 1e-5 relative to the largest
// gradient entry, with a margin of two orders over the noise and many orders under any real bug.
// Kinks (ReLU at 0, max-pool ties) are kept away from by the test inputs, as the tests explain.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <random>
#include <vector>

namespace hw1::test {

inline std::vector<double> random_vector(std::size_t n, std::uint64_t seed, double lo = -1.0, double hi = 1.0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<double> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// loss(): a scalar function of the current contents of `x` (typically sum(forward(x) * g)).
// Returns the numeric gradient of loss with respect to x, element by element (x is restored).
// With `max_points` > 0 only that many evenly spread elements are probed; the others are NaN.
inline std::vector<double> numeric_gradient(std::vector<double>& x, const std::function<double()>& loss,
                                            double eps = 1e-6, std::size_t max_points = 0) {
  std::vector<double> g(x.size(), std::nan(""));
  std::size_t step = 1;
  if (max_points > 0 && x.size() > max_points) step = (x.size() + max_points - 1) / max_points;
  for (std::size_t i = 0; i < x.size(); i += step) {
    const double keep = x[i];
    x[i] = keep + eps;
    const double lp = loss();
    x[i] = keep - eps;
    const double lm = loss();
    x[i] = keep;
    g[i] = (lp - lm) / (2 * eps);
  }
  return g;
}

// max |analytic - numeric| / max |numeric| over the probed (non-NaN) entries.
inline double relative_error(const std::vector<double>& analytic, const std::vector<double>& numeric) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < numeric.size(); ++i) {
    if (std::isnan(numeric[i])) continue;
    num = std::max(num, std::abs(analytic[i] - numeric[i]));
    den = std::max(den, std::abs(numeric[i]));
  }
  return den > 0 ? num / den : num;
}

inline double dot(const std::vector<double>& a, const double* b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

constexpr double kGradTol = 1e-5;

}  // namespace hw1::test
