// EXPECT-ERROR: static assertion failed: Wire: the producer's channel count must equal the consumer's
// Checks the compile_fail harness itself: a type-level wiring mistake must stop the build with this sentence.
#include "hw1/core/tensor.hpp"

template <int Out>
struct Producer {
  static constexpr int out = Out;
};
template <class P, int In>
struct Wire {
  static_assert(P::out == In, "Wire: the producer's channel count must equal the consumer's");
};

int main() {
  [[maybe_unused]] Wire<Producer<64>, 64> fine;
  [[maybe_unused]] Wire<Producer<64>, 128> broken;
}
