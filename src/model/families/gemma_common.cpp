#include "model/families/gemma_common.h"

#include <cmath>

namespace tiller {

void bind_gemma_layer(const WeightBinder& b, const ModelConfig& c, const std::string& p, LayerWeights& layer) {
  layer.attn_norm = b.norm(p + "attn_norm", c.n_embd, NormKind::Rms);
  bind_attention(b, c, p, layer);
  layer.post_attention_norm = b.norm(p + "post_attention_norm", c.n_embd, NormKind::Rms);
  layer.ffn_norm = b.norm(p + "ffn_norm", c.n_embd, NormKind::Rms);
  bind_gated_ffn(b, c, p, GateUp::Separate, layer);
  layer.post_ffw_norm = b.norm(p + "post_ffw_norm", c.n_embd, NormKind::Rms);
}

float gemma_attention_scale(const ModelConfig& c, int64_t blocks_of_27b) {
  const int64_t scalar = c.n_layer == blocks_of_27b ? c.n_embd / c.n_head : c.head_dim;
  return 1.0f / std::sqrt(static_cast<float>(scalar));
}

}  // namespace tiller
