#include <hw1/models.hpp>
#include <iostream>

int main() {
  hw1::ResNet101<10> net;                                   // torchvision's resnet101(num_classes=10)
  hw1::Tensor y = net.forward(hw1::zeros({1, 3, 32, 32}));  // one 32x32 RGB image, NCHW
  std::cout << "output shape " << hw1::shape_str(hw1::shape_of(y)) << '\n'
            << "parameters " << net.num_parameters() << '\n';
}
