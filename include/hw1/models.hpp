// hw1: ResNet101 / ResNet50, VGG16-FCN32s and DeepLabv3-ResNet101 / -ResNet50, composed at compile time from the layer templates.
//   #include <hw1/models.hpp>
//   hw1::ResNet101<50> net;                       // CPU, float32; hw1::ResNet101<hw1::dynamic> net(k) for run-time k
//   hw1::Tensor y = net.forward(x);               // x: [N, 3, H, W]
#pragma once

#include "hw1/backend/cpu.hpp"
#include "hw1/core/compose.hpp"
#include "hw1/core/params.hpp"
#include "hw1/core/safetensors.hpp"
#include "hw1/core/tensor.hpp"
#include "hw1/layers/activation.hpp"
#include "hw1/layers/aspp.hpp"
#include "hw1/layers/batchnorm2d.hpp"
#include "hw1/layers/bottleneck.hpp"
#include "hw1/layers/conv2d.hpp"
#include "hw1/layers/conv_transpose2d.hpp"
#include "hw1/layers/dropout.hpp"
#include "hw1/layers/linear.hpp"
#include "hw1/layers/pooling.hpp"
#include "hw1/models/deeplabv3.hpp"
#include "hw1/models/fcn32s.hpp"
#include "hw1/models/registry.hpp"
#include "hw1/models/resnet.hpp"
