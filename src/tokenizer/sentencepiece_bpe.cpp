// SentencePiece-style BPE by scores (Gemma's tokenizer): spaces become U+2581,
// the text starts as single UTF-8 characters, and the adjacent pair whose
// concatenation is the best-scoring vocabulary entry merges first (leftmost on
// ties). Pieces that are not tokens fall back to <0xXX> byte tokens.
#include <array>
#include <unordered_map>
#include <queue>

#include "common/fail.h"
#include "tokenizer/symbols.h"
#include "tokenizer/tokenizer_kinds.h"

namespace tiller {
namespace {

constexpr std::string_view kSpaceMark = "\xe2\x96\x81";  // U+2581

class SentencePieceBpe final : public Tokenizer {
 public:
  explicit SentencePieceBpe(const gguf::File& file) {
    model_ = "llama";
    pre_ = file.get_string("tokenizer.ggml.pre").value_or("default");
    bos_ = 1;
    eos_ = 2;
    add_bos_ = true;
    add_space_prefix_ = true;
    load_vocabulary(file);
    for (int b = 0; b < 256; ++b) {
      byte_tokens_[static_cast<size_t>(b)] = find_token(fmt::format("<0x{:02X}>", b));
      if (byte_tokens_[static_cast<size_t>(b)] == kNoToken) {
        const char c = static_cast<char>(b);
        byte_tokens_[static_cast<size_t>(b)] = find_token(std::string_view(&c, 1));
      }
    }
  }

 protected:
  // Spaces become U+2581; with add_space_prefix the text after a special token
  // (or at the start) gets one more in front, as SentencePiece does.
  void encode_fragment(std::string_view text, bool after_special, std::vector<TokenId>& out) const override {
    std::string escaped;
    escaped.reserve(text.size() + 16);
    if (add_space_prefix_ && after_special) escaped += kSpaceMark;
    for (const char c : text) {
      if (c == ' ') {
        escaped += kSpaceMark;
      } else {
        escaped += c;
      }
    }
    encode(escaped, out);
  }

  std::string normal_piece(TokenId token) const override {
    const std::string_view text = token_text(token);
    std::string out;
    for (size_t i = 0; i < text.size();) {
      if (text.compare(i, kSpaceMark.size(), kSpaceMark) == 0) {
        out += ' ';
        i += kSpaceMark.size();
      } else {
        out += text[i++];
      }
    }
    return out;
  }

 private:
  struct Bigram {
    int left, right;
    float score;
    size_t size;
  };
  // Highest score first; among equal scores the leftmost.
  struct WorseBigram {
    bool operator()(const Bigram& a, const Bigram& b) const {
      return a.score < b.score || (a.score == b.score && a.left > b.left);
    }
  };

  void encode(const std::string& text, std::vector<TokenId>& out) const {
    std::vector<Symbol> symbols = characters_as_symbols(text);
    std::priority_queue<Bigram, std::vector<Bigram>, WorseBigram> queue;
    // Which pair of symbols formed a merged text, to split pieces that are not tokens.
    std::unordered_map<std::string_view, std::pair<int, int>> formed_from;
    auto consider = [&](int left, int right) {
      if (left < 0 || right < 0) return;
      const Symbol& l = symbols[static_cast<size_t>(left)];
      const Symbol& r = symbols[static_cast<size_t>(right)];
      const std::string_view joined = std::string_view(text).substr(l.begin, l.length + r.length);
      const TokenId token = find_token(joined);
      if (token == kNoToken) return;
      queue.push({left, right, scores_[static_cast<size_t>(token)], joined.size()});
      formed_from.insert_or_assign(joined, std::make_pair(left, right));
    };
    for (int i = 1; i < static_cast<int>(symbols.size()); ++i) consider(i - 1, i);
    while (!queue.empty()) {
      const Bigram bigram = queue.top();
      queue.pop();
      Symbol& left = symbols[static_cast<size_t>(bigram.left)];
      Symbol& right = symbols[static_cast<size_t>(bigram.right)];
      if (left.length == 0 || right.length == 0 || left.length + right.length != bigram.size) continue;
      merge_symbols(symbols, bigram.left, bigram.right);
      consider(left.prev, bigram.left);
      consider(bigram.left, left.next);
    }
    for (int i = symbols.empty() ? -1 : 0; i != -1; i = symbols[static_cast<size_t>(i)].next) {
      emit(text, symbols, symbols[static_cast<size_t>(i)], formed_from, out, 0);
    }
  }

  void emit(const std::string& text, const std::vector<Symbol>& symbols, const Symbol& symbol,
            const std::unordered_map<std::string_view, std::pair<int, int>>& formed_from,
            std::vector<TokenId>& out, size_t depth) const {
    const std::string_view piece = std::string_view(text).substr(symbol.begin, symbol.length);
    if (const TokenId token = find_token(piece); token != kNoToken) {
      out.push_back(token);
      return;
    }
    const auto it = formed_from.find(piece);
    if (it == formed_from.end() || depth > symbols.size()) {  // the depth bound guards odd inputs
      for (const char c : piece) {
        const TokenId byte_token = byte_tokens_[static_cast<unsigned char>(c)];
        if (byte_token == kNoToken) fail("no byte token for 0x{:02X} in the vocabulary", static_cast<unsigned char>(c));
        out.push_back(byte_token);
      }
      return;
    }
    emit(text, symbols, symbols[static_cast<size_t>(it->second.first)], formed_from, out, depth + 1);
    emit(text, symbols, symbols[static_cast<size_t>(it->second.second)], formed_from, out, depth + 1);
  }

  std::array<TokenId, 256> byte_tokens_{};
};

}  // namespace

std::unique_ptr<Tokenizer> make_sentencepiece_bpe(const gguf::File& file) {
  return std::make_unique<SentencePieceBpe>(file);
}

}  // namespace tiller
