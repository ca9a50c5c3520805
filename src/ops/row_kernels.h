// Row kernels: one quantized weight row (or four) against one quantized activation
// row, per instruction set. Portable (row_kernels_portable.cpp) is plain C++ built
// for baseline x86-64; Avx2 (row_kernels_avx2.cpp) uses intrinsics; AVX-512 VNNI
// has its own (vnni_row_kernels.h). The matrix-product driver (matmul.cpp) picks
// them by kernel level.
//
// Every kernel computes, per weight block, the integer sum of weight quants times
// activation quants, then scales it by the two blocks' scales; formats with a
// minimum add (weight minimum) x (activation block sum). The block layouts are the
// ones the dequantizers in src/quant/dequantize.cpp read (block_layout.h).
#pragma once

#include <cstdint>

#include "tiller/tensor_type.h"

namespace tiller::ops {

// Dot product of one weight row (raw bytes from the file) with one quantized
// activation row of n values.
using QuantizedDot = float (*)(const uint8_t* weights, const uint8_t* activations, int64_t n);
// kRowKernelRows weight rows (row_bytes apart) against one quantized activation row
// of n values: out[0..kRowKernelRows).
using QuantizedRows = void (*)(const uint8_t* weights, uint64_t row_bytes, const uint8_t* activations, int64_t n,
                               float* out);
inline constexpr int kRowKernelRows = 4;

// kRowKernelRows weight rows against n_x (1 to kRowKernelRows) activation rows
// x_row_bytes apart: out[t * out_stride + r]. Each weight block is unpacked once
// for all n_x rows, and every (weight row, activation row) pair gets exactly the
// arithmetic `four` gives it, so the results are the same bits: a batched
// generation step (several sequences' rows) equals each row alone.
using QuantizedRowsBy = void (*)(const uint8_t* weights, uint64_t row_bytes, const uint8_t* activations,
                                 uint64_t x_row_bytes, int n_x, int64_t n, float* out, int64_t out_stride);

struct RowKernels {
  QuantizedDot one = nullptr;    // a single weight row
  QuantizedRows four = nullptr;  // kRowKernelRows weight rows at once; nullptr: `one` row by row
  QuantizedRowsBy four_by = nullptr;  // kRowKernelRows weight rows by several activation rows; nullptr: `four`
  // The activations must be interleaved first (interleave_q8_k_rows in
  // interleaved_k_quants.h), as the weights are.
  bool interleaved_activations = false;
};

// The kernels of one instruction set for a weight type; both nullptr when the type
// has none there (F32, and the types no kernel reads). F16 and BF16 weights have
// float kernels behind the same interface (half_row_kernels.h). The caller makes
// sure the CPU runs the instruction set (tiller::Engine does).
RowKernels portable_row_kernels(TensorType weight_type);
RowKernels avx2_row_kernels(TensorType weight_type);  // {} where the target has no AVX2 code

}  // namespace tiller::ops
