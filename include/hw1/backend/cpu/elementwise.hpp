// Element-wise kernels (ReLU, residual add, masks) written as xtensor expressions over adapted raw buffers,
// plus channel concatenation and dropout masks. Every kernel here allows its output to alias an input, which the
// layers use to work in place. Large buffers are split into chunks, one per OpenMP task.
#pragma once
#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include <xtensor/xadapt.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>
#include <xtensor/xoperation.hpp>

#include "hw1/backend/cpu/shapes.hpp"
#include "hw1/core/error.hpp"

namespace hw1::cpu {

namespace detail {
// 1-D view of [p, p + len), writable or not depending on P.
template <class P>
auto view1d(P p, std::size_t len) {
  return xt::adapt(p, len, xt::no_ownership(), std::array<std::size_t, 1>{len});
}

// Calls f(begin, length) over consecutive chunks; chunks run in parallel once the buffer is large enough to pay.
template <class F>
void for_chunks(std::size_t count, F&& f) {
  constexpr std::size_t chunk = std::size_t(1) << 16;
  const std::ptrdiff_t chunks = std::ptrdiff_t((count + chunk - 1) / chunk);
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (std::ptrdiff_t i = 0; i < chunks; ++i) {
    const std::size_t b = std::size_t(i) * chunk;
    f(b, std::min(chunk, count - b));
  }
}

// SplitMix64 of (seed, index): a counter-based stream, so a mask is the same for any thread count or chunking.
inline std::uint64_t mix64(std::uint64_t seed, std::uint64_t i) {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ull * (i + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
// Uniform in [0, 1) from the top 53 bits.
inline double uniform01(std::uint64_t seed, std::uint64_t i) { return double(mix64(seed, i) >> 11) * 0x1.0p-53; }

}  // namespace detail

template <class T>
void relu_forward(std::size_t count, const T* x, T* y) {
  detail::for_chunks(count, [&](std::size_t b, std::size_t len) {
    auto out = detail::view1d(y + b, len);
    xt::noalias(out) = xt::maximum(detail::view1d(x + b, len), T(0));
  });
}

// dx = dy * (y > 0), PyTorch's rule (it uses the output, so the gradient at exactly 0 is 0).
template <class T>
void relu_backward(std::size_t count, const T* y, const T* dy, T* dx) {
  detail::for_chunks(count, [&](std::size_t b, std::size_t len) {
    auto out = detail::view1d(dx + b, len);
    xt::noalias(out) = xt::where(detail::view1d(y + b, len) > T(0), detail::view1d(dy + b, len), T(0));
  });
}

namespace detail {
// ReLU's value and its mask byte for v, written so that loops over them vectorise: one comparison (GCC will not
// if-convert two under the default -ftrapping-math), and a select done with bits. NaN passes, as in torch.relu.
template <class T>
inline T relu_value(T v, bool& positive) {
  positive = v > T(0);
  return positive || v != v ? v : T(0);
}
// d where m is 1, 0 where it is 0 (also for an inf or NaN d, as a select gives).
template <class T>
inline T keep_if(T d, std::uint8_t m) {
  using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  static_assert(sizeof(T) == sizeof(U));
  return std::bit_cast<T>(std::bit_cast<U>(d) & (U(0) - U(m)));
}

// The mask's bytes could alias anything: declared unaliased, these loops vectorise. x and y (dy and dx) may be the
// same buffer, element by element.
template <class T>
void relu_mask_run(std::size_t len, const T* x, T* y, std::uint8_t* __restrict mask) {
  for (std::size_t i = 0; i < len; ++i) {
    bool positive;
    y[i] = relu_value(x[i], positive);
    mask[i] = std::uint8_t(positive);
  }
}
template <class T>
void relu_backward_mask_run(std::size_t len, const std::uint8_t* __restrict mask, const T* dy, T* dx) {
  for (std::size_t i = 0; i < len; ++i) dx[i] = keep_if(dy[i], mask[i]);
}
}  // namespace detail

// y = relu(x) (y may alias x), and mask[i] = 1 where y[i] > 0, else 0: what relu_backward_mask needs, in a
// quarter of the bytes of a copy of y.
template <class T>
void relu_forward_mask(std::size_t count, const T* x, T* y, std::uint8_t* mask) {
  detail::for_chunks(count,
                     [&](std::size_t b, std::size_t len) { detail::relu_mask_run(len, x + b, y + b, mask + b); });
}

// dx = dy where mask, else 0 (dx may alias dy): relu_backward with the mask in place of y.
template <class T>
void relu_backward_mask(std::size_t count, const std::uint8_t* mask, const T* dy, T* dx) {
  detail::for_chunks(count, [&](std::size_t b, std::size_t len) {
    detail::relu_backward_mask_run(len, mask + b, dy + b, dx + b);
  });
}

template <class T>
void add_forward(std::size_t count, const T* a, const T* b, T* y) {
  detail::for_chunks(count, [&](std::size_t s, std::size_t len) {
    auto out = detail::view1d(y + s, len);
    xt::noalias(out) = detail::view1d(a + s, len) + detail::view1d(b + s, len);
  });
}

template <class T>
void mul_forward(std::size_t count, const T* x, const T* m, T* y) {
  detail::for_chunks(count, [&](std::size_t s, std::size_t len) {
    auto out = detail::view1d(y + s, len);
    xt::noalias(out) = detail::view1d(x + s, len) * detail::view1d(m + s, len);
  });
}


// parts[i] is [n, channels[i], hw]; y is [n, sum channels, hw].
template <class T>
void concat_channels_forward(int n, int hw, const std::vector<const T*>& parts, const std::vector<int>& channels,
                             T* y) {
  const std::ptrdiff_t total = detail::check_concat(parts.size(), channels);
#pragma omp parallel for schedule(static)
  for (int b = 0; b < n; ++b) {
    std::ptrdiff_t off = 0;
    for (std::size_t i = 0; i < parts.size(); ++i) {
      const std::ptrdiff_t len = std::ptrdiff_t(channels[i]) * hw;
      std::copy_n(parts[i] + b * len, len, y + (b * total + off) * hw);
      off += channels[i];
    }
  }
}

template <class T>
void concat_channels_backward(int n, int hw, const T* dy, const std::vector<T*>& dparts,
                              const std::vector<int>& channels) {
  const std::ptrdiff_t total = detail::check_concat(dparts.size(), channels);
#pragma omp parallel for schedule(static)
  for (int b = 0; b < n; ++b) {
    std::ptrdiff_t off = 0;
    for (std::size_t i = 0; i < dparts.size(); ++i) {
      const std::ptrdiff_t len = std::ptrdiff_t(channels[i]) * hw;
      std::copy_n(dy + (b * total + off) * hw, len, dparts[i] + b * len);
      off += channels[i];
    }
  }
}

// Inverted dropout: each element is kept with probability 1 - p and then scaled by 1/(1-p), so E[mask] = 1.
template <class T>
void dropout_mask(std::size_t count, T p, std::uint64_t seed, T* mask) {
  detail::check_dropout_p(p);
  const T keep = T(1) / (T(1) - p);
  detail::for_chunks(count, [&](std::size_t b, std::size_t len) {
    for (std::size_t i = b; i < b + len; ++i) mask[i] = detail::uniform01(seed, i) >= double(p) ? keep : T(0);
  });
}

// Dropout2d: one draw per (image, channel); the whole hw plane shares it.
template <class T>
void dropout2d_mask(int n, int c, int hw, T p, std::uint64_t seed, T* mask) {
  detail::check_dropout_p(p);
  const T keep = T(1) / (T(1) - p);
  const std::ptrdiff_t planes = std::ptrdiff_t(n) * c;
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t pl = 0; pl < planes; ++pl)
    std::fill_n(mask + pl * hw, hw, detail::uniform01(seed, std::uint64_t(pl)) >= double(p) ? keep : T(0));
}

}  // namespace hw1::cpu
