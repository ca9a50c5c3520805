// Numerical building blocks of a transformer, with no knowledge of any model.
// Activations are row-major [n_rows x width] float arrays.
//
// Every function with a choice of SIMD code takes the kernel level (tiller/engine.h)
// and runs that level's code, and nothing else: Portable is plain C++ built for
// baseline x86-64, Avx2 and Avx2Tiled use at most AVX2, FMA and F16C, Avx512Vnni
// AVX-512. The level must be one this CPU runs (the Engine checks). Functions
// without a level (rms_norm, rope, softmax, weight_row, the scalar silu and GELU)
// have one plain-C++ path, built for baseline x86-64: the same bits on any CPU.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "ops/interleaved_k_quants.h"
#include "tiller/engine.h"
#include "tiller/tensor_type.h"
#include "tiller/thread_pool.h"

namespace tiller::ops {

// A weight matrix as stored in the file: n_out rows of n_in weights, each row a
// whole number of blocks of `type`.
struct WeightMatrix {
  TensorType type = TensorType::F32;
  int64_t n_in = 0, n_out = 0;
  const uint8_t* data = nullptr;
  uint64_t row_bytes = 0;
  std::string name;
  // Q4_K and Q6_K matrices the model interleaved at load (interleaved_k_quants.h); every
  // function here reads either layout.
  WeightLayout layout = WeightLayout::Gguf;
};

// Float dot product, vectorized at the level's width (Portable: baseline SSE2;
// Avx2 and Avx2Tiled: 8 lanes; Avx512Vnni: 16), each adding in its own order.
float dot(const float* a, const float* b, int64_t n, KernelLevel level);

// Calls body(begin, end, thread) over [0, n_rows): split across the pool's
// threads from kParallelRows rows, on the calling thread below that, where
// waking the others costs more than it saves. For work done row by row, whose
// results do not depend on the split.
inline constexpr int64_t kParallelRows = 16;
template <typename Body>
void parallel_rows(ThreadPool& pool, int64_t n_rows, Body&& body) {
  if (n_rows >= kParallelRows) {
    pool.parallel_for(n_rows, body);
  } else if (n_rows > 0) {
    body(int64_t{0}, n_rows, 0);
  }
}

// Rounds activations as llama.cpp's CPU kernels quantize them before a dot
// product with weights of `weight_type`: 8-bit blocks of 32 with an f16 scale
// (Q8_0 / Q8_1) for the 32-weight formats and IQ4_NL, 8-bit blocks of 256 with an
// f32 scale (Q8_K) for the K-quants and IQ4_XS, each value to the nearest f16 /
// bf16 for F16 / BF16 weights, unchanged otherwise (F32). Computing with these values keeps
// each matrix product within 1e-6 of llama.cpp's instead of 1e-2. matmul works on
// the 8-bit values themselves; this float form is the tests' reference.
void round_activations(TensorType weight_type, const float* x, int64_t n, float* out);

// out[t, r] = sum_i w[r, i] * x'[t, i] for t < n_rows, r < w.n_out, where x' is x
// rounded by round_activations. Computed with integer dot products on the
// quantized activations (ops/matmul.h), as llama.cpp's CPU backend does.
void matmul(const WeightMatrix& w, const float* x, int64_t n_rows, float* out, ThreadPool& pool, KernelLevel level,
            bool independent_rows = false);  // see quantized_matmul (ops/matmul.h)

// The product the plain way, the reference for faster kernels: activations rounded by
// round_activations, each weight row dequantized to floats, float dot products, and
// for Q4_1 / Q5_1 the per-block correction for Q8_1's stored sums.
// Its float dot products are dot's at `level`.
void matmul_reference(const WeightMatrix& w, const float* x, int64_t n_rows, float* out, ThreadPool& pool,
                      KernelLevel level);

// The weight rows [first, first + count) as a matrix of their own, in place.
WeightMatrix output_rows(const WeightMatrix& w, int64_t first, int64_t count);

// One row of a weight matrix as floats (embedding look-up).
void weight_row(const WeightMatrix& w, int64_t row, float* out);

// x / sqrt(mean(x^2) + eps) * weight, per row of `width`.
void rms_norm(const float* x, const float* weight, int64_t n_rows, int64_t width, float eps, float* out);

// (x - mean(x)) / sqrt(var(x) + eps) * weight + bias, per row of `width` (GPT-2's
// LayerNorm; sums in double, as ggml's CPU norm keeps them).
void layer_norm(const float* x, const float* weight, const float* bias, int64_t n_rows, int64_t width, float eps,
                float* out);

struct RopeParams {
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;              // linear scaling: positions count freq_scale each
  const float* freq_factors = nullptr;  // optional per-pair divisors (Llama 3.1's rope_freqs)
  bool neox = false;                    // pairs (i, i + d/2) instead of (2i, 2i+1)
  float attn_factor = 1.0f;             // cos and sin scaled by it (rope.scaling.attn_factor, Phi-3's LongRoPE)
};

// Rotary position embedding in place on [n_rows x n_heads*head_dim]: pair i of
// each head turns by positions[t] * freq_scale * freq_base^(-2i/head_dim) / freq_factors[i].
// Pairs are (2i, 2i+1) ("normal", llama) or (i, i + head_dim/2) ("neox", gemma3).
void rope(float* x, int64_t n_rows, int64_t n_heads, int64_t head_dim, std::span<const int32_t> positions,
          const RopeParams& params);

void softmax(float* x, int64_t n);

float silu(float x);
// gate[i] = silu(gate[i]) x up[i] for n values: silu's bits below Avx512Vnni; at
// Avx512Vnni 16 at a time with e^x from exp_avx512 (a float step or two from silu's).
void silu_times(float* gate, const float* up, int64_t n, KernelLevel level);
float gelu_tanh(float x);
// GELU-tanh of x rounded to f16, itself rounded to f16: llama.cpp's CPU backend
// reads GELU from an f16 table, and Gemma's numbers follow that table.
float gelu_tanh_f16(float x);
// gate[i] = gelu_tanh_f16(gate[i]) x up[i] for n values: the same bits at every
// level (vectorized at Avx512Vnni).
void gelu_f16_times(float* gate, const float* up, int64_t n, KernelLevel level);
// x[i] = gelu_tanh_f16(x[i]) (GPT-2's ungated MLP).
void gelu_f16(float* x, int64_t n);

}  // namespace tiller::ops
