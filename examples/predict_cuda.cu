// hw1-predict --device cuda: checkpoints loaded into the CUDA backend's networks (see predict_cuda.hpp).
#include "hw1/backend/cuda.hpp"
#include "hw1/models.hpp"
#include "predict_cuda.hpp"

namespace {
template <class Net, class... A>
std::function<hw1::Tensor(const hw1::Tensor&)> load_as(const hw1::SafeTensors& file, std::shared_ptr<void>& owner,
                                                       A... args) {
  auto net = std::make_shared<Net>(args...);
  net->load(file);
  net->eval();
  net->set_record(false);
  owner = net;
  return [net](const hw1::Tensor& x) { return net->forward(hw1::gpu::to_device(x)).to_host(); };
}
}  // namespace

void predict_cuda::use_device(int index, const std::string& precision) { hw1::gpu::use_device(index, precision); }

std::function<hw1::Tensor(const hw1::Tensor&)> predict_cuda::load(const hw1::SafeTensors& file,
                                                                  const hw1::CheckpointInfo& info,
                                                                  std::shared_ptr<void>& owner) {
  return hw1::with_model<hw1::cuda, std::function<hw1::Tensor(const hw1::Tensor&)>>(
      info.model, [&]<class Net>(std::type_identity<Net>) {
        return load_as<Net>(file, owner, hw1::ModelOptions{.num_classes = info.num_classes, .aux_loss = info.aux_loss});
      });
}
