// A model's hyper-parameters, read from GGUF metadata into a plain struct.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tiller/gguf.h"

namespace tiller {

struct ModelConfig {
  std::string architecture;     // general.architecture
  std::string name;             // general.name, may be empty
  int64_t n_layer = 0;          // transformer blocks
  int64_t n_embd = 0;           // residual stream width
  int64_t n_head = 0;           // query heads
  int64_t n_head_kv = 0;        // key/value heads (GQA when fewer than n_head)
  int64_t head_dim = 0;         // per-head width of queries and keys
  int64_t n_ff = 0;             // feed-forward hidden width
  int64_t n_vocab = 0;
  int64_t n_ctx_train = 0;      // context length the model was trained for
  double rope_freq_base = 10000.0;
  std::optional<double> rope_freq_base_sliding;  // gemma3's local blocks use their own base
  int64_t rope_dim = 0;         // rope.dimension_count: dimensions rotated per head (head_dim when absent)
  int64_t n_ctx_orig = 0;       // rope.scaling.original_context_length (n_ctx_train when absent)
  double rope_attn_factor = 1.0;  // rope.scaling.attn_factor: cos and sin scaled by it
  std::optional<int64_t> sliding_window;
  std::optional<std::string> rope_scaling_type;
  std::optional<double> rope_scaling_factor;
  double rope_freq_scale = 1.0;  // 1 / factor for linear scaling, else 1
  double norm_eps = 0.0;
  double attention_scale = 0.0;      // query-key products times this; 0: 1 / sqrt(head_dim)
  double attn_logit_softcap = 0.0;   // > 0: attention scores soft-capped (gemma2)
  double final_logit_softcap = 0.0;  // > 0: logits soft-capped (gemma2)
  std::string tokenizer_model;  // tokenizer.ggml.model: "gpt2", "llama", ...
  std::string tokenizer_pre;    // tokenizer.ggml.pre, may be empty
  bool has_chat_template = false;
  bool has_output_weight = false;  // false: logits use token_embd (tied)
};

// Reads what the metadata says, with the defaults llama.cpp gives the file's
// architecture family where it has one (src/model/families). Files that are not language models (a control
// vector, say) yield a config with only `architecture` set; a model file with a
// malformed key is an error naming the file and key.
ModelConfig read_model_config(const gguf::File& file);

// The architecture family Tiller runs a GGUF architecture with, and the models
// people know it by; nullopt when Tiller has none.
struct FamilyInfo {
  std::string name;    // "llama", "qwen2", ...
  std::string models;  // "Llama 1-3.x, Mistral, TinyLlama, SmolLM2"
};
std::optional<FamilyInfo> family_info(std::string_view architecture);
// Every family's name, in the registry's order.
std::vector<std::string> supported_families();

// True when the config has the fields a forward pass needs.
bool is_language_model(const ModelConfig& config);

}  // namespace tiller
