// Every weight of a model, bound to its bytes in the mapped file (matrices) or
// copied as floats (the small norm vectors).
#pragma once

#include <vector>

#include "ops/ops.h"

namespace tiller {

struct LayerWeights {
  std::vector<float> attn_norm, ffn_norm;
  std::vector<float> attn_q_norm, attn_k_norm;                // qk_norm architectures
  std::vector<float> post_attention_norm, post_ffw_norm;      // post_norms architectures
  ops::WeightMatrix attn_q, attn_k, attn_v, attn_output;
  ops::WeightMatrix ffn_gate, ffn_up, ffn_down;
};

struct ModelWeights {
  ops::WeightMatrix token_embd;  // n_vocab rows of n_embd
  ops::WeightMatrix output;      // the logits matrix: output.weight, or token_embd when tied
  std::vector<float> output_norm;
  std::vector<float> rope_freqs;  // optional per-pair rope divisors (rope_freqs.weight), else empty
  std::vector<LayerWeights> layers;
};

}  // namespace tiller
