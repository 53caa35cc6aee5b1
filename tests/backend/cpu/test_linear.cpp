#define BOOST_TEST_MODULE linear_kernel
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <string>
#include <vector>

#include "common/gradcheck.hpp"
#include "hw1/backend/cpu/linear.hpp"

using namespace hw1;
using hw1::test::kGradTol;
using V = std::vector<double>;

BOOST_AUTO_TEST_CASE(forward_values) {
  // x [2,3], w [2,3] (out, in), b [2]
  const V x = {1, 2, 3, -1, 0, 2}, w = {1, 0, -1, 2, 1, 0.5}, b = {0.5, -1};
  V y(4);
  cpu::linear_forward<double>(2, 3, 2, x.data(), w.data(), b.data(), y.data());
  const V want = {1 - 3 + 0.5, 2 + 2 + 1.5 - 1, -1 - 2 + 0.5, -2 + 1 - 1};
  BOOST_TEST(y == want, boost::test_tools::per_element());
  cpu::linear_forward<double>(2, 3, 2, x.data(), w.data(), nullptr, y.data());
  BOOST_TEST(y[0] == -2.0);
}

BOOST_AUTO_TEST_CASE(gradients) {
  const int n = 4, in = 7, out = 5;
  V x = test::random_vector(n * in, 1), w = test::random_vector(out * in, 2), b = test::random_vector(out, 3);
  const V g = test::random_vector(n * out, 4);
  auto loss = [&] {
    V y(n * out);
    cpu::linear_forward<double>(n, in, out, x.data(), w.data(), b.data(), y.data());
    return test::dot(g, y.data());
  };
  V dx(n * in, 9.0), dw(out * in, 0.0), db(out, 0.0);
  const V dw0 = test::random_vector(out * in, 5), db0 = test::random_vector(out, 6);
  dw = dw0, db = db0;
  cpu::linear_backward<double>(n, in, out, x.data(), w.data(), g.data(), dx.data(), dw.data(), db.data());
  for (std::size_t i = 0; i < dw.size(); ++i) dw[i] -= dw0[i];  // dw, db accumulate
  for (std::size_t i = 0; i < db.size(); ++i) db[i] -= db0[i];
  BOOST_TEST(test::relative_error(dx, test::numeric_gradient(x, loss)) < kGradTol);
  BOOST_TEST(test::relative_error(dw, test::numeric_gradient(w, loss)) < kGradTol);
  BOOST_TEST(test::relative_error(db, test::numeric_gradient(b, loss)) < kGradTol);

  // nullptr outputs are skipped.
  V dx2(n * in, 0.0);
  cpu::linear_backward<double>(n, in, out, x.data(), w.data(), g.data(), dx2.data(), nullptr, nullptr);
  // Equal up to rounding, not bit for bit: Eigen's GEMM (HW1_BLAS=0) rounds differently with the buffers'
  // alignment, which moves with the heap's layout (linking tests/common/boost_main.cpp flipped 4 of 30 values
  // in their last bit).
  BOOST_TEST(test::relative_error(dx2, dx) < 1e-14);
}

BOOST_AUTO_TEST_CASE(float_instantiation) {
  const std::vector<float> x = {1, 2}, w = {3, 4}, b = {0.5f};
  std::vector<float> y(1), dx(2), dw(2, 0), db(1, 0);
  cpu::linear_forward<float>(1, 2, 1, x.data(), w.data(), b.data(), y.data());
  BOOST_TEST(y[0] == 11.5f);
  const std::vector<float> dy = {2};
  cpu::linear_backward<float>(1, 2, 1, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data());
  BOOST_TEST(dx == std::vector<float>({6, 8}), boost::test_tools::per_element());
  BOOST_TEST(dw == std::vector<float>({2, 4}), boost::test_tools::per_element());
  BOOST_TEST(db[0] == 2.0f);
}

// HW1_BLAS=0 (the layers.*.eigen runs) switches gemm() to Eigen's GEMM; otherwise OpenBLAS where it loads.
BOOST_AUTO_TEST_CASE(blas_switch) {
  const std::string name = hw1::cpu::blas_name();
  BOOST_TEST_MESSAGE("GEMM: " << name);
  const char* env = std::getenv("HW1_BLAS");
  if (env && std::string(env) == "0")
    BOOST_TEST(name.rfind("Eigen (HW1_BLAS=0)", 0) == 0);
  else
    BOOST_TEST((name.rfind("OpenBLAS", 0) == 0 || name.rfind("Eigen", 0) == 0));
}
