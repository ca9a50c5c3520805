// The prompt pairs that control vectors are trained on, from files or built from a
// persona template, as text, and their tokens.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tiller/model.h"
#include "tiller/prompt.h"
#include "tiller/train.h"

namespace tiller {

struct TextPair {
  PromptText positive, negative;
};

// One prompt a line, paired by line number. "\n" in a line is a newline and "\\" a
// backslash. An empty line (but for the final newline) or unequal line counts are
// errors naming the file and line.
std::vector<TextPair> pairs_from_files(const std::string& positive_path, const std::string& negative_path);
// One JSON object a line: {"positive": "...", "negative": "..."}.
std::vector<TextPair> pairs_from_jsonl(const std::string& path);
// repeng's dataset: for each suffix (one a line, escapes as above) and each of its
// token prefixes (1 token, 2 tokens, ... all), the pair template({persona} = the
// first persona) / template(second persona), each followed by that prefix.
std::vector<TextPair> pairs_from_personas(const Tokenizer& tokenizer, const std::string& templ,
                                          const std::string& personas, const std::string& suffixes_path);

// Keeps `count` pairs chosen at random (seeded), in their original order.
std::vector<TextPair> sample_pairs(std::vector<TextPair> pairs, size_t count, uint64_t seed);

// Tokenizes every pair as build_prompt does; a prompt longer than max_tokens is an error naming the pair.
std::vector<TokenPair> tokenize_pairs(const Model& model, const PromptFormat& format,
                                      const std::vector<TextPair>& pairs, int max_tokens);

}  // namespace tiller
