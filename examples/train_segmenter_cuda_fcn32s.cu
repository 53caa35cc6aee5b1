// hw1-train-segmenter --model fcn32s --device cuda: the trainer body (train_segmenter.hpp) on the CUDA backend.
#include "hw1/backend/cuda/train.cuh"
#include "train_segmenter.hpp"

int segmenter::train_fcn32s_cuda(const hw1::RunArgs& ra, const hw1::DeviceOption& dev) {
  hw1::gpu::use_device(hw1::examples::device_index(dev, hw1::gpu::device_count()), dev.precision);
  return train_net<hw1::FCN32s<hw1::dynamic, hw1::cuda>>(ra, dev);
}
