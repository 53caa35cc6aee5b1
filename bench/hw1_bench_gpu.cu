// hw1-bench-gpu: the GPU rows of the benchmark, one row per process, one JSON line (bench/compare --device cuda
// runs it beside bench/torch_bench.py --device cuda). Built only with the CUDA backend; hw1-bench (CPU) needs no
// CUDA.
//   hw1-bench-gpu --row resnet101-train-224-b64 [--precision float32|tf32|fp16|bf16] [--iters N] [--warmup W]
// Rows: <net>-<infer|train>-<size>[-b<batch>] for resnet101 and deeplabv3 (batch default 8; FCN32s is left out to
// keep this translation unit's compile time down). A training
// step is what hw1-train-* does on the GPU: forward, device cross-entropy, backward, SGD with momentum on the
// device (fp16: dynamic loss scaling with the gradient check); every step ends with a stream synchronisation.
// Peak GPU memory: the most held by live tensors (torch.cuda.max_memory_allocated's counterpart) and the most
// obtained from cudaMalloc (max_memory_reserved's), measured over the timed steps and the warm-up.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "hw1/backend/cuda/train.cuh"
#include "hw1/models.hpp"
#include "hw1/train/cli.hpp"
#include "bench_common.hpp"

namespace {

using hw1::bench::time_it;

template <class Net>
void run_net(Net& net, const std::string& row, bool train, std::size_t batch, std::size_t size, int warmup,
             int iters, int classes, const std::string& precision) {
  using Ops = hw1::TrainOps<hw1::cuda>;
  auto& dev = hw1::gpu::device();
  hw1::Tensor xh = hw1::empty({batch, 3, size, size});
  std::mt19937 rng(0);
  std::normal_distribution<float> d;
  for (auto& v : xh) v = d(rng);
  const auto x = hw1::gpu::to_device(xh);
  dev.synchronize();
  dev.reset_peaks();
  std::vector<double> t;
  if (!train) {
    net.eval();
    net.set_record(false);
    t = time_it(
        [&] {
          (void)net.forward(x);
          dev.synchronize();
        },
        warmup, iters);
  } else {
    net.train(true);
    net.set_record(true);
    net.set_input_grad(false);  // as on PyTorch's side, whose input does not require grad
    hw1::OptimizerConfig oc;
    oc.name = "sgd";
    oc.momentum = 0.9;
    auto opt = Ops::make_optimizer(oc);
    hw1::LossScaler scaler;
    scaler.enabled = precision == "fp16";
    hw1::gpu::DeviceBuffer<std::int64_t> target;
    auto& ps = net.params();
    t = time_it(
        [&] {
          auto y = net.forward(x);
          if (target.size() == 0) {
            const std::size_t per = y.dimension() == 4 ? y.shape()[2] * y.shape()[3] : 1;
            std::vector<std::int64_t> h(batch * per);
            for (std::size_t i = 0; i < h.size(); ++i) h[i] = std::int64_t(i % std::size_t(classes));
            target = Ops::targets(h);
          }
          auto l = Ops::cross_entropy(y, target, {}, scaler.grad_scale());
          net.zero_grad();
          net.backward(l.grad);
          if (!scaler.enabled || scaler.update(Ops::unscale_grads(ps, 1.0 / scaler.scale)))
            opt->step(ps.value(0), ps.grad(0), ps.flat_size(), 1e-4);
          dev.synchronize();
        },
        warmup, iters);
  }
  const double median = t[t.size() / 2];
  cudaDeviceProp prop{};
  HW1_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev.id()));
  std::printf("{\"row\": \"%s\", \"impl\": \"hw1\", \"device\": \"%s\", \"precision\": \"%s\", \"batch\": %zu, "
              "\"median_s\": %.6f, \"min_s\": %.6f, \"img_per_s\": %.4f, \"peak_alloc_mib\": %.1f, "
              "\"peak_reserved_mib\": %.1f}\n",
              row.c_str(), prop.name, precision.c_str(), batch, median, t.front(), double(batch) / median,
              double(dev.peak_live_bytes()) / 1048576.0, double(dev.peak_reserved_bytes()) / 1048576.0);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string usage =
      "usage: hw1-bench-gpu --row NAME [--precision float32|tf32|fp16|bf16] [--device N] [--iters N] [--warmup W]\n"
      "  NAME: <net>-<infer|train>-<size>[-b<batch>], net = resnet101 | deeplabv3 (batch default 8);\n"
      "        the issue's rows: resnet101-train-224-b64, deeplabv3-train-512-b8, deeplabv3-infer-512-b8\n";
  return hw1::run_main("hw1-bench-gpu", usage, [&] {
    hw1::Cli cli(argc, argv, {"--row", "--iters", "--warmup", "--precision", "--device"}, {}, usage);
    const std::string row = cli.required("--row");
    const int iters = int(cli.integer("--iters", 10, 1, 1000000)), warmup = int(cli.integer("--warmup", 3, 0, 1000000));
    const std::string precision = cli.choice("--precision", "float32", {"float32", "tf32", "fp16", "bf16"});
    hw1::gpu::use_device(int(cli.integer("--device", 0, 0, 1023)), precision);
    const auto r = hw1::bench::parse_row(row);
    const bool train = r.train;
    const std::size_t size = r.size, batch = r.batch ? r.batch : 8;
    const hw1::ModelInfo* info = hw1::find_model(r.net);
    if (!info) throw hw1::UsageError("unknown network in row '" + row + "' (networks: " + hw1::model_names(", ") + ")");
    const int k = info->task == hw1::Task::classification ? 50 : 7;
    hw1::with_model<hw1::cuda, int>(r.net, [&]<class Net>(std::type_identity<Net>) {
      Net net(hw1::ModelOptions{.num_classes = k});
      run_net(net, row, train, batch, size, warmup, iters, k, precision);
      return 0;
    });
    return 0;
  });
}
