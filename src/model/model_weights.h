// Every weight of a model, bound to its bytes in the mapped file (matrices) or
// copied as floats (norms, biases, rope factors). A family binds what it has;
// what it lacks stays empty, and the forward pass skips it.
#pragma once

#include <vector>

#include "ops/ops.h"

namespace tiller {

// RMSNorm has a weight; LayerNorm a weight and a bias.
struct NormWeights {
  std::vector<float> weight, bias;
  bool present() const { return !weight.empty(); }
};

struct LayerWeights {
  NormWeights attn_norm, ffn_norm;
  NormWeights post_attention_norm, post_ffw_norm;  // sandwich-norm families (gemma2, gemma3)
  std::vector<float> attn_q_norm, attn_k_norm;     // per-head RMSNorm of queries and keys (gemma3, qwen3)
  // Fused files (phi3's attn_qkv, gpt2's) bind q, k and v as row ranges of one tensor.
  ops::WeightMatrix attn_q, attn_k, attn_v, attn_output;
  std::vector<float> bias_q, bias_k, bias_v, bias_output;  // empty when the file has none
  // Gated families: down(act(gate x) * up x); ungated (gpt2): down(act(up x)), no gate.
  // phi3's fused gate/up binds as the two halves of one tensor.
  ops::WeightMatrix ffn_gate, ffn_up, ffn_down;
  std::vector<float> bias_up, bias_down;
};

struct ModelWeights {
  ops::WeightMatrix token_embd;     // n_vocab rows of n_embd
  ops::WeightMatrix position_embd;  // learned positions (gpt2): n_ctx_train rows of n_embd; else empty
  ops::WeightMatrix output;         // the logits matrix: output.weight, or token_embd when tied
  NormWeights output_norm;
  // Per-pair rope divisors: rope_freqs.weight (llama 3), or phi3's LongRoPE factors,
  // the long ones used when a session's context exceeds the original one.
  std::vector<float> rope_freqs, rope_factors_long;
  std::vector<LayerWeights> layers;
};

}  // namespace tiller
