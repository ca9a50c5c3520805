// What gemma2 and gemma3 share: RMSNorm before and after each sub-layer (a
// "sandwich"), embeddings scaled by sqrt(n_embd), rope on (i, i + d/2) pairs,
// GELU-gated MLP.
#pragma once

#include "model/families/binding.h"

namespace tiller {

// Every tensor of a gemma block but the q/k norms, which only gemma3 has.
void bind_gemma_layer(const WeightBinder& b, const ModelConfig& c, const std::string& prefix, LayerWeights& layer);

// Google's query_pre_attn_scalar, which GGUF files leave out: n_embd / n_head
// for the 27B models (144 for Gemma 2's, 168 for Gemma 3's, where head_dim is
// 128), head_dim for every other size. llama.cpp knows the 27B by its block
// count, and so does Tiller: 1 / sqrt of that scalar, computed as llama.cpp does.
float gemma_attention_scale(const ModelConfig& c, int64_t blocks_of_27b);

}  // namespace tiller
