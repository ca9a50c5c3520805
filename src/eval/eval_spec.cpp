// EvalSpec from JSON (the format is in tiller/evaluate.h): every field checked for
// its type, unknown ones refused with their path, text lists read inline or from files.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "common/fail.h"
#include "common/json_fields.h"
#include "common/text_file.h"
#include "tiller/evaluate.h"
#include "tiller/printable.h"

namespace tiller {
namespace {

using nlohmann::json;

// One JSON object at `path` ("topic_words"), its keys limited to `known`.
class Object {
 public:
  Object(const json& object, std::string path, std::initializer_list<std::string_view> known)
      : object_(object), path_(std::move(path)) {
    if (!object.is_object()) fail("eval spec: '{}' must be an object", path_);
    if (const std::string* key = first_unknown_key(object, known)) {
      fail("eval spec: unknown field '{}' (known in {}: {})", field(printable(*key)), path_.empty() ? "the spec" : path_,
           joined_names(known));
    }
  }
  bool has(std::string_view key) const { return object_.contains(key) && !object_.at(key).is_null(); }
  const json& at(std::string_view key) const { return object_.at(key); }
  // The path of one of its fields, for messages.
  std::string field(std::string_view key) const { return path_.empty() ? std::string(key) : path_ + "." + std::string(key); }

  std::string string(std::string_view key) const {
    const json& v = at(key);
    if (!v.is_string()) fail("eval spec: '{}' must be a string", field(key));
    return v.get<std::string>();
  }
  int integer(std::string_view key, int fallback, int min, int max) const {
    if (!has(key)) return fallback;
    const json& v = at(key);
    if (!v.is_number_integer()) fail("eval spec: '{}' must be an integer", field(key));
    const auto x = v.get<int64_t>();
    if (x < min || x > max) fail("eval spec: '{}' = {} is outside [{}, {}]", field(key), x, min, max);
    return static_cast<int>(x);
  }
  float number(std::string_view key, float fallback) const {
    if (!has(key)) return fallback;
    const json& v = at(key);
    if (!v.is_number()) fail("eval spec: '{}' must be a number", field(key));
    const double x = v.get<double>();
    if (!std::isfinite(x) || std::fabs(x) > 3.4e38) fail("eval spec: '{}' is not a finite number", field(key));
    return static_cast<float>(x);
  }
  bool boolean(std::string_view key) const {
    if (!has(key)) return false;
    const json& v = at(key);
    if (!v.is_boolean()) fail("eval spec: '{}' must be true or false", field(key));
    return v.get<bool>();
  }

 private:
  const json& object_;
  std::string path_;
};

std::filesystem::path relative_to(const std::filesystem::path& base_dir, const std::string& path) {
  const std::filesystem::path p(path);
  return p.is_relative() && !base_dir.empty() ? base_dir / p : p;
}

// A file's non-blank lines (a trailing '\r' dropped), for text lists and JSONL.
std::vector<std::string> file_lines(const std::filesystem::path& file) {
  const std::string content = read_text_file(file.string());
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= content.size()) {
    size_t end = content.find('\n', start);
    if (end == std::string::npos) end = content.size();
    std::string line = content.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t\f\v") != std::string::npos) lines.push_back(std::move(line));
    start = end + 1;
  }
  return lines;
}

// TEXTS: ["...", ...] or {"file": "PATH"}; never empty.
std::vector<std::string> texts(const Object& parent, std::string_view key, const std::filesystem::path& base_dir) {
  const std::string where = parent.field(key);
  const json& v = parent.at(key);
  std::vector<std::string> out;
  if (v.is_array()) {
    for (size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_string()) fail("eval spec: '{}[{}]' must be a string", where, i);
      out.push_back(v[i].get<std::string>());
    }
  } else if (v.is_object()) {
    const Object file(v, where, {"file"});
    if (!file.has("file")) fail("eval spec: '{}' needs 'file' (or give the texts as an array)", where);
    const auto path = relative_to(base_dir, file.string("file"));
    try {
      out = file_lines(path);
    } catch (const Error& e) {
      fail("eval spec: '{}': {}", where, e.what());
    }
  } else {
    fail("eval spec: '{}' must be an array of texts or {{\"file\": PATH}}", where);
  }
  if (out.empty()) fail("eval spec: '{}' has no texts", where);
  return out;
}

AbQuestion ab_question(const json& v, const std::string& where) {
  const Object q(v, where, {"question", "a", "b", "matching"});
  for (const char* key : {"question", "a", "b", "matching"}) {
    if (!q.has(key)) fail("eval spec: '{}' needs '{}'", where, key);
  }
  AbQuestion out{q.string("question"), q.string("a"), q.string("b"), 'A'};
  const std::string matching = q.string("matching");
  if (matching != "A" && matching != "B") {
    fail("eval spec: '{}' is '{}', not \"A\" or \"B\"", q.field("matching"), printable(matching));
  }
  out.matching = matching[0];
  return out;
}

std::vector<AbQuestion> ab_questions(const Object& ab, const std::filesystem::path& base_dir) {
  if (ab.has("questions") == ab.has("file")) fail("eval spec: 'ab' needs 'questions' or 'file' (one of the two)");
  std::vector<AbQuestion> out;
  if (ab.has("questions")) {
    const json& items = ab.at("questions");
    if (!items.is_array()) fail("eval spec: 'ab.questions' must be an array");
    for (size_t i = 0; i < items.size(); ++i) out.push_back(ab_question(items[i], fmt::format("ab.questions[{}]", i)));
  } else {
    const auto path = relative_to(base_dir, ab.string("file"));
    std::vector<std::string> lines;
    try {
      lines = file_lines(path);
    } catch (const Error& e) {
      fail("eval spec: 'ab.file': {}", e.what());
    }
    for (size_t i = 0; i < lines.size(); ++i) {
      json line;
      try {
        line = json::parse(lines[i]);
      } catch (const json::parse_error&) {
        fail("eval spec: {}: line {} is not JSON", path.string(), i + 1);
      }
      out.push_back(ab_question(line, fmt::format("{} line {}", path.string(), i + 1)));
    }
  }
  if (out.empty()) fail("eval spec: 'ab' has no questions");
  return out;
}

// The steering's relative file paths, made relative to the spec's folder.
void rebase_paths(SteeringSpec& spec, const std::filesystem::path& base_dir) {
  if (base_dir.empty()) return;
  auto rebase = [&](VectorRef& ref) {
    if (!ref.path.empty()) ref.path = relative_to(base_dir, ref.path).string();
  };
  for (auto* list : {&spec.control_vectors, &spec.ablate, &spec.clamp}) {
    for (auto& v : *list) rebase(v.vector);
  }
  for (auto& a : spec.actadd) rebase(a.file);
}

EvalSpec::Topic topic_words(const Object& t, const std::filesystem::path& base_dir) {
  EvalSpec::Topic out;
  for (const char* key : {"prompts", "words"}) {
    if (!t.has(key)) fail("eval spec: 'topic_words' needs '{}'", key);
  }
  out.prompts = texts(t, "prompts", base_dir);
  const json& words = t.at("words");
  if (!words.is_array() || words.empty()) fail("eval spec: 'topic_words.words' must be a non-empty array of words");
  for (size_t i = 0; i < words.size(); ++i) {
    if (!words[i].is_string() || words[i].get<std::string>().empty()) {
      fail("eval spec: 'topic_words.words[{}]' must be a non-empty string", i);
    }
    out.words.push_back(words[i].get<std::string>());
  }
  out.samples = t.integer("samples", out.samples, 1, 100000);
  out.max_tokens = t.integer("max_tokens", out.max_tokens, 1, 1 << 20);
  SamplerParams& s = out.sampling;
  s.temperature = t.number("temperature", s.temperature);
  s.top_k = t.integer("top_k", s.top_k, 0, 1 << 30);
  s.top_p = t.number("top_p", s.top_p);
  s.min_p = t.number("min_p", s.min_p);
  s.frequency_penalty = t.number("frequency_penalty", s.frequency_penalty);
  s.presence_penalty = t.number("presence_penalty", s.presence_penalty);
  if (t.has("seed")) {
    const json& v = t.at("seed");
    if (!v.is_number_unsigned()) fail("eval spec: 'topic_words.seed' must be an integer of 0 or more");
    s.seed = v.get<uint64_t>();
  }
  if (!(s.top_p > 0 && s.top_p <= 1)) fail("eval spec: 'topic_words.top_p' must be in (0, 1]");
  if (!(s.min_p >= 0 && s.min_p <= 1)) fail("eval spec: 'topic_words.min_p' must be in [0, 1]");
  return out;
}

}  // namespace

EvalSpec EvalSpec::from_json(std::string_view text, const std::filesystem::path& base_dir) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    std::replace(what.begin(), what.end(), '\n', ' ');
    fail("eval spec does not parse: {}", what);
  }
  const Object top(root, "", {"steering", "likelihood", "topic_words", "damage", "ab", "fluency"});
  EvalSpec spec;
  if (top.has("steering")) {
    if (!top.at("steering").is_object()) fail("eval spec: 'steering' must be an object");
    spec.steering = SteeringSpec::from_json(top.at("steering").dump());
    rebase_paths(*spec.steering, base_dir);
  }
  bool measures = false;
  if (top.has("likelihood")) {
    const Object l(top.at("likelihood"), "likelihood", {"on_topic", "off_topic"});
    if (!l.has("on_topic") && !l.has("off_topic")) fail("eval spec: 'likelihood' needs 'on_topic' or 'off_topic'");
    if (l.has("on_topic")) spec.on_topic = texts(l, "on_topic", base_dir);
    if (l.has("off_topic")) spec.off_topic = texts(l, "off_topic", base_dir);
    measures = true;
  }
  if (top.has("topic_words")) {
    spec.topic = topic_words(Object(top.at("topic_words"), "topic_words",
                              {"prompts", "words", "samples", "max_tokens", "temperature", "top_k", "top_p", "min_p",
                               "frequency_penalty", "presence_penalty", "seed"}),
                       base_dir);
    measures = true;
  }
  if (top.has("damage")) {
    const Object d(top.at("damage"), "damage", {"texts"});
    if (!d.has("texts")) fail("eval spec: 'damage' needs 'texts'");
    spec.neutral = texts(d, "texts", base_dir);
    measures = true;
  }
  if (top.has("ab")) {
    const Object ab(top.at("ab"), "ab", {"questions", "file", "chat", "chat_template"});
    spec.ab = ab_questions(ab, base_dir);
    spec.ab_chat = ab.boolean("chat");
    if (ab.has("chat_template")) {
      if (!spec.ab_chat) fail("eval spec: 'ab.chat_template' needs \"chat\": true");
      // A file next to the spec, or else a built-in format's name (or a path as given).
      spec.ab_chat_template = ab.string("chat_template");
      const auto file = relative_to(base_dir, spec.ab_chat_template);
      std::error_code ignored;
      if (std::filesystem::is_regular_file(file, ignored)) spec.ab_chat_template = file.string();
    }
    measures = true;
  }
  spec.fluency = top.boolean("fluency");
  if (spec.fluency && !spec.topic) fail("eval spec: 'fluency' is measured on the topic_words samples: add 'topic_words'");
  if (!measures) fail("eval spec: measures nothing (give likelihood, topic_words, damage or ab)");
  return spec;
}

EvalSpec EvalSpec::load(const std::filesystem::path& file) {
  const std::string text = read_text_file(file.string());
  try {
    return from_json(text, file.parent_path());
  } catch (const Error& e) {
    fail("{}: {}", file.string(), e.what());
  }
}

}  // namespace tiller
