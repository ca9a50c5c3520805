// gemma2: Gemma 2. The sandwich-norm block with attention scores and final
// logits soft-capped (tanh), and a sliding window on every other block (the
// even ones), as llama.cpp runs it.
#include "model/block_pass.h"
#include "model/families/gemma_common.h"
#include "model/families/registry.h"

namespace tiller {
namespace {

// llama.cpp's defaults where a file leaves them out: Gemma 2's window and caps.
void read_config(const gguf::File& file, ModelConfig& c) {
  if (!c.sliding_window) c.sliding_window = 4096;
  if (file.find("gemma2.attn_logit_softcapping") == nullptr) c.attn_logit_softcap = 50.0;
  if (file.find("gemma2.final_logit_softcapping") == nullptr) c.final_logit_softcap = 30.0;
}

// Gemma 2 27B has 46 blocks.
float attention_scale(const ModelConfig& c) { return gemma_attention_scale(c, 46); }

void bind(const WeightBinder& b, const ModelConfig& c, ModelWeights& w) {
  bind_embeddings_and_output(b, c, NormKind::Rms, w);
  for (int64_t l = 0; l < c.n_layer; ++l) bind_gemma_layer(b, c, block_prefix(l), w.layers.emplace_back());
}

}  // namespace

const Family kGemma2Family{
    .name = "gemma2",
    .models = "Gemma 2",
    .traits = {.rope = RopeKind::Neox,
               .activation = FfnActivation::GeluF16,
               .scale_embeddings = true,
               .sliding_window_period = 2,
               .attention_scale = attention_scale},
    .read_config = read_config,
    .bind = bind,
    .block = sandwich_norm_block,
};

}  // namespace tiller
