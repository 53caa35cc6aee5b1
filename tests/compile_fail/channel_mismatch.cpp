// EXPECT-ERROR: channel mismatch
// A 64-channel convolution followed by a 32-channel batch norm must not compile, and must say why.
#include <hw1/models.hpp>

using Bad = hw1::Seq<hw1::Conv2d<3, 64, 3>, hw1::BatchNorm2d<32>>;
Bad::bind<3, hw1::backend::cpu> layer;
int main() { return 0; }
