#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pre_tokenizer.h"

#include <pcre2.h>

#include <cstdint>
#include <map>

#include "tiller/printable.h"
#include "common/fail.h"
#include "tokenizer/unicode_text.h"

namespace tiller {
namespace {

// Whitespace as llama.cpp's tables define it (the Unicode White_Space property).
// PCRE2's \s in UCP mode also matches U+180E, which would split words differently,
// so the patterns below spell the class out: {WS} inside a class, [{WS}] outside.
#define TILLER_WS "\\t\\n\\x0b\\f\\r \\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}"

// The patterns of the GGUF pre-tokenizer names (facts from llama.cpp's vocabulary loader).
const char* const kGpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" TILLER_WS "\\p{L}\\p{N}]+|[" TILLER_WS
                          "]+(?![^" TILLER_WS "])";
const char* const kLlama3 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^" TILLER_WS
    "\\p{L}\\p{N}]+[\\r\\n]*|[" TILLER_WS "]*[\\r\\n]+|[" TILLER_WS "]+(?![^" TILLER_WS "])|[" TILLER_WS "]+";
const char* const kQwen2 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^" TILLER_WS
    "\\p{L}\\p{N}]+[\\r\\n]*|[" TILLER_WS "]*[\\r\\n]+|[" TILLER_WS "]+(?![^" TILLER_WS "])|[" TILLER_WS "]+";
#undef TILLER_WS

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
  name_ = name;
  const auto it = pattern_table().find(name);
  if (it == pattern_table().end()) {
    fail("pre-tokenizer '{}' is not supported (supported: {})", printable(name), fmt::join(supported_names(), ", "));
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
  // Match limits high enough for any input's longest word (the defaults stop at
  // about ten million steps, which one long run of spaces can reach).
  const std::unique_ptr<pcre2_match_context, decltype(&pcre2_match_context_free)> context(
      pcre2_match_context_create(nullptr), pcre2_match_context_free);
  const std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> match(
      pcre2_match_data_create(4, nullptr), pcre2_match_data_free);
  if (!context || !match) fail("pre-tokenizer: out of memory");
  pcre2_set_match_limit(context.get(), UINT32_MAX);
  pcre2_set_depth_limit(context.get(), UINT32_MAX);
  for (const auto& regex : regexes_) {
    std::vector<std::pair<size_t, size_t>> next;
    next.reserve(words.size() * 2);
    for (const auto& [begin, end] : words) {
      // Each word is matched on its own, so lookaheads stop at its end.
      const char* word = subject.data() + byte_start[begin];
      const size_t length = byte_start[end] - byte_start[begin];
      size_t position = 0, emitted = begin;
      while (position < length) {
        const int found = pcre2_match(regex->code, reinterpret_cast<PCRE2_SPTR>(word), length, position,
                                      PCRE2_NO_UTF_CHECK, match.get(), context.get());
        if (found == PCRE2_ERROR_NOMATCH) break;
        if (found < 0) {
          PCRE2_UCHAR message[256];
          pcre2_get_error_message(found, message, sizeof(message));
          fail("pre-tokenizer '{}': matching failed at byte {}: {}", name_, byte_start[begin] + position,
               reinterpret_cast<const char*>(message));
        }
        const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.get());
        const size_t match_begin = code_point_at(byte_start[begin] + ovector[0]);
        const size_t match_end = code_point_at(byte_start[begin] + ovector[1]);
        if (match_end == match_begin) {  // none of the patterns can match empty text; step on if one did
          position = match_begin < end ? byte_start[match_begin + 1] - byte_start[begin] : length;
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
  return words;
}

}  // namespace tiller
