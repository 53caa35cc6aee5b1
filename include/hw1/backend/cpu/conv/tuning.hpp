// The CPU convolution's tuning constants: where the algorithm selector (conv/select.hpp) switches algorithms and
// how the GEMM paths block their work. Each was measured on the shapes of ResNet, VGG/FCN32s and DeepLabv3
// (docs/performance.md has the measurements and their commands); they are named here, in one place, so that a
// retuning is one edit and the tests that pin the selector's choices (tests/backend/cpu/test_conv_select.cpp)
// read the same numbers.
#pragma once
#include <cstddef>

namespace hw1::cpu::tuning {

using Index = std::ptrdiff_t;

// --- Blocking of the im2col + GEMM paths (conv/gemm_forward.hpp, conv/gemm_backward.hpp) ---
// Column-matrix entries per block (2 MiB of float: stays in a core's L2 between im2col and the GEMM).
inline constexpr Index kBlockElems = Index(1) << 19;
// At least this many positions per block, so that repacking W per GEMM stays cheap.
inline constexpr Index kMinBlockCols = 512;
// The packed GEMM's blocks: at most this many positions (a multiple of the panel width where an image is split).
inline constexpr Index kPackedBlockCols = 512;
// Images with fewer output positions than this are batched into groups (one GEMM over several images' columns).
inline constexpr Index kGroupBelowPositions = 256;
// Per-thread partial weight gradients are used up to this many weights (FCN32s' fc6, 4096 x 512 x 7 x 7, splits
// its channels instead).
inline constexpr Index kMaxPartialWeights = Index(1) << 20;
// The bias gradient's channel sums run in parallel above this many values.
inline constexpr Index kParallelSumValues = Index(1) << 15;
// pgemm copies W's blocks on every call when its rows are a multiple of this many floats apart (cache-set
// aliasing, pgemm.hpp); conv2d copies W once to rows kAliasPad floats longer instead.
inline constexpr Index kAliasingRowFloats = 512;
inline constexpr Index kAliasPad = 16;

// --- Batched-group column builders (conv/im2col_avx512.hpp) ---
// A 1x1, stride-1 convolution's batched column matrix goes through masked loads (PointwiseRuns) for images of
// this many positions (inclusive); outside, through the index-table copies.
inline constexpr Index kPointwiseRunsMinPositions = 4;
inline constexpr Index kPointwiseRunsMaxPositions = 64;
// A batched forward with a residual adds it plane by plane as each plane is copied out from this plane size up;
// smaller planes are copied first and get the residual (and ReLU) in one pass over the image's channels.
inline constexpr Index kLateResidualPerPlane = 16;

// --- Gradient algorithms (conv/select.hpp) ---
// 1x1, stride-1 convolutions with at least this many positions per image take dX and dW on the packed GEMM.
inline constexpr Index kPacked1x1MinPositions = 100;
// dX of a 3x3 stride-1 convolution goes through Winograd only from this many input pixels per plane (below,
// the batched direct path builds the column matrices for dW anyway).
inline constexpr Index kWinogradInputGradMinPlane = 100;

// --- Winograd F(2x2, 3x3) (winograd.hpp) ---
inline constexpr int kWinogradMinChannels = 16;           // input and output channels
inline constexpr double kWinogradMinUtilization = 0.75;   // computed outputs that are real outputs
inline constexpr Index kWinogradMinTiles = 64;            // tiles over the batch, to pay the weight transform
inline constexpr Index kWinogradWeightGradTilesPerThread = 192;  // dW: tiles per thread, to pay its partial sums

// --- Winograd F(4x4, 3x3) (winograd4.hpp) ---
inline constexpr int kWinograd4MinChannels = 64;
inline constexpr double kWinograd4MinUtilization = 0.75;
inline constexpr Index kWinograd4MinTilesPerThread = 64;

}  // namespace hw1::cpu::tuning
