// What gemma2 and gemma3 share: RMSNorm before and after each sub-layer (a
// "sandwich"), embeddings scaled by sqrt(n_embd), rope on (i, i + d/2) pairs,
// GELU-gated MLP.
#pragma once

#include "model/families/binding.h"

namespace tiller {

// Every tensor of a gemma block but the q/k norms, which only gemma3 has.
void bind_gemma_layer(const WeightBinder& b, const ModelConfig& c, const std::string& prefix, LayerWeights& layer);

}  // namespace tiller
