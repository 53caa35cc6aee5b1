// t-SNE (van der Maaten 2014, "Accelerating t-SNE using tree-based algorithms"): PCA, perplexity-calibrated
// sparse affinities over the 3*perplexity nearest neighbours, early exaggeration, momentum with gains, and
// Barnes-Hut repulsion. Every sum that feeds the result is taken in a fixed order, so the embedding is
// bit-identical for a given seed whatever the OpenMP thread count.
#pragma once
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <tuple>
#include <vector>

#include "hw1/core/error.hpp"

namespace hw1 {

struct TsneOptions {
  int dims = 2;                // 1..8 (1..3 with Barnes-Hut)
  double perplexity = 30;
  int iterations = 1000;
  double learning_rate = 200;  // bhtsne/openTSNE convention: the gradient is taken without its factor 4
  double theta = 0.5;          // Barnes-Hut opening angle; 0 = exact O(n^2) gradient over a dense P
  int pca_dims = 50;           // 0 = none
  std::uint64_t seed = 0;
  double early_exaggeration = 12;
  int exaggeration_iterations = 250;  // momentum also switches from 0.5 to 0.8 here
};

// KL(P || Q) of the embedding, recorded every 50 iterations and at the last one.
struct TsneStats {
  std::vector<int> iterations;
  std::vector<double> kl;
  double final_kl() const { return kl.empty() ? std::numeric_limits<double>::quiet_NaN() : kl.back(); }
};

namespace detail::tsne {

using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// SplitMix64 + Box-Muller: the same numbers on every platform, unlike std::normal_distribution.
struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return double((next() >> 11) + 1) * 0x1.0p-53; }  // (0, 1]
  double normal() { return std::sqrt(-2 * std::log(uniform())) * std::cos(6.283185307179586 * uniform()); }
};

// Thin orthonormal basis of the columns of a (n x l, n >= l).
inline MatF orthonormal(const MatF& a) {
  Eigen::HouseholderQR<MatF> qr(a);
  return qr.householderQ() * MatF::Identity(a.rows(), a.cols());
}

// Sparse symmetric joint probabilities in CSR form (rows sum to the total 1 over the whole matrix).
struct Csr {
  std::vector<std::size_t> row;  // n + 1
  std::vector<int> col;
  std::vector<double> val;
};

// Conditional P(j|i) for one point from its squared distances: binary search on beta = 1/(2 sigma^2) until the
// entropy equals log(perplexity). Distances are shifted by their minimum so that exp() cannot underflow to 0.
inline double calibrate_row(const double* d2, int k, double perplexity, double* p) {
  const double target = std::log(perplexity);
  const double dmin = *std::min_element(d2, d2 + k);
  double mean = 0;
  for (int j = 0; j < k; ++j) mean += d2[j] - dmin;
  mean /= k;
  double beta = mean > 0 ? 1 / mean : 1, lo = 0, hi = std::numeric_limits<double>::infinity();
  for (int iter = 0; iter < 200; ++iter) {
    double sum = 0, dot = 0;
    for (int j = 0; j < k; ++j) {
      p[j] = std::exp(-beta * (d2[j] - dmin));
      sum += p[j];
      dot += (d2[j] - dmin) * p[j];
    }
    const double h = std::log(sum) + beta * dot / sum;
    for (int j = 0; j < k; ++j) p[j] /= sum;
    if (std::abs(h - target) < 1e-5) break;
    if (h > target) {
      lo = beta;
      beta = std::isinf(hi) ? beta * 2 : (beta + hi) / 2;
    } else {
      hi = beta;
      beta = (beta + lo) / 2;
    }
  }
  return beta;
}

// k nearest neighbours (squared Euclidean, ascending, self excluded) by blocked brute force on a GEMM.
inline void knn(const MatD& x, int k, std::vector<int>& idx, std::vector<double>& d2) {
  const Eigen::Index n = x.rows();
  idx.assign(std::size_t(n) * k, 0);
  d2.assign(std::size_t(n) * k, 0);
  const Eigen::VectorXd sq = x.rowwise().squaredNorm();
  const Eigen::Index block = std::clamp<Eigen::Index>((Eigen::Index(1) << 22) / n, 1, n);
  for (Eigen::Index b = 0; b < n; b += block) {
    const Eigen::Index rows = std::min(block, n - b);
    const MatD g = x.middleRows(b, rows) * x.transpose();
#pragma omp parallel for schedule(static)
    for (Eigen::Index r = 0; r < rows; ++r) {
      const Eigen::Index i = b + r;
      std::vector<std::pair<double, int>> cand;
      cand.reserve(n - 1);
      for (Eigen::Index j = 0; j < n; ++j)
        if (j != i) cand.emplace_back(std::max(0.0, sq[i] + sq[j] - 2 * g(r, j)), int(j));
      std::partial_sort(cand.begin(), cand.begin() + k, cand.end());  // pairs: ties broken by index
      for (int m = 0; m < k; ++m) {
        idx[std::size_t(i) * k + m] = cand[m].second;
        d2[std::size_t(i) * k + m] = cand[m].first;
      }
    }
  }
}

// P_ij = (P(j|i) + P(i|j)) / 2n over the k-neighbour graph.
inline Csr joint_probabilities(const MatD& x, double perplexity, int k) {
  const std::size_t n = x.rows();
  std::vector<int> idx;
  std::vector<double> d2;
  knn(x, k, idx, d2);
  std::vector<double> cond(n * k);
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t i = 0; i < std::ptrdiff_t(n); ++i) calibrate_row(&d2[i * k], k, perplexity, &cond[i * k]);
  std::vector<std::tuple<int, int, double>> e;
  e.reserve(2 * n * k);
  for (std::size_t i = 0; i < n; ++i)
    for (int m = 0; m < k; ++m) {
      const int j = idx[i * k + m];
      const double v = cond[i * k + m] / (2.0 * n);
      e.emplace_back(int(i), j, v);
      e.emplace_back(j, int(i), v);
    }
  std::sort(e.begin(), e.end());
  Csr p;
  p.row.assign(n + 1, 0);
  for (std::size_t a = 0; a < e.size();) {
    auto [i, j, v] = e[a];
    for (++a; a < e.size() && std::get<0>(e[a]) == i && std::get<1>(e[a]) == j; ++a) v += std::get<2>(e[a]);
    p.col.push_back(j);
    p.val.push_back(v);
    ++p.row[i + 1];
  }
  for (std::size_t i = 0; i < n; ++i) p.row[i + 1] += p.row[i];
  return p;
}

// Repulsive forces F_i = sum_j w_ij^2 (y_i - y_j), w_ij = 1 / (1 + |y_i - y_j|^2), and Z = sum_{i != j} w_ij.
inline double repulsion_exact(const double* y, std::size_t n, int dims, double* f) {
  std::vector<double> zi(n);
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t i = 0; i < std::ptrdiff_t(n); ++i) {
    double acc[8] = {}, z = 0;
    for (std::size_t j = 0; j < n; ++j) {
      if (std::ptrdiff_t(j) == i) continue;
      double dd = 0;
      for (int c = 0; c < dims; ++c) dd += (y[i * dims + c] - y[j * dims + c]) * (y[i * dims + c] - y[j * dims + c]);
      const double w = 1 / (1 + dd);
      z += w;
      for (int c = 0; c < dims; ++c) acc[c] += w * w * (y[i * dims + c] - y[j * dims + c]);
    }
    for (int c = 0; c < dims; ++c) f[i * dims + c] = acc[c];
    zi[i] = z;
  }
  return std::accumulate(zi.begin(), zi.end(), 0.0);
}

// Barnes-Hut space-partitioning tree (quadtree for D = 2, octree for 3) over a permuted index array: a node
// owns points [begin, end); small leaves are summed exactly, far cells through their centre of mass.
template <int D>
class SpTree {
 public:
  static constexpr int kChildren = 1 << D, kLeaf = 8;
  struct Node {
    double centre[D], half, com[D];
    int begin, end, child;  // child: index of the first of kChildren contiguous children, -1 for a leaf
  };

  SpTree(const double* y, std::size_t n) : y_(y), order_(n), tmp_(n) {
    std::iota(order_.begin(), order_.end(), 0);
    double lo[D], hi[D];
    for (int c = 0; c < D; ++c) lo[c] = hi[c] = n ? y[c] : 0;
    for (std::size_t i = 0; i < n; ++i)
      for (int c = 0; c < D; ++c) lo[c] = std::min(lo[c], y[i * D + c]), hi[c] = std::max(hi[c], y[i * D + c]);
    Node root{};
    root.half = 0;
    for (int c = 0; c < D; ++c) root.centre[c] = (lo[c] + hi[c]) / 2, root.half = std::max(root.half, (hi[c] - lo[c]) / 2);
    root.half = root.half * (1 + 1e-9) + 1e-12;
    root.begin = 0, root.end = int(n), root.child = -1;
    nodes_.reserve(4 * n / kLeaf + 16);
    nodes_.push_back(root);
    build(0, 0);
  }

  // Adds point i's repulsive force to f[0..D) and returns its share of Z.
  double repulse(std::size_t i, double theta, double* f) const {
    const double* yi = y_ + i * D;
    double z = 0;
    int stack[64 * kChildren];
    int top = 0;
    stack[top++] = 0;
    while (top) {
      const Node& nd = nodes_[stack[--top]];
      const int count = nd.end - nd.begin;
      if (count == 0) continue;
      double diff[D], dd = 0;
      for (int c = 0; c < D; ++c) diff[c] = yi[c] - nd.com[c], dd += diff[c] * diff[c];
      if (nd.child < 0) {
        for (int a = nd.begin; a < nd.end; ++a) {
          const int j = order_[a];
          if (std::size_t(j) == i) continue;
          double dj[D], d2 = 0;
          for (int c = 0; c < D; ++c) dj[c] = yi[c] - y_[std::size_t(j) * D + c], d2 += dj[c] * dj[c];
          const double w = 1 / (1 + d2);
          z += w;
          for (int c = 0; c < D; ++c) f[c] += w * w * dj[c];
        }
      } else if (4 * nd.half * nd.half < theta * theta * dd) {
        const double w = 1 / (1 + dd);
        z += count * w;
        for (int c = 0; c < D; ++c) f[c] += count * w * w * diff[c];
      } else {
        for (int k = kChildren - 1; k >= 0; --k) stack[top++] = nd.child + k;
      }
    }
    return z;
  }

 private:
  void build(int id, int depth) {
    Node nd = nodes_[id];
    const int count = nd.end - nd.begin;
    for (int c = 0; c < D; ++c) nd.com[c] = 0;
    for (int a = nd.begin; a < nd.end; ++a)
      for (int c = 0; c < D; ++c) nd.com[c] += y_[std::size_t(order_[a]) * D + c];
    for (int c = 0; c < D; ++c) nd.com[c] /= std::max(count, 1);
    nodes_[id] = nd;
    // Depth cap: coincident points would otherwise split forever.
    if (count <= kLeaf || depth >= 48) return;
    auto quadrant = [&](int j) {
      int q = 0;
      for (int c = 0; c < D; ++c) q |= (y_[std::size_t(j) * D + c] >= nd.centre[c]) << c;
      return q;
    };
    int start[kChildren + 1] = {};
    for (int a = nd.begin; a < nd.end; ++a) ++start[quadrant(order_[a]) + 1];
    for (int q = 0; q < kChildren; ++q) start[q + 1] += start[q];
    int fill[kChildren];
    std::copy(start, start + kChildren, fill);
    for (int a = nd.begin; a < nd.end; ++a) tmp_[nd.begin + fill[quadrant(order_[a])]++] = order_[a];
    std::copy(tmp_.begin() + nd.begin, tmp_.begin() + nd.end, order_.begin() + nd.begin);
    const int first = int(nodes_.size());
    nodes_[id].child = first;
    for (int q = 0; q < kChildren; ++q) {
      Node ch{};
      ch.half = nd.half / 2;
      for (int c = 0; c < D; ++c) ch.centre[c] = nd.centre[c] + ((q >> c & 1) ? ch.half : -ch.half);
      ch.begin = nd.begin + start[q], ch.end = nd.begin + start[q + 1], ch.child = -1;
      nodes_.push_back(ch);
    }
    for (int q = 0; q < kChildren; ++q) build(first + q, depth + 1);
  }

  const double* y_;
  std::vector<int> order_, tmp_;
  std::vector<Node> nodes_;
};

template <int D>
double repulsion_bh_impl(const double* y, std::size_t n, double theta, double* f) {
  const SpTree<D> tree(y, n);
  std::vector<double> zi(n);
#pragma omp parallel for schedule(dynamic, 64)
  for (std::ptrdiff_t i = 0; i < std::ptrdiff_t(n); ++i) {
    double acc[D] = {};
    zi[i] = tree.repulse(i, theta, acc);
    for (int c = 0; c < D; ++c) f[i * D + c] = acc[c];
  }
  return std::accumulate(zi.begin(), zi.end(), 0.0);
}

// Barnes-Hut estimate of repulsion_exact for dims 1..3.
inline double repulsion_bh(const double* y, std::size_t n, int dims, double theta, double* f) {
  switch (dims) {
    case 1: return repulsion_bh_impl<1>(y, n, theta, f);
    case 2: return repulsion_bh_impl<2>(y, n, theta, f);
    case 3: return repulsion_bh_impl<3>(y, n, theta, f);
    default: throw Error("t-SNE: Barnes-Hut supports 1 to 3 output dimensions, got " + std::to_string(dims) +
                         "; set theta = 0 for the exact gradient");
  }
}

}  // namespace detail::tsne

// Projects row-major x (n x d) onto its top k principal components (centred): n x k, row-major. Exact
// eigendecomposition of the covariance for d <= 512, otherwise a randomized range finder (Halko et al. 2011)
// with 4 power iterations, which costs a few n x d x (k + 10) products instead of a d x d eigenproblem.
inline std::vector<float> pca(const float* x, std::size_t n, std::size_t d, int k, std::uint64_t seed = 0) {
  using namespace detail::tsne;
  if (k < 1 || std::size_t(k) > std::min(n, d))
    throw Error("pca: asked for " + std::to_string(k) + " components of " + std::to_string(n) + " x " +
                std::to_string(d) + " data; k must be between 1 and min(n, d)");
  Eigen::Map<const MatF> xm(x, Eigen::Index(n), Eigen::Index(d));
  const Eigen::RowVectorXf mean = xm.cast<double>().colwise().mean().cast<float>();
  const MatF xc = xm.rowwise() - mean;
  MatF out(n, k);
  const Eigen::Index l = std::min<Eigen::Index>(k + 10, Eigen::Index(std::min(n, d)));
  if (d <= 512 || l >= Eigen::Index(d)) {
    const MatD xd = xc.cast<double>();
    const Eigen::MatrixXd cov = xd.transpose() * xd;
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(cov);
    const Eigen::MatrixXd v = es.eigenvectors().rightCols(k).rowwise().reverse();  // descending variance
    out = (xd * v).cast<float>();
  } else {
    Rng rng{seed ^ 0x5CA1AB1Eull};
    MatF omega(d, l);
    for (Eigen::Index i = 0; i < omega.size(); ++i) omega.data()[i] = float(rng.normal());
    MatF q = orthonormal(xc * omega);
    for (int it = 0; it < 4; ++it) q = orthonormal(xc * orthonormal(xc.transpose() * q));
    const MatF b = q.transpose() * xc;  // l x d; xc ~ q b = q U S V^T, so xc V_k = q U_k S_k
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es((b * b.transpose()).cast<double>());
    const Eigen::MatrixXd u = es.eigenvectors().rightCols(k).rowwise().reverse();
    Eigen::VectorXd s = es.eigenvalues().tail(k).reverse().cwiseMax(0).cwiseSqrt();
    out = q * (u * s.asDiagonal()).cast<float>();
  }
  return {out.data(), out.data() + out.size()};
}

// Embeds row-major x (n x d) into n x options.dims, row-major. Deterministic given options.seed.
inline std::vector<float> tsne(const float* x, std::size_t n, std::size_t d, const TsneOptions& o = {},
                               TsneStats* stats = nullptr) {
  using namespace detail::tsne;
  if (o.dims < 1 || o.dims > 8) throw Error("t-SNE: dims must be between 1 and 8, got " + std::to_string(o.dims));
  if (!(o.perplexity > 0)) throw Error("t-SNE: perplexity must be positive, got " + std::to_string(o.perplexity));
  if (o.iterations < 0 || !(o.learning_rate > 0) || o.theta < 0 || o.pca_dims < 0)
    throw Error("t-SNE: iterations, pca_dims and theta must be non-negative and learning_rate positive");
  if (o.theta > 0 && o.dims > 3)
    throw Error("t-SNE: Barnes-Hut supports at most 3 output dimensions; set theta = 0 for dims = " +
                std::to_string(o.dims));
  if (stats) *stats = {};
  const std::size_t dims = o.dims;
  if (n < 2) return std::vector<float>(n * dims, 0.f);
  for (std::size_t i = 0; i < n * d; ++i)
    if (!std::isfinite(x[i]))
      throw Error("t-SNE: row " + std::to_string(i / d) + " of the input contains a non-finite value");

  // Input space: PCA to pca_dims (or just centred when that would not reduce anything).
  MatD xs;
  if (o.pca_dims > 0 && std::size_t(o.pca_dims) < std::min(n, d)) {
    const auto p = pca(x, n, d, o.pca_dims, o.seed);
    xs = Eigen::Map<const MatF>(p.data(), Eigen::Index(n), o.pca_dims).cast<double>();
  } else {
    xs = Eigen::Map<const MatF>(x, Eigen::Index(n), Eigen::Index(d)).cast<double>();
    xs = xs.rowwise() - xs.colwise().mean();
  }

  // The exact method uses every pair, as in the original t-SNE; Barnes-Hut the 3*perplexity nearest neighbours.
  const bool exact = o.theta == 0;
  const int k = exact ? int(n - 1) : int(std::min<double>(double(n - 1), std::floor(3 * o.perplexity)));
  const Csr p = joint_probabilities(xs, std::min(o.perplexity, double(k)), std::max(k, 1));
  double plogp = 0;
  for (double v : p.val) plogp += v > 0 ? v * std::log(v) : 0;

  Rng rng{o.seed};
  std::vector<double> y(n * dims), grad(n * dims), rep(n * dims), upd(n * dims, 0), gains(n * dims, 1);
  for (double& v : y) v = 1e-4 * rng.normal();
  std::vector<double> rowkl(n);

  for (int it = 0; it < o.iterations; ++it) {
    const bool early = it < o.exaggeration_iterations;
    const double exag = early ? o.early_exaggeration : 1, momentum = early ? 0.5 : 0.8;
    const double z = exact ? repulsion_exact(y.data(), n, o.dims, rep.data())
                           : repulsion_bh(y.data(), n, o.dims, o.theta, rep.data());
    const bool record = stats && (it % 50 == 0 || it + 1 == o.iterations);
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t i = 0; i < std::ptrdiff_t(n); ++i) {
      double attr[8] = {}, plogw = 0;
      for (std::size_t e = p.row[i]; e < p.row[i + 1]; ++e) {
        const std::size_t j = p.col[e];
        double dd = 0;
        for (std::size_t c = 0; c < dims; ++c) dd += (y[i * dims + c] - y[j * dims + c]) * (y[i * dims + c] - y[j * dims + c]);
        const double w = 1 / (1 + dd);
        plogw += p.val[e] * std::log(w);
        for (std::size_t c = 0; c < dims; ++c) attr[c] += p.val[e] * w * (y[i * dims + c] - y[j * dims + c]);
      }
      rowkl[i] = plogw;
      for (std::size_t c = 0; c < dims; ++c) grad[i * dims + c] = exag * attr[c] - rep[i * dims + c] / z;
    }
    if (record) {
      // KL = sum p log p - sum p log w + log Z, with the true (not exaggerated) P summing to 1.
      stats->iterations.push_back(it);
      stats->kl.push_back(plogp - std::accumulate(rowkl.begin(), rowkl.end(), 0.0) + std::log(z));
    }
    for (std::size_t a = 0; a < n * dims; ++a) {
      gains[a] = (grad[a] > 0) != (upd[a] > 0) ? gains[a] + 0.2 : std::max(gains[a] * 0.8, 0.01);
      upd[a] = momentum * upd[a] - o.learning_rate * gains[a] * grad[a];
      y[a] += upd[a];
    }
    for (std::size_t c = 0; c < dims; ++c) {
      double m = 0;
      for (std::size_t i = 0; i < n; ++i) m += y[i * dims + c];
      m /= double(n);
      for (std::size_t i = 0; i < n; ++i) y[i * dims + c] -= m;
    }
  }
  return {y.begin(), y.end()};
}

}  // namespace hw1
