// SteeringSpec: its JSON form, the command-line flags it comes from, and vector names.
#include "tiller/steering_spec.h"

#include <charconv>
#include <cmath>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tiller/printable.h"
#include "common/fail.h"
#include "common/json_fields.h"

namespace tiller {
namespace {

using nlohmann::json;

// Reads one JSON object, refusing keys outside `known` and values of the wrong type.
class Fields {
 public:
  Fields(const json& object, std::string where, std::initializer_list<std::string_view> known)
      : object_(object), where_(std::move(where)) {
    if (!object.is_object()) fail("steering JSON: {} must be an object", where_);
    if (const std::string* key = first_unknown_key(object, known)) {
      fail("steering JSON: {}: unknown field '{}' (known: {})", where_, printable(*key), joined_names(known));
    }
  }
  bool has(const char* key) const { return object_.contains(key) && !object_.at(key).is_null(); }
  std::string string(const char* key) const {
    if (!has(key)) return {};
    const json& v = object_.at(key);
    if (!v.is_string()) fail("steering JSON: {}: '{}' must be a string", where_, key);
    return v.get<std::string>();
  }
  float number(const char* key, float fallback) const {
    if (!has(key)) return fallback;
    const json& v = object_.at(key);
    if (!v.is_number()) fail("steering JSON: {}: '{}' must be a number", where_, key);
    const double x = v.get<double>();
    if (!std::isfinite(x) || std::fabs(x) > 3.4e38) fail("steering JSON: {}: '{}' is not a finite float", where_, key);
    return static_cast<float>(x);
  }
  int integer(const char* key, int fallback) const {
    if (!has(key)) return fallback;
    const json& v = object_.at(key);
    if (!v.is_number_integer()) fail("steering JSON: {}: '{}' must be an integer", where_, key);
    const auto x = v.get<int64_t>();
    if (x < -(1 << 24) || x > (1 << 24)) fail("steering JSON: {}: '{}' = {} is out of range", where_, key, x);
    return static_cast<int>(x);
  }
  bool boolean(const char* key) const {
    if (!has(key)) return false;
    const json& v = object_.at(key);
    if (!v.is_boolean()) fail("steering JSON: {}: '{}' must be true or false", where_, key);
    return v.get<bool>();
  }
  const std::string& where() const { return where_; }

 private:
  const json& object_;
  std::string where_;
};

VectorRef vector_ref(const Fields& f, bool required) {
  VectorRef ref{f.string("path"), f.string("name")};
  if (!ref.path.empty() && !ref.name.empty()) fail("steering JSON: {}: give 'path' or 'name', not both", f.where());
  if (required && ref.path.empty() && ref.name.empty()) fail("steering JSON: {}: needs 'path' or 'name'", f.where());
  return ref;
}

const json& array_at(const json& root, const char* key) {
  const json& v = root.at(key);
  if (!v.is_array()) fail("steering JSON: '{}' must be an array", key);
  return v;
}

// [start, end], two integers; `where` names the field in the message.
std::array<int, 2> block_range(const json& range, const std::string& where) {
  if (!range.is_array() || range.size() != 2 || !range[0].is_number_integer() || !range[1].is_number_integer()) {
    fail("steering JSON: {} must be [start, end], two integers", where);
  }
  return {range[0].get<int>(), range[1].get<int>()};
}

// with_range: the items may carry their own 'layer_range' (control vectors).
std::vector<ScaledVectorRef> scaled_vectors(const json& root, const char* key, const char* number,
                                            std::optional<float> fallback, bool with_range = false) {
  std::vector<ScaledVectorRef> out;
  if (!root.contains(key) || root.at(key).is_null()) return out;
  const json& items = array_at(root, key);
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string where = fmt::format("{}[{}]", key, i);
    const Fields f = with_range ? Fields(items[i], where, {"path", "name", number, "layer_range"})
                                : Fields(items[i], where, {"path", "name", number});
    if (!fallback && !f.has(number)) fail("steering JSON: {}: needs '{}'", f.where(), number);
    ScaledVectorRef item{vector_ref(f, true), f.number(number, fallback.value_or(0.0f)), std::nullopt};
    if (with_range && f.has("layer_range")) {
      item.layer_range = block_range(items[i].at("layer_range"), fmt::format("{}: 'layer_range'", f.where()));
    }
    out.push_back(std::move(item));
  }
  return out;
}

json vector_json(const VectorRef& ref) {
  return ref.name.empty() ? json{{"path", ref.path}} : json{{"name", ref.name}};
}

json scaled_json(const std::vector<ScaledVectorRef>& items, const char* number) {
  json out = json::array();
  for (const ScaledVectorRef& item : items) {
    json object = vector_json(item.vector);
    object[number] = item.value;
    if (item.layer_range) object["layer_range"] = {(*item.layer_range)[0], (*item.layer_range)[1]};
    out.push_back(std::move(object));
  }
  return out;
}

template <typename T>
T per_pair(const std::vector<T>& values, size_t pair, size_t n_pairs, const char* flag, T fallback) {
  if (values.empty()) return fallback;
  if (values.size() == 1) return values.front();
  if (values.size() != n_pairs) {
    fail("{} is given {} times for {} ActAdd pairs: give it once or once per pair", flag, values.size(), n_pairs);
  }
  return values[pair];
}

}  // namespace

std::string_view front_align_name(FrontAlign align) {
  switch (align) {
    case FrontAlign::Auto: return "auto";
    case FrontAlign::Context: return "context";
    case FrontAlign::User: return "user";
  }
  return "unknown";
}

FrontAlign parse_front_align(std::string_view name) {
  for (const FrontAlign align : {FrontAlign::Auto, FrontAlign::Context, FrontAlign::User}) {
    if (front_align_name(align) == name) return align;
  }
  fail("alignment '{}' is none of auto, context, user", printable(name));
}

SteeringSpec SteeringSpec::from_json(std::string_view text) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::parse_error& e) {
    // nlohmann's message names the byte; keep it to one line.
    std::string what = e.what();
    std::replace(what.begin(), what.end(), '\n', ' ');
    fail("steering JSON does not parse: {}", what);
  }
  const Fields top(root, "the steering", {"control_vectors", "layer_range", "actadd", "ablate", "clamp", "positions"});
  SteeringSpec spec;
  spec.control_vectors = scaled_vectors(root, "control_vectors", "scale", 1.0f, true);
  if (top.has("layer_range")) spec.layer_range = block_range(root.at("layer_range"), "'layer_range'");
  if (top.has("actadd")) {
    const json& items = array_at(root, "actadd");
    for (size_t i = 0; i < items.size(); ++i) {
      const Fields f(items[i], fmt::format("actadd[{}]", i),
                     {"positive", "negative", "layer", "path", "name", "coef", "align", "every_step"});
      ActAddSpec a;
      a.file = vector_ref(f, false);
      a.coef = f.number("coef", 1.0f);
      a.every_step = f.boolean("every_step");
      if (f.has("align")) {
        try {
          a.align = parse_front_align(f.string("align"));
        } catch (const Error& e) {
          fail("steering JSON: {}: {}", f.where(), e.what());
        }
      }
      if (a.from_file()) {
        if (f.has("positive") || f.has("negative") || f.has("layer")) {
          fail("steering JSON: {}: a tensor file carries its prompts and block: give 'path' or 'name', or "
               "'positive', 'negative' and 'layer'", f.where());
        }
      } else {
        if (!f.has("positive") || !f.has("negative") || !f.has("layer")) {
          fail("steering JSON: {}: needs 'positive', 'negative' and 'layer' (or a tensor file's 'path')", f.where());
        }
        a.positive = f.string("positive");
        a.negative = f.string("negative");
        a.layer = f.integer("layer", -1);
        if (a.layer < 0) fail("steering JSON: {}: 'layer' must be 0 or more", f.where());
      }
      spec.actadd.push_back(std::move(a));
    }
  }
  spec.ablate = scaled_vectors(root, "ablate", "scale", 1.0f);
  spec.clamp = scaled_vectors(root, "clamp", "value", std::nullopt);
  if (top.has("positions")) {
    try {
      spec.positions = parse_position_selector(top.string("positions"));
    } catch (const Error& e) {
      fail("steering JSON: 'positions': {}", e.what());
    }
  }
  if (spec.layer_range && spec.control_vectors.empty()) fail("steering JSON: 'layer_range' needs control_vectors");
  return spec;
}

std::string SteeringSpec::to_json(int indent) const {
  json root = json::object();
  if (!control_vectors.empty()) root["control_vectors"] = scaled_json(control_vectors, "scale");
  if (layer_range) root["layer_range"] = {(*layer_range)[0], (*layer_range)[1]};
  if (!actadd.empty()) {
    json items = json::array();
    for (const ActAddSpec& a : actadd) {
      json object = a.from_file() ? vector_json(a.file)
                                  : json{{"positive", a.positive}, {"negative", a.negative}, {"layer", a.layer}};
      object["coef"] = a.coef;
      object["align"] = front_align_name(a.align);
      if (a.every_step) object["every_step"] = true;
      items.push_back(std::move(object));
    }
    root["actadd"] = std::move(items);
  }
  if (!ablate.empty()) root["ablate"] = scaled_json(ablate, "scale");
  if (!clamp.empty()) root["clamp"] = scaled_json(clamp, "value");
  root["positions"] = describe(positions);
  return root.dump(indent, ' ', false, json::error_handler_t::replace);
}

std::pair<std::string, float> parse_path_and_number(std::string_view text, std::string_view what,
                                                    bool number_required, float fallback) {
  const auto colon = text.rfind(':');
  if (colon != std::string_view::npos) {
    const std::string_view number = text.substr(colon + 1);
    float value = 0;
    const auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), value);
    if (error == std::errc() && end == number.data() + number.size() && std::isfinite(value)) {
      return {std::string(text.substr(0, colon)), value};
    }
    if (number_required) fail("{} '{}': '{}' is not a number", what, printable(text), printable(number));
  }
  if (number_required) fail("{} '{}' needs FILE:VALUE", what, printable(text));
  return {std::string(text), fallback};
}

SteeringSpec spec_from_flags(const SteeringFlags& flags) {
  const bool has_actadd = !flags.actadd.empty() || !flags.actadd_files.empty();
  if (!has_actadd && (!flags.actadd_layers.empty() || !flags.actadd_coefs.empty())) {
    fail("--actadd-layer and --actadd-coef need --actadd POS NEG");
  }
  if (!flags.layer_range.empty() && flags.control_vectors.empty() && flags.control_vectors_scaled.empty()) {
    fail("--control-vector-layer-range needs a control vector");
  }
  SteeringSpec spec;
  spec.positions = parse_position_selector(flags.positions);
  for (const std::string& file : flags.control_vectors) spec.control_vectors.push_back({{file, {}}, 1.0f, std::nullopt});
  for (const std::string& item : flags.control_vectors_scaled) {
    const auto [file, scale] = parse_path_and_number(item, "--control-vector-scaled", true);
    spec.control_vectors.push_back({{file, {}}, scale, std::nullopt});
  }
  if (!flags.layer_range.empty()) {
    if (flags.layer_range.size() != 2) fail("--control-vector-layer-range needs START END");
    spec.layer_range = std::array<int, 2>{flags.layer_range[0], flags.layer_range[1]};
  }
  const FrontAlign align = flags.actadd_align.empty() ? FrontAlign::Auto : parse_front_align(flags.actadd_align);
  if (flags.actadd.size() % 2 != 0) fail("--actadd needs two prompts: POS NEG");
  const size_t n_pairs = flags.actadd.size() / 2;
  for (size_t p = 0; p < n_pairs; ++p) {
    if (flags.actadd_layers.empty()) fail("--actadd needs --actadd-layer L (the block whose input it steers)");
    ActAddSpec a;
    a.positive = flags.actadd[2 * p];
    a.negative = flags.actadd[2 * p + 1];
    a.layer = per_pair(flags.actadd_layers, p, n_pairs, "--actadd-layer", 0);
    if (a.layer < 0) fail("--actadd-layer {}: blocks start at 0", a.layer);
    a.coef = per_pair(flags.actadd_coefs, p, n_pairs, "--actadd-coef", 1.0f);
    a.align = align;
    a.every_step = flags.actadd_every_step;
    spec.actadd.push_back(std::move(a));
  }
  for (const std::string& item : flags.actadd_files) {
    const auto [file, coef] = parse_path_and_number(item, "--actadd-file", false);
    ActAddSpec a;
    a.file.path = file;
    a.coef = coef;
    a.align = align;
    a.every_step = flags.actadd_every_step;
    spec.actadd.push_back(std::move(a));
  }
  for (const std::string& item : flags.ablate) {
    const auto [file, scale] = parse_path_and_number(item, "--ablate", false);
    spec.ablate.push_back({{file, {}}, scale, std::nullopt});
  }
  for (const std::string& item : flags.clamp) {
    const auto [file, value] = parse_path_and_number(item, "--clamp", true);
    spec.clamp.push_back({{file, {}}, value, std::nullopt});
  }
  return spec;
}

bool is_vector_name(std::string_view name) {
  return !name.empty() && name.size() <= 200 && name.front() != '.' && name.find("..") == std::string_view::npos &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
         });
}

VectorResolver vector_folder(std::filesystem::path dir) {
  return [dir = std::move(dir)](std::string_view name) {
    if (!is_vector_name(name)) {
      fail("vector name '{}' is not a name (letters, digits, '-', '_' and '.', not starting with '.', no '..')",
           printable(name));
    }
    const std::filesystem::path path = dir / (std::string(name) + ".gguf");
    std::error_code error;
    if (!std::filesystem::is_regular_file(path, error)) fail("no vector named '{}' in {}", printable(name), dir.string());
    return path.string();
  };
}

}  // namespace tiller
