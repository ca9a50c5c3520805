// The activations' quantization before an integer matrix product: each activation
// row is quantized once to 8-bit blocks (Q8_0, Q8_1 or Q8_K, byte layouts as in
// ggml), as llama.cpp's CPU backend does.
#pragma once

#include <cstdint>

#include "tiller/engine.h"
#include "tiller/tensor_type.h"
#include "tiller/thread_pool.h"

namespace tiller::ops {

// How activations are stored for weights of a given type.
//   Q8_0: f16 d, int8 q[32]                       (34 bytes per 32 values)
//   Q8_1: f16 d, f16 s = f16(d x sum q), int8 q[32] (36 bytes per 32 values)
//   Q8_K: f32 d, int8 q[256], int16 bsums[16]     (292 bytes per 256 values; bsums
//         are the sums of each 16 consecutive quants)
//   F16, BF16: each value rounded to the nearest f16 / bf16 (ties to even), as ggml
//         converts activations for F16 / BF16 weights, but kept as an f32 (4 bytes
//         per value): exact, and the kernels then convert only the weights.
// F32 means no fast kernel: activations stay floats.
enum class ActivationFormat { F32, Q8_0, Q8_1, Q8_K, F16, BF16 };

// As ggml-cpu's vec_dot_type: Q4_0, Q5_0, Q8_0, IQ4_NL -> Q8_0; Q4_1, Q5_1 -> Q8_1;
// Q2_K..Q6_K, IQ4_XS -> Q8_K; F16 -> F16; BF16 -> BF16; else F32.
ActivationFormat activation_format(TensorType weight_type);
int64_t activation_block_size(ActivationFormat format);  // values per block (1 for F32)
uint64_t activation_block_bytes(ActivationFormat format);
// Bytes of one quantized row of n values; n must be a whole number of blocks.
uint64_t activation_row_bytes(ActivationFormat format, int64_t n);

// Quantizes n values (whole blocks) into `out` (activation_row_bytes bytes).
// Q8_0 / Q8_1: d = max|x| / 127, q = nearest(x * 127 / max|x|), ties to even, d
// stored as f16. Q8_K: the value of largest magnitude (the first if tied) maps to
// -127; q = min(127, nearest(x * -127 / extreme)); d = extreme / -127 stays f32.
// F16 / BF16: fp32_to_fp16 / fp32_to_bf16 (tiller/dequantize.h), back to f32.
// The bytes are the same at every level (no rounding depends on the instruction set).
void quantize_activations(ActivationFormat format, const float* x, int64_t n, uint8_t* out, KernelLevel level);
// q x d per value: exactly what round_activations returns.
void dequantize_activations(ActivationFormat format, const uint8_t* in, int64_t n, float* out);

// quantize_activations for n_rows rows of n_in values, row_bytes apart in `out`; a
// prompt's rows are split across the pool's threads (each row's bytes are the same
// either way).
void quantize_rows(ActivationFormat format, const float* x, int64_t n_rows, int64_t n_in, uint8_t* out,
                   uint64_t row_bytes, ThreadPool& pool, KernelLevel level);

}  // namespace tiller::ops
