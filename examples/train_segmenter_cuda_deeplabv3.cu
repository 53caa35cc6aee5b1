// hw1-train-segmenter --model deeplabv3|deeplabv3_resnet50 --device cuda: the trainer body (train_segmenter.hpp)
// on the CUDA backend.
#include "hw1/backend/cuda/train.cuh"
#include "train_segmenter.hpp"

int segmenter::train_deeplab_cuda(const std::string& model, const hw1::RunArgs& ra, const hw1::DeviceOption& dev) {
  hw1::gpu::use_device(hw1::examples::device_index(dev, hw1::gpu::device_count()), dev.precision);
  return hw1::with_model<hw1::cuda, int>(model, [&]<class Net>(std::type_identity<Net>)
                                                     requires(Net::task == hw1::Task::segmentation && Net::has_aux_head) {
                                                       return train_net<Net>(ra, dev);
                                                     });
}
