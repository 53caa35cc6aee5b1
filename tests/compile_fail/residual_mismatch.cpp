// EXPECT-ERROR: main branch and the shortcut must produce the same number of channels
// A residual block whose branches disagree (128 vs 64 channels) must not compile.
#include <hw1/models.hpp>

using Bad = hw1::Residual<hw1::Seq<hw1::Conv3x3<64, 128>, hw1::BatchNorm2d<128>>>;
Bad::bind<64, hw1::backend::cpu> layer;
int main() { return 0; }
