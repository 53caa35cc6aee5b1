// EXPECT-ERROR: channels_match<2048, 1024>
// A network's member list wired wrong: a ResNet trunk (layer4 ends in 2048 channels) followed by a head written for
// 1024 features. Each member is bound to the previous one's output, so this is a compile error naming both counts.
#include <hw1/models.hpp>

using Bad = hw1::seq_append_t<hw1::ResNetTrunk<hw1::ResNet50Depth, false>, hw1::Named<"avgpool", hw1::GlobalAvgPool>,
                              hw1::Named<"fc", hw1::Linear<1024, 10>>>;
Bad::bind<3, hw1::backend::cpu> net;
int main() { return 0; }
