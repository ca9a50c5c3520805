// Loading a model: hyper-parameters, architecture traits, tokenizer, weights.
#include "tiller/model.h"

#include "tiller/printable.h"
#include "model/model_weights.h"
#include "tiller/dequantize.h"
#include "common/fail.h"

namespace tiller {

ArchitectureTraits architecture_traits(const ModelConfig& config, const std::string& file_name) {
  if (config.architecture == "llama") return {};
  if (config.architecture == "gemma3") {
    ArchitectureTraits traits;
    traits.neox_rope = true;
    traits.scale_embeddings = true;
    traits.qk_norm = true;
    traits.post_norms = true;
    traits.gelu = true;
    traits.sliding_window_period = 6;
    return traits;
  }
  fail("{}: architecture '{}' is not supported (supported: llama, gemma3)", file_name, printable(config.architecture));
}

namespace {

class Binder {
 public:
  explicit Binder(const gguf::File& file) : file_(file) {}

  const gguf::TensorInfo& tensor(const std::string& name) const {
    const gguf::TensorInfo* info = file_.find_tensor(name);
    if (info == nullptr) fail("{}: tensor '{}' is missing", file_.name(), name);
    if (!tensor_type_info(info->type).dequantizable) {
      fail("{}: tensor '{}' has type {}, which Tiller cannot compute with yet", file_.name(), name,
           tensor_type_name(info->type));
    }
    return *info;
  }

  ops::WeightMatrix matrix(const std::string& name, int64_t n_in, int64_t n_out) const {
    const gguf::TensorInfo& info = tensor(name);
    if (info.shape != std::vector<int64_t>{n_in, n_out}) {
      fail("{}: tensor '{}' has shape [{}], expected [{}, {}]", file_.name(), name, fmt::join(info.shape, ", "),
           n_in, n_out);
    }
    return {info.type, n_in, n_out, file_.tensor_data(info).data(), info.row_bytes(), name};
  }

  std::vector<float> vector(const std::string& name, int64_t n) const {
    const gguf::TensorInfo& info = tensor(name);
    if (info.shape != std::vector<int64_t>{n}) {
      fail("{}: tensor '{}' has shape [{}], expected [{}]", file_.name(), name, fmt::join(info.shape, ", "), n);
    }
    return dequantize_tensor_row(file_, info, 0);
  }

 private:
  const gguf::File& file_;
};

void check_config(const ModelConfig& c, const std::string& name) {
  if (!is_language_model(c)) fail("{}: not a language model (no block count, width or vocabulary)", name);
  constexpr int64_t kLargest = int64_t{1} << 20;  // far beyond any real model; keeps products in range
  for (const auto& [what, value] : {std::pair{"block count", c.n_layer}, {"width", c.n_embd}, {"head count", c.n_head},
                                    {"key/value head count", c.n_head_kv}, {"head size", c.head_dim},
                                    {"feed-forward width", c.n_ff}}) {
    if (value > kLargest) fail("{}: {} {} is beyond what Tiller supports", name, what, value);
  }
  if (c.n_head_kv <= 0 || c.n_head % c.n_head_kv != 0) {
    fail("{}: {} query heads cannot share {} key/value heads", name, c.n_head, c.n_head_kv);
  }
  if (c.head_dim <= 0 || c.head_dim % 2 != 0) fail("{}: head size {} must be even", name, c.head_dim);
  if (c.n_ff <= 0) fail("{}: feed-forward width is missing", name);
  if (c.rope_scaling_type && *c.rope_scaling_type != "none" && *c.rope_scaling_type != "linear") {
    fail("{}: rope scaling '{}' is not supported (supported: none, linear)", name, printable(*c.rope_scaling_type));
  }
  if (c.rope_scaling_type == "linear" && !(c.rope_scaling_factor && *c.rope_scaling_factor > 0)) {
    fail("{}: linear rope scaling needs a positive rope.scaling.factor", name);
  }
}

}  // namespace

Model::Model(gguf::File file) : file_(std::move(file)) {}
Model::~Model() = default;

std::shared_ptr<const Model> Model::load(const std::string& path) {
  std::shared_ptr<Model> model(new Model(gguf::File::open(path)));
  const gguf::File& file = model->file_;
  model->config_ = read_model_config(file);
  const ModelConfig& c = model->config_;
  model->traits_ = architecture_traits(c, file.name());
  check_config(c, file.name());
  model->tokenizer_ = Tokenizer::from_gguf(file);

  const Binder bind(file);
  auto weights = std::make_unique<ModelWeights>();
  const int64_t q_width = c.n_head * c.head_dim, kv_width = c.n_head_kv * c.head_dim;
  weights->token_embd = bind.matrix("token_embd.weight", c.n_embd, c.n_vocab);
  weights->output = file.find_tensor("output.weight") ? bind.matrix("output.weight", c.n_embd, c.n_vocab)
                                                      : weights->token_embd;
  weights->output_norm = bind.vector("output_norm.weight", c.n_embd);
  if (file.find_tensor("rope_freqs.weight") != nullptr) {
    weights->rope_freqs = bind.vector("rope_freqs.weight", c.head_dim / 2);
  }
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string p = fmt::format("blk.{}.", l);
    LayerWeights layer;
    layer.attn_norm = bind.vector(p + "attn_norm.weight", c.n_embd);
    layer.attn_q = bind.matrix(p + "attn_q.weight", c.n_embd, q_width);
    layer.attn_k = bind.matrix(p + "attn_k.weight", c.n_embd, kv_width);
    layer.attn_v = bind.matrix(p + "attn_v.weight", c.n_embd, kv_width);
    layer.attn_output = bind.matrix(p + "attn_output.weight", q_width, c.n_embd);
    layer.ffn_norm = bind.vector(p + "ffn_norm.weight", c.n_embd);
    layer.ffn_gate = bind.matrix(p + "ffn_gate.weight", c.n_embd, c.n_ff);
    layer.ffn_up = bind.matrix(p + "ffn_up.weight", c.n_embd, c.n_ff);
    layer.ffn_down = bind.matrix(p + "ffn_down.weight", c.n_ff, c.n_embd);
    if (model->traits_.qk_norm) {
      layer.attn_q_norm = bind.vector(p + "attn_q_norm.weight", c.head_dim);
      layer.attn_k_norm = bind.vector(p + "attn_k_norm.weight", c.head_dim);
    }
    if (model->traits_.post_norms) {
      layer.post_attention_norm = bind.vector(p + "post_attention_norm.weight", c.n_embd);
      layer.post_ffw_norm = bind.vector(p + "post_ffw_norm.weight", c.n_embd);
    }
    weights->layers.push_back(std::move(layer));
  }
  model->weights_ = std::move(weights);
  return model;
}

}  // namespace tiller
