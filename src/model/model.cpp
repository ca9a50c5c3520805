// Loading a model: hyper-parameters, its architecture family, tokenizer, weights.
#include "tiller/model.h"

#include "common/fail.h"
#include "model/family.h"
#include "model/model_weights.h"
#include "model/interleave_weights.h"
#include "model/weight_binder.h"
#include "tiller/printable.h"

namespace tiller {
namespace {

void check_config(const ModelConfig& c, const std::string& name) {
  if (!is_language_model(c)) fail("{}: not a language model (no block count, width or vocabulary)", name);
  constexpr int64_t kLargest = int64_t{1} << 20;  // far beyond any real model; keeps products in range
  for (const auto& [what, value] : {std::pair{"block count", c.n_layer}, {"width", c.n_embd}, {"head count", c.n_head},
                                    {"key/value head count", c.n_head_kv}, {"head size", c.head_dim},
                                    {"feed-forward width", c.n_ff}, {"training context", c.n_ctx_train}}) {
    if (value > kLargest) fail("{}: {} {} is beyond what Tiller supports", name, what, value);
  }
  if (c.n_head_kv <= 0 || c.n_head % c.n_head_kv != 0) {
    fail("{}: {} query heads cannot share {} key/value heads", name, c.n_head, c.n_head_kv);
  }
  if (c.head_dim <= 0 || c.head_dim % 2 != 0) fail("{}: head size {} must be even", name, c.head_dim);
  if (c.rope_dim != c.head_dim) {
    fail("{}: rope turns {} of each head's {} dimensions; Tiller supports only whole heads", name, c.rope_dim,
         c.head_dim);
  }
  if (c.n_ff <= 0) fail("{}: feed-forward width is missing", name);
  if (c.rope_scaling_type && *c.rope_scaling_type != "none" && *c.rope_scaling_type != "linear") {
    fail("{}: rope scaling '{}' is not supported (supported: none, linear)", name, printable(*c.rope_scaling_type));
  }
  if (c.rope_scaling_type == "linear" && !(c.rope_scaling_factor && *c.rope_scaling_factor > 0)) {
    fail("{}: linear rope scaling needs a positive rope.scaling.factor", name);
  }
  if (c.sliding_window && *c.sliding_window <= 0) fail("{}: sliding window {} must be positive", name, *c.sliding_window);
}

}  // namespace

Model::Model(gguf::File file) : file_(std::move(file)) {}
Model::~Model() = default;

std::string_view Model::family_name() const { return family_->name; }
std::string_view Model::family_models() const { return family_->models; }

std::shared_ptr<const Model> Model::load(const std::string& path, const LoadOptions& options) {
  const auto residence = options.mmap ? gguf::Residence::Mapped : gguf::Residence::Read;
  // An embedding with an output matrix of its own only has rows looked up: mapped,
  // it stays out of memory (282 MiB at Llama-3.1-8B).
  auto lookup_only = [](const gguf::File& file, const gguf::TensorInfo& tensor) {
    return tensor.name == "token_embd.weight" && file.find_tensor("output.weight") != nullptr;
  };
  std::shared_ptr<Model> model(new Model(gguf::File::open(path, residence, lookup_only)));
  const gguf::File& file = model->file_;
  model->config_ = read_model_config(file);
  model->family_ = &family_of(model->config_, file.name());
  check_config(model->config_, file.name());
  model->tokenizer_ = Tokenizer::from_gguf(file);
  // The tokenizer holds its own copies; the file's would stay resident for nothing.
  for (const char* key : {"tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
                          "tokenizer.ggml.merges"}) {
    model->file_.release_array(key);
  }
  auto weights = std::make_unique<ModelWeights>();
  model->family_->bind(WeightBinder(file), model->config_, *weights);
  interleave_k_quant_matrices(model->file_, *weights);
  model->weights_ = std::move(weights);
  return model;
}

}  // namespace tiller
