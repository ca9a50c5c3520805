#include "tiller/model_config.h"

#include <algorithm>

#include "tiller/printable.h"
#include "common/fail.h"
#include "model/family.h"

namespace tiller {
namespace {

// Some GGUFs store per-layer counts (head_count as an array, one per block);
// the largest entry is the width buffers must have.
std::optional<int64_t> read_count(const gguf::File& file, const std::string& key) {
  const gguf::Value* value = file.find(key);
  if (value == nullptr) return std::nullopt;
  if (const auto* per_layer = value->as<gguf::Array>()) {
    int64_t largest = 0;
    std::visit(
        [&](const auto& items) {
          using Item = typename std::decay_t<decltype(items)>::value_type;
          if constexpr (std::is_integral_v<Item> && !std::is_same_v<Item, bool>) {
            for (const auto item : items) {
              if (static_cast<uint64_t>(item) > (uint64_t{1} << 40)) {
                fail("{}: metadata key '{}' holds the absurd count {}", file.name(), printable(key), item);
              }
              largest = std::max<int64_t>(largest, static_cast<int64_t>(item));
            }
          } else {
            fail("{}: metadata key '{}' is an array of {}, expected integers", file.name(), printable(key),
                 gguf::value_type_name(per_layer->element_type()));
          }
        },
        per_layer->items);
    return largest;
  }
  const uint64_t count = *file.get_uint(key);
  if (count > (uint64_t{1} << 40)) fail("{}: metadata key '{}' = {} is absurd", file.name(), printable(key), count);
  return static_cast<int64_t>(count);
}

}  // namespace

ModelConfig read_model_config(const gguf::File& file) {
  ModelConfig config;
  config.architecture = file.get_string("general.architecture").value_or("");
  config.name = file.get_string("general.name").value_or("");
  const std::string prefix = config.architecture + ".";
  auto count = [&](const char* key) { return read_count(file, prefix + key); };

  config.n_layer = count("block_count").value_or(0);
  config.n_embd = count("embedding_length").value_or(0);
  config.n_head = count("attention.head_count").value_or(0);
  config.n_head_kv = count("attention.head_count_kv").value_or(config.n_head);
  config.n_ff = count("feed_forward_length").value_or(0);
  config.n_ctx_train = count("context_length").value_or(0);
  config.head_dim = count("attention.key_length")
                        .value_or(config.n_head > 0 ? config.n_embd / config.n_head : 0);
  config.sliding_window = count("attention.sliding_window");

  config.rope_freq_base = file.get_float(prefix + "rope.freq_base").value_or(10000.0);
  config.rope_freq_base_sliding = file.get_float(prefix + "rope.freq_base_swa");
  config.rope_dim = count("rope.dimension_count").value_or(config.head_dim);
  config.n_ctx_orig = count("rope.scaling.original_context_length").value_or(config.n_ctx_train);
  config.rope_attn_factor = file.get_float(prefix + "rope.scaling.attn_factor").value_or(1.0);
  config.rope_scaling_type = file.get_string(prefix + "rope.scaling.type");
  config.rope_scaling_factor = file.get_float(prefix + "rope.scaling.factor");
  if (config.rope_scaling_type == "linear" && config.rope_scaling_factor && *config.rope_scaling_factor > 0) {
    config.rope_freq_scale = 1.0 / *config.rope_scaling_factor;
  }
  config.norm_eps = file.get_float(prefix + "attention.layer_norm_rms_epsilon")
                        .value_or(file.get_float(prefix + "attention.layer_norm_epsilon").value_or(0.0));
  config.attn_logit_softcap = file.get_float(prefix + "attn_logit_softcapping").value_or(0.0);
  config.final_logit_softcap = file.get_float(prefix + "final_logit_softcapping").value_or(0.0);

  config.tokenizer_model = file.get_string("tokenizer.ggml.model").value_or("");
  config.tokenizer_pre = file.get_string("tokenizer.ggml.pre").value_or("");
  config.has_chat_template = file.find("tokenizer.chat_template") != nullptr;
  config.has_output_weight = file.find_tensor("output.weight") != nullptr;

  if (const gguf::Array* tokens = file.get_array("tokenizer.ggml.tokens")) {
    config.n_vocab = static_cast<int64_t>(tokens->size());
  } else if (const auto vocab = count("vocab_size")) {
    config.n_vocab = *vocab;
  } else if (const gguf::TensorInfo* embedding = file.find_tensor("token_embd.weight");
             embedding != nullptr && embedding->shape.size() >= 2) {
    config.n_vocab = embedding->shape[1];
  }
  if (const Family* family = find_family(config.architecture); family != nullptr && family->read_config != nullptr) {
    family->read_config(file, config);
  }
  return config;
}

bool is_language_model(const ModelConfig& config) {
  return config.n_layer > 0 && config.n_embd > 0 && config.n_head > 0 && config.n_vocab > 0;
}

}  // namespace tiller
