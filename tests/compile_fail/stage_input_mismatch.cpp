// EXPECT-ERROR: channel mismatch
// A classifier head wired to the wrong feature width: ResNet's 2048 features into a Linear<1024, 10>.
#include <hw1/models.hpp>

using Bad = hw1::Seq<hw1::Stage<hw1::Bottleneck<512, 2048, 2>, 3>, hw1::GlobalAvgPool, hw1::Linear<1024, 10>>;
Bad::bind<1024, hw1::backend::cpu> layer;
int main() { return 0; }
