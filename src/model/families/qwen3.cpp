// qwen3: Qwen 3 (dense). The llama block with each query and key head
// RMS-normed before rope, rope on (i, i + d/2) pairs, and no biases.
#include "model/block_pass.h"
#include "model/families/binding.h"
#include "model/families/registry.h"

namespace tiller {
namespace {

void bind(const WeightBinder& b, const ModelConfig& c, ModelWeights& w) {
  bind_embeddings_and_output(b, c, NormKind::Rms, w);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string p = block_prefix(l);
    LayerWeights& layer = w.layers.emplace_back();
    layer.attn_norm = b.norm(p + "attn_norm", c.n_embd, NormKind::Rms);
    bind_attention(b, c, p, layer);
    layer.attn_q_norm = b.vector(p + "attn_q_norm.weight", c.head_dim);
    layer.attn_k_norm = b.vector(p + "attn_k_norm.weight", c.head_dim);
    layer.ffn_norm = b.norm(p + "ffn_norm", c.n_embd, NormKind::Rms);
    bind_gated_ffn(b, c, p, GateUp::Separate, layer);
  }
}

}  // namespace

const Family kQwen3Family{
    .name = "qwen3",
    .models = "Qwen 3 (dense)",
    .traits = {.rope = RopeKind::Neox},
    .bind = bind,
    .block = pre_norm_block,
};

}  // namespace tiller
