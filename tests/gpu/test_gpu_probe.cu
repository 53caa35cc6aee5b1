// What "no GPU" means (hw1::gpu::device_count_from), checked on any machine, with or without a GPU: error 100 and
// error 35 without an NVIDIA device node are "no GPU" (0 devices: tests skip, programs say --device cpu); error 35
// with a device node (a driver older than the toolkit) and any other error are failures with a sentence; and this
// machine's own answer is consistent with its /dev.
#define BOOST_TEST_MODULE gpu_probe
#include <boost/test/unit_test.hpp>

#include <string>

#include "hw1/backend/cuda/runtime.hpp"

int main(int argc, char* argv[]) { return boost::unit_test::unit_test_main(&init_unit_test, argc, argv); }

namespace {
std::string error_of(cudaError_t e, bool node) {
  try {
    hw1::gpu::device_count_from(e, 0, node);
  } catch (const hw1::Error& x) {
    return x.what();
  }
  return "";
}
}  // namespace

BOOST_AUTO_TEST_CASE(no_device_is_zero_devices) {
  BOOST_TEST(hw1::gpu::device_count_from(cudaErrorNoDevice, 0, false) == 0);
  BOOST_TEST(hw1::gpu::device_count_from(cudaErrorNoDevice, 0, true) == 0);
  BOOST_TEST(hw1::gpu::device_count_from(cudaErrorInsufficientDriver, 0, false) == 0);
  BOOST_TEST(hw1::gpu::device_count_from(cudaSuccess, 3, true) == 3);
}

BOOST_AUTO_TEST_CASE(a_device_that_cannot_run_is_an_error) {
  const std::string old = error_of(cudaErrorInsufficientDriver, true);
  BOOST_TEST(old.find("older than the CUDA") != std::string::npos, old);
  BOOST_TEST(old.find("update the driver") != std::string::npos, old);
  const std::string other = error_of(cudaErrorInitializationError, true);
  BOOST_TEST(other.find("cudaGetDeviceCount failed") != std::string::npos, other);
  BOOST_TEST(!error_of(cudaErrorNotSupported, false).empty());
}

BOOST_AUTO_TEST_CASE(this_machine_is_consistent) {
  int n = 0;
  std::string err;
  try {
    n = hw1::gpu::device_count();
  } catch (const hw1::Error& e) {
    err = e.what();
  }
  BOOST_TEST_MESSAGE("device_count: " << n << (err.empty() ? "" : " error: " + err)
                                      << ", NVIDIA device node: " << hw1::gpu::nvidia_device_node_present());
  if (!hw1::gpu::nvidia_device_node_present()) BOOST_TEST((n == 0 && err.empty()), err);  // no GPU: a skip, no error
}
