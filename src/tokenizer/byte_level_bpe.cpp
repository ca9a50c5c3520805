// Byte-level BPE (GPT-2 style): pre-tokenize into words, map each word's bytes
// to GPT-2's printable alphabet, then merge adjacent symbols by merge rank.
#include <algorithm>
#include <mutex>
#include <queue>
#include <shared_mutex>
#include <unordered_map>

#include "common/fail.h"
#include "tokenizer/merge_ranks.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/symbols.h"
#include "tokenizer/tokenizer_kinds.h"
#include "tokenizer/unicode_text.h"

namespace tiller {
namespace {

class ByteLevelBpe final : public Tokenizer {
 public:
  explicit ByteLevelBpe(const gguf::File& file) {
    pre_ = file.get_string("tokenizer.ggml.pre").value_or("default");
    if (pre_.empty()) pre_ = "default";
    pre_tokenizer_ = std::make_unique<PreTokenizer>(pre_);
    model_ = "gpt2";
    bos_ = eos_ = 11;  // llama.cpp's defaults for this kind, overridden by the file
    add_bos_ = pre_tokenizer_->add_bos();
    clean_spaces_ = pre_tokenizer_->clean_spaces();
    load_vocabulary(file);
    const gguf::Array* merges = file.get_array("tokenizer.ggml.merges");
    if (merges == nullptr || merges->as<std::string>() == nullptr) {
      fail("{}: tokenizer.ggml.merges is missing or not an array of strings", file.name());
    }
    ranks_ = std::make_unique<MergeRanks>(*merges->as<std::string>());
  }

 protected:
  void encode_fragment(std::string_view text, bool /*after_special*/, std::vector<TokenId>& out) const override {
    const std::vector<uint32_t> code_points = unicode::decode_lenient(text);
    std::string utf8, word;
    for (const auto& [begin, end] : pre_tokenizer_->split(code_points)) {
      utf8.clear();
      for (size_t i = begin; i < end; ++i) unicode::append_utf8(code_points[i], utf8);
      word.clear();
      for (const char byte : utf8) word += unicode::byte_to_symbol(static_cast<uint8_t>(byte));
      merge_word(word, out);
    }
  }

  std::string normal_piece(TokenId token) const override {
    const std::string_view text = token_text(token);
    std::string bytes;
    size_t i = 0;
    while (i < text.size()) {
      const size_t length = std::min(utf8_sequence_length(static_cast<unsigned char>(text[i])), text.size() - i);
      uint8_t byte = 0;
      if (unicode::symbol_to_byte(std::string_view(text).substr(i, length), byte)) {
        bytes.push_back(static_cast<char>(byte));
      } else {
        bytes += "[UNK_BYTE_0x";  // what llama.cpp writes for a character outside the alphabet
        for (size_t k = 0; k < length; ++k) bytes += fmt::format("{:02x}", static_cast<unsigned char>(text[i + k]));
        bytes += text;
        bytes += "]";
      }
      i += length;
    }
    return bytes;
  }

 private:
  struct Bigram {
    int left, right;
    int32_t rank;
    std::string text;
  };
  // Lowest rank first; among equal ranks the leftmost.
  struct LaterBigram {
    bool operator()(const Bigram& a, const Bigram& b) const {
      return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
    }
  };

  // Words repeat in real text, and a word always merges the same way, so its
  // tokens are remembered (up to a bound; then the memory starts over).
  void merge_word(const std::string& word, std::vector<TokenId>& out) const {
    {
      std::shared_lock lock(cache_mutex_);
      if (const auto it = cache_.find(word); it != cache_.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    const size_t first = out.size();
    merge_word_uncached(word, out);
    std::unique_lock lock(cache_mutex_);
    if (cache_.size() >= kCacheWords) cache_.clear();
    cache_.emplace(word, std::vector<TokenId>(out.begin() + static_cast<std::ptrdiff_t>(first), out.end()));
  }

  void merge_word_uncached(const std::string& word, std::vector<TokenId>& out) const {
    if (pre_tokenizer_->ignore_merges()) {
      if (const TokenId whole = find_token(word); whole != kNoToken) {
        out.push_back(whole);
        return;
      }
    }
    std::vector<Symbol> symbols = characters_as_symbols(word);
    auto view = [&](const Symbol& s) { return std::string_view(word).substr(s.begin, s.length); };
    std::priority_queue<Bigram, std::vector<Bigram>, LaterBigram> queue;
    auto consider = [&](int left, int right) {
      if (left < 0 || right < 0) return;
      const auto l = view(symbols[static_cast<size_t>(left)]);
      const auto r = view(symbols[static_cast<size_t>(right)]);
      const int32_t rank = ranks_->find(l, r);
      if (rank < 0) return;
      queue.push({left, right, rank, std::string(l) + std::string(r)});
    };
    for (int i = 1; i < static_cast<int>(symbols.size()); ++i) consider(i - 1, i);
    while (!queue.empty()) {
      const Bigram bigram = queue.top();
      queue.pop();
      Symbol& left = symbols[static_cast<size_t>(bigram.left)];
      Symbol& right = symbols[static_cast<size_t>(bigram.right)];
      if (left.length == 0 || right.length == 0) continue;
      // Stale: one side has grown since this pair was queued.
      if (left.length + right.length != bigram.text.size() ||
          std::string(view(left)) + std::string(view(right)) != bigram.text) {
        continue;
      }
      merge_symbols(symbols, bigram.left, bigram.right);
      consider(left.prev, bigram.left);
      consider(bigram.left, left.next);
    }
    for (const Symbol& symbol : symbols) {
      if (symbol.length == 0) continue;
      const TokenId token = find_token(view(symbol));
      if (token != kNoToken) {
        out.push_back(token);
        continue;
      }
      // Not a token: fall back to one token per byte of the mapped text, as llama.cpp does.
      for (const char c : view(symbol)) {
        const TokenId single = find_token(std::string_view(&c, 1));
        if (single != kNoToken) out.push_back(single);
      }
    }
  }

  static constexpr size_t kCacheWords = 1 << 16;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<MergeRanks> ranks_;
  mutable std::shared_mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<TokenId>> cache_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_byte_level_bpe(const gguf::File& file) {
  return std::make_unique<ByteLevelBpe>(file);
}

}  // namespace tiller
