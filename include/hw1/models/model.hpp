// What every preset network shares: the flat parameter store, the pass context (train / eval, dropout seed),
// strict checkpoint loading under torchvision's names, and saving. A model Derived provides
//   void visit(ParamSet&, const std::string& prefix);  tensor forward_impl(Context&, tensor);
//   tensor backward_impl(Context&, tensor);           static constexpr const char* model_name;
#pragma once
#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "hw1/backend/backend.hpp"
#include "hw1/core/compose.hpp"
#include "hw1/core/params.hpp"
#include "hw1/core/pth.hpp"
#include "hw1/core/safetensors.hpp"

namespace hw1 {

// What a network's output is: [N, K] class logits, or [N, K, H, W] per-pixel logits at the input's size.
enum class Task { classification, segmentation };

// A preset: the name the programs and checkpoints use, a one-line description, and the ResNet depth (a
// ResNetDepth) it is built on; ResNet<Preset, ...> and DeepLab<Preset, ...> read these three.
template <fixed_string Name, fixed_string Description, class Depth>
struct Preset {
  static constexpr const char* name = Name.chars;
  static constexpr const char* description = Description.chars;
  using depth = Depth;
};

// What every preset's constructor takes (the registry builds networks from it): the class count (the template's,
// or any positive count for `dynamic`), DeepLabv3's auxiliary head (ignored by the others), the init seed.
struct ModelOptions {
  int num_classes = 0;
  bool aux_loss = false;
  std::uint64_t seed = 0;
};

struct LoadOptions {
  bool strict = true;  // false: skip missing tensors and tensors whose shape differs (fine-tuning a new head)
};
struct LoadReport {
  std::vector<std::string> loaded, missing, mismatched, unexpected;
};

template <class Derived, class B>
class Model {
  static_assert(Backend<B>, "hw1::Model: B does not meet the backend contract (hw1/backend/backend.hpp)");

 public:
  using backend_type = B;
  using scalar = typename B::scalar;
  using tensor = typename B::tensor;

  Model() = default;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // Runs the network. In training mode batch norm uses batch statistics and updates its running ones.
  tensor forward(const tensor& x) {
    prepare();
    return self().forward_impl(ctx_, x);
  }
  // Back-propagates d loss / d output; accumulates into params().grads() and returns d loss / d input.
  tensor backward(const tensor& dy) {
    prepare();
    return self().backward_impl(ctx_, dy);
  }

  void train(bool on = true) { ctx_.training = on; }
  void eval() { ctx_.training = false; }
  bool is_training() const { return ctx_.training; }
  // Keep (true) or drop (false) what backward needs; inference without it uses less memory.
  void set_record(bool on) { ctx_.record = on; }
  // Treat every dropout probability as 0 (deterministic training-mode runs, parity tests).
  void set_dropout_off(bool on) { ctx_.dropout_off = on; }
  // Compute (true, the default) or skip (false) d loss / d input in backward, which then returns a
  // default-constructed (dimensionless) tensor. Training never reads it, and the first convolution's input
  // gradient is a full-resolution pass of its own (PyTorch skips it too unless the input requires grad).
  void set_input_grad(bool on) { ctx_.input_grad = on; }
  void set_seed(std::uint64_t seed) { ctx_.seed = seed; }
  void set_step(std::uint64_t step) { ctx_.step = step; }
  // Data-parallel training (hw1/core/collective.hpp): the ranks batch norm sums its statistics over when sync_bn,
  // and the reducer backward reports finished gradients to (null: none).
  void set_collective(Collective* comm, bool sync_bn) {
    ctx_.comm = comm;
    ctx_.sync_bn = sync_bn;
  }
  void set_grad_reducer(GradReducer* r) { ctx_.grads = r; }

  ParamSet<scalar>& params() { return params_; }
  const ParamSet<scalar>& params() const { return params_; }
  std::size_t num_parameters() const { return params_.num_parameters(); }
  void zero_grad() { params_.zero_grad(); }

  // Loads tensors by name. Strict (default): every parameter and running statistic must be present with
  // its exact shape, and nothing else may be (num_batches_tracked is accepted and ignored). Transactional:
  // names, shapes and dtypes are all checked before the first value is written, so a load that throws leaves
  // the model exactly as it was.
  LoadReport load(const SafeTensors& file, LoadOptions opt = {}) {
    LoadReport r;
    std::set<std::string> seen;
    std::vector<std::pair<std::string, const typename ParamSet<scalar>::Entry*>> todo;
    for (const auto& name : file.names()) {
      if (name.ends_with("num_batches_tracked")) continue;
      const auto* e = params_.find(name);
      if (!e) {
        r.unexpected.push_back(name);
        continue;
      }
      seen.insert(name);
      const auto& in = file.info(name);
      if (in.shape != e->shape) {
        if (opt.strict)
          throw Error(file.path() + ": tensor " + name + " has shape " + shape_str(in.shape) + ", the model (" +
                      Derived::model_name + ") expects " + shape_str(e->shape));
        r.mismatched.push_back(name + " " + shape_str(in.shape) + " vs " + shape_str(e->shape));
        continue;
      }
      if (!SafeTensors::convertible(in.dtype))
        throw Error(file.path() + ": tensor " + name + " has dtype " + in.dtype + ", which cannot be converted to " +
                    "the model's parameters");
      todo.emplace_back(name, e);
    }
    for (const auto& e : params_.entries())
      if (!seen.count(e.name)) r.missing.push_back(e.name);
    if (opt.strict && !r.unexpected.empty())
      throw Error(file.path() + ": unexpected tensor " + r.unexpected.front() + " (not a parameter of " +
                  Derived::model_name + "; " + std::to_string(r.unexpected.size()) + " such tensors in all)");
    if (opt.strict && !r.missing.empty())
      throw Error(file.path() + ": missing tensor " + r.missing.front() + " with shape " +
                  shape_str(params_.find(r.missing.front())->shape) + " (" + std::to_string(r.missing.size()) +
                  " of " + std::to_string(params_.entries().size()) + " model tensors are missing)");
    // Nothing was written so far; from here on nothing throws but the device copy.
    params_.to_host();  // a partial load keeps the device's current values for the rest
    for (const auto& [name, e] : todo) {
      file.copy_to(name, params_.data(*e));
      r.loaded.push_back(name);
    }
    params_.to_device();
    return r;
  }
  // A .safetensors or a PyTorch .pth (read_weights: by content; pth_key picks the state_dict in a checkpoint dict).
  LoadReport load(const std::string& path, LoadOptions opt = {}, const std::string& pth_key = "") {
    return load(read_weights(path, pth_key), opt);
  }

  // Adds every parameter and running statistic, under its torchvision name, to a writer.
  void add_to(SafeTensorsWriter& w) const {
    params_.to_host();
    for (const auto& e : params_.entries()) w.add(e.name, e.shape, params_.data(e));
  }
  void save(const std::string& path, const std::map<std::string, std::string>& metadata = {}) const {
    SafeTensorsWriter w;
    w.metadata = metadata;
    add_to(w);
    w.write(path);
  }

 protected:
  // Called by the derived constructor once its dynamic channel counts are set.
  void finalize(std::uint64_t seed) {
    self().visit(params_, "");
    if constexpr (requires { self().adjust_init(params_); }) self().adjust_init(params_);
    params_.allocate();
    params_.initialize(seed);
    if constexpr (requires { B::attach_params(params_); }) B::attach_params(params_);  // device backends
  }
  Context<scalar>& context() { return ctx_; }

 private:
  void prepare() {
    ctx_.params = &params_;
    ctx_.calls = 0;
  }
  Derived& self() { return static_cast<Derived&>(*this); }
  ParamSet<scalar> params_;
  Context<scalar> ctx_;
};

// PyTorch's default for Conv2d / Linear (kaiming_uniform_(a=sqrt(5)) and its bias rule): U(-1/sqrt(fan_in),
// 1/sqrt(fan_in)). torchvision leaves DeepLabv3's head with it; ResNet and VGG re-initialise their own convs.
inline Init torch_default_init(std::size_t fan_in) { return {Init::uniform, 1.0 / std::sqrt(double(fan_in))}; }

inline int check_num_classes(int template_value, int requested, const char* model) {
  if (requested <= 0)
    throw Error(std::string(model) + ": the number of classes must be positive, got " + std::to_string(requested));
  if (template_value != dynamic && requested != template_value)
    throw Error(std::string(model) + ": built for " + std::to_string(template_value) + " classes, asked for " +
                std::to_string(requested) + " (use hw1::dynamic as the template argument to choose at run time)");
  return requested;
}

}  // namespace hw1
