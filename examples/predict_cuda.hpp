// The CUDA side of hw1-predict, declared for predict.cpp without any CUDA header; defined in predict_cuda.cu,
// which is built (and HW1_WITH_CUDA defined) where the CUDA backend is.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "hw1/core/safetensors.hpp"
#include "hw1/core/tensor.hpp"
#include "hw1/train/checkpoint.hpp"

namespace predict_cuda {
// --device cuda:N --precision P: one clear error without a usable GPU.
void use_device(int index, const std::string& precision);
// The checkpoint's network on that device, in eval mode, behind a host-to-host forward (the input goes to the
// device, the logits come back); `owner` keeps the network alive.
std::function<hw1::Tensor(const hw1::Tensor&)> load(const hw1::SafeTensors& file, const hw1::CheckpointInfo& info,
                                                    std::shared_ptr<void>& owner);
}  // namespace predict_cuda
