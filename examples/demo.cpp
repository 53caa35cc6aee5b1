// hw1-demo: builds every network of the registry, runs a training-mode forward and backward pass of each on generated
// inputs, and prints shapes, parameter counts and timings. (The README's first command.)
#include <chrono>
#include <cstdio>
#include <random>
#include <string>

#include "hw1/models.hpp"

namespace {

hw1::Tensor random_input(std::size_t n, std::size_t h, std::size_t w, std::uint64_t seed) {
  hw1::Tensor x = hw1::empty({n, 3, h, w});
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  for (auto& v : x) v = d(rng);
  return x;
}

template <class Net>
void demo(const char* name, Net& net, std::size_t n, std::size_t h, std::size_t w) {
  using clock = std::chrono::steady_clock;
  hw1::Tensor x = random_input(n, h, w, 1);
  net.train(true);
  auto t0 = clock::now();
  hw1::Tensor y = net.forward(x);
  auto t1 = clock::now();
  hw1::Tensor g = hw1::empty(hw1::shape_of(y));
  std::fill(g.begin(), g.end(), 1.0f / float(g.size()));
  net.zero_grad();
  hw1::Tensor dx = net.backward(g);
  auto t2 = clock::now();
  double gnorm = 0;
  for (float v : net.params().grads()) gnorm += double(v) * v;
  std::printf("%-18s %11zu params  input %-16s -> output %-16s forward %8.1f ms  backward %8.1f ms  |grad| %.3g\n",
              name, net.num_parameters(), hw1::shape_str(x.shape()).c_str(), hw1::shape_str(y.shape()).c_str(),
              std::chrono::duration<double, std::milli>(t1 - t0).count(),
              std::chrono::duration<double, std::milli>(t2 - t1).count(), std::sqrt(gnorm));
}

}  // namespace

int main() {
  try {
    std::printf("hw1 demo: one training-mode forward + backward pass per network (CPU, float32)\n");
    for (const auto& m : hw1::models) {
      const bool classifier = m.task == hw1::Task::classification;
      hw1::with_model<hw1::backend::cpu, int>(m.name, [&]<class Net>(std::type_identity<Net>) {
        Net net(hw1::ModelOptions{.num_classes = classifier ? 50 : 7});
        if (classifier) demo(Net::model_name, net, 8, 32, 32);
        else if (m.name == "fcn32s") demo(Net::model_name, net, 1, 128, 128);
        else demo(Net::model_name, net, 2, 96, 96);
        return 0;
      });
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hw1-demo: error: %s\n", e.what());
    return 1;
  }
}
