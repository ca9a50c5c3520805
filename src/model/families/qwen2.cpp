// qwen2: Qwen 2 and 2.5. The llama block with biases on the query, key and value
// projections, and rope on (i, i + d/2) pairs.
#include "model/block_pass.h"
#include "model/families/binding.h"
#include "model/families/registry.h"

namespace tiller {
namespace {

// Required, as llama.cpp has them (bind_attention takes them where present).
void bind_qkv_biases(const WeightBinder& b, const ModelConfig& c, const std::string& p, LayerWeights& layer) {
  const int64_t q_width = c.n_head * c.head_dim, kv_width = c.n_head_kv * c.head_dim;
  layer.bias_q = b.vector(p + "attn_q.bias", q_width);
  layer.bias_k = b.vector(p + "attn_k.bias", kv_width);
  layer.bias_v = b.vector(p + "attn_v.bias", kv_width);
}

void bind(const WeightBinder& b, const ModelConfig& c, ModelWeights& w) {
  bind_embeddings_and_output(b, c, NormKind::Rms, w);
  bind_rms_pre_norm_layers(b, c, GateUp::Separate, w, bind_qkv_biases);
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
