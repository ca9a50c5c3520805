// What both tokenizer kinds share: the vocabulary and its special tokens,
// splitting special tokens out of text, and turning tokens back into bytes.
#include "tiller/tokenizer.h"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <stdexcept>
#include <utility>

#include "tiller/printable.h"
#include "common/fail.h"
#include "tokenizer/tokenizer_kinds.h"
#include "tokenizer/unicode_text.h"

namespace tiller {

struct Tokenizer::TextIndex {
  // Token ids by text: open addressing over a power-of-two table of ids, at most
  // half full, the texts themselves compared in the tokenizer's list. A 128k-token
  // vocabulary takes 1 MiB here, where a node-based map took 7.
  std::vector<TokenId> slots;

  static size_t hash(std::string_view text) { return std::hash<std::string_view>{}(text); }
  void reserve(size_t n) {
    size_t size = 16;
    while (size < 2 * n) size *= 2;
    slots.assign(size, kNoToken);
  }
  // The slot holding `text`, or the empty slot where it would go.
  size_t slot_of(std::string_view text, const Texts& texts) const {
    const size_t mask = slots.size() - 1;
    size_t i = hash(text) & mask;
    while (slots[i] != kNoToken && texts[static_cast<size_t>(slots[i])] != text) i = (i + 1) & mask;
    return i;
  }
  TokenId find(std::string_view text, const Texts& texts) const {
    return slots.empty() ? kNoToken : slots[slot_of(text, texts)];
  }
  // A byte trie over the special tokens' texts, to find every occurrence in one pass.
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> children;  // sorted by byte
    TokenId token = kNoToken;
  };
  std::vector<Node> trie{Node{}};

  int32_t child(int32_t node, unsigned char byte) const {
    const auto& children = trie[static_cast<size_t>(node)].children;
    const auto it = std::lower_bound(children.begin(), children.end(), std::make_pair(byte, int32_t{-1}));
    return (it != children.end() && it->first == byte) ? it->second : -1;
  }
  void insert(std::string_view text, TokenId token) {
    int32_t node = 0;
    for (const char c : text) {
      const auto byte = static_cast<unsigned char>(c);
      int32_t next = child(node, byte);
      if (next < 0) {
        next = static_cast<int32_t>(trie.size());
        trie.emplace_back();
        auto& children = trie[static_cast<size_t>(node)].children;
        children.insert(std::lower_bound(children.begin(), children.end(), std::make_pair(byte, int32_t{-1})),
                        {byte, next});
      }
      node = next;
    }
    trie[static_cast<size_t>(node)].token = token;
  }
};

namespace {

// Token texts llama.cpp gives a role by name (and makes control tokens): the end
// of a turn, fill-in-the-middle markers, and the ends of generation.
const std::vector<std::string_view> kEndOfTurnTexts = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
    "<EOT>", "_<EOT>", "[EOT]", "<\uff5cend\u2581of\u2581sentence\uff5c>", "<end_of_utterance>"};
const std::vector<std::vector<std::string_view>> kFillInTheMiddleTexts = {
    {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\uff5cfim\u2581begin\uff5c>", "<PRE>",
     "\u2581<PRE>", "<|code_prefix|>", "<|prefix|>"},
    {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\uff5cfim\u2581hole\uff5c>", "<SUF>",
     "\u2581<SUF>", "<|code_suffix|>", "<|suffix|>"},
    {"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\uff5cfim\u2581end\uff5c>", "<MID>",
     "\u2581<MID>", "<|code_middle|>", "<|middle|>"},
    {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"},                  // ends generation
    {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"},     // ends generation
    {"<|file_sep|>"},                                                             // ends generation
};
const std::vector<std::string_view> kEndOfGenerationTexts = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\uff5cend\u2581of\u2581sentence\uff5c>", "[e~["};

uint32_t attr_from_type(int32_t type) {
  switch (type) {
    case 1: return kAttrNormal;
    case 2: return kAttrUnknown;
    case 3: return kAttrControl;
    case 4: return kAttrUserDefined;
    case 5: return kAttrUnused;
    case 6: return kAttrByte;
    default: return kAttrUndefined;
  }
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const gguf::File& file) {
  const std::string model = file.get_string("tokenizer.ggml.model").value_or("");
  if (model == "gpt2") return make_byte_level_bpe(file);
  if (model == "llama") return make_sentencepiece_bpe(file);
  if (model.empty()) fail("{}: no tokenizer (tokenizer.ggml.model is missing)", file.name());
  fail("{}: tokenizer model '{}' is not supported (supported: gpt2, llama)", file.name(), printable(model));
}

void Tokenizer::Texts::assign(const std::vector<std::string>& texts) {
  size_t total = 0;
  for (const std::string& text : texts) total += text.size();
  chars_.clear();
  chars_.reserve(total);
  starts_.assign(1, 0);
  starts_.reserve(texts.size() + 1);
  for (size_t t = 0; t < texts.size(); ++t) {
    if (texts[t].empty()) {
      chars_ += "[EMPTY_" + std::to_string(t) + "]";  // as llama.cpp names it
    } else {
      chars_ += texts[t];  // appended in place (a conditional expression would copy it first)
    }
    starts_.push_back(chars_.size());
  }
}

std::string_view Tokenizer::Texts::at(size_t i) const {
  if (i >= size()) throw std::out_of_range("token id outside the vocabulary");
  return (*this)[i];
}

void Tokenizer::load_vocabulary(const gguf::File& file) {
  const gguf::Array* tokens = file.get_array("tokenizer.ggml.tokens");
  if (tokens == nullptr || tokens->as<std::string>() == nullptr) {
    fail("{}: tokenizer.ggml.tokens is missing or not an array of strings", file.name());
  }
  const std::vector<std::string>& texts = *tokens->as<std::string>();
  const size_t n = texts.size();
  if (n == 0 || n > static_cast<size_t>(INT32_MAX)) fail("{}: vocabulary of {} tokens", file.name(), n);

  scores_.assign(n, 0.0f);
  if (const gguf::Array* scores = file.get_array("tokenizer.ggml.scores")) {
    if (scores->size() < n) fail("{}: tokenizer.ggml.scores has fewer entries than tokens", file.name());
    if (const auto* f = scores->as<float>()) {
      std::copy_n(f->begin(), n, scores_.begin());
    } else if (const auto* i = scores->as<int32_t>()) {
      for (size_t t = 0; t < n; ++t) scores_[t] = static_cast<float>((*i)[t]);
    } else {
      fail("{}: tokenizer.ggml.scores must hold f32 or i32", file.name());
    }
  }
  attrs_.assign(n, kAttrNormal);
  if (const gguf::Array* types = file.get_array("tokenizer.ggml.token_type")) {
    const auto* values = types->as<int32_t>();
    if (values == nullptr || values->size() < n) {
      fail("{}: tokenizer.ggml.token_type must be i32, one per token", file.name());
    }
    for (size_t t = 0; t < n; ++t) attrs_[t] = attr_from_type((*values)[t]);
  }

  auto index = std::make_shared<TextIndex>();
  index->reserve(n);
  texts_.assign(texts);
  for (size_t t = 0; t < n; ++t) {
    TokenId& slot = index->slots[index->slot_of(texts_[t], texts_)];
    if (slot != kNoToken) fail("{}: token {} repeats the text of token {}", file.name(), t, slot);
    slot = static_cast<TokenId>(t);
  }
  index_ = index;

  auto read_id = [&](const char* key, TokenId& id) {
    if (id >= 0 && static_cast<size_t>(id) >= n) id = kNoToken;  // a default outside the vocabulary
    if (const auto value = file.get_uint(key); value && *value < n) id = static_cast<TokenId>(*value);
  };
  read_id("tokenizer.ggml.bos_token_id", bos_);
  read_id("tokenizer.ggml.eos_token_id", eos_);
  read_id("tokenizer.ggml.eot_token_id", eot_);
  add_bos_ = file.get_bool("tokenizer.ggml.add_bos_token").value_or(add_bos_);
  add_eos_ = file.get_bool("tokenizer.ggml.add_eos_token").value_or(add_eos_);
  add_space_prefix_ = file.get_bool("tokenizer.ggml.add_space_prefix").value_or(add_space_prefix_);
  if (add_bos_ && bos_ == kNoToken) fail("{}: add_bos_token is set but there is no BOS token", file.name());
  if (add_eos_ && eos_ == kNoToken) fail("{}: add_eos_token is set but there is no EOS token", file.name());

  assign_roles_by_text();
  for (size_t t = 0; t < n; ++t) {
    if (attrs_[t] & (kAttrControl | kAttrUserDefined | kAttrUnknown)) {
      special_tokens_.push_back(static_cast<TokenId>(t));
      index->insert(texts_[t], static_cast<TokenId>(t));
    }
  }
  // The same unstable sort of the same id-ordered list as llama.cpp, so that tokens
  // of equal length come out in the same order.
  std::sort(special_tokens_.begin(), special_tokens_.end(), [&](TokenId a, TokenId b) {
    return texts_[static_cast<size_t>(a)].size() > texts_[static_cast<size_t>(b)].size();
  });
}

// Roles llama.cpp finds by token text, with the same side effect on attributes:
// such tokens become control tokens, which changes how text containing them splits.
void Tokenizer::assign_roles_by_text() {
  auto make_control = [&](TokenId id) { attrs_[static_cast<size_t>(id)] |= kAttrControl; };
  auto first_present = [&](const std::vector<std::string_view>& texts) {
    for (std::string_view text : texts) {
      if (const TokenId id = find_token(text); id != kNoToken) return id;
    }
    return kNoToken;
  };
  std::set<TokenId> end_ids;
  if (eot_ == kNoToken) {
    eot_ = first_present(kEndOfTurnTexts);
    if (eot_ != kNoToken) make_control(eot_);
  }
  for (size_t role = 0; role < kFillInTheMiddleTexts.size(); ++role) {
    const TokenId id = first_present(kFillInTheMiddleTexts[role]);
    if (id == kNoToken) continue;
    make_control(id);
    if (role >= 3) end_ids.insert(id);  // pad, repository and file-separator markers
  }
  for (std::string_view text : kEndOfGenerationTexts) {
    if (const TokenId id = find_token(text); id != kNoToken) {
      end_ids.insert(id);
      make_control(id);
    }
  }
  // Control tokens named "unused" are marked so, as llama.cpp does.
  for (size_t t = 0; t < texts_.size(); ++t) {
    if ((attrs_[t] & kAttrControl) && texts_[t].find("unused") != std::string::npos) attrs_[t] |= kAttrUnused;
  }
  if (eos_ != kNoToken) end_ids.insert(eos_);
  if (eot_ != kNoToken) end_ids.insert(eot_);
  // Vocabularies with a tool-response marker use </s> as ordinary text.
  const TokenId tool_response = find_token("<|tool_response>"), closing_s = find_token("</s>");
  if (tool_response != kNoToken && closing_s != kNoToken && end_ids.count(tool_response) && end_ids.count(closing_s)) {
    end_ids.erase(closing_s);
    attrs_[static_cast<size_t>(closing_s)] = kAttrNormal;
  }
  end_of_generation_.assign(end_ids.begin(), end_ids.end());
}

TokenId Tokenizer::find_token(std::string_view text) const {
  return index_ ? index_->find(text, texts_) : kNoToken;
}

bool Tokenizer::is_end_of_generation(TokenId token) const {
  return std::binary_search(end_of_generation_.begin(), end_of_generation_.end(), token);
}

// Special tokens are cut out longest first; each cuts every occurrence that
// still lies whole inside uncut text, left to right: llama.cpp's order. One trie
// scan first finds which special tokens occur at all, so the per-token searches
// run only for those (usually none).
std::vector<Tokenizer::Fragment> Tokenizer::split_special(std::string_view text, bool parse_special) const {
  std::unordered_set<TokenId> present;
  const auto& trie = index_->trie;
  for (size_t start = 0; start < text.size(); ++start) {
    int32_t node = 0;
    for (size_t i = start; i < text.size(); ++i) {
      node = index_->child(node, static_cast<unsigned char>(text[i]));
      if (node < 0) break;
      const TokenId token = trie[static_cast<size_t>(node)].token;
      if (token != kNoToken) present.insert(token);
    }
  }
  std::map<size_t, std::pair<size_t, TokenId>> cuts;  // start -> (end, token)
  for (const TokenId token : special_tokens_) {
    if (present.empty()) break;
    if (present.erase(token) == 0) continue;
    if (!parse_special && (attrs_[static_cast<size_t>(token)] & (kAttrControl | kAttrUnknown))) continue;
    const std::string_view special = texts_[static_cast<size_t>(token)];
    // The uncut stretches of text, each searched left to right.
    std::vector<std::pair<size_t, size_t>> gaps;
    size_t position = 0;
    for (const auto& [start, cut] : cuts) {
      if (start > position) gaps.emplace_back(position, start);
      position = cut.first;
    }
    if (position < text.size()) gaps.emplace_back(position, text.size());
    for (const auto& [gap_begin, gap_end] : gaps) {
      const std::string_view gap = text.substr(0, gap_end);
      for (size_t at = gap.find(special, gap_begin); at != std::string_view::npos;
           at = gap.find(special, at + special.size())) {
        cuts.emplace(at, std::make_pair(at + special.size(), token));
      }
    }
  }
  std::vector<Fragment> fragments;
  size_t position = 0;
  for (const auto& [start, cut] : cuts) {
    if (start > position) fragments.push_back({kNoToken, text.substr(position, start - position)});
    fragments.push_back({cut.second, {}});
    position = cut.first;
  }
  if (position < text.size()) fragments.push_back({kNoToken, text.substr(position)});
  return fragments;
}

std::vector<TokenId> Tokenizer::tokenize(std::string_view text, TokenizeOptions options) const {
  std::vector<TokenId> out;
  if (options.add_special && add_bos_) out.push_back(bos_);
  bool after_special = true;
  for (const Fragment& fragment : split_special(text, options.parse_special)) {
    if (fragment.token != kNoToken) {
      out.push_back(fragment.token);
      after_special = true;
    } else {
      encode_fragment(fragment.text, after_special, out);
      after_special = false;
    }
  }
  if (options.add_special && add_eos_) out.push_back(eos_);
  return out;
}

std::string Tokenizer::token_to_piece(TokenId token, bool render_special) const {
  if (token < 0 || token >= n_vocab()) fail("token id {} is outside the vocabulary of {}", token, n_vocab());
  const uint32_t attr = attrs_[static_cast<size_t>(token)];
  if (!render_special && (attr & (kAttrControl | kAttrUnknown))) return {};
  const std::string_view text = texts_[static_cast<size_t>(token)];
  if (attr & (kAttrControl | kAttrUnknown | kAttrUserDefined)) return std::string(text);
  if (attr & kAttrNormal) return normal_piece(token);
  if (attr & kAttrByte) {
    // "<0xAB>" in SentencePiece vocabularies; byte-level ones hold the mapped character.
    if (text.size() == 6 && text.starts_with("<0x")) {
      // strtol, as llama.cpp reads it: malformed digits give 0 rather than an error.
      const std::string digits(text.substr(3, 2));
      return std::string(1, static_cast<char>(std::strtol(digits.c_str(), nullptr, 16)));
    }
    uint8_t byte = 0;
    if (unicode::symbol_to_byte(text, byte)) return std::string(1, static_cast<char>(byte));
  }
  return {};
}

std::string Tokenizer::detokenize(std::span<const TokenId> tokens, bool render_special,
                                  bool remove_special) const {
  std::string text;
  bool strip_leading_space = add_space_prefix_;
  if (remove_special && add_bos_ && !tokens.empty() && tokens.front() == bos_) {
    tokens = tokens.subspan(1);
    strip_leading_space = false;
  }
  if (remove_special && add_eos_ && !tokens.empty() && tokens.back() == eos_) tokens = tokens.first(tokens.size() - 1);
  for (const TokenId token : tokens) {
    std::string piece = token_to_piece(token, render_special);
    if (strip_leading_space && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
    strip_leading_space = false;
    text += piece;
  }
  if (clean_spaces_) clean_up_spaces(text);
  return text;
}

// llama.cpp's clean-up for byte-level vocabularies, three passes over the text
// in place: no space before ? ! . , ; a quote between two spaces loses both; no
// space before 's 'm 're 've. Each pass reads the original neighbours except
// where the second pass blanks the space it drops, as llama.cpp's does.
void Tokenizer::clean_up_spaces(std::string& text) {
  if (text.empty()) return;
  size_t total = text.size(), kept = 1;
  for (size_t i = 1; i < total; ++i) {
    const char c = text[i];
    if (text[i - 1] == ' ' && (c == '?' || c == '!' || c == '.' || c == ',')) --kept;
    text[kept++] = c;
  }
  total = kept;
  kept = 1;
  for (size_t i = 1; i < total; ++i) {
    const char c = text[i];
    if (c == '\'' && i + 1 < total && text[i - 1] == ' ' && text[i + 1] == ' ') {
      --kept;
      text[++i] = '\0';
    }
    text[kept++] = c;
  }
  total = kept;
  kept = 1;
  for (size_t i = 1; i < total; ++i) {
    const char c = text[i];
    if (text[i - 1] == ' ' && c == '\'' && i + 1 < total) {
      const char next = text[i + 1];
      if (next == 's' || next == 'm') {
        --kept;
      } else if (next != 't' && next != 'd' && i + 2 < total) {
        const char after = text[i + 2];
        if ((next == 'r' && after == 'e') || (next == 'v' && after == 'e')) --kept;
      }
    }
    text[kept++] = c;
  }
  text.resize(kept);
}

std::string TokenTextStream::push(TokenId token) {
  pending_ += tokenizer_.token_to_piece(token, render_special_);
  const size_t held = incomplete_utf8_suffix(pending_);
  std::string ready = pending_.substr(0, pending_.size() - held);
  pending_.erase(0, pending_.size() - held);
  return ready;
}

std::string TokenTextStream::finish() { return std::exchange(pending_, {}); }

}  // namespace tiller
