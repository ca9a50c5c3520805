#include "model/families/binding.h"

#include <fmt/format.h>

namespace tiller {

std::string block_prefix(int64_t layer) { return fmt::format("blk.{}.", layer); }

void bind_embeddings_and_output(const WeightBinder& b, const ModelConfig& c, NormKind norm, ModelWeights& w) {
  w.token_embd = b.matrix("token_embd.weight", c.n_embd, c.n_vocab);
  w.output = b.has("output.weight") ? b.matrix("output.weight", c.n_embd, c.n_vocab) : w.token_embd;
  w.output_norm = b.norm("output_norm", c.n_embd, norm);
}

void bind_attention(const WeightBinder& b, const ModelConfig& c, const std::string& p, LayerWeights& layer) {
  const int64_t q_width = c.n_head * c.head_dim, kv_width = c.n_head_kv * c.head_dim;
  if (b.has(p + "attn_qkv.weight")) {
    const ops::WeightMatrix qkv = b.matrix(p + "attn_qkv.weight", c.n_embd, q_width + 2 * kv_width);
    layer.attn_q = WeightBinder::rows(qkv, 0, q_width, "q");
    layer.attn_k = WeightBinder::rows(qkv, q_width, kv_width, "k");
    layer.attn_v = WeightBinder::rows(qkv, q_width + kv_width, kv_width, "v");
    const std::vector<float> bias = b.optional_vector(p + "attn_qkv.bias", q_width + 2 * kv_width);
    layer.bias_q = slice(bias, 0, q_width);
    layer.bias_k = slice(bias, q_width, kv_width);
    layer.bias_v = slice(bias, q_width + kv_width, kv_width);
  } else {
    layer.attn_q = b.matrix(p + "attn_q.weight", c.n_embd, q_width);
    layer.attn_k = b.matrix(p + "attn_k.weight", c.n_embd, kv_width);
    layer.attn_v = b.matrix(p + "attn_v.weight", c.n_embd, kv_width);
    layer.bias_q = b.optional_vector(p + "attn_q.bias", q_width);
    layer.bias_k = b.optional_vector(p + "attn_k.bias", kv_width);
    layer.bias_v = b.optional_vector(p + "attn_v.bias", kv_width);
  }
  layer.attn_output = b.matrix(p + "attn_output.weight", q_width, c.n_embd);
  layer.bias_output = b.optional_vector(p + "attn_output.bias", c.n_embd);
}

void bind_gated_ffn(const WeightBinder& b, const ModelConfig& c, const std::string& p, GateUp gate_up,
                    LayerWeights& layer) {
  if (gate_up == GateUp::Separate) {
    layer.ffn_gate = b.matrix(p + "ffn_gate.weight", c.n_embd, c.n_ff);
    layer.ffn_up = b.matrix(p + "ffn_up.weight", c.n_embd, c.n_ff);
  } else {
    const ops::WeightMatrix fused = b.matrix(p + "ffn_up.weight", c.n_embd, 2 * c.n_ff);
    layer.ffn_gate = WeightBinder::rows(fused, 0, c.n_ff, "gate");
    layer.ffn_up = WeightBinder::rows(fused, c.n_ff, c.n_ff, "up");
  }
  layer.ffn_down = b.matrix(p + "ffn_down.weight", c.n_ff, c.n_embd);
}

void bind_rms_pre_norm_layers(const WeightBinder& b, const ModelConfig& c, GateUp gate_up, ModelWeights& w,
                              LayerExtra extra) {
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string p = block_prefix(l);
    LayerWeights& layer = w.layers.emplace_back();
    layer.attn_norm = b.norm(p + "attn_norm", c.n_embd, NormKind::Rms);
    bind_attention(b, c, p, layer);
    layer.ffn_norm = b.norm(p + "ffn_norm", c.n_embd, NormKind::Rms);
    bind_gated_ffn(b, c, p, gate_up, layer);
    if (extra != nullptr) extra(b, c, p, layer);
  }
}

}  // namespace tiller
