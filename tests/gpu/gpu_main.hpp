// main() of the GPU tests: without a usable CUDA device the program prints why and exits 77 (ctest's
// SKIP_RETURN_CODE for label gpu), so a machine without a GPU reports these tests skipped, never passed.
// Include after <boost/test/unit_test.hpp> with BOOST_TEST_MODULE and BOOST_TEST_NO_MAIN defined.
#pragma once
#include <iostream>

#include "hw1/backend/cuda/runtime.hpp"

int main(int argc, char* argv[]) {
  if (hw1::gpu::device_count() == 0) {
    std::cout << "SKIPPED: no CUDA device (no GPU or no driver); the GPU tests need one\n";
    return 77;
  }
  return boost::unit_test::unit_test_main(&init_unit_test, argc, argv);
}
