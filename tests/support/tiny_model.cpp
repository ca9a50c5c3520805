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

gguf::Writer make_tiny_model(const TinyModelSpec& spec) {
  if (spec.head_dim == 0 && spec.n_embd % spec.n_head != 0) fail("tiny model: n_embd must divide by n_head");
  std::mt19937 rng(spec.seed);
  const std::string arch = spec.architecture;
  const bool gemma = arch == "gemma3";
  const int64_t head_dim = spec.head_dim > 0 ? spec.head_dim : spec.n_embd / spec.n_head;
  gguf::Writer writer;
  writer.set("general.architecture", arch);
  writer.set("general.name", "tiny " + arch);
  writer.set(arch + ".block_count", static_cast<uint32_t>(spec.n_layer));
  writer.set(arch + ".context_length", static_cast<uint32_t>(spec.n_ctx_train));
  writer.set(arch + ".embedding_length", static_cast<uint32_t>(spec.n_embd));
  writer.set(arch + ".feed_forward_length", static_cast<uint32_t>(spec.n_ff));
  writer.set(arch + ".attention.head_count", static_cast<uint32_t>(spec.n_head));
  writer.set(arch + ".attention.head_count_kv", static_cast<uint32_t>(spec.n_head_kv));
  writer.set(arch + ".rope.freq_base", spec.rope_freq_base);
  if (spec.head_dim > 0) {
    writer.set(arch + ".attention.key_length", static_cast<uint32_t>(spec.head_dim));
    writer.set(arch + ".attention.value_length", static_cast<uint32_t>(spec.head_dim));
  }
  if (spec.rope_scaling_factor > 0) {
    writer.set(arch + ".rope.scaling.type", std::string("linear"));
    writer.set(arch + ".rope.scaling.factor", spec.rope_scaling_factor);
  }
  if (gemma) {
    writer.set(arch + ".attention.sliding_window", static_cast<uint32_t>(spec.sliding_window));
    writer.set(arch + ".rope.freq_base_swa", spec.rope_freq_base_swa);
  }
  writer.set(arch + ".attention.layer_norm_rms_epsilon", 1e-5f);

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

  auto add = [&](const std::string& name, TensorType type, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t extent : shape) n *= extent;
    writer.add_tensor(name, type, std::move(shape), random_tensor_bytes(type, n, rng));
  };
  const int64_t kv_width = spec.n_head_kv * head_dim, q_width = spec.n_head * head_dim;
  add("token_embd.weight", spec.weight_type, {spec.n_embd, spec.n_vocab});
  for (int64_t layer = 0; layer < spec.n_layer; ++layer) {
    const std::string block = fmt::format("blk.{}.", layer);
    add(block + "attn_norm.weight", TensorType::F32, {spec.n_embd});
    add(block + "attn_q.weight", spec.weight_type, {spec.n_embd, q_width});
    add(block + "attn_k.weight", spec.weight_type, {spec.n_embd, kv_width});
    add(block + "attn_v.weight", spec.weight_type, {spec.n_embd, kv_width});
    add(block + "attn_output.weight", spec.weight_type, {q_width, spec.n_embd});
    if (gemma) {
      add(block + "attn_q_norm.weight", TensorType::F32, {head_dim});
      add(block + "attn_k_norm.weight", TensorType::F32, {head_dim});
      add(block + "post_attention_norm.weight", TensorType::F32, {spec.n_embd});
      add(block + "post_ffw_norm.weight", TensorType::F32, {spec.n_embd});
    }
    add(block + "ffn_norm.weight", TensorType::F32, {spec.n_embd});
    add(block + "ffn_gate.weight", spec.weight_type, {spec.n_embd, spec.n_ff});
    add(block + "ffn_up.weight", spec.weight_type, {spec.n_embd, spec.n_ff});
    add(block + "ffn_down.weight", spec.weight_type, {spec.n_ff, spec.n_embd});
  }
  add("output_norm.weight", TensorType::F32, {spec.n_embd});
  if (!spec.tied_output) add("output.weight", spec.weight_type, {spec.n_embd, spec.n_vocab});
  return writer;
}

}  // namespace tiller::testing
