// The model registry: the one list of the preset networks that every program takes by name (--model), and the
// dispatch from that name to the network type. Adding a network is its header plus one row in `model_list`.
//   hw1::with_model<hw1::backend::cpu, int>("resnet50", [&]<class Net>(std::type_identity<Net>) {
//     Net net(hw1::ModelOptions{.num_classes = 10});  ...  return 0; });
// A caller that handles only some networks says so in its lambda's constraints (e.g. `requires
// (Net::task == hw1::Task::segmentation)`); a name it cannot take is then a UsageError listing the ones it can.
#pragma once
#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

#include "hw1/backend/cpu.hpp"
#include "hw1/core/error.hpp"
#include "hw1/models/deeplabv3.hpp"
#include "hw1/models/fcn32s.hpp"
#include "hw1/models/resnet.hpp"

namespace hw1 {

// The presets, each with a run-time class count, on backend B. One row per network.
template <class B>
using model_list = std::tuple<ResNet101<dynamic, B>,           //
                              ResNet50<dynamic, B>,            //
                              FCN32s<dynamic, B>,              //
                              DeepLabV3<dynamic, B>,           //
                              DeepLabV3ResNet50<dynamic, B>>;  //

// What a program needs to know of a network without building it (read from the types above).
struct ModelInfo {
  std::string_view name;         // --model, checkpoint metadata, the tensors' file names
  Task task;                     // classification ([N, K] logits) or segmentation ([N, K, H, W])
  std::string_view head_weight;  // the last layer's weight, whose rows are the classes
  bool has_aux_head;             // DeepLabv3's optional auxiliary FCNHead (aux_classifier.*)
  std::string_view description;
};

namespace detail {
template <class... M>
constexpr auto model_infos(std::tuple<M...>*) {
  return std::array<ModelInfo, sizeof...(M)>{
      ModelInfo{M::model_name, M::task, M::head_weight, M::has_aux_head, M::description}...};
}
}  // namespace detail

inline constexpr auto models = detail::model_infos(static_cast<model_list<backend::cpu>*>(nullptr));

// The network named `name`, or null.
constexpr const ModelInfo* find_model(std::string_view name) {
  for (const auto& m : models)
    if (m.name == name) return &m;
  return nullptr;
}

// "resnet101|resnet50|..." (the names of one task, or all).
inline std::string model_names(const char* sep = "|", const Task* only = nullptr) {
  std::string s;
  for (const auto& m : models)
    if (!only || m.task == *only) s += (s.empty() ? "" : sep) + std::string(m.name);
  return s;
}
inline std::string model_names(Task only, const char* sep = "|") { return model_names(sep, &only); }
// The names of one task's networks, in registry order (a --model choice list, an expect_model check).
inline std::vector<std::string> model_names_of(Task task) {
  std::vector<std::string> v;
  for (const auto& m : models)
    if (m.task == task) v.emplace_back(m.name);
  return v;
}

// Calls f(std::type_identity<Net>{}) for the network of that name on backend B and returns its result (R).
// Unknown names, and names of networks f does not accept, are UsageErrors that list what f accepts.
template <class B, class R, class F>
  requires(!std::is_void_v<R>)
R with_model(std::string_view name, F&& f) {
  using list = model_list<B>;
  std::string accepted;
  const ModelInfo* hit = nullptr;
  std::optional<R> result;
  // One pass over the rows: the accepted names for the error, and f called on the row named `name`.
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    auto one = [&]<class M>(std::type_identity<M> t, const ModelInfo& info) {
      constexpr bool takes = std::is_invocable_v<F&, std::type_identity<M>>;
      if constexpr (takes) accepted += (accepted.empty() ? "" : ", ") + std::string(info.name);
      if (info.name != name) return;
      hit = &info;
      if constexpr (takes) result.emplace(f(t));
    };
    (one(std::type_identity<std::tuple_element_t<I, list>>{}, models[I]), ...);
  }(std::make_index_sequence<std::tuple_size_v<list>>{});
  if (result) return std::move(*result);
  throw UsageError((hit ? "--model " + std::string(name) + " is not one this program takes"
                        : "unknown model '" + std::string(name) + "'") +
                   " (it takes: " + accepted + ")");
}

}  // namespace hw1
