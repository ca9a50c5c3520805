// A plain double-precision forward pass, independent of Tiller's Session and its
// weight binder: no cache, no batching, no rounding, every weight read by its
// GGUF name. It runs any family Tiller has, reading from the family's traits
// (src/model/family.h) only what kind of norm, rope, activation and MLP it uses,
// its embedding scaling, sliding-window period and attention scale; everything else (biases,
// fused tensors, q/k norms, sandwich norms, learned positions, rope factors) is
// applied where the file has it, and soft-capping where the config says. Tests
// compare the engine against it on tiny models; its switches let a test show
// that a wrong choice would be caught.
#pragma once

#include <string>
#include <vector>

#include "tiller/tokenizer.h"

namespace tiller::testing {

struct ReferenceVariant {
  bool swap_rope_pairing = false;      // use the other rope pairing: (2i, 2i+1) <-> (i, i + d/2)
  bool interleave_kv_heads = false;    // query head h reads kv head h % n_kv instead of h / group
  bool ignore_window = false;          // attend to every earlier position in local blocks
  bool skip_biases = false;            // no bias on any projection (LayerNorm's biases stay)
  bool skip_qk_norm = false;           // queries and keys not normed per head
  bool skip_attn_softcap = false;      // attention scores not soft-capped
  bool skip_final_softcap = false;     // logits not soft-capped
  bool skip_rope_factors = false;      // no per-pair rope divisors (rope_freqs, LongRoPE's)
  bool long_rope_factors = false;      // LongRoPE's long factors even within the original context
  bool skip_rope_attn_factor = false;  // cos and sin not scaled by rope.scaling.attn_factor
  bool swap_gate_up_halves = false;    // a fused ffn_up read as up then gate
  bool skip_positions = false;         // no learned position embeddings
  bool head_dim_attention_scale = false;  // scores scaled by 1 / sqrt(head_dim) whatever the family says
};

// Logits [tokens.size() x n_vocab], row-major, for the model file at `path` (any
// architecture find_family knows). The context is the tokens: LongRoPE takes its
// long factors only when there are more of them than the original context.
std::vector<double> reference_logits(const std::string& path, const std::vector<TokenId>& tokens,
                                     const ReferenceVariant& variant = {});

}  // namespace tiller::testing
