// phi3: Phi-3 and Phi-3.5 (mini, medium). The llama block with one fused
// query/key/value matrix, one fused gate/up matrix, rope on (i, i + d/2) pairs
// and LongRoPE: per-pair frequency factors, short ones up to the original
// context and long ones beyond it, with cos and sin scaled by
// rope.scaling.attn_factor. llama.cpp runs Phi-3's sliding window as full
// attention (its phi3 loader turns it off), and so does Tiller: no
// sliding_window_period.
#include "model/block_pass.h"
#include "model/families/binding.h"
#include "model/families/registry.h"

namespace tiller {
namespace {

void bind(const WeightBinder& b, const ModelConfig& c, ModelWeights& w) {
  bind_embeddings_and_output(b, c, NormKind::Rms, w);
  w.rope_freqs = b.optional_vector("rope_factors_short.weight", c.rope_dim / 2);
  w.rope_factors_long = b.optional_vector("rope_factors_long.weight", c.rope_dim / 2);
  bind_rms_pre_norm_layers(b, c, GateUp::Fused, w);
}

}  // namespace

const Family kPhi3Family{
    .name = "phi3",
    .models = "Phi-3, Phi-3.5",
    .traits = {.rope = RopeKind::Neox, .scale_queries = true},
    .bind = bind,
    .block = pre_norm_block,
};

}  // namespace tiller
