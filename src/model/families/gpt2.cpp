// gpt2: GPT-2 (the ActAdd paper's model). Learned position embeddings instead of
// rope, LayerNorm (weight and bias), one fused query/key/value matrix, biases on
// every matrix, an ungated GELU MLP.
#include "model/block_pass.h"
#include "model/families/binding.h"
#include "model/families/registry.h"

namespace tiller {
namespace {

void bind(const WeightBinder& b, const ModelConfig& c, ModelWeights& w) {
  bind_embeddings_and_output(b, c, NormKind::Layer, w);
  w.position_embd = b.matrix("position_embd.weight", c.n_embd, c.n_ctx_train);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string p = block_prefix(l);
    LayerWeights& layer = w.layers.emplace_back();
    layer.attn_norm = b.norm(p + "attn_norm", c.n_embd, NormKind::Layer);
    bind_attention(b, c, p, layer);
    layer.ffn_norm = b.norm(p + "ffn_norm", c.n_embd, NormKind::Layer);
    layer.ffn_up = b.matrix(p + "ffn_up.weight", c.n_embd, c.n_ff);
    layer.bias_up = b.vector(p + "ffn_up.bias", c.n_ff);
    layer.ffn_down = b.matrix(p + "ffn_down.weight", c.n_ff, c.n_embd);
    layer.bias_down = b.vector(p + "ffn_down.bias", c.n_embd);
  }
}

}  // namespace

const Family kGpt2Family{
    .name = "gpt2",
    .models = "GPT-2",
    .traits = {.norm = NormKind::Layer,
               .rope = RopeKind::None,
               .activation = FfnActivation::GeluF16,
               .gated_ffn = false},
    .bind = bind,
    .block = pre_norm_block,
};

}  // namespace tiller
