// qwen3: Qwen 3 (dense). The llama block with each query and key head
// RMS-normed before rope, rope on (i, i + d/2) pairs, and no biases.
#include "model/block_pass.h"
#include "model/families/binding.h"
#include "model/families/registry.h"

namespace tiller {
namespace {

void bind_qk_norms(const WeightBinder& b, const ModelConfig& c, const std::string& p, LayerWeights& layer) {
  layer.attn_q_norm = b.vector(p + "attn_q_norm.weight", c.head_dim);
  layer.attn_k_norm = b.vector(p + "attn_k_norm.weight", c.head_dim);
}

void bind(const WeightBinder& b, const ModelConfig& c, ModelWeights& w) {
  bind_embeddings_and_output(b, c, NormKind::Rms, w);
  bind_rms_pre_norm_layers(b, c, GateUp::Separate, w, bind_qk_norms);
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
