// hw1-train-classifier --device cuda: the trainer body (train_classifier.hpp) on the CUDA backend.
#include "hw1/backend/cuda/train.cuh"
#include "train_classifier.hpp"

int classifier::train_classifier_cuda(const std::string& model, const hw1::RunArgs& ra, const hw1::DeviceOption& dev) {
  hw1::gpu::use_device(hw1::examples::device_index(dev, hw1::gpu::device_count()), dev.precision);
  return train_model<hw1::cuda>(model, ra, dev);
}
