// hw1-forward: run one of the preset networks (hw1/models/registry.hpp) (weights from a .safetensors or a PyTorch .pth) on a safetensors input, optionally back-propagate a given output
// gradient, and write the results under torchvision's names. The interop / debugging tool: compare with PyTorch,
// inspect a checkpoint, check a port.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>

#include "hw1/models.hpp"
#include "hw1/train/cli.hpp"

namespace {

const std::string kUsage =
    "usage: hw1-forward --model " + hw1::model_names() + "\n"
    "                   --num-classes K --weights W.safetensors|W.pth\n"
    "                   --input X.safetensors --output Y.safetensors [--train]\n"
    "                   [--grad-output G.safetensors --grads D.safetensors] [--seed S] [--dtype float32|float64]\n"
    "                   [--trace-algorithms]\n"
    "  X holds tensor `input` [N,3,H,W]; Y receives `output` ([N,K] or [N,K,H,W]).\n"
    "  --train       batch norm uses batch statistics (Y also holds every updated running_mean/running_var);\n"
    "                dropout probabilities are treated as 0 so the run is deterministic.\n"
    "  --grad-output back-propagates tensor `grad_output` (shaped like `output`); D receives the gradient of\n"
    "                the input under `input` and of every trainable parameter under its name.\n"
    "  --weights     may be omitted to use a seeded random initialisation (--seed, default 0). A PyTorch .pth\n"
    "                (torch.save of a state_dict, either format) is read as it is; --pth-key K picks the state_dict\n"
    "                under key K of a checkpoint dict (default: the only one there); `module.` prefixes are dropped.\n"
    "  --dtype       compute in float32 (default) or float64 (the same templates, for checking against a\n"
    "                float64 reference); outputs are written in that precision.\n"
    "  --trace-algorithms  print how many convolution calls took each CPU algorithm (a line 'algorithms: ...';\n"
    "                the selector's choices depend on shape, thread count and CPU: tests/parity checks them).\n";

struct Args {
  std::string model, weights, pth_key, input, output, grad_output, grads, dtype = "float32";
  int num_classes = 0;
  bool train = false, trace = false;
  std::uint64_t seed = 0;
};

using hw1::UsageError;

// hw1::Cli reads the options (ranges, values that are flags); the checks below are this program's own.
Args parse(int argc, char** argv) {
  const hw1::Cli cli(argc, argv,
                     {"--model", "--weights", "--pth-key", "--input", "--output", "--grad-output", "--grads", "--dtype",
                      "--num-classes", "--seed"},
                     {"--train", "--trace-algorithms"}, kUsage,
                     {{"--weights", "a file"}, {"--pth-key", "a key"}, {"--input", "a file"}, {"--output", "a file"},
                      {"--grad-output", "a file"}, {"--grads", "a file"}, {"--dtype", "a name"}});
  Args a;
  a.model = cli.str("--model");
  a.weights = cli.str("--weights");
  a.pth_key = cli.str("--pth-key");
  a.input = cli.str("--input");
  a.output = cli.str("--output");
  a.grad_output = cli.str("--grad-output");
  a.grads = cli.str("--grads");
  a.dtype = cli.str("--dtype", a.dtype);
  // The class count 1..100000 (hw1::kMaxClasses), so it cannot wrap in the int it is stored in.
  a.num_classes = int(cli.integer("--num-classes", 0, 1, hw1::kMaxClasses));
  a.seed = std::uint64_t(cli.integer("--seed", 0, 0, hw1::kMaxSeed));
  a.train = cli.flag("--train");
  a.trace = cli.flag("--trace-algorithms");
  if (a.model.empty()) throw UsageError("--model is required (" + hw1::model_names(", ") + ")");
  if (!hw1::find_model(a.model))
    throw UsageError("--model must be one of " + hw1::model_names(", ") + ", got '" + a.model + "'");
  if (a.num_classes <= 0) throw UsageError("--num-classes K (K >= 1) is required");
  if (a.input.empty()) throw UsageError("--input is required");
  if (a.output.empty()) throw UsageError("--output is required");
  if (a.dtype != "float32" && a.dtype != "float64")
    throw UsageError("--dtype must be float32 or float64, got '" + a.dtype + "'");
  if (a.grad_output.empty() != a.grads.empty()) throw UsageError("--grad-output and --grads go together");
  return a;
}

template <class T>
hw1::HostTensor<T> read_tensor(const std::string& path, const std::string& name) {
  auto f = hw1::SafeTensors::read(path);
  if (!f.has(name)) throw hw1::Error(path + ": has no tensor named '" + name + "'");
  return f.tensor<T>(name);
}

template <class Net>
int run(Net& net, const Args& a, std::optional<hw1::SafeTensors>& weights) {
  using clock = std::chrono::steady_clock;
  using T = typename Net::scalar;
  using Tensor = hw1::HostTensor<T>;
  if (weights) net.load(*weights);
  Tensor x = read_tensor<T>(a.input, "input");
  net.train(a.train);
  net.set_dropout_off(true);
  net.set_record(!a.grads.empty());
  auto t0 = clock::now();
  Tensor y = net.forward(x);
  auto t1 = clock::now();

  hw1::SafeTensorsWriter out;
  out.add("output", y);
  if constexpr (requires { net.aux_output(); })
    if (net.has_aux()) out.add("aux", net.aux_output());
  if (a.train)
    for (const auto& e : net.params().entries())
      if (!e.trainable) out.add(e.name, e.shape, net.params().data(e));

  double backward_ms = 0;
  if (!a.grads.empty()) {
    Tensor g = read_tensor<T>(a.grad_output, "grad_output");
    if (g.shape() != y.shape())
      throw hw1::Error(a.grad_output + ": grad_output has shape " + hw1::shape_str(g.shape()) +
                       ", the output has shape " + hw1::shape_str(y.shape()));
    net.zero_grad();
    auto t2 = clock::now();
    Tensor dx = net.backward(g);
    backward_ms = std::chrono::duration<double, std::milli>(clock::now() - t2).count();
    hw1::SafeTensorsWriter d;
    d.add("input", dx);
    for (const auto& e : net.params().entries())
      if (e.trainable) d.add(e.name, e.shape, net.params().grad(e));
    d.write(a.grads);
  }
  out.write(a.output);
  std::cout << a.model << ": input " << hw1::shape_str(x.shape()) << " -> output " << hw1::shape_str(y.shape())
            << ", " << net.num_parameters() << " parameters, forward "
            << std::chrono::duration<double, std::milli>(t1 - t0).count() << " ms";
  if (!a.grads.empty()) std::cout << ", backward " << backward_ms << " ms";
  std::cout << (a.train ? " (train mode)" : " (eval mode)") << "\n";
  if (a.trace) std::cout << "algorithms: " << hw1::cpu::algo_counts_str() << "\n";
  return 0;
}

template <class B>
int dispatch(const Args& a, std::optional<hw1::SafeTensors>& weights) {
  return hw1::with_model<B, int>(a.model, [&]<class Net>(std::type_identity<Net>) {
    // torchvision's aux_loss=True checkpoints carry aux_classifier.*: build the head they describe.
    bool aux = false;
    if (Net::has_aux_head && weights)
      for (const auto& n : weights->names()) aux = aux || n.starts_with("aux_classifier.");
    Net net(hw1::ModelOptions{.num_classes = a.num_classes, .aux_loss = aux, .seed = a.seed});
    return run(net, a, weights);
  });
}

}  // namespace

int main(int argc, char** argv) {
  return hw1::run_main("hw1-forward", kUsage, [&] {
    const Args a = parse(argc, argv);
    std::optional<hw1::SafeTensors> weights;
    if (!a.weights.empty()) weights = hw1::read_weights(a.weights, a.pth_key);
    else if (!a.pth_key.empty()) throw hw1::UsageError("--pth-key goes with --weights FILE.pth");
    return a.dtype == "float64" ? dispatch<hw1::backend::cpu_t<double>>(a, weights)
                                : dispatch<hw1::backend::cpu>(a, weights);
  });
}
