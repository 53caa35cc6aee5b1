// Compile-time composition. A *spec* (Conv2d<3,64,7,2,3>, Bottleneck<64,256>, Seq<...>) says what a layer is;
// `spec::bind<In, Backend>` is the layer itself, with the input channel count bound by whatever comes before it.
// Bound layers share one small contract:
//   static constexpr int in_channels, out_channels;      // `dynamic` where fixed only at run time (class heads)
//   void visit(ParamSet<T>&, const std::string& prefix); // registers tensors under torchvision's names
//   tensor forward(Context<T>&, tensor x);               // keeps what backward needs when ctx.record
//   tensor backward(Context<T>&, tensor dy);             // accumulates parameter gradients, returns dx
// Packs are flat (Seq over a parameter pack, fold expressions), so deep networks stay shallow types.
#pragma once
#include <array>
#include <concepts>
#include <cstddef>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include "hw1/core/params.hpp"
#include "hw1/core/tensor.hpp"

namespace hw1 {

// A channel count known only at run time (a model's number of classes, chosen by the user).
inline constexpr int dynamic = -1;

namespace backend {
template <class T>
struct cpu_t;
using cpu = cpu_t<float>;
}  // namespace backend

// The readable compile error when two layers are wired with different channel counts. GCC and Clang print the
// instantiation `channels_match<Produced, Expected, ...>`, so the numbers appear right next to this sentence.
template <int Produced, int Expected>
struct channels_match {
  static constexpr bool value = Produced == Expected || Produced == dynamic || Expected == dynamic;
  static_assert(value,
                "hw1: channel mismatch: a layer expects `Expected` input channels but the layer before it produces "
                "`Produced` channels (see channels_match<Produced, Expected> in this message)");
};

template <class L>
concept BoundLayer = requires(L l, ParamSet<typename L::scalar>& ps, Context<typename L::scalar>& c,
                              typename L::tensor t) {
  { L::in_channels } -> std::convertible_to<int>;
  { L::out_channels } -> std::convertible_to<int>;
  l.visit(ps, std::string{});
  { l.forward(c, t) } -> std::same_as<typename L::tensor>;
  { l.backward(c, t) } -> std::same_as<typename L::tensor>;
};

template <class S, int In = 3, class B = backend::cpu>
concept LayerSpec = requires { typename S::template bind<In, B>; };

// A layer's name for messages: its parameter prefix without the trailing dot ("layer1.0.conv1"), or `fallback`.
inline std::string layer_name(const std::string& prefix, const char* fallback) {
  return prefix.empty() ? fallback : prefix.substr(0, prefix.size() - 1);
}

// N, C, H, W of a layer's input, which must have `channels` channels (the run-time twin of channels_match).
template <class E>
Dims4 checked_input(const E& x, const std::string& name, int channels) {
  const Dims4 d = dims4(x, name.c_str());
  if (d.c != channels)
    throw Error(name + ": expected " + std::to_string(channels) + " input channels, got " + std::to_string(d.c) +
                " (input shape " + shape_str(x.shape()) + ")");
  return d;
}

// Common typedefs of a bound layer.
template <int In, int Out, class B>
struct LayerBase {
  using backend_type = B;
  using scalar = typename B::scalar;
  using tensor = typename B::tensor;
  using context = Context<scalar>;
  using params = ParamSet<scalar>;
  static constexpr int in_channels = In;
  static constexpr int out_channels = Out;
};

// ---------------------------------------------------------------------------------------------------------------
// Names. Named<"conv1", Spec> is Spec under a torchvision member name: inside a Seq (or Fields) it is visited as
// "conv1." instead of its index, and found with get<"conv1">(). A bound Named is the bound Spec itself plus the name
// (NamedLayer derives from it), so fusion and every layer's own methods see through it.
template <std::size_t N>
struct fixed_string {
  char chars[N]{};
  constexpr fixed_string(const char (&s)[N]) {  // NOLINT: implicit, so that Named<"conv1", ...> reads as it should
    for (std::size_t i = 0; i < N; ++i) chars[i] = s[i];
  }
  constexpr std::string_view view() const { return {chars, N - 1}; }
  std::string str() const { return std::string(chars, N - 1); }
};
template <std::size_t N, std::size_t M>
constexpr bool operator==(const fixed_string<N>& a, const fixed_string<M>& b) {
  return a.view() == b.view();
}

template <fixed_string Name, class L>
struct NamedLayer : L {
  static constexpr fixed_string member_name = Name;
  using L::L;
};

template <fixed_string Name, class Spec>
struct Named {
  static_assert(Name.view().size() > 0 && Name.view().find('.') == std::string_view::npos,
                "hw1::Named: a member name is one non-empty path component (no '.')");
  static constexpr fixed_string name = Name;
  using spec = Spec;
  template <int In, class B>
  using bind = NamedLayer<Name, typename Spec::template bind<In, B>>;
};

namespace detail {
template <class L>
concept HasMemberName = requires { L::member_name; };
// The parameter prefix of child I: its member name where it has one, else its index (torch.nn.Sequential).
template <class L>
std::string child_prefix(const std::string& prefix, std::size_t index) {
  if constexpr (HasMemberName<L>)
    return prefix + L::member_name.str() + ".";
  else
    return prefix + std::to_string(index) + ".";
}
// Index of the child named Name among Ls (a compile error when none or several are).
template <fixed_string Name, class... Ls>
consteval std::size_t index_of_name() {
  std::size_t found = sizeof...(Ls), count = 0, i = 0;
  auto one = [&]<class L>() {
    if constexpr (HasMemberName<L>) {
      if (L::member_name == Name) found = i, ++count;
    }
    ++i;
  };
  (one.template operator()<Ls>(), ...);
  if (count != 1) throw "hw1: no member (or more than one) of this name";  // not a constant expression: error
  return found;
}
}  // namespace detail

// Fields<Named<"conv1", Conv1x1<64, 64>>, ...>: a block's members when its forward is not a plain sequence (a
// residual block). Each member is bound with its own channel counts (`dynamic` input), visited under its name in
// the order listed, and reached with get<"conv1">(): the list is where a block's members and names are written once.
template <class B, class... Specs>
class Fields {
  using Layers = std::tuple<typename Specs::template bind<dynamic, B>...>;

 public:
  using params = ParamSet<typename B::scalar>;
  void visit(params& ps, const std::string& prefix) { visit_each(ps, prefix, std::index_sequence_for<Specs...>{}); }
  template <fixed_string Name>
  auto& get() {
    return std::get<detail::index_of_name<Name, typename Specs::template bind<dynamic, B>...>()>(layers_);
  }

 private:
  template <std::size_t... I>
  void visit_each(params& ps, const std::string& prefix, std::index_sequence<I...>) {
    (std::get<I>(layers_).visit(ps, detail::child_prefix<std::tuple_element_t<I, Layers>>(prefix, I)), ...);
  }
  Layers layers_;
};

// ---------------------------------------------------------------------------------------------------------------
// Inference fusion: Conv2d -> BatchNorm2d -> ReLU (and Conv2d -> ReLU, Conv2d -> BatchNorm2d) run as one pass over
// the convolution's output (batch norm's running statistics folded into a per-channel scale and shift) when the
// backend can (B::fuses_conv: the CPU one) and the run records nothing for backward (eval + set_record(false)).
// The same numbers up to float rounding; training, recording runs and other backends take the layers one by one.
namespace detail {
template <class L>
concept FusableConv = requires { requires L::fusable_conv; };
template <class L>
concept FusableBn = requires { requires L::fusable_bn; };
template <class L>
concept FusableRelu = requires { requires L::fusable_relu; };
template <class B>
concept FusingBackend = requires { requires B::fuses_conv; };
}  // namespace detail

template <class B, class Ctx>
bool fusable(const Ctx& c) {
  if constexpr (detail::FusingBackend<B>)
    return !c.training && !c.record;
  else
    return false;
}

// act(bn(conv(x))): bn and relu are the layers that follow conv, or null where there is none. x by value is
// consumed; a const x is only read where the three fuse, and copied for conv to record otherwise.
template <class Conv, class Bn, class Relu>
typename Conv::tensor conv_bn_relu(typename Conv::context& c, Conv& conv, Bn* bn, Relu* relu,
                                   typename Conv::tensor&& x) {
  if constexpr (detail::FusingBackend<typename Conv::backend_type>) {
    if (fusable<typename Conv::backend_type>(c)) return conv.forward_fused(c, x, bn, relu != nullptr);
  }
  typename Conv::tensor y = conv.forward(c, std::move(x));
  if (bn) return bn->forward_then(c, std::move(y), relu);  // the ReLU in the batch norm's pass where it can
  if (relu) y = relu->forward(c, std::move(y));
  return y;
}
template <class Conv, class Bn, class Relu>
typename Conv::tensor conv_bn_relu(typename Conv::context& c, Conv& conv, Bn* bn, Relu* relu,
                                   const typename Conv::tensor& x) {
  if constexpr (detail::FusingBackend<typename Conv::backend_type>) {
    if (fusable<typename Conv::backend_type>(c)) return conv.forward_fused(c, x, bn, relu != nullptr);
  }
  return conv_bn_relu(c, conv, bn, relu, typename Conv::tensor(x));
}

// act(bn(conv(x)) + shortcut), the end of a residual block: fused like conv_bn_relu where the backend can, so that
// the add and the ReLU cost no pass of their own. `what` names the block in the shape error.
template <class Conv, class Bn, class Relu>
typename Conv::tensor conv_bn_add_relu(typename Conv::context& c, Conv& conv, Bn* bn, Relu* relu,
                                       typename Conv::tensor x, const typename Conv::tensor& shortcut,
                                       const char* what) {
  using B = typename Conv::backend_type;
  if constexpr (detail::FusingBackend<B>) {
    if (fusable<B>(c)) return conv.forward_fused(c, std::move(x), bn, relu != nullptr, &shortcut);
  }
  x = conv.forward(c, std::move(x));
  if (x.shape() != shortcut.shape())
    throw Error(std::string(what) + ": main path " + shape_str(x.shape()) + " and shortcut " +
                shape_str(shortcut.shape()) + " differ");
  if (bn) return bn->forward_then(c, std::move(x), relu, &shortcut);  // add and ReLU in the batch norm's pass
  B::add_forward(x.size(), x.data(), shortcut.data(), x.data());
  if (relu) x = relu->forward(c, std::move(x));
  return x;
}

// ---------------------------------------------------------------------------------------------------------------
// Seq<A, B, C>: A, then B, then C; children are named "0.", "1.", ... as in torch.nn.Sequential.
namespace detail {
template <int In, class B, class... Specs>
struct chain {
  using type = std::tuple<>;
};
template <int In, class B, class S0, class... Rest>
struct chain<In, B, S0, Rest...> {
  using L0 = typename S0::template bind<In, B>;
  using tail = typename chain<L0::out_channels, B, Rest...>::type;
  using type = decltype(std::tuple_cat(std::declval<std::tuple<L0>>(), std::declval<tail>()));
};
template <class Tuple>
struct last_out;
template <class... Ls>
struct last_out<std::tuple<Ls...>> {
  static constexpr int value = std::tuple_element_t<sizeof...(Ls) - 1, std::tuple<Ls...>>::out_channels;
};
}  // namespace detail

template <int In, class B, class Layers>
class SeqLayer;

template <int In, class B, class... Ls>
class SeqLayer<In, B, std::tuple<Ls...>>
    : public LayerBase<In, detail::last_out<std::tuple<Ls...>>::value, B> {
  using Base = LayerBase<In, detail::last_out<std::tuple<Ls...>>::value, B>;

 public:
  using typename Base::context;
  using typename Base::params;
  using typename Base::tensor;
  static constexpr std::size_t size = sizeof...(Ls);

  void visit(params& ps, const std::string& prefix) {
    visit_each(ps, prefix, std::index_sequence_for<Ls...>{});
  }
  tensor forward(context& c, tensor x) {
    forward_from<0, size, size>(c, x, fusable<B>(c), nullptr);
    return x;
  }
  // forward(), keeping a copy of the output of the member named Tap in *tap (DeepLabv3's auxiliary head reads
  // layer3); a null tap keeps nothing.
  template <fixed_string Tap>
  tensor forward(context& c, tensor x, tensor* tap) {
    forward_from<0, size, index_of<Tap>()>(c, x, fusable<B>(c), tap);
    return x;
  }
  // The members up to and including the one named Last (ResNet's features: up to the average pool).
  template <fixed_string Last>
  tensor forward_until(context& c, tensor x) {
    forward_from<0, index_of<Last>() + 1, size>(c, x, fusable<B>(c), nullptr);
    return x;
  }
  // want_dx false: the first layer, where it can (a convolution), computes only its parameters' gradients and
  // the result is an empty tensor.
  tensor backward(context& c, tensor dy, bool want_dx = true) {
    backward_each<size>(c, dy, want_dx, nullptr, std::make_index_sequence<size>{});
    return dy;
  }
  // backward(), with *dtap (when not null) added to the gradient that flows into the output of the member Tap.
  template <fixed_string Tap>
  tensor backward(context& c, tensor dy, const tensor* dtap, bool want_dx = true) {
    backward_each<index_of<Tap>()>(c, dy, want_dx, dtap, std::make_index_sequence<size>{});
    return dy;
  }
  template <std::size_t I>
  auto& get() { return std::get<I>(layers_); }
  template <fixed_string Name>
  auto& get() { return std::get<index_of<Name>()>(layers_); }
  template <fixed_string Name>
  static consteval std::size_t index_of() {
    return detail::index_of_name<Name, Ls...>();
  }

 private:
  template <std::size_t I>
  using at = std::tuple_element_t<I, std::tuple<Ls...>>;
  // Layers I, I + 1, ... in order; with fuse, a Conv2d followed by BatchNorm2d and/or ReLU as one step, and in
  // any mode a BatchNorm2d followed by ReLU as one (BatchNorm2dLayer::forward_then).
  // End: the first member not run; Tap: the member whose output goes to *tap (size: none). A tapped member must end
  // any fused group it could be part of, which a convolution or batch norm need not.
  template <std::size_t I, std::size_t End, std::size_t Tap>
  void forward_from(context& c, tensor& x, bool fuse, tensor* tap) {
    if constexpr (Tap < size)
      static_assert(!detail::FusableConv<at<Tap>> && !detail::FusableBn<at<Tap>>,
                    "hw1::Seq: tap a block or an activation, not a convolution or batch norm");
    if constexpr (I < End) {
      if constexpr (detail::FusingBackend<B> && detail::FusableConv<at<I>> && I + 1 < End) {
        constexpr bool bn = detail::FusableBn<at<I + 1>>;
        constexpr std::size_t after = I + 1 + bn;  // the layer after the conv and its batch norm
        constexpr bool relu = [] {
          if constexpr (after < End)
            return detail::FusableRelu<at<after>>;
          else
            return false;
        }();
        if constexpr (bn || relu) {
          if (fuse) {
            auto norm = [&] {
              if constexpr (bn)
                return &std::get<I + 1>(layers_);
              else
                return nullptr;
            }();
            x = std::get<I>(layers_).forward_fused(c, std::move(x), norm, relu);
            if constexpr (relu && after == Tap) {
              if (tap) *tap = x;
            }
            return forward_from<after + relu, End, Tap>(c, x, fuse, tap);
          }
        }
      }
      if constexpr (detail::FusableBn<at<I>> && I + 1 < End) {
        if constexpr (detail::FusableRelu<at<I + 1>>) {  // BatchNorm2d -> ReLU: one output pass where it can
          x = std::get<I>(layers_).forward_then(c, std::move(x), &std::get<I + 1>(layers_));
          if constexpr (I + 1 == Tap) {
            if (tap) *tap = x;
          }
          return forward_from<I + 2, End, Tap>(c, x, fuse, tap);
        }
      }
      x = std::get<I>(layers_).forward(c, std::move(x));
      if constexpr (I == Tap) {
        if (tap) *tap = x;
      }
      forward_from<I + 1, End, Tap>(c, x, fuse, tap);
    }
  }
  template <std::size_t... I>
  void visit_each(params& ps, const std::string& prefix, std::index_sequence<I...>) {
    (std::get<I>(layers_).visit(ps, detail::child_prefix<at<I>>(prefix, I)), ...);
  }
  template <std::size_t Tap, std::size_t... I>
  void backward_each(context& c, tensor& dy, bool want_dx, const tensor* dtap, std::index_sequence<I...>) {
    ((dy = backward_of<size - 1 - I, Tap>(c, std::move(dy), want_dx, dtap)), ...);
  }
  template <std::size_t I, std::size_t Tap>
  tensor backward_of(context& c, tensor dy, bool want_dx, const tensor* dtap) {
    if constexpr (I == Tap) {
      if (dtap) {
        if (dtap->shape() != dy.shape())
          throw Error("Seq: the gradient added at a tapped member has shape " + shape_str(dtap->shape()) +
                      ", the member's output " + shape_str(dy.shape()));
        B::add_forward(dy.size(), dy.data(), dtap->data(), dy.data());
      }
    }
    auto& l = std::get<I>(layers_);
    if constexpr (I == 0 && requires { l.backward(c, std::move(dy), want_dx); })
      return l.backward(c, std::move(dy), want_dx);
    else
      return l.backward(c, std::move(dy));
  }
  std::tuple<Ls...> layers_;
};

template <class... Specs>
struct Seq {
  static_assert(sizeof...(Specs) > 0, "hw1::Seq needs at least one layer");
  template <int In, class B>
  using bind = SeqLayer<In, B, typename detail::chain<In, B, Specs...>::type>;
};

// seq_append_t<Seq<A, B>, C, D> is Seq<A, B, C, D>: a network that extends another's member list (ResNet's
// classifier is its trunk, then avgpool and fc).
template <class S, class... More>
struct seq_append;
template <class... A, class... More>
struct seq_append<Seq<A...>, More...> {
  using type = Seq<A..., More...>;
};
template <class S, class... More>
using seq_append_t = typename seq_append<S, More...>::type;

// ---------------------------------------------------------------------------------------------------------------
// Repeat<N, Block, FirstIndex>: N copies of one block type (one instantiation, whatever N), named
// "FirstIndex.", "FirstIndex+1.", ... The block must keep its channel count.
template <int In, class B, class L, int N, int FirstIndex>
class RepeatLayer : public LayerBase<In, In, B> {
  static_assert(L::out_channels == In,
                "hw1::Repeat: a repeated block must produce as many channels as it consumes (In == Out)");
  using Base = LayerBase<In, In, B>;

 public:
  using typename Base::context;
  using typename Base::params;
  using typename Base::tensor;
  void visit(params& ps, const std::string& prefix) {
    for (int i = 0; i < N; ++i) blocks_[i].visit(ps, prefix + std::to_string(FirstIndex + i) + ".");
  }
  tensor forward(context& c, tensor x) {
    for (auto& b : blocks_) x = b.forward(c, std::move(x));
    return x;
  }
  tensor backward(context& c, tensor dy) {
    for (int i = N - 1; i >= 0; --i) dy = blocks_[i].backward(c, std::move(dy));
    return dy;
  }
  L& operator[](int i) { return blocks_[i]; }

 private:
  std::array<L, N> blocks_;
};

template <int N, class Block, int FirstIndex = 0>
struct Repeat {
  static_assert(N >= 0, "hw1::Repeat: N must not be negative");
  template <int In, class B>
  using bind = RepeatLayer<In, B, typename Block::template bind<In, B>, N, FirstIndex>;
};

// ---------------------------------------------------------------------------------------------------------------
// Identity: passes x through (the shortcut of a residual block that keeps shape).
template <int In, class B>
class IdentityLayer : public LayerBase<In, In, B> {
  using Base = LayerBase<In, In, B>;

 public:
  using typename Base::context;
  using typename Base::params;
  using typename Base::tensor;
  void visit(params&, const std::string&) {}
  tensor forward(context&, tensor x) { return x; }
  tensor backward(context&, tensor dy) { return dy; }
};
struct Identity {
  template <int In, class B>
  using bind = IdentityLayer<In, B>;
};

// Residual<Main, Shortcut>: main(x) + shortcut(x); children named "main." and "shortcut.".
template <int In, class B, class M, class S>
class ResidualLayer : public LayerBase<In, M::out_channels, B> {
  static_assert(channels_match<S::out_channels, M::out_channels>::value,
                "hw1::Residual: the main branch and the shortcut must produce the same number of channels");
  using Base = LayerBase<In, M::out_channels, B>;

 public:
  using typename Base::context;
  using typename Base::params;
  using typename Base::tensor;
  void visit(params& ps, const std::string& prefix) {
    main_.visit(ps, prefix + "main.");
    shortcut_.visit(ps, prefix + "shortcut.");
  }
  tensor forward(context& c, tensor x) {
    tensor s = shortcut_.forward(c, x);
    tensor y = main_.forward(c, std::move(x));
    if (y.shape() != s.shape())
      throw Error("Residual: main branch gives " + shape_str(y.shape()) + " but the shortcut gives " +
                  shape_str(s.shape()));
    B::add_forward(y.size(), y.data(), s.data(), y.data());
    return y;
  }
  tensor backward(context& c, tensor dy) {
    tensor dx = shortcut_.backward(c, dy);
    tensor dm = main_.backward(c, std::move(dy));
    B::add_forward(dx.size(), dx.data(), dm.data(), dx.data());
    return dx;
  }
  M& main() { return main_; }
  S& shortcut() { return shortcut_; }

 private:
  M main_;
  S shortcut_;
};

template <class Main, class Shortcut = Identity>
struct Residual {
  template <int In, class B>
  using bind = ResidualLayer<In, B, typename Main::template bind<In, B>, typename Shortcut::template bind<In, B>>;
};

// ---------------------------------------------------------------------------------------------------------------
// Concat<Branches...>: every branch sees the same input; outputs are concatenated along channels.
// Children are named "0.", "1.", ... (torch.nn.ModuleList, as in torchvision's ASPP `convs`).
template <int In, class B, class... Ls>
class ConcatLayer : public LayerBase<In, (Ls::out_channels + ...), B> {
  using Base = LayerBase<In, (Ls::out_channels + ...), B>;

 public:
  using typename Base::context;
  using typename Base::params;
  using typename Base::scalar;
  using typename Base::tensor;
  static constexpr std::size_t size = sizeof...(Ls);

  void visit(params& ps, const std::string& prefix) { visit_each(ps, prefix, std::index_sequence_for<Ls...>{}); }
  tensor forward(context& c, tensor x) {
    std::array<tensor, size> outs;
    forward_each(c, x, outs, std::index_sequence_for<Ls...>{});
    const auto& s0 = outs[0].shape();
    std::vector<const scalar*> parts;
    std::vector<int> channels;
    int total = 0;
    for (auto& o : outs) {
      if (o.dimension() != 4 || o.shape()[0] != s0[0] || o.shape()[2] != s0[2] || o.shape()[3] != s0[3])
        throw Error("Concat: branch outputs " + shape_str(s0) + " and " + shape_str(o.shape()) +
                    " differ in batch or spatial size");
      parts.push_back(o.data());
      channels.push_back(int(o.shape()[1]));
      total += int(o.shape()[1]);
    }
    tensor y = B::empty({s0[0], std::size_t(total), s0[2], s0[3]});
    B::concat_channels_forward(int(s0[0]), int(s0[2] * s0[3]), parts, channels, y.data());
    channels_ = channels;
    return y;
  }
  tensor backward(context& c, tensor dy) {
    const auto& s = dy.shape();
    std::array<tensor, size> parts;
    std::vector<scalar*> ptrs;
    for (std::size_t i = 0; i < size; ++i) {
      parts[i] = B::empty({s[0], std::size_t(channels_[i]), s[2], s[3]});
      ptrs.push_back(parts[i].data());
    }
    B::concat_channels_backward(int(s[0]), int(s[2] * s[3]), dy.data(), ptrs, channels_);
    tensor dx;
    backward_each(c, parts, dx, std::index_sequence_for<Ls...>{});
    return dx;
  }
  template <std::size_t I>
  auto& get() { return std::get<I>(branches_); }

 private:
  template <std::size_t... I>
  void visit_each(params& ps, const std::string& prefix, std::index_sequence<I...>) {
    (std::get<I>(branches_).visit(ps, prefix + std::to_string(I) + "."), ...);
  }
  template <std::size_t... I>
  void forward_each(context& c, const tensor& x, std::array<tensor, size>& outs, std::index_sequence<I...>) {
    ((outs[I] = std::get<I>(branches_).forward(c, x)), ...);
  }
  template <std::size_t... I>
  void backward_each(context& c, std::array<tensor, size>& parts, tensor& dx, std::index_sequence<I...>) {
    auto one = [&](auto& branch, tensor& dpart) {
      tensor d = branch.backward(c, std::move(dpart));
      if (dx.size() == 0 || dx.dimension() == 0)
        dx = std::move(d);
      else
        B::add_forward(dx.size(), dx.data(), d.data(), dx.data());
    };
    (one(std::get<I>(branches_), parts[I]), ...);
  }
  std::tuple<Ls...> branches_;
  std::vector<int> channels_;
};

template <class... Branches>
struct Concat {
  static_assert(sizeof...(Branches) > 0, "hw1::Concat needs at least one branch");
  template <int In, class B>
  using bind = ConcatLayer<In, B, typename Branches::template bind<In, B>...>;
};

// Chain<In, Specs...>: a Seq bound to In input channels, e.g. Chain<3, Stem, Stage<...>>::bind<B>.
template <int In, class... Specs>
struct Chain {
  template <class B = backend::cpu>
  using bind = typename Seq<Specs...>::template bind<In, B>;
};

}  // namespace hw1
