#define BOOST_TEST_MODULE pgemm_kernel
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "common/gradcheck.hpp"
#include "common/precondition.hpp"
#include "hw1/backend/cpu/pgemm.hpp"

using hw1::cpu::Index;
namespace pg = hw1::cpu::pgemm;

namespace {

// The packed kernels exist only in AVX-512 builds and can be turned off (HW1_PGEMM=0): the tests then report
// themselves skipped rather than passing without running.
const hw1::test::RunsWhen<&pg::enabled> Available{"the packed GEMM is not in this build (no AVX-512F) or HW1_PGEMM=0"};

std::vector<float> random_floats(std::size_t n, std::uint64_t seed) {
  const auto d = hw1::test::random_vector(n, seed);
  return {d.begin(), d.end()};
}

struct Case {
  Index M, N, K, lda, ldc;
  bool trans, accumulate;
  int epilogue;  // 0: none, 1: shift, 2: scale, shift and ReLU
  std::string str() const {
    std::ostringstream o;
    o << "M " << M << " N " << N << " K " << K << " lda " << lda << " ldc " << ldc << (trans ? " A^T" : "")
      << (accumulate ? " +=" : "") << (epilogue == 1 ? " +shift" : epilogue == 2 ? " scale,shift,relu" : "");
    return o.str();
  }
};

// Runs one case through pack_rows + gemm and checks every C entry (and that nothing past N in a row of C moved)
// against a double-precision loop, to float rounding scaled by K.
void check(const Case& c, std::uint64_t seed) {
  BOOST_TEST_CONTEXT(c.str()) {
    const Index arows = c.trans ? c.K : c.M, acols = c.trans ? c.M : c.K;
    BOOST_REQUIRE(c.lda >= acols);
    const auto a = random_floats(std::size_t(arows * c.lda), seed);
    const auto b = random_floats(std::size_t(c.K * c.N), seed + 1);
    const auto shift = random_floats(std::size_t(c.M), seed + 2), scale = random_floats(std::size_t(c.M), seed + 4);
    const auto c0 = random_floats(std::size_t(c.M * c.ldc), seed + 3);
    std::vector<float> bp(std::size_t(pg::packed_size(c.K, c.N)), std::nanf(""));
    pg::pack_rows(b.data(), c.N, c.K, c.N, 0, c.K, bp.data());
    auto out = c0;
    const pg::Epilogue ep{c.epilogue == 2 ? scale.data() : nullptr, shift.data(), c.epilogue == 2};
    pg::gemm(c.M, c.N, c.K, a.data(), c.lda, c.trans, bp.data(), out.data(), c.ldc, c.accumulate,
             c.epilogue ? &ep : nullptr);
    double worst = 0;
    bool untouched = true;
    for (Index i = 0; i < c.M; ++i) {
      for (Index j = 0; j < c.N; ++j) {
        double want = c.accumulate ? c0[i * c.ldc + j] : 0.0;
        for (Index k = 0; k < c.K; ++k)
          want += double(c.trans ? a[k * c.lda + i] : a[i * c.lda + k]) * double(b[k * c.N + j]);
        if (c.epilogue == 1) want += shift[i];
        if (c.epilogue == 2) want = std::max(want * scale[i] + shift[i], 0.0);
        worst = std::max(worst, std::abs(double(out[i * c.ldc + j]) - want));
      }
      for (Index j = c.N; j < c.ldc; ++j) untouched &= out[i * c.ldc + j] == c0[i * c.ldc + j];
    }
    BOOST_TEST(worst <= 4e-7 * double(c.K + 4));
    BOOST_TEST(untouched);
  }
}

}  // namespace

// Row counts that use every micro-kernel height (14, 8, 4, 2, 1) and span M blocks (kMC = 112); column counts
// with and without a partial last panel; K below, at and past one K block (kKC = 256).
BOOST_AUTO_TEST_CASE(shapes_match_double_reference, *boost::unit_test::label("needs_avx512") * boost::unit_test::precondition(Available)) {
  std::uint64_t seed = 1;
  for (Index M : {1, 2, 3, 5, 13, 14, 15, 29, 113, 131})
    for (Index N : {1, 7, 31, 32, 33, 100})
      for (Index K : {1, 5, 256, 257, 600}) check({M, N, K, K, N, false, false, 0}, seed += 10);
}

BOOST_AUTO_TEST_CASE(transposed_a_epilogues_accumulate_and_strides, *boost::unit_test::label("needs_avx512") * boost::unit_test::precondition(Available)) {
  std::uint64_t seed = 1000;
  for (Index M : {3, 14, 27, 120})
    for (Index K : {7, 300}) {
      check({M, 45, K, M + 3, 50, true, false, 0}, seed += 10);  // A^T, rows of C wider than N
      check({M, 45, K, K, 45, false, false, 1}, seed += 10);     // shift per row (a bias)
      check({M, 45, K, K, 45, false, false, 2}, seed += 10);     // scale, shift, ReLU (batch norm + ReLU)
      check({M, 45, K, K + 1, 47, false, true, 0}, seed += 10);  // C += A * B
      check({M, 64, K, M, 64, true, true, 2}, seed += 10);       // A^T, +=, then the epilogue on the sum
    }
}

// Rows of A a multiple of 512 floats apart go through the block copy (pgemm.hpp): same results.
BOOST_AUTO_TEST_CASE(aliasing_row_strides_are_copied_correctly, *boost::unit_test::label("needs_avx512") * boost::unit_test::precondition(Available)) {
  std::uint64_t seed = 5000;
  for (Index lda : {512, 1024, 2048})
    for (Index K : {Index(100), Index(512), lda}) {
      check({30, 70, K, lda, 70, false, false, 1}, seed += 10);
      check({120, 33, K, lda, 33, false, true, 2}, seed += 10);
    }
}

BOOST_AUTO_TEST_CASE(empty_sizes, *boost::unit_test::label("needs_avx512") * boost::unit_test::precondition(Available)) {
  // K = 0: C = the epilogue of 0 (or C untouched when accumulating); M or N = 0: nothing happens.
  std::vector<float> c(6, 5.f), shift = {1.f, 2.f};
  const pg::Epilogue ep{nullptr, shift.data(), false};
  pg::gemm(2, 3, 0, nullptr, 0, false, nullptr, c.data(), 3, false, &ep);
  BOOST_TEST(c == (std::vector<float>{1, 1, 1, 2, 2, 2}), boost::test_tools::per_element());
  pg::gemm(2, 3, 0, nullptr, 0, false, nullptr, c.data(), 3, true);
  BOOST_TEST(c[5] == 2.f);
  pg::gemm(0, 3, 4, nullptr, 4, false, nullptr, c.data(), 3, false);
  pg::gemm(2, 0, 4, nullptr, 4, false, nullptr, c.data(), 3, false);
  BOOST_TEST(c[0] == 1.f);
}

// The panel layout: a row lands at its column's panel, and the last panel's columns past N are zero.
BOOST_AUTO_TEST_CASE(panel_layout) {
  const Index K = 3, N = 40;
  std::vector<float> b(std::size_t(K * N)), bp(std::size_t(pg::packed_size(K, N)), -1.f);
  for (Index i = 0; i < K * N; ++i) b[std::size_t(i)] = float(i);
  BOOST_TEST(pg::packed_size(K, N) == 2 * K * pg::kNR);
  pg::pack_rows(b.data(), N, K, N, 0, K, bp.data());
  for (Index r = 0; r < K; ++r)
    for (Index q = 0; q < 2 * pg::kNR; ++q) {
      const float got = bp[std::size_t((q / pg::kNR * K + r) * pg::kNR + q % pg::kNR)];
      BOOST_TEST(got == (q < N ? float(r * N + q) : 0.f));
    }
}
