// A model's hyper-parameters, read from GGUF metadata into a plain struct.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

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
  std::optional<int64_t> sliding_window;
  std::optional<std::string> rope_scaling_type;
  std::optional<double> rope_scaling_factor;
  double rope_freq_scale = 1.0;  // 1 / factor for linear scaling, else 1
  double norm_eps = 0.0;
  std::string tokenizer_model;  // tokenizer.ggml.model: "gpt2", "llama", ...
  std::string tokenizer_pre;    // tokenizer.ggml.pre, may be empty
  bool has_chat_template = false;
  bool has_output_weight = false;  // false: logits use token_embd (tied)
};

// Reads what the metadata says. Files that are not language models (a control
// vector, say) yield a config with only `architecture` set; a model file with a
// malformed key is an error naming the file and key.
ModelConfig read_model_config(const gguf::File& file);

// True when the config has the fields a forward pass needs.
bool is_language_model(const ModelConfig& config);

}  // namespace tiller
