// How the GEMM algorithms of conv2d and conv_transpose2d cut their work: blocks of positions, batched groups of
// small images, and the split of pieces or channels over the OpenMP team (deterministic for a thread count).
#pragma once
#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "hw1/backend/cpu/conv/im2col.hpp"
#include "hw1/backend/cpu/conv/tuning.hpp"
#include "hw1/backend/cpu/gemm.hpp"
#include "hw1/backend/cpu/pgemm.hpp"

namespace hw1::cpu::detail {

// Positions per block: about tuning::kBlockElems column-matrix entries stay in a core's L2 between im2col and the
// GEMM that reads them; at least kMinBlockCols so that W's repacking per GEMM stays cheap. Measured best of
// 2^18..2^21 x 128..512 on ResNet, VGG and DeepLab shapes.
inline Index block_cols(Index rows, Index cols) {
  return std::clamp(tuning::kBlockElems / std::max<Index>(rows, 1), std::min(tuning::kMinBlockCols, cols), cols);
}

// The packed GEMM's blocks instead (conv2d_forward on float): at most tuning::kPackedBlockCols positions, a
// multiple of the panel width where the image is split, by kPackedRows (pgemm's K block) column-matrix rows at a
// time.
constexpr Index kPackedRows = pgemm::kKC;
inline Index packed_block_cols(Index cols) {
  constexpr Index most = tuning::kPackedBlockCols;
  if (cols <= most) return cols;
  const Index blocks = (cols + most - 1) / most, per = (cols + blocks - 1) / blocks;
  return (per + pgemm::kNR - 1) / pgemm::kNR * pgemm::kNR;
}

// Images with few output positions are batched: a piece covers a group of consecutive images whose column
// matrices sit side by side, so that its GEMM has about block_cols columns (ResNet's last stages at 32x32 have
// 1-4 positions per image, and GEMMs that narrow spent their time repacking W). Groups split the batch evenly.
struct Groups {
  Index n, count, most;  // images, groups, most images in one group (1: no grouping)
  Index begin(Index i) const { return n * i / count; }
};
// xs: values per input image; a group's input stays addressable by TabIndex.
inline Groups image_groups(Index n, Index rows, Index cols, Index xs) {
  // From tuning::kGroupBelowPositions positions per image, one image fills a GEMM by itself.
  if (n == 1 || cols >= tuning::kGroupBelowPositions) return {n, n, 1};
  const Index per = std::min(n, (block_cols(rows, n * cols) + cols - 1) / cols);
  const Index count = (n + per - 1) / per, most = (n + count - 1) / count;
  if (most * xs > Index(std::numeric_limits<TabIndex>::max())) return {n, n, 1};
  return {n, count, most};
}

// Whether `items` independent pieces keep all threads evenly busy with one piece per thread at a time.
inline bool split_items(Index items, int threads) {
  return threads > 1 && items >= threads && (items % threads == 0 || items >= 4 * Index(threads));
}

// The calling thread's share [first, second) of n things split evenly over the team.
inline std::pair<Index, Index> my_share(Index n) {
  const Index t = thread_id(), nt = team_size();
  return {n * t / nt, n * (t + 1) / nt};
}

// Runs piece(i, o0, o1) for items i over channels [o0, o1) of `channels`: whole pieces per thread when there are
// enough, else each thread takes its share of the channels of every piece.
template <class F>
void for_pieces(Index items, Index channels, F&& piece) {
  if (split_items(items, max_threads())) {
#pragma omp parallel for schedule(static)
    for (Index i = 0; i < items; ++i) piece(i, Index(0), channels);
  } else {
#pragma omp parallel
    {
      const auto [o0, o1] = my_share(channels);
      for (Index i = 0; i < items; ++i) piece(i, o0, o1);
    }
  }
}

// The backward counterpart: piece(i, c0, c1, dW) over input channels [c0, c1), dW being `dw` itself (channel
// split: threads own disjoint columns of it) or the thread's zeroed partial sum (whole pieces per thread), the
// partials then added in thread order so that a given thread count always gives the same bits.
template <class T, class F>
void for_backward_pieces(Index items, Index channels, T* dw, Index dw_size, F&& piece) {
  // Per-thread partial sums cost a zero fill, a second copy and a reduction of dW: worth it for ordinary layers,
  // not for huge weights (FCN32s' fc6 is 4096 x 512 x 7 x 7, 411 MB), which split their channels instead.
  if (split_items(items, max_threads()) && (!dw || dw_size <= tuning::kMaxPartialWeights)) {
    std::vector<T*> partial(std::size_t(max_threads()), nullptr);
#pragma omp parallel
    {
      T* mine = nullptr;
      if (dw) {
        mine = scratch<T, Slot::dw_partial>(std::size_t(dw_size));
        std::fill_n(mine, dw_size, T(0));
        partial[std::size_t(thread_id())] = mine;
      }
#pragma omp for schedule(static)
      for (Index i = 0; i < items; ++i) piece(i, Index(0), channels, mine);
      if (dw) reduce_partials(partial, dw, dw_size);
    }
  } else {
#pragma omp parallel
    {
      const auto [c0, c1] = my_share(channels);
      for (Index i = 0; i < items; ++i) piece(i, c0, c1, dw);
    }
  }
}

// out[ch] += sum of t[img, ch, :] over images (the bias gradient), split over channels.
template <class T>
void add_channel_sums(const T* t, Index n, Index c, Index plane, T* out) {
#pragma omp parallel for schedule(static) if (n * c * plane > tuning::kParallelSumValues)
  for (Index ch = 0; ch < c; ++ch) {
    // A plain loop in a fixed order: Eigen's vectorised sum() depends on the buffer's alignment, which would make
    // two identical runs (e.g. a resumed and an uninterrupted training) differ in the last bits.
    double s = 0;
    for (Index i = 0; i < n; ++i) {
      const T* p = t + (i * c + ch) * plane;
      for (Index j = 0; j < plane; ++j) s += double(p[j]);
    }
    out[ch] += T(s);
  }
}

}  // namespace hw1::cpu::detail
