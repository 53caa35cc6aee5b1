// main() of the GPU tests: on a machine with no GPU (hw1::gpu::device_count() == 0) the program prints why and exits
// 77 (ctest's SKIP_RETURN_CODE for label gpu), so it reports these tests skipped, never passed; a GPU that is present
// but cannot run (driver older than the toolkit, ...) exits 1 with the reason.
// Include after <boost/test/unit_test.hpp> with BOOST_TEST_MODULE and BOOST_TEST_NO_MAIN defined.
#pragma once
#include <iostream>

#include "hw1/backend/cuda/runtime.hpp"

int main(int argc, char* argv[]) {
  int n = 0;
  try {
    n = hw1::gpu::device_count();
  } catch (const std::exception& e) {  // a GPU that is there but cannot run: a failure, not a skip
    std::cout << "FAILED: the CUDA device cannot be used: " << e.what() << '\n';
    return 1;
  }
  if (n == 0) {
    std::cout << "SKIPPED: no CUDA device (no NVIDIA GPU or driver on this machine); the GPU tests need one\n";
    return 77;
  }
  return boost::unit_test::unit_test_main(&init_unit_test, argc, argv);
}
