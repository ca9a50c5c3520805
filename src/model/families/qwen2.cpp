// qwen2: Qwen 2 and 2.5. The llama block with biases on the query, key and value
// projections, and rope on (i, i + d/2) pairs.
#include "model/block_pass.h"
#include "model/families/binding.h"
#include "model/families/registry.h"

namespace tiller {
namespace {

void bind(const WeightBinder& b, const ModelConfig& c, ModelWeights& w) {
  bind_embeddings_and_output(b, c, NormKind::Rms, w);
  const int64_t q_width = c.n_head * c.head_dim, kv_width = c.n_head_kv * c.head_dim;
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string p = block_prefix(l);
    LayerWeights& layer = w.layers.emplace_back();
    layer.attn_norm = b.norm(p + "attn_norm", c.n_embd, NormKind::Rms);
    bind_attention(b, c, p, layer);
    layer.bias_q = b.vector(p + "attn_q.bias", q_width);  // required, as llama.cpp has them
    layer.bias_k = b.vector(p + "attn_k.bias", kv_width);
    layer.bias_v = b.vector(p + "attn_v.bias", kv_width);
    layer.ffn_norm = b.norm(p + "ffn_norm", c.n_embd, NormKind::Rms);
    bind_gated_ffn(b, c, p, GateUp::Separate, layer);
  }
}

}  // namespace

const Family kQwen2Family{
    .name = "qwen2",
    .models = "Qwen 2, Qwen 2.5",
    .traits = {.rope = RopeKind::Neox},
    .bind = bind,
    .block = pre_norm_block,
};

}  // namespace tiller
