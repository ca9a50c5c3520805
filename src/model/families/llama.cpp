// llama: Llama 1 to 3.x, Mistral, TinyLlama, SmolLM2. RMSNorm before each
// sub-layer, rope on (2i, 2i+1) pairs (with Llama 3.x's per-pair frequency
// factors, rope_freqs.weight, when the file has them), SwiGLU.
#include "model/block_pass.h"
#include "model/families/binding.h"
#include "model/families/registry.h"

namespace tiller {
namespace {

void bind(const WeightBinder& b, const ModelConfig& c, ModelWeights& w) {
  bind_embeddings_and_output(b, c, NormKind::Rms, w);
  w.rope_freqs = b.optional_vector("rope_freqs.weight", c.rope_dim / 2);
  bind_rms_pre_norm_layers(b, c, GateUp::Separate, w);
}

}  // namespace

const Family kLlamaFamily{
    .name = "llama",
    .models = "Llama 1-3.x, Mistral, TinyLlama, SmolLM2",
    .traits = {.rope = RopeKind::Normal},
    .bind = bind,
    .block = pre_norm_block,
};

}  // namespace tiller
