// Matrix products on quantized activations, computed the way llama.cpp's CPU
// backend computes them: each activation row is quantized once to 8-bit blocks
// (Q8_0, Q8_1 or Q8_K, byte layouts as in ggml), and each weight block meets its
// activation block in an integer dot product that is scaled afterwards.
//
// The results equal, to float rounding (about 1e-6 relative), dequantized weights
// times activations rounded by round_activations, plus Q8_1's rule that the weight
// minimum multiplies the block's stored f16 s = f16(unrounded d x sum(q)).
//
// F16 and BF16 weights go the same way with a float kernel: ggml's CPU backend
// rounds the activations to the weights' format and sums the exact products in
// f32 (half_row_kernels.h).
#pragma once

#include <cstdint>
#include <span>

#include "ops/activation_quant.h"
#include "ops/ops.h"
#include "ops/row_kernels.h"
#include "tiller/engine.h"
#include "tiller/tensor_type.h"
#include "tiller/thread_pool.h"

namespace tiller::ops {

// The kernel level (tiller/engine.h) is a parameter of every function below that
// runs SIMD code: the caller's Engine chose it, and it must be one this CPU runs
// (available_kernel_levels()); nothing here looks at the CPU. Portable is plain
// C++ built for baseline x86-64; Avx2 uses intrinsics, and its results for Q4_1,
// Q5_0 and Q8_0 equal llama.cpp's CPU backend's bit for bit (tested on both
// models' block-0 products). Avx2Tiled is Avx2 plus, for products of several
// activation rows, the register-tiled kernels of tiled_matmul.h written with AVX2;
// Avx512Vnni has them with AVX-512 VNNI, and 64-byte row kernels
// (vnni_row_kernels.h) for generation. The levels add the same integer sums in
// different float orders, so they differ by float rounding (~1e-7). At Avx2 and
// below every product runs the same kernel whatever its number of activation rows,
// so a prompt's activations do not depend on how it is batched or packed (the
// tiled kernels round otherwise than the row kernels, and a rounding difference
// can move an activation's quantization by one step, which later blocks magnify).

// The single-row kernel of a level (row_kernels.h); nullptr when weight_type has no
// kernel (F32). A level without its own kernel for the type falls back to the
// next lower one.
QuantizedDot quantized_dot(TensorType weight_type, KernelLevel level);

// matmul with the kernels of `level` (ops::matmul is this). F16 and BF16 weights
// take the float kernels of half_row_kernels.h on activations rounded to f16 /
// bf16; types without a kernel (F32) go to matmul_reference at the same level.
// independent_rows: every row through the row kernels, never the tiled ones, so
// that each row's result is what it would be alone, whatever rows share the call
// (a server's batched generation step: a sequence's tokens must not depend on
// which others run beside it).
void quantized_matmul(const WeightMatrix& w, const float* x, int64_t n_rows, float* out, ThreadPool& pool,
                      KernelLevel level, bool independent_rows = false);

// quantized_matmul on activations quantized already: n_rows rows of
// activation_row_bytes(activation_format(w.type), w.n_in) bytes, as quantize_rows
// writes them. Each activation block is quantized on its own, so a caller may fill
// the rows a range of whole blocks at a time (BlockPass's FFN does) and get the
// bits of quantized_matmul on the whole rows. For types with integer kernels only.
bool takes_quantized_activations(TensorType weight_type);
void quantized_matmul_quantized(const WeightMatrix& w, const uint8_t* x, int64_t n_rows, float* out, ThreadPool& pool,
                                KernelLevel level, bool independent_rows = false);

// Several matrices reading the same input x (Q, K and V; gate and up) in one
// parallel region: one fork-join instead of one per matrix, and the activations
// quantized once per format. Results equal separate quantized_matmul calls.
// At most kMaxShared matrices; any without a kernel (F32) sends all to the
// one-by-one path.
inline constexpr size_t kMaxShared = 4;
void quantized_matmul_shared(std::span<const WeightMatrix* const> ws, const float* x, int64_t n_rows,
                             std::span<float* const> outs, ThreadPool& pool, KernelLevel level,
                             bool independent_rows = false);

// Exposed for tests: the inline f16 -> f32 conversion the portable kernels use.
float half_to_float(uint16_t bits);

}  // namespace tiller::ops
