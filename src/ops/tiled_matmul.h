// Register-tiled matrix-matrix products for prompt processing (many activation
// rows), with AVX-512 VNNI byte dot products.
//
// The row kernels (row_kernels.h) unpack every weight block once per
// activation row. Here a panel of kPanelRows weight rows is unpacked once per
// call into a transposed int8 layout (4 consecutive weights of each of the 16
// rows side by side in one 64-byte vector), and then meets every activation row:
// one vpdpbusd multiplies 4 activation quants (broadcast) with 4 weights of all 16
// rows, so each lane of the accumulator is one weight row's dot product and no
// horizontal sums are needed. Several activation rows share each loaded weight
// vector (a tile of kPanelRows x T).
//
// vpdpbusd multiplies unsigned by signed bytes, so the activations are stored as
// q + 128 (unsigned) and the weights as signed values; each block's integer sum
// then carries 128 x (sum of the block's weights), which the packing computes once
// and takes off. The integer sums are exact, as in the row kernels; per block the
// float arithmetic is one fused multiply-add of the converted sum by d_w x d_x, so
// results differ from the row kernels by float rounding only, and do not depend on
// where a row falls in a panel or on how many activation rows come together.
#pragma once

#include <cstdint>
#include <vector>

#include "ops/ops.h"
#include "ops/matmul.h"

namespace tiller::ops {

inline constexpr int kPanelRows = 16;

// Activations prepared once per product for the tiled kernels.
struct TiledActivations {
  int64_t n_rows = 0, n_in = 0;
  const uint8_t* quants = nullptr;  // n_rows x n_in: q + 128
  const float* scales = nullptr;    // n_rows x (n_in / activation block): d
  const float* sums = nullptr;      // Q8_1: n_rows x blocks of 32: the stored s
  const int16_t* sums32 = nullptr;  // Q8_K: n_rows x (n_in / 32): sums of 32 quants
};

// Storage behind a TiledActivations, reused from call to call.
struct TiledActivationBuffers {
  std::vector<uint8_t> quants;
  std::vector<float> scales, sums;
  std::vector<int16_t> sums32;
};

// From n_rows quantized activation rows (activation_row_bytes(format, n_in) apart).
TiledActivations prepare_tiled_activations(ActivationFormat format, const uint8_t* quantized, int64_t n_rows,
                                           int64_t n_in, TiledActivationBuffers& buffers);

// out[t * w.n_out + r] for every activation row t and weight rows [row_begin,
// row_end); row_begin is a multiple of kPanelRows.
using TiledKernel = void (*)(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const TiledActivations& x,
                             float* out);

// The tiled kernel of a level (Avx512Vnni, or Avx2Tiled: the same panels with
// AVX2); nullptr when the type has none there or the level has no tiled kernels.
// The caller makes sure the CPU runs the level (tiller::Engine does).
// Interleaved Q4_K and Q6_K (interleaved_k_quants.h) have both levels' kernels of
// their type, their blocks unpacked to the same values.
TiledKernel tiled_kernel(TensorType weight_type, KernelLevel level, WeightLayout layout = WeightLayout::Gguf);

// The fewest activation rows for which the tiled path beats the row kernels
// (packing a panel costs about as much as a few rows of row-kernel products).
inline constexpr int64_t kTiledMinRows = 8;

}  // namespace tiller::ops
