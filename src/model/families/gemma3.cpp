// gemma3: Gemma 3 (text). The sandwich-norm block with each query and key head
// RMS-normed before rope, a sliding window on five blocks of every six, and the
// sliding blocks' own rope base.
#include "model/block_pass.h"
#include "model/families/gemma_common.h"
#include "model/families/registry.h"

namespace tiller {
namespace {

// Gemma 3 files leave the sliding blocks' rope base implicit: llama.cpp uses 10000.
void read_config(const gguf::File&, ModelConfig& c) {
  if (!c.rope_freq_base_sliding) c.rope_freq_base_sliding = 10000.0;
}

// Gemma 3 27B has 62 blocks.
float attention_scale(const ModelConfig& c) { return gemma_attention_scale(c, 62); }

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
               .attention_scale = attention_scale},
    .read_config = read_config,
    .bind = bind,
    .block = sandwich_norm_block,
};

}  // namespace tiller
