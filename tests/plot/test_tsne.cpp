#define BOOST_TEST_MODULE tsne
#include <boost/test/unit_test.hpp>

#include <omp.h>

#include <cmath>
#include <random>

#include "hw1/plot/tsne.hpp"

namespace {

struct Blobs {
  std::vector<float> x;
  std::vector<int> label;
};

// k Gaussian clusters: centres ~ N(0, spread^2), points ~ N(centre, 1).
Blobs blobs(int clusters, int per, int d, double spread, unsigned seed) {
  std::mt19937 g(seed);
  std::normal_distribution<double> nd;
  std::vector<double> centres(std::size_t(clusters) * d);
  for (double& c : centres) c = spread * nd(g);
  Blobs b;
  for (int i = 0; i < clusters * per; ++i) {
    const int c = i % clusters;
    b.label.push_back(c);
    for (int j = 0; j < d; ++j) b.x.push_back(float(centres[std::size_t(c) * d + j] + nd(g)));
  }
  return b;
}

// Leave-one-out k-NN classification accuracy in the embedding.
double knn_accuracy(const std::vector<float>& y, const std::vector<int>& label, int dims, int k) {
  const std::size_t n = label.size();
  int classes = *std::max_element(label.begin(), label.end()) + 1, correct = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::vector<std::pair<double, int>> d;
    for (std::size_t j = 0; j < n; ++j) {
      if (j == i) continue;
      double s = 0;
      for (int c = 0; c < dims; ++c) s += std::pow(y[i * dims + c] - y[j * dims + c], 2);
      d.emplace_back(s, label[j]);
    }
    std::partial_sort(d.begin(), d.begin() + k, d.end());
    std::vector<int> votes(classes, 0);
    for (int m = 0; m < k; ++m) ++votes[d[m].second];
    correct += int(std::max_element(votes.begin(), votes.end()) - votes.begin()) == label[i];
  }
  return double(correct) / double(n);
}

// After early exaggeration the optimiser minimises KL, so its recorded values must (almost) never rise.
void check_kl_decreasing(const hw1::TsneStats& s, int exaggeration_iterations) {
  BOOST_REQUIRE(s.kl.size() >= 4);
  double first_after = std::numeric_limits<double>::quiet_NaN(), prev = 0;
  for (std::size_t a = 0; a < s.kl.size(); ++a) {
    BOOST_TEST(std::isfinite(s.kl[a]));
    if (s.iterations[a] < exaggeration_iterations) continue;
    if (std::isnan(first_after)) first_after = s.kl[a];
    else BOOST_TEST(s.kl[a] <= prev * 1.002 + 1e-4, "KL rose at iteration " << s.iterations[a]);
    prev = s.kl[a];
  }
  BOOST_TEST(s.final_kl() < first_after);
  BOOST_TEST(s.kl.front() > s.final_kl());  // the random start is far worse than the result
}

}  // namespace

BOOST_AUTO_TEST_CASE(barnes_hut_separates_gaussian_clusters) {
  const auto b = blobs(5, 120, 100, 1.0, 1);
  hw1::TsneStats stats;
  const auto y = hw1::tsne(b.x.data(), b.label.size(), 100, {}, &stats);
  BOOST_REQUIRE_EQUAL(y.size(), b.label.size() * 2);
  const double acc = knn_accuracy(y, b.label, 2, 5);
  BOOST_TEST_MESSAGE("Barnes-Hut 5-NN accuracy " << acc << ", final KL " << stats.final_kl());
  BOOST_TEST(acc > 0.95);
  check_kl_decreasing(stats, 250);
  BOOST_TEST(stats.iterations.back() == 999);
}

BOOST_AUTO_TEST_CASE(exact_gradient_separates_gaussian_clusters) {
  const auto b = blobs(5, 120, 100, 1.0, 2);
  hw1::TsneOptions o;
  o.theta = 0;
  o.iterations = 600;
  hw1::TsneStats stats;
  const auto y = hw1::tsne(b.x.data(), b.label.size(), 100, o, &stats);
  const double acc = knn_accuracy(y, b.label, 2, 5);
  BOOST_TEST_MESSAGE("exact 5-NN accuracy " << acc << ", final KL " << stats.final_kl());
  BOOST_TEST(acc > 0.95);
  check_kl_decreasing(stats, 250);
}

BOOST_AUTO_TEST_CASE(randomized_pca_path_and_three_dimensions) {
  const auto b = blobs(3, 100, 600, 0.6, 3);  // d > 512 takes the randomized PCA
  hw1::TsneOptions o;
  o.dims = 3;
  o.iterations = 500;
  o.perplexity = 20;
  const auto y = hw1::tsne(b.x.data(), b.label.size(), 600, o);
  BOOST_REQUIRE_EQUAL(y.size(), b.label.size() * 3);
  BOOST_TEST(knn_accuracy(y, b.label, 3, 5) > 0.95);
}

BOOST_AUTO_TEST_CASE(deterministic_given_the_seed_whatever_the_thread_count) {
  const auto b = blobs(4, 50, 30, 1.0, 4);
  hw1::TsneOptions o;
  o.iterations = 300;
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const auto one = hw1::tsne(b.x.data(), 200, 30, o);
  omp_set_num_threads(std::max(2, threads));
  const auto again = hw1::tsne(b.x.data(), 200, 30, o);
  omp_set_num_threads(threads);
  BOOST_TEST(one == again);
  o.seed = 7;
  const auto other = hw1::tsne(b.x.data(), 200, 30, o);
  BOOST_TEST(one != other);
}

BOOST_AUTO_TEST_CASE(barnes_hut_repulsion_approximates_the_exact_sum) {
  using namespace hw1::detail::tsne;
  for (int dims : {2, 3}) {
    std::mt19937 g(dims);
    std::normal_distribution<double> nd(0, 5);
    const std::size_t n = 1500;
    std::vector<double> y(n * dims), fe(n * dims), fb(n * dims);
    for (double& v : y) v = nd(g);
    const double ze = repulsion_exact(y.data(), n, dims, fe.data());
    for (double theta : {0.1, 0.5}) {
      const double zb = repulsion_bh(y.data(), n, dims, theta, fb.data());
      double num = 0, den = 0;
      for (std::size_t a = 0; a < fe.size(); ++a) num += std::pow(fb[a] - fe[a], 2), den += fe[a] * fe[a];
      const double rel = std::sqrt(num / den);
      BOOST_TEST_MESSAGE("dims " << dims << " theta " << theta << ": force error " << rel << ", Z error "
                                 << std::abs(zb - ze) / ze);
      BOOST_TEST(rel < (theta < 0.2 ? 2e-3 : 3e-2));
      BOOST_TEST(std::abs(zb - ze) / ze < (theta < 0.2 ? 1e-4 : 2e-2));
    }
  }
  // Coincident points must not recurse forever, and each still repels the others at distance 0 (w = 1).
  std::vector<double> same(40 * 2, 1.5), f(40 * 2);
  BOOST_TEST(repulsion_bh(same.data(), 40, 2, 0.5, f.data()) == 40.0 * 39.0);
}

BOOST_AUTO_TEST_CASE(perplexity_calibration_hits_the_target_entropy) {
  using namespace hw1::detail::tsne;
  std::mt19937 g(5);
  std::uniform_real_distribution<double> u(0, 3000);  // large squared distances, as from raw 2048-d features
  std::vector<double> d2(90), p(90);
  for (double& v : d2) v = 1000 + u(g);
  for (double perp : {5.0, 30.0}) {
    calibrate_row(d2.data(), 90, perp, p.data());
    double sum = 0, h = 0;
    for (double v : p) sum += v, h -= v > 0 ? v * std::log(v) : 0;
    BOOST_TEST(sum == 1.0, boost::test_tools::tolerance(1e-12));
    BOOST_TEST(std::exp(h) == perp, boost::test_tools::tolerance(1e-4));
  }
}

BOOST_AUTO_TEST_CASE(joint_probabilities_are_symmetric_and_normalised) {
  using namespace hw1::detail::tsne;
  const auto b = blobs(3, 40, 10, 1.0, 6);
  const MatD x = Eigen::Map<const MatF>(b.x.data(), 120, 10).cast<double>();
  const Csr p = joint_probabilities(x, 10, 30);
  double total = 0;
  auto lookup = [&](int i, int j) {
    for (std::size_t e = p.row[i]; e < p.row[i + 1]; ++e)
      if (p.col[e] == j) return p.val[e];
    return 0.0;
  };
  for (int i = 0; i < 120; ++i)
    for (std::size_t e = p.row[i]; e < p.row[i + 1]; ++e) {
      total += p.val[e];
      BOOST_TEST(p.col[e] != i);
      BOOST_TEST(p.val[e] == lookup(p.col[e], i), boost::test_tools::tolerance(1e-15));
    }
  BOOST_TEST(total == 1.0, boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(pca_matches_the_covariance_eigenvalues) {
  // Low-rank signal plus noise, for both the exact (d <= 512) and the randomized (d > 512) paths.
  for (int d : {200, 900}) {
    std::mt19937 g(d);
    std::normal_distribution<double> nd;
    const int n = 400, rank = 30, k = 12;
    Eigen::MatrixXd a(n, rank), m(rank, d);
    for (int i = 0; i < a.size(); ++i) a.data()[i] = nd(g) * 10.0 / (1 + i / n);
    for (int i = 0; i < m.size(); ++i) m.data()[i] = nd(g);
    Eigen::MatrixXd xd = a * m;
    for (int i = 0; i < xd.size(); ++i) xd.data()[i] += 0.1 * nd(g) + 3;
    const hw1::detail::tsne::MatF xf = xd.cast<float>();
    const auto proj = hw1::pca(xf.data(), n, d, k, 1);
    const Eigen::MatrixXd xc = xf.cast<double>().rowwise() - xf.cast<double>().colwise().mean();
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(xc.transpose() * xc);
    const Eigen::MatrixXd pm = Eigen::Map<const hw1::detail::tsne::MatF>(proj.data(), n, k).cast<double>();
    const Eigen::MatrixXd gram = pm.transpose() * pm;  // diag(top eigenvalues) when the columns are the PCs
    for (int c = 0; c < k; ++c) {
      BOOST_TEST(gram(c, c) == es.eigenvalues()(d - 1 - c), boost::test_tools::tolerance(2e-3));
      for (int e = 0; e < c; ++e) BOOST_TEST(std::abs(gram(c, e)) < 2e-3 * gram(0, 0));
    }
  }
  const std::vector<float> tiny(6, 1.f);
  BOOST_CHECK_THROW(hw1::pca(tiny.data(), 3, 2, 3), hw1::Error);
}

BOOST_AUTO_TEST_CASE(rejects_bad_options_and_inputs) {
  std::vector<float> x(50 * 4, 0.5f);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(i % 7);
  hw1::TsneOptions o;
  o.dims = 0;
  BOOST_CHECK_THROW(hw1::tsne(x.data(), 50, 4, o), hw1::Error);
  o.dims = 4;  // Barnes-Hut is 1-3 dimensional; the exact method is not
  BOOST_CHECK_THROW(hw1::tsne(x.data(), 50, 4, o), hw1::Error);
  o.theta = 0;
  o.iterations = 20;
  BOOST_TEST(hw1::tsne(x.data(), 50, 4, o).size() == 200u);
  x[13] = std::nanf("");
  BOOST_CHECK_THROW(hw1::tsne(x.data(), 50, 4, {}), hw1::Error);
  BOOST_TEST(hw1::tsne(x.data(), 1, 4, {}).size() == 2u);
}
