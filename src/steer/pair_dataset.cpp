#include "tiller/pair_dataset.h"

#include <algorithm>
#include <numeric>
#include <random>

#include <nlohmann/json.hpp>

#include "tiller/printable.h"
#include "common/fail.h"
#include "common/text_file.h"

namespace tiller {
namespace {

// The lines of a file, without the final newline's empty line and without "\r".
std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
    start = end + 1;
  }
  return lines;
}

std::string unescape(const std::string& line) {
  std::string out;
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '\\' && i + 1 < line.size() && (line[i + 1] == 'n' || line[i + 1] == '\\')) {
      out += line[i + 1] == 'n' ? '\n' : '\\';
      ++i;
    } else {
      out += line[i];
    }
  }
  return out;
}

std::vector<std::string> prompt_lines(const std::string& path) {
  const std::vector<std::string> lines = split_lines(read_text_file(path));
  if (lines.empty()) fail("{}: no prompts", path);
  std::vector<std::string> prompts;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (std::all_of(lines[i].begin(), lines[i].end(), [](char c) { return c == ' ' || c == '\t'; })) {
      fail("{}: line {} is empty (one prompt a line; write a newline inside a prompt as \\n)", path, i + 1);
    }
    prompts.push_back(unescape(lines[i]));
  }
  return prompts;
}

std::string fill_template(const std::string& templ, const std::string& persona) {
  std::string out = templ;
  for (size_t at = out.find("{persona}"); at != std::string::npos; at = out.find("{persona}", at + persona.size())) {
    out.replace(at, 9, persona);
  }
  return out;
}

}  // namespace

std::vector<TextPair> pairs_from_files(const std::string& positive_path, const std::string& negative_path) {
  const auto positive = prompt_lines(positive_path), negative = prompt_lines(negative_path);
  if (positive.size() != negative.size()) {
    fail("{} has {} prompts but {} has {}: the files pair line by line", positive_path, positive.size(),
         negative_path, negative.size());
  }
  std::vector<TextPair> pairs;
  for (size_t i = 0; i < positive.size(); ++i) pairs.push_back({{positive[i], ""}, {negative[i], ""}});
  return pairs;
}

std::vector<TextPair> pairs_from_jsonl(const std::string& path) {
  const std::vector<std::string> lines = split_lines(read_text_file(path));
  std::vector<TextPair> pairs;
  for (size_t i = 0; i < lines.size(); ++i) {
    nlohmann::json entry;
    try {
      entry = nlohmann::json::parse(lines[i]);
    } catch (const nlohmann::json::exception&) {
      fail("{}: line {} is not a JSON object{}", path, i + 1, lines[i].empty() ? " (it is empty)" : "");
    }
    auto field = [&](const char* key) {
      if (!entry.is_object() || !entry.contains(key) || !entry[key].is_string()) {
        fail("{}: line {} has no string \"{}\"", path, i + 1, key);
      }
      const std::string value = entry[key].get<std::string>();
      if (value.empty()) fail("{}: line {}: \"{}\" is empty", path, i + 1, key);
      return value;
    };
    pairs.push_back({{field("positive"), ""}, {field("negative"), ""}});
  }
  if (pairs.empty()) fail("{}: no pairs", path);
  return pairs;
}

std::vector<TextPair> pairs_from_personas(const Tokenizer& tokenizer, const std::string& templ,
                                          const std::string& personas, const std::string& suffixes_path) {
  if (templ.find("{persona}") == std::string::npos) fail("--template '{}' has no {{persona}}", printable(templ));
  const auto comma = personas.find(',');
  if (comma == std::string::npos || personas.find(',', comma + 1) != std::string::npos || comma == 0 ||
      comma + 1 == personas.size()) {
    fail("--personas '{}' must be two words, positive first: happy,sad", printable(personas));
  }
  const std::string positive = fill_template(templ, personas.substr(0, comma));
  const std::string negative = fill_template(templ, personas.substr(comma + 1));
  std::vector<TextPair> pairs;
  for (const std::string& suffix : prompt_lines(suffixes_path)) {
    const auto tokens = tokenizer.tokenize(suffix, {.add_special = false, .parse_special = false});
    for (size_t n = 1; n <= tokens.size(); ++n) {
      const std::string prefix = tokenizer.detokenize(std::span(tokens).first(n));
      pairs.push_back({{positive, prefix}, {negative, prefix}});
    }
  }
  return pairs;
}

std::vector<TextPair> sample_pairs(std::vector<TextPair> pairs, size_t count, uint64_t seed) {
  if (count == 0 || pairs.size() <= count) return pairs;
  std::vector<size_t> order(pairs.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  order.resize(count);
  std::sort(order.begin(), order.end());
  std::vector<TextPair> kept;
  for (const size_t i : order) kept.push_back(std::move(pairs[i]));
  return kept;
}

std::vector<TokenPair> tokenize_pairs(const Model& model, const PromptFormat& format,
                                      const std::vector<TextPair>& pairs, int max_tokens) {
  std::vector<TokenPair> out;
  out.reserve(pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) {
    TokenPair pair{build_prompt(model, format, pairs[i].positive).tokens, build_prompt(model, format, pairs[i].negative).tokens};
    for (const auto& [tokens, which] : {std::pair{&pair.positive, "positive"}, std::pair{&pair.negative, "negative"}}) {
      if (static_cast<int64_t>(tokens->size()) > max_tokens) {
        fail("pair {}: the {} prompt has {} tokens, more than the context's {} (-c raises it)", i + 1, which,
             tokens->size(), max_tokens);
      }
    }
    out.push_back(std::move(pair));
  }
  return out;
}

}  // namespace tiller
