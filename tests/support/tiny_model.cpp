#include "support/tiny_model.h"

#include <cstring>

#include "common/fail.h"

namespace tiller::testing {
namespace {

// A finite, normal f16 between 2^-10 and 2^-1 in magnitude, either sign.
uint16_t random_f16_scale(std::mt19937& rng) {
  const uint16_t sign = (rng() & 1u) ? 0x8000 : 0;
  const auto exponent = static_cast<uint16_t>(5 + rng() % 10);
  const auto mantissa = static_cast<uint16_t>(rng() & 0x3ffu);
  return static_cast<uint16_t>(sign | (exponent << 10) | mantissa);
}

// Where each block format keeps its f16 scales.
std::vector<size_t> f16_fields(TensorType type) {
  switch (type) {
    case TensorType::Q4_0: case TensorType::Q5_0: case TensorType::Q8_0: case TensorType::IQ4_NL:
    case TensorType::IQ4_XS:
      return {0};
    case TensorType::Q4_1: case TensorType::Q5_1: case TensorType::Q4_K: case TensorType::Q5_K:
      return {0, 2};
    case TensorType::Q2_K: return {80, 82};
    case TensorType::Q3_K: return {108};
    case TensorType::Q6_K: return {208};
    default: return {};
  }
}

}  // namespace

std::vector<uint8_t> random_tensor_bytes(TensorType type, int64_t n_elements, std::mt19937& rng) {
  const TensorTypeInfo& info = tensor_type_info(type);
  std::vector<uint8_t> bytes(*tensor_bytes(type, n_elements));
  if (type == TensorType::F32) {
    std::normal_distribution<float> normal(0.0f, 0.5f);
    for (int64_t i = 0; i < n_elements; ++i) {
      const float value = normal(rng);
      std::memcpy(bytes.data() + 4 * i, &value, 4);
    }
    return bytes;
  }
  if (type == TensorType::F16 || type == TensorType::BF16) {
    for (int64_t i = 0; i < n_elements; ++i) {
      // F16: a scale-like value; BF16: the top half of a moderate float
      uint16_t bits = random_f16_scale(rng);
      if (type == TensorType::BF16) bits = static_cast<uint16_t>(0x3c00 + (rng() % 0x0400)) | (rng() & 1u ? 0x8000 : 0);
      std::memcpy(bytes.data() + 2 * i, &bits, 2);
    }
    return bytes;
  }
  for (auto& byte : bytes) byte = static_cast<uint8_t>(rng());
  const auto fields = f16_fields(type);
  for (size_t block = 0; block < bytes.size() / info.block_bytes; ++block) {
    for (size_t field : fields) {
      const uint16_t scale = random_f16_scale(rng);
      std::memcpy(bytes.data() + block * info.block_bytes + field, &scale, 2);
    }
  }
  return bytes;
}

namespace {

// What a family's file holds beyond llama's tensors, as llama.cpp's loader names
// them. Architectures Tiller lacks (a test's "mamba") get llama's tensors.
struct Layout {
  bool fused_qkv = false;          // one attn_qkv instead of attn_q, attn_k, attn_v (phi3, gpt2)
  bool qkv_bias = false;           // biases on q, k and v (qwen2; gpt2's fused one)
  bool all_biases = false;         // biases on attn_output, ffn_up and ffn_down too (gpt2)
  bool qk_norm = false;            // per-head query and key norms (qwen3, gemma3)
  bool sandwich = false;           // post_attention_norm and post_ffw_norm, a window (gemma2, gemma3)
  bool fused_gate_up = false;      // ffn_up holds the gate and up halves, no ffn_gate (phi3)
  bool gated = true;               // ffn_gate (or a fused half); gpt2's MLP has none
  bool layer_norm = false;         // norms have a bias, layer_norm_epsilon (gpt2)
  bool learned_positions = false;  // position_embd, no rope (gpt2)
};

Layout layout_of(const std::string& arch) {
  if (arch == "qwen2") return {.qkv_bias = true};
  if (arch == "qwen3") return {.qk_norm = true};
  if (arch == "phi3") return {.fused_qkv = true, .fused_gate_up = true};
  if (arch == "gemma2") return {.sandwich = true};
  if (arch == "gemma3") return {.qk_norm = true, .sandwich = true};
  if (arch == "gpt2") {
    return {.fused_qkv = true, .qkv_bias = true, .all_biases = true, .gated = false, .layer_norm = true,
            .learned_positions = true};
  }
  return {};
}

void write_metadata(const TinyModelSpec& spec, const Layout& f, gguf::Writer& writer) {
  const std::string& arch = spec.architecture;
  writer.set("general.architecture", arch);
  writer.set("general.name", "tiny " + arch);
  writer.set(arch + ".block_count", static_cast<uint32_t>(spec.n_layer));
  writer.set(arch + ".context_length", static_cast<uint32_t>(spec.n_ctx_train));
  writer.set(arch + ".embedding_length", static_cast<uint32_t>(spec.n_embd));
  writer.set(arch + ".feed_forward_length", static_cast<uint32_t>(spec.n_ff));
  writer.set(arch + ".attention.head_count", static_cast<uint32_t>(spec.n_head));
  writer.set(arch + ".attention.head_count_kv", static_cast<uint32_t>(spec.n_head_kv));
  if (!f.learned_positions) writer.set(arch + ".rope.freq_base", spec.rope_freq_base);
  if (spec.head_dim > 0) {
    writer.set(arch + ".attention.key_length", static_cast<uint32_t>(spec.head_dim));
    writer.set(arch + ".attention.value_length", static_cast<uint32_t>(spec.head_dim));
  }
  if (spec.rope_scaling_factor > 0) {
    writer.set(arch + ".rope.scaling.type", std::string("linear"));
    writer.set(arch + ".rope.scaling.factor", spec.rope_scaling_factor);
  }
  if (f.sandwich) writer.set(arch + ".attention.sliding_window", static_cast<uint32_t>(spec.sliding_window));
  if (arch == "gemma3") writer.set(arch + ".rope.freq_base_swa", spec.rope_freq_base_swa);
  if (arch == "gemma2") {
    writer.set(arch + ".attn_logit_softcapping", spec.attn_logit_softcap);
    writer.set(arch + ".final_logit_softcapping", spec.final_logit_softcap);
  }
  if (arch == "phi3" && spec.rope_original_context > 0) {
    writer.set(arch + ".rope.scaling.original_context_length", static_cast<uint32_t>(spec.rope_original_context));
  }
  if (arch == "phi3" && spec.rope_attn_factor > 0) writer.set(arch + ".rope.scaling.attn_factor", spec.rope_attn_factor);
  writer.set(arch + (f.layer_norm ? ".attention.layer_norm_epsilon" : ".attention.layer_norm_rms_epsilon"), 1e-5f);

  // A byte-level vocabulary: three specials, then one token per byte value.
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> token_types = {2, 3, 3};
  for (int b = 0; static_cast<int64_t>(tokens.size()) < spec.n_vocab; ++b) {
    tokens.push_back(fmt::format("<0x{:02X}>", b % 256) + (b >= 256 ? std::to_string(b) : ""));
    token_types.push_back(6);
  }
  writer.set("tokenizer.ggml.model", "llama");
  writer.set("tokenizer.ggml.tokens", gguf::Array{std::move(tokens)});
  writer.set("tokenizer.ggml.scores", gguf::Array{std::vector<float>(spec.n_vocab, 0.0f)});
  writer.set("tokenizer.ggml.token_type", gguf::Array{std::move(token_types)});
  writer.set("tokenizer.ggml.bos_token_id", uint32_t{1});
  writer.set("tokenizer.ggml.eos_token_id", uint32_t{2});
}

}  // namespace

gguf::Writer make_tiny_model(const TinyModelSpec& spec) {
  if (spec.head_dim == 0 && spec.n_embd % spec.n_head != 0) fail("tiny model: n_embd must divide by n_head");
  const Layout f = layout_of(spec.architecture);
  const int64_t head_dim = spec.head_dim > 0 ? spec.head_dim : spec.n_embd / spec.n_head;
  gguf::Writer writer;
  write_metadata(spec, f, writer);

  // Matrices and llama's norms draw from `rng` in the order they always have;
  // what only other families have draws from `extra`, so llama and gemma3 files
  // stay the same bytes.
  std::mt19937 rng(spec.seed);
  std::mt19937 extra(spec.seed ^ 0x9e3779b9u);
  auto add = [&](const std::string& name, TensorType type, std::vector<int64_t> shape) {
    if (name == spec.omit_tensor) return;
    if (name == spec.widen_tensor) shape[0] += 32;
    int64_t n = 1;
    for (int64_t extent : shape) n *= extent;
    writer.add_tensor(name, type, std::move(shape), random_tensor_bytes(type, n, rng));
  };
  // An F32 vector of values center + N(0, spread): biases small, norms near 1.
  auto add_near = [&](const std::string& name, int64_t n, float center, float spread) {
    if (name == spec.omit_tensor) return;
    if (name == spec.widen_tensor) n += 32;
    std::normal_distribution<float> normal(center, spread);
    std::vector<float> values(static_cast<size_t>(n));
    for (float& value : values) value = normal(extra);
    writer.add_tensor(name, {n}, values);
  };
  auto add_bias = [&](const std::string& name, int64_t n) { add_near(name, n, 0.0f, 0.1f); };
  // A norm's weight, and LayerNorm's bias.
  auto add_norm = [&](const std::string& base) {
    add(base + ".weight", TensorType::F32, {spec.n_embd});
    if (f.layer_norm) add_bias(base + ".bias", spec.n_embd);
  };
  // Rope's per-pair divisors, between 1 and 4 (Llama 3.1's go from 1 to 8).
  auto add_rope_factors = [&](const std::string& name) {
    std::uniform_real_distribution<float> uniform(1.0f, 4.0f);
    std::vector<float> values(static_cast<size_t>(head_dim / 2));
    for (float& value : values) value = uniform(extra);
    writer.add_tensor(name, {head_dim / 2}, values);
  };

  const int64_t kv_width = spec.n_head_kv * head_dim, q_width = spec.n_head * head_dim;
  add("token_embd.weight", spec.weight_type, {spec.n_embd, spec.n_vocab});
  if (f.learned_positions) add("position_embd.weight", spec.weight_type, {spec.n_embd, spec.n_ctx_train});
  for (int64_t layer = 0; layer < spec.n_layer; ++layer) {
    const std::string block = fmt::format("blk.{}.", layer);
    add_norm(block + "attn_norm");
    if (f.fused_qkv) {
      add(block + "attn_qkv.weight", spec.weight_type, {spec.n_embd, q_width + 2 * kv_width});
      if (f.qkv_bias) add_bias(block + "attn_qkv.bias", q_width + 2 * kv_width);
    } else {
      add(block + "attn_q.weight", spec.weight_type, {spec.n_embd, q_width});
      add(block + "attn_k.weight", spec.weight_type, {spec.n_embd, kv_width});
      add(block + "attn_v.weight", spec.weight_type, {spec.n_embd, kv_width});
      if (f.qkv_bias) {
        add_bias(block + "attn_q.bias", q_width);
        add_bias(block + "attn_k.bias", kv_width);
        add_bias(block + "attn_v.bias", kv_width);
      }
    }
    add(block + "attn_output.weight", spec.weight_type, {q_width, spec.n_embd});
    if (f.all_biases) add_bias(block + "attn_output.bias", spec.n_embd);
    if (f.qk_norm && f.sandwich) {  // gemma3's, where its files have always drawn them
      add(block + "attn_q_norm.weight", TensorType::F32, {head_dim});
      add(block + "attn_k_norm.weight", TensorType::F32, {head_dim});
    } else if (f.qk_norm) {
      add_near(block + "attn_q_norm.weight", head_dim, 1.0f, 0.2f);
      add_near(block + "attn_k_norm.weight", head_dim, 1.0f, 0.2f);
    }
    if (f.sandwich) {
      add(block + "post_attention_norm.weight", TensorType::F32, {spec.n_embd});
      add(block + "post_ffw_norm.weight", TensorType::F32, {spec.n_embd});
    }
    add_norm(block + "ffn_norm");
    if (!f.gated) {
      add(block + "ffn_up.weight", spec.weight_type, {spec.n_embd, spec.n_ff});
      add_bias(block + "ffn_up.bias", spec.n_ff);
    } else if (f.fused_gate_up) {
      add(block + "ffn_up.weight", spec.weight_type, {spec.n_embd, 2 * spec.n_ff});
    } else {
      add(block + "ffn_gate.weight", spec.weight_type, {spec.n_embd, spec.n_ff});
      add(block + "ffn_up.weight", spec.weight_type, {spec.n_embd, spec.n_ff});
    }
    add(block + "ffn_down.weight", spec.weight_type, {spec.n_ff, spec.n_embd});
    if (f.all_biases) add_bias(block + "ffn_down.bias", spec.n_embd);
  }
  add_norm("output_norm");
  if (!spec.tied_output) add("output.weight", spec.weight_type, {spec.n_embd, spec.n_vocab});
  if (spec.rope_factors && spec.architecture == "llama") add_rope_factors("rope_freqs.weight");
  if (spec.rope_factors && spec.architecture == "phi3") {
    add_rope_factors("rope_factors_short.weight");
    add_rope_factors("rope_factors_long.weight");
  }
  return writer;
}

}  // namespace tiller::testing
