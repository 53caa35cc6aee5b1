// A Boost.Test precondition for kernels a build or the environment may leave out: the test case runs where On()
// holds, and otherwise reports itself skipped, with `why`, rather than passing without running.
#pragma once
#include <boost/test/unit_test.hpp>

namespace hw1::test {

template <bool (*On)()>
struct RunsWhen {
  const char* why;
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    boost::test_tools::assertion_result r(On());
    r.message() << why;
    return r;
  }
};

}  // namespace hw1::test
