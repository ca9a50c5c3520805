#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pre_tokenizer.h"

#include <pcre2.h>

#include <map>

#include "tiller/error.h"
#include "tokenizer/unicode_text.h"

namespace tiller {
namespace {

// The patterns of the GGUF pre-tokenizer names (facts from llama.cpp's vocabulary loader).
const char* const kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
const char* const kLlama3 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// How llama.cpp treats each name: its regexes, and the vocabulary flags it sets.
struct PreTokenizerSpec {
  std::vector<std::string> patterns;
  bool clean_spaces = true;
  bool add_bos = false;
  bool ignore_merges = false;  // a word that is a token as a whole is not merged
};

const std::map<std::string, PreTokenizerSpec>& pattern_table() {
  static const std::map<std::string, PreTokenizerSpec> table = {
      {"default", {{R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"}}},
      {"gpt-2", {{kGpt2}}},
      {"smollm", {{R"(\p{N})", kGpt2}, false}},
      {"starcoder", {{R"(\p{N})", kGpt2}}},
      {"llama3", {{kLlama3}, true, true, true}},
      {"llama-v3", {{kLlama3}, true, true, true}},
      {"llama-bpe", {{kLlama3}, true, true, true}},
      {"qwen2", {{kQwen2}, false}},
  };
  return table;
}

}  // namespace

struct PreTokenizer::CompiledRegex {
  pcre2_code* code = nullptr;
  ~CompiledRegex() { pcre2_code_free(code); }
};

const std::vector<std::string>& PreTokenizer::supported_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& [name, patterns] : pattern_table()) out.push_back(name);
    return out;
  }();
  return names;
}

PreTokenizer::PreTokenizer(const std::string& name) {
  const auto it = pattern_table().find(name);
  if (it == pattern_table().end()) {
    fail("pre-tokenizer '{}' is not supported (supported: {})", name, fmt::join(supported_names(), ", "));
  }
  clean_spaces_ = it->second.clean_spaces;
  add_bos_ = it->second.add_bos;
  ignore_merges_ = it->second.ignore_merges;
  for (const std::string& pattern : it->second.patterns) {
    int error = 0;
    PCRE2_SIZE error_offset = 0;
    auto regex = std::make_unique<CompiledRegex>();
    regex->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(),
                                PCRE2_UTF | PCRE2_UCP, &error, &error_offset, nullptr);
    if (regex->code == nullptr) fail("pre-tokenizer '{}': pattern does not compile", name);
    pcre2_jit_compile(regex->code, PCRE2_JIT_COMPLETE);  // optional speed-up; matching works without
    regexes_.push_back(std::move(regex));
  }
}

PreTokenizer::~PreTokenizer() = default;

std::vector<std::pair<size_t, size_t>> PreTokenizer::split(const std::vector<uint32_t>& code_points) const {
  // Match on valid UTF-8: code points PCRE2 cannot hold (surrogates, values past
  // U+10FFFF) stand in as U+FFFD, which falls in the same classes (not a letter,
  // digit or space). byte_start maps code point i to its byte offset.
  std::string subject;
  std::vector<size_t> byte_start(code_points.size() + 1);
  for (size_t i = 0; i < code_points.size(); ++i) {
    byte_start[i] = subject.size();
    const uint32_t cp = code_points[i];
    unicode::append_utf8((cp >= 0xD800 && cp <= 0xDFFF) ? unicode::kReplacement : cp, subject);
  }
  byte_start[code_points.size()] = subject.size();
  auto code_point_at = [&](size_t byte) {
    return static_cast<size_t>(std::lower_bound(byte_start.begin(), byte_start.end(), byte) - byte_start.begin());
  };

  std::vector<std::pair<size_t, size_t>> words;
  if (!code_points.empty()) words.emplace_back(0, code_points.size());
  pcre2_match_data* match = nullptr;
  for (const auto& regex : regexes_) {
    if (match == nullptr) match = pcre2_match_data_create(4, nullptr);
    std::vector<std::pair<size_t, size_t>> next;
    next.reserve(words.size() * 2);
    for (const auto& [begin, end] : words) {
      // Each word is matched on its own, so lookaheads stop at its end.
      const char* word = subject.data() + byte_start[begin];
      const size_t length = byte_start[end] - byte_start[begin];
      size_t position = 0, emitted = begin;
      while (position < length) {
        const int found = pcre2_match(regex->code, reinterpret_cast<PCRE2_SPTR>(word), length, position,
                                      PCRE2_NO_UTF_CHECK, match, nullptr);
        if (found < 0) break;
        const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match);
        const size_t match_begin = code_point_at(byte_start[begin] + ovector[0]);
        const size_t match_end = code_point_at(byte_start[begin] + ovector[1]);
        if (match_end == match_begin) {  // an empty match: step over one code point
          position = byte_start[match_begin + 1] - byte_start[begin];
          continue;
        }
        if (match_begin > emitted) next.emplace_back(emitted, match_begin);  // unmatched text
        next.emplace_back(match_begin, match_end);
        emitted = match_end;
        position = ovector[1];
      }
      if (end > emitted) next.emplace_back(emitted, end);
    }
    words = std::move(next);
  }
  pcre2_match_data_free(match);
  return words;
}

}  // namespace tiller
