// Learning-rate schedules at hand-computed points, including both sides of the warm-up boundary, and the
// inverse-frequency class weights.
#define BOOST_TEST_MODULE schedule
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <numbers>

#include "hw1/train/schedule.hpp"

using namespace hw1;

namespace {
ScheduleConfig schedule(std::string name, std::int64_t warmup = 0) {
  ScheduleConfig c;
  c.name = std::move(name);
  c.warmup_steps = warmup;
  return c;
}
bool close(double a, double b) { return std::abs(a - b) <= 1e-12 * std::max(1.0, std::abs(b)); }
auto message_has(const std::string& part) {
  return [part](const Error& e) { return std::string(e.what()).find(part) != std::string::npos; };
}
}  // namespace

BOOST_AUTO_TEST_CASE(constant_with_warmup) {
  // W = 4, factor 0.1, base 0.01: lr = 0.01 (0.1 + 0.9 step / 4) before step 4, then 0.01.
  auto c = schedule("constant", 4);
  BOOST_TEST(close(learning_rate(c, 0.01, 0, 100), 0.001));
  BOOST_TEST(close(learning_rate(c, 0.01, 2, 100), 0.0055));   // 0.01 (0.1 + 0.45)
  BOOST_TEST(close(learning_rate(c, 0.01, 3, 100), 0.00775));  // 0.01 (0.1 + 0.675)
  BOOST_TEST(close(learning_rate(c, 0.01, 4, 100), 0.01));
  BOOST_TEST(close(learning_rate(c, 0.01, 1000, 100), 0.01));
  c.warmup_start_factor = 0;  // from 0: step 1 of 4 gives a quarter
  BOOST_TEST(close(learning_rate(c, 0.01, 1, 100), 0.0025));
  BOOST_TEST(close(learning_rate(schedule("constant"), 0.3, 0, 10), 0.3));  // no warm-up: base from step 0
}

BOOST_AUTO_TEST_CASE(step_decay) {
  // step_size 10, gamma 0.1, base 1: 1 for steps 0-9, 0.1 for 10-19, 0.01 for 20-29
  auto c = schedule("step");
  BOOST_TEST(close(learning_rate(c, 1, 0, 0), 1));
  BOOST_TEST(close(learning_rate(c, 1, 9, 0), 1));
  BOOST_TEST(close(learning_rate(c, 1, 10, 0), 0.1));
  BOOST_TEST(close(learning_rate(c, 1, 25, 0), 0.01));
  // after 5 warm-up steps the decay counts from step 5: step 14 is t = 9, step 15 is t = 10
  c.warmup_steps = 5;
  BOOST_TEST(close(learning_rate(c, 1, 4, 0), 0.82));  // 0.1 + 0.9 * 4 / 5
  BOOST_TEST(close(learning_rate(c, 1, 5, 0), 1));
  BOOST_TEST(close(learning_rate(c, 1, 14, 0), 1));
  BOOST_TEST(close(learning_rate(c, 1, 15, 0), 0.1));
  c.step_size = 2.5;  // fractional sizes (epochs converted to steps): t = 5 is two full periods
  BOOST_TEST(close(learning_rate(c, 1, 10, 0), 0.01));
}

BOOST_AUTO_TEST_CASE(cosine) {
  // base 1, min 0.1, T = 100: 0.1 + 0.9 (1 + cos(pi t / 100)) / 2
  auto c = schedule("cosine");
  c.min_lr = 0.1;
  BOOST_TEST(close(learning_rate(c, 1, 0, 100), 1));
  BOOST_TEST(close(learning_rate(c, 1, 25, 100), 0.1 + 0.45 * (1 + std::sqrt(0.5))));  // cos(pi/4) = sqrt(1/2)
  BOOST_TEST(close(learning_rate(c, 1, 50, 100), 0.55));                              // cos(pi/2) = 0
  BOOST_TEST(close(learning_rate(c, 1, 100, 100), 0.1));                              // cos(pi) = -1
  BOOST_TEST(close(learning_rate(c, 1, 250, 100), 0.1));                              // stays at the end
  // W = 20 of 120: the cosine runs over the last 100 steps
  c.warmup_steps = 20;
  BOOST_TEST(close(learning_rate(c, 1, 10, 120), 0.55));  // warm-up halfway: 0.1 + 0.9 / 2
  BOOST_TEST(close(learning_rate(c, 1, 19, 120), 0.955));  // 0.1 + 0.9 * 19 / 20
  BOOST_TEST(close(learning_rate(c, 1, 20, 120), 1));
  BOOST_TEST(close(learning_rate(c, 1, 70, 120), 0.55));
}

BOOST_AUTO_TEST_CASE(poly) {
  // base 0.01, power 0.9, T = 100: 0.01 (1 - t / 100)^0.9
  auto c = schedule("poly");
  BOOST_TEST(close(learning_rate(c, 0.01, 0, 100), 0.01));
  BOOST_TEST(close(learning_rate(c, 0.01, 50, 100), 0.01 * 0.535886731268146));  // 0.5^0.9
  BOOST_TEST(close(learning_rate(c, 0.01, 99, 100), 0.01 * 0.015848931924611134));  // 0.01^0.9 = 10^-1.8
  BOOST_TEST(learning_rate(c, 0.01, 100, 100) == 0.0);
  c.power = 1;  // linear decay, after a 10-step warm-up over T = 90
  c.warmup_steps = 10;
  BOOST_TEST(close(learning_rate(c, 0.01, 55, 100), 0.005));  // t = 45 of 90
}

BOOST_AUTO_TEST_CASE(schedule_errors) {
  BOOST_CHECK_EXCEPTION(learning_rate(schedule("linear"), 1, 0, 10), Error,
                        message_has("constant, step, cosine, poly"));
  BOOST_CHECK_EXCEPTION(learning_rate(schedule("cosine", 10), 1, 12, 10), Error, message_has("must exceed warmup"));
  BOOST_CHECK_EXCEPTION(learning_rate(schedule("poly"), 1, 0, 0), Error, message_has("total_steps"));
  BOOST_CHECK_EXCEPTION(learning_rate(schedule("constant"), 1, -1, 10), Error, message_has("step must be >= 0"));
  auto c = schedule("step");
  c.step_size = 0;
  BOOST_CHECK_EXCEPTION(learning_rate(c, 1, 3, 10), Error, message_has("step_size"));
  c = schedule("constant", 5);
  c.warmup_start_factor = 1.5;
  BOOST_CHECK_EXCEPTION(learning_rate(c, 1, 3, 10), Error, message_has("warmup_start_factor"));
}

BOOST_AUTO_TEST_CASE(inverse_frequency) {
  // counts [10, 30, 0, 60]: 1/n = [0.1, 1/30, -, 1/60], sum 0.15 over 3 present classes; w = 3 / (0.15 n)
  auto w = inverse_frequency_weights({10, 30, 0, 60});
  BOOST_REQUIRE_EQUAL(w.size(), 4u);
  BOOST_TEST(w[0] == 2.0f, boost::test_tools::tolerance(1e-6f));
  BOOST_TEST(w[1] == 2.0f / 3, boost::test_tools::tolerance(1e-6f));
  BOOST_TEST(w[2] == 0.0f);
  BOOST_TEST(w[3] == 1.0f / 3, boost::test_tools::tolerance(1e-6f));
  // ignoring class 0: sum 1/30 + 1/60 = 0.05 over 2 classes; w = 2 / (0.05 n)
  w = inverse_frequency_weights({10, 30, 0, 60}, 0);
  BOOST_TEST(w[0] == 0.0f);
  BOOST_TEST(w[1] == 4.0f / 3, boost::test_tools::tolerance(1e-6f));
  BOOST_TEST(w[3] == 2.0f / 3, boost::test_tools::tolerance(1e-6f));
  // equal counts give 1 everywhere; an ignore index outside the classes (VOC's 255) excludes nothing
  for (float x : inverse_frequency_weights({7, 7, 7}, 255)) BOOST_TEST(x == 1.0f);
  BOOST_CHECK_EXCEPTION(inverse_frequency_weights({0, 0, 5}, 2), Error, message_has("no class"));
  BOOST_CHECK_EXCEPTION(inverse_frequency_weights({3, -1}), Error, message_has("negative count"));
}
