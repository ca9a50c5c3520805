// Tiny synthetic GGUF models written with Tiller's own writer, for unit tests.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "tiller/gguf.h"

namespace tiller::testing {

struct TinyModelSpec {
  std::string architecture = "llama";
  int64_t n_layer = 2;
  int64_t n_embd = 64;
  int64_t n_head = 4;
  int64_t n_head_kv = 2;
  int64_t n_ff = 96;
  int64_t n_vocab = 260;
  int64_t n_ctx_train = 256;
  TensorType weight_type = TensorType::Q8_0;  // matrices; norms stay F32
  bool tied_output = true;
  uint32_t seed = 1;
  // Bad files for error tests: leave this tensor out, or write this one with 32
  // more entries in its first dimension.
  std::string omit_tensor, widen_tensor;
  int64_t head_dim = 0;  // 0: n_embd / n_head; else written as attention.key_length and value_length
  float rope_freq_base = 10000.0f;
  float rope_scaling_factor = 0.0f;  // > 0: linear rope scaling by this factor
  // gemma2 and gemma3: the local blocks' window; gemma3 only: their rope base.
  int64_t sliding_window = 4;
  float rope_freq_base_swa = 10000.0f;
  // gemma2 only: attention-score and final-logit soft-capping (Gemma 2's values).
  float attn_logit_softcap = 50.0f;
  float final_logit_softcap = 30.0f;
  // llama: rope_freqs.weight; phi3: rope_factors_short.weight and rope_factors_long.weight.
  bool rope_factors = false;
  // phi3 only: rope.scaling.original_context_length and rope.scaling.attn_factor (0: not written).
  int64_t rope_original_context = 0;
  float rope_attn_factor = 0.0f;
};

// Every tensor and metadata key the spec's architecture (any family Tiller has)
// needs, named as in GGUF. What only other families have (biases, LayerNorm
// biases, qwen3's q/k norms, rope factors) draws from a second generator, so a
// llama or gemma3 spec without rope factors gives the bytes it always has (other
// tests rely on their random stream).
gguf::Writer make_tiny_model(const TinyModelSpec& spec);

// Random but valid bytes for n_elements weights of a dequantizable type:
// finite f16 scales, arbitrary quant bits.
std::vector<uint8_t> random_tensor_bytes(TensorType type, int64_t n_elements, std::mt19937& rng);

}  // namespace tiller::testing
