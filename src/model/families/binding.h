// Tensor bindings several families share, named as in GGUF.
#pragma once

#include <string>

#include "model/weight_binder.h"

namespace tiller {

// "blk.<layer>." — the prefix of a block's tensors.
std::string block_prefix(int64_t layer);

// token_embd; output_norm (the family's norm kind); output, or token_embd again
// when the file ties them (no output.weight).
void bind_embeddings_and_output(const WeightBinder& b, const ModelConfig& c, NormKind norm, ModelWeights& w);

// Queries, keys and values from attn_q / attn_k / attn_v, or from one fused
// attn_qkv (rows q, then k, then v; phi3, gpt2), with the biases the file has
// (bias optional, as llama.cpp takes them); attn_output and its optional bias.
void bind_attention(const WeightBinder& b, const ModelConfig& c, const std::string& prefix, LayerWeights& layer);

// ffn_gate, ffn_up, ffn_down; or, fused, phi3's ffn_up of 2 x n_ff rows (the gate
// is the first half, as ggml's swiglu reads it) and ffn_down.
enum class GateUp { Separate, Fused };
void bind_gated_ffn(const WeightBinder& b, const ModelConfig& c, const std::string& prefix, GateUp gate_up,
                    LayerWeights& layer);

// Every block of a pre-norm family with RMSNorm (llama, qwen2, qwen3, phi3):
// attn_norm, the attention tensors, ffn_norm, the gated FFN; then `extra` binds
// what the family adds to each block (biases, q/k norms), if given.
using LayerExtra = void (*)(const WeightBinder& b, const ModelConfig& c, const std::string& prefix, LayerWeights& layer);
void bind_rms_pre_norm_layers(const WeightBinder& b, const ModelConfig& c, GateUp gate_up, ModelWeights& w,
                              LayerExtra extra = nullptr);

}  // namespace tiller
