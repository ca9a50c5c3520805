#include "tiller/control_vector.h"

#include <charconv>
#include <cmath>

#include "tiller/printable.h"
#include "tiller/dequantize.h"
#include "common/fail.h"
#include "tiller/gguf.h"

namespace tiller {
namespace {

constexpr std::string_view kDirectionPrefix = "direction.";

// "direction.N" -> N, or -1 for any other name.
int direction_block(std::string_view name) {
  if (!name.starts_with(kDirectionPrefix)) return -1;
  const std::string_view digits = name.substr(kDirectionPrefix.size());
  int block = -1;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), block);
  if (error != std::errc() || end != digits.data() + digits.size() || digits.empty()) return -1;
  return block;
}

}  // namespace

namespace {

ControlVector control_vector_of(const gguf::File& file) {
  const auto architecture = file.get_string("general.architecture");
  if (architecture && *architecture != "controlvector") {
    fail("{}: this is a {} model, not a control vector (general.architecture is '{}')", file.name(),
         printable(*architecture), printable(*architecture));
  }
  ControlVector vector;
  vector.model_hint = file.get_string("controlvector.model_hint").value_or("");
  for (const gguf::TensorInfo& tensor : file.tensors()) {
    const int block = direction_block(tensor.name);
    if (block < 0) {
      if (tensor.name.starts_with(kDirectionPrefix)) {
        fail("{}: tensor '{}' is not direction.N with a block number N", file.name(), printable(tensor.name));
      }
      continue;  // llama.cpp ignores other tensors too
    }
    if (tensor.shape.size() != 1 && !(tensor.shape.size() == 2 && tensor.shape[1] == 1)) {
      fail("{}: tensor '{}' should be one vector, but has {} dimensions", file.name(), tensor.name,
           tensor.shape.size());
    }
    if (vector.n_embd == 0) vector.n_embd = tensor.shape[0];
    if (tensor.shape[0] != vector.n_embd) {
      fail("{}: tensor '{}' has {} values but the others have {}", file.name(), tensor.name, tensor.shape[0],
           vector.n_embd);
    }
    std::vector<float> values = dequantize_tensor_row(file, tensor, 0);
    for (const float x : values) {
      if (!std::isfinite(x)) fail("{}: tensor '{}' holds a value that is not finite", file.name(), tensor.name);
    }
    if (!vector.directions.emplace(block, std::move(values)).second) {
      fail("{}: direction.{} appears twice", file.name(), block);
    }
  }
  if (vector.directions.empty()) {
    fail("{}: no direction.N tensors: not a control vector", file.name());
  }
  return vector;
}

}  // namespace

ControlVector read_control_vector(const std::string& path) { return control_vector_of(gguf::File::open(path)); }

ControlVector parse_control_vector(std::span<const uint8_t> bytes, const std::string& name) {
  return control_vector_of(gguf::File::parse(bytes, name));
}

void write_control_vector(const std::string& path, const ControlVector& vector) {
  if (vector.directions.empty()) fail("{}: refusing to write a control vector with no directions", path);
  gguf::Writer writer;
  writer.set("general.architecture", std::string("controlvector"));
  writer.set("controlvector.model_hint", vector.model_hint);
  writer.set("controlvector.layer_count", static_cast<int32_t>(vector.layer_count()));
  for (const auto& [block, values] : vector.directions) {
    if (static_cast<int64_t>(values.size()) != vector.n_embd) {
      fail("{}: direction.{} has {} values, not {}", path, block, values.size(), vector.n_embd);
    }
    writer.add_tensor(fmt::format("direction.{}", block), {vector.n_embd}, values);
  }
  writer.write(path);
}

ControlVector combine(const std::vector<ScaledControlVector>& parts) {
  if (parts.empty()) fail("nothing to combine");
  ControlVector sum;
  sum.n_embd = parts.front().vector.n_embd;
  sum.model_hint = parts.front().vector.model_hint;
  for (const auto& [vector, scale] : parts) {
    if (vector.n_embd != sum.n_embd) {
      fail("control vectors of widths {} and {} cannot be combined", sum.n_embd, vector.n_embd);
    }
    for (const auto& [block, values] : vector.directions) {
      auto& into = sum.directions[block];
      into.resize(static_cast<size_t>(sum.n_embd), 0.0f);
      for (size_t i = 0; i < values.size(); ++i) into[i] += scale * values[i];
    }
  }
  return sum;
}

ControlVector restrict_layers(const ControlVector& vector, int first, int last, int64_t n_layer) {
  if (first <= 0) first = 1;
  if (last <= 0) last = static_cast<int>(n_layer) - 1;
  if (first > last) fail("layer range {} to {} is empty", first, last);
  ControlVector kept = vector;
  std::erase_if(kept.directions, [&](const auto& entry) { return entry.first < first || entry.first > last; });
  return kept;
}

void add_control_vector(Steering& steering, const ControlVector& vector, InterventionKind kind, float coefficient,
                        const PositionSelector& where, const std::string& source) {
  if (vector.n_embd != steering.width()) {
    fail("{}: the vectors have width {} but the model's stream has width {} (made for another model?)", source,
         vector.n_embd, steering.width());
  }
  for (const auto& [block, values] : vector.directions) {
    Intervention v;
    v.kind = kind;
    v.layer = block;
    v.point = HookPoint::ResidPost;
    v.where = where;
    v.vectors = values;
    v.coefficient = coefficient;
    v.source = source;
    steering.add(std::move(v));
  }
}

}  // namespace tiller
