#include "server/request.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "server/api_error.h"
#include "tiller/error.h"

namespace tiller::server {
namespace {

using json = nlohmann::json;

// The body's fields, read with their types checked; null counts as absent because
// some clients send every optional field, unset ones as null.
class Fields {
 public:
  explicit Fields(const json& object) : object_(object) {}

  const json* get(const char* name) const {
    const auto it = object_.find(name);
    return it == object_.end() || it->is_null() ? nullptr : &*it;
  }
  std::optional<bool> boolean(const char* name) const {
    const json* value = get(name);
    if (value == nullptr) return std::nullopt;
    if (!value->is_boolean()) throw bad_request(std::string("'") + name + "' must be a boolean", name);
    return value->get<bool>();
  }
  std::optional<double> number(const char* name, double low, double high) const {
    const json* value = get(name);
    if (value == nullptr) return std::nullopt;
    if (!value->is_number()) throw bad_request(std::string("'") + name + "' must be a number", name);
    const double x = value->get<double>();
    if (!std::isfinite(x) || x < low || x > high) {
      throw bad_request(std::string("'") + name + "' must be between " + trim(low) + " and " + trim(high), name);
    }
    return x;
  }
  std::optional<int64_t> integer(const char* name, int64_t low, int64_t high) const {
    const json* value = get(name);
    if (value == nullptr) return std::nullopt;
    if (!value->is_number_integer()) throw bad_request(std::string("'") + name + "' must be an integer", name);
    // Unsigned values above int64's range are out of range too.
    if (value->is_number_unsigned() && value->get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())) {
      throw bad_request(std::string("'") + name + "' is out of range", name);
    }
    const int64_t x = value->get<int64_t>();
    if (x < low || x > high) {
      throw bad_request(std::string("'") + name + "' must be between " + std::to_string(low) + " and " +
                            std::to_string(high),
                        name);
    }
    return x;
  }

 private:
  static std::string trim(double x) {
    std::string text = std::to_string(x);
    text.erase(text.find_last_not_of('0') + 1);
    if (!text.empty() && text.back() == '.') text.pop_back();
    return text;
  }
  const json& object_;
};

std::string text_content(const json& content, const std::string& where) {
  if (content.is_string()) return content.get<std::string>();
  // The newer content form: an array of parts, of which Tiller reads the text ones.
  if (content.is_array()) {
    std::string text;
    for (const json& part : content) {
      // Each member's type is checked before it is read (schemathesis sent a
      // "type" that was an object, which value() turned into a 500).
      const auto type = part.is_object() ? part.find("type") : part.end();
      const auto text_field = part.is_object() ? part.find("text") : part.end();
      if (!part.is_object() || type == part.end() || *type != "text" || text_field == part.end() ||
          !text_field->is_string()) {
        throw bad_request(where + ": only text parts ({\"type\": \"text\", \"text\": ...}) are supported", where);
      }
      text += text_field->get<std::string>();
    }
    return text;
  }
  throw bad_request(where + " must be a string or an array of text parts", where);
}

std::vector<ChatMessage> read_messages(const json* value) {
  if (value == nullptr) throw bad_request("'messages' is required", "messages");
  if (!value->is_array() || value->empty()) throw bad_request("'messages' must be a non-empty array", "messages");
  std::vector<ChatMessage> messages;
  for (size_t i = 0; i < value->size(); ++i) {
    const json& message = (*value)[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!message.is_object()) throw bad_request(where + " must be an object", where);
    const auto role = message.find("role");
    if (role == message.end() || !role->is_string()) throw bad_request(where + ".role must be a string", where);
    const auto content = message.find("content");
    if (content == message.end() || content->is_null()) {
      throw bad_request(where + ".content is required", where + ".content");
    }
    messages.push_back({role->get<std::string>(), text_content(*content, where + ".content")});
  }
  return messages;
}

std::string read_prompt(const json* value) {
  if (value == nullptr) throw bad_request("'prompt' is required", "prompt");
  if (value->is_string()) return value->get<std::string>();
  // OpenAI takes a list of prompts (one choice each); Tiller serves one per request.
  if (value->is_array() && value->size() == 1 && (*value)[0].is_string()) return (*value)[0].get<std::string>();
  throw bad_request("'prompt' must be a string (or an array of exactly one string)", "prompt");
}

std::vector<std::string> read_stop(const json* value) {
  if (value == nullptr) return {};
  // An empty stop string stops nothing (and the library refuses it: a 500 that
  // schemathesis found when it came as the string form).
  if (value->is_string()) {
    if (value->get<std::string>().empty()) return {};
    return {value->get<std::string>()};
  }
  if (value->is_array() && value->size() <= 16 &&
      std::all_of(value->begin(), value->end(), [](const json& s) { return s.is_string(); })) {
    std::vector<std::string> stop;
    for (const json& s : *value) {
      if (!s.get<std::string>().empty()) stop.push_back(s.get<std::string>());
    }
    return stop;
  }
  throw bad_request("'stop' must be a string or an array of at most 16 strings", "stop");
}

void check_vector_refs(const SteeringSpec& spec) {
  const auto check = [](const VectorRef& ref, const std::string& where) {
    if (!ref.path.empty()) {
      throw bad_request("steering: " + where + ": the server takes vectors by 'name' from its vector folder, not by 'path'",
                        "steering");
    }
    if (!ref.name.empty() && !is_vector_name(ref.name)) {
      throw bad_request("steering: " + where + ": '" + ref.name +
                            "' is not a vector name (letters, digits, '-', '_' and '.', not starting with '.', no '..')",
                        "steering");
    }
  };
  for (size_t i = 0; i < spec.control_vectors.size(); ++i) {
    check(spec.control_vectors[i].vector, "control_vectors[" + std::to_string(i) + "]");
  }
  for (size_t i = 0; i < spec.ablate.size(); ++i) check(spec.ablate[i].vector, "ablate[" + std::to_string(i) + "]");
  for (size_t i = 0; i < spec.clamp.size(); ++i) check(spec.clamp[i].vector, "clamp[" + std::to_string(i) + "]");
  for (size_t i = 0; i < spec.actadd.size(); ++i) check(spec.actadd[i].file, "actadd[" + std::to_string(i) + "]");
}

std::optional<SteeringSpec> read_steering(const json* value) {
  if (value == nullptr) return std::nullopt;
  if (!value->is_object()) throw bad_request("'steering' must be an object (the steering spec)", "steering");
  SteeringSpec spec;
  try {
    spec = SteeringSpec::from_json(value->dump());
  } catch (const Error& error) {
    throw bad_request(error.what(), "steering");
  }
  check_vector_refs(spec);
  return spec;
}

}  // namespace

std::vector<std::string> steering_vector_names(const SteeringSpec& spec) {
  std::vector<std::string> names;
  const auto add = [&](const VectorRef& ref) {
    if (!ref.name.empty() && std::find(names.begin(), names.end(), ref.name) == names.end()) names.push_back(ref.name);
  };
  for (const auto& v : spec.control_vectors) add(v.vector);
  for (const auto& v : spec.actadd) add(v.file);
  for (const auto& v : spec.ablate) add(v.vector);
  for (const auto& v : spec.clamp) add(v.vector);
  return names;
}

nlohmann::json parse_json_object(std::string_view body) {
  json root;
  try {
    root = json::parse(body);
  } catch (const json::exception& error) {
    // parse_error, and out_of_range for a number too large for a double (found by
    // fuzz_server_request: "55e21725" escaped as a 500).
    throw bad_request(std::string("the body is not valid JSON: ") + error.what());
  }
  if (!root.is_object()) throw bad_request("the body must be a JSON object");
  return root;
}

CompletionRequest parse_completion_request(std::string_view body, Endpoint endpoint, const SamplerParams& defaults) {
  const json root = parse_json_object(body);
  const Fields fields(root);

  CompletionRequest request;
  request.endpoint = endpoint;
  if (const json* model = fields.get("model")) {
    if (!model->is_string()) throw bad_request("'model' must be a string", "model");
    request.model = model->get<std::string>();
  }
  if (endpoint == Endpoint::ChatCompletions) {
    request.messages = read_messages(fields.get("messages"));
  } else {
    request.prompt = read_prompt(fields.get("prompt"));
  }

  constexpr int64_t kMaxTokens = 1 << 24;
  request.generation.n_predict = -1;
  // max_completion_tokens is the newer name in chat requests; either is taken.
  for (const char* name : {"max_tokens", "max_completion_tokens"}) {
    if (const auto n = fields.integer(name, 0, kMaxTokens)) request.generation.n_predict = static_cast<int>(*n);
  }
  if (const json* n = fields.get("n"); n != nullptr && !(n->is_number_integer() && n->get<int64_t>() == 1)) {
    throw bad_request("'n' must be 1: one choice per request", "n");
  }
  // Chat: "logprobs": true, "top_logprobs": 0..20 alternatives; completions:
  // "logprobs": 0..5 alternatives (OpenAI's two forms and limits).
  if (endpoint == Endpoint::ChatCompletions) {
    const auto top = fields.integer("top_logprobs", 0, 20);
    if (fields.boolean("logprobs").value_or(false)) {
      request.top_logprobs = static_cast<int>(top.value_or(0));
    } else if (top.value_or(0) > 0) {
      throw bad_request("'top_logprobs' needs \"logprobs\": true", "top_logprobs");
    }
  } else if (const auto n = fields.integer("logprobs", 0, 5)) {
    request.top_logprobs = static_cast<int>(*n);
  }

  SamplerParams& sampling = request.generation.sampling;
  sampling = defaults;
  if (const auto x = fields.number("temperature", 0.0, 100.0)) sampling.temperature = static_cast<float>(*x);
  // Checked as the float the sampler gets: 5e-324 is above 0 as a double but 0 as
  // a float (schemathesis found it reaching the sampler, a 500).
  if (const auto x = fields.number("top_p", 0.0, 1.0)) {
    if (static_cast<float>(*x) <= 0.0f) throw bad_request("'top_p' must be above 0", "top_p");
    sampling.top_p = static_cast<float>(*x);
  }
  if (const auto x = fields.integer("top_k", -1, std::numeric_limits<int32_t>::max())) {
    sampling.top_k = static_cast<int32_t>(*x);
  }
  if (const auto x = fields.number("min_p", 0.0, 1.0)) sampling.min_p = static_cast<float>(*x);
  if (const auto x = fields.number("presence_penalty", -2.0, 2.0)) sampling.presence_penalty = static_cast<float>(*x);
  if (const auto x = fields.number("frequency_penalty", -2.0, 2.0)) sampling.frequency_penalty = static_cast<float>(*x);
  if (const auto x = fields.number("repeat_penalty", 0.0, 10.0)) {
    if (static_cast<float>(*x) <= 0.0f) throw bad_request("'repeat_penalty' must be above 0", "repeat_penalty");
    sampling.repeat_penalty = static_cast<float>(*x);
  }
  if (const auto x = fields.integer("seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max())) {
    request.seed = static_cast<uint64_t>(*x);
  }
  request.generation.stop = read_stop(fields.get("stop"));
  if (const auto x = fields.boolean("ignore_eos")) request.generation.ignore_eos = *x;

  request.stream = fields.boolean("stream").value_or(false);
  if (const json* options = fields.get("stream_options")) {
    if (!options->is_object()) throw bad_request("'stream_options' must be an object", "stream_options");
    const auto usage = Fields(*options).boolean("include_usage");
    request.include_usage = usage.value_or(false);
  }

  request.steering = read_steering(fields.get("steering"));
  request.compare = fields.boolean("compare").value_or(false);
  if (request.compare && (!request.steering || request.steering->empty())) {
    throw bad_request("'compare' needs a non-empty 'steering' to compare with", "compare");
  }
  return request;
}

}  // namespace tiller::server
