#include "tiller/actadd.h"

#include <algorithm>
#include <cmath>

#include "tiller/printable.h"
#include "tiller/dequantize.h"
#include "common/fail.h"
#include "tiller/gguf.h"

namespace tiller {
namespace {

constexpr std::string_view kArchitecture = "tiller.actadd";

std::vector<float> capture_resid_pre(const std::shared_ptr<const Model>& model, std::span<const TokenId> tokens,
                                     int layer, const std::shared_ptr<Engine>& engine) {
  Session session(model, engine, {.n_ctx = static_cast<int>(tokens.size())});
  std::vector<float> rows;
  session.add_hook(layer, HookPoint::ResidPre,
                   [&](const HookRows& r) { rows.insert(rows.end(), r.data, r.data + r.n_rows * r.width); });
  session.decode(tokens, false);
  return rows;
}

// The token for a single space: what " " tokenizes to when that is one token
// (byte-level BPE), else the first token whose text is exactly " " (a tokenizer
// that prefixes a space would make " " two).
TokenId space_token(const Tokenizer& tokenizer) {
  const auto space = tokenizer.tokenize(" ", {.add_special = false, .parse_special = false});
  if (space.size() == 1) return space.front();
  for (TokenId token = 0; token < tokenizer.n_vocab(); ++token) {
    if (tokenizer.token_to_piece(token) == " ") return token;
  }
  fail("the model's vocabulary has no token for \" \" to pad the shorter ActAdd prompt with");
}

}  // namespace

ActAddTensor make_actadd_tensor(const std::shared_ptr<const Model>& model, const ActAddPair& pair, int n_threads) {
  return make_actadd_tensor(model, pair, Engine::create({.n_threads = n_threads, .kernels = std::nullopt}));
}

ActAddTensor make_actadd_tensor(const std::shared_ptr<const Model>& model, const ActAddPair& pair,
                                const std::shared_ptr<Engine>& engine) {
  const ModelConfig& config = model->config();
  if (pair.layer < 0 || pair.layer >= config.n_layer) {
    fail("ActAdd layer {} does not exist (the model has blocks 0 to {})", pair.layer, config.n_layer - 1);
  }
  const Tokenizer& tokenizer = model->tokenizer();
  auto positive = tokenizer.tokenize(pair.positive, {.add_special = true, .parse_special = false});
  auto negative = tokenizer.tokenize(pair.negative, {.add_special = true, .parse_special = false});
  // The paper pairs prompts with "" too: padding makes the empty side all spaces.
  if (positive.empty() && negative.empty()) fail("ActAdd needs at least one non-empty prompt of the pair");
  if (positive.size() != negative.size()) {
    auto& shorter = positive.size() < negative.size() ? positive : negative;
    shorter.resize(std::max(positive.size(), negative.size()), space_token(tokenizer));
  }
  const auto plus = capture_resid_pre(model, positive, pair.layer, engine);
  const auto minus = capture_resid_pre(model, negative, pair.layer, engine);
  ActAddTensor tensor;
  tensor.layer = pair.layer;
  tensor.n_rows = static_cast<int64_t>(positive.size());
  tensor.width = config.n_embd;
  tensor.positive = pair.positive;
  tensor.negative = pair.negative;
  tensor.rows.resize(plus.size());
  for (size_t i = 0; i < plus.size(); ++i) tensor.rows[i] = plus[i] - minus[i];
  return tensor;
}

void add_actadd(Steering& steering, const ActAddTensor& tensor, float coefficient, FrontAlign align,
                bool every_step, const std::string& source) {
  Intervention v;
  v.kind = InterventionKind::Add;
  v.layer = tensor.layer;
  v.point = HookPoint::ResidPre;
  v.where = PositionSelector::front();
  v.vectors = tensor.rows;
  v.n_rows = tensor.n_rows;
  v.coefficient = coefficient;
  v.align = align;
  v.source = source;
  steering.add(v);
  if (every_step) {
    v.where = PositionSelector::generated();
    v.vectors.assign(tensor.rows.end() - tensor.width, tensor.rows.end());
    v.n_rows = 1;
    steering.add(std::move(v));
  }
}

void write_actadd_tensor(const std::string& path, const ActAddTensor& tensor, const std::string& model_hint) {
  gguf::Writer writer;
  writer.set("general.architecture", std::string(kArchitecture));
  writer.set("actadd.model_hint", model_hint);
  writer.set("actadd.layer", static_cast<uint32_t>(tensor.layer));
  writer.set("actadd.hook_point", std::string(hook_point_name(HookPoint::ResidPre)));
  writer.set("actadd.positive", tensor.positive);
  writer.set("actadd.negative", tensor.negative);
  writer.add_tensor("actadd.rows", {tensor.width, tensor.n_rows}, tensor.rows);
  writer.write(path);
}

ActAddTensor read_actadd_tensor(const std::string& path) {
  const gguf::File file = gguf::File::open(path);
  const auto architecture = file.get_string("general.architecture");
  if (architecture != std::string(kArchitecture)) {
    fail("{}: not an ActAdd file of Tiller (general.architecture is '{}', not '{}')", file.name(),
         printable(architecture.value_or("")), kArchitecture);
  }
  const auto layer = file.get_uint("actadd.layer");
  const gguf::TensorInfo* rows = file.find_tensor("actadd.rows");
  if (!layer || rows == nullptr || rows->shape.size() != 2) {
    fail("{}: an ActAdd file needs actadd.layer and a 2-D tensor actadd.rows", file.name());
  }
  if (file.get_string("actadd.hook_point").value_or("hook_resid_pre") != "hook_resid_pre") {
    fail("{}: only hook_resid_pre ActAdd tensors are supported", file.name());
  }
  ActAddTensor tensor;
  tensor.layer = static_cast<int>(std::min<uint64_t>(*layer, 1u << 20));
  tensor.width = rows->shape[0];
  tensor.n_rows = rows->shape[1];
  tensor.positive = file.get_string("actadd.positive").value_or("");
  tensor.negative = file.get_string("actadd.negative").value_or("");
  for (int64_t r = 0; r < tensor.n_rows; ++r) {
    const auto row = dequantize_tensor_row(file, *rows, r);
    tensor.rows.insert(tensor.rows.end(), row.begin(), row.end());
  }
  if (!std::all_of(tensor.rows.begin(), tensor.rows.end(), [](float x) { return std::isfinite(x); })) {
    fail("{}: actadd.rows holds a value that is not finite", file.name());
  }
  return tensor;
}

}  // namespace tiller
