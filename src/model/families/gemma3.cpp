// gemma3: Gemma 3 (text). The sandwich-norm block with each query and key head
// RMS-normed before rope, a sliding window on five blocks of every six, and the
// sliding blocks' own rope base.
#include <cmath>

#include "model/block_pass.h"
#include "model/families/gemma_common.h"
#include "model/families/registry.h"

namespace tiller {
namespace {

void read_config(const gguf::File&, ModelConfig& c) {
  // Gemma 3 files leave the sliding blocks' rope base implicit: llama.cpp uses 10000.
  if (!c.rope_freq_base_sliding) c.rope_freq_base_sliding = 10000.0;
  // Gemma 3 27B (62 blocks) scales queries by 1/sqrt(n_embd / n_head), not 1/sqrt(head_dim).
  if (c.n_layer == 62) c.attention_scale = 1.0 / std::sqrt(static_cast<double>(c.n_embd / c.n_head));
}

void bind(const WeightBinder& b, const ModelConfig& c, ModelWeights& w) {
  bind_embeddings_and_output(b, c, NormKind::Rms, w);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string p = block_prefix(l);
    LayerWeights& layer = w.layers.emplace_back();
    bind_gemma_layer(b, c, p, layer);
    layer.attn_q_norm = b.vector(p + "attn_q_norm.weight", c.head_dim);
    layer.attn_k_norm = b.vector(p + "attn_k_norm.weight", c.head_dim);
  }
}

}  // namespace

const Family kGemma3Family{
    .name = "gemma3",
    .models = "Gemma 3 (text)",
    .traits = {.rope = RopeKind::Neox,
               .activation = FfnActivation::GeluF16,
               .scale_embeddings = true,
               .sliding_window_period = 6,
               .scale_queries = true},
    .read_config = read_config,
    .bind = bind,
    .block = sandwich_norm_block,
};

}  // namespace tiller
