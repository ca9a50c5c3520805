// Text to token ids and back, exactly as llama.cpp does it for the same GGUF:
// byte-level BPE (tokenizer.ggml.model = "gpt2") with its pre-tokenizer regexes,
// and SentencePiece-style BPE by scores with byte fallback ("llama", used by Gemma).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tiller/gguf.h"

namespace tiller {

using TokenId = int32_t;
inline constexpr TokenId kNoToken = -1;

// Token attributes as bits, derived from tokenizer.ggml.token_type (and, as
// llama.cpp does, from a few well-known token texts).
enum TokenAttr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1u << 0,
  kAttrUnused = 1u << 1,
  kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3,
  kAttrUserDefined = 1u << 4,
  kAttrByte = 1u << 5,
};

struct TokenizeOptions {
  bool add_special = true;     // BOS/EOS where the model's flags ask for them
  bool parse_special = false;  // control-token text in the input becomes those tokens
};

class Tokenizer {
 public:
  // Reads the vocabulary from a model file; an unknown tokenizer model or
  // pre-tokenizer is an error naming it and listing the supported ones.
  static std::unique_ptr<Tokenizer> from_gguf(const gguf::File& file);
  virtual ~Tokenizer() = default;

  std::vector<TokenId> tokenize(std::string_view text, TokenizeOptions options = {}) const;

  // The bytes a token stands for; control and unknown tokens are empty unless
  // render_special is set.
  std::string token_to_piece(TokenId token, bool render_special = false) const;
  // Concatenated pieces, with llama.cpp's clean-up of spaces where the vocabulary
  // asks for it. remove_special drops the BOS/EOS that tokenize() would have added.
  std::string detokenize(std::span<const TokenId> tokens, bool render_special = false,
                         bool remove_special = false) const;

  int32_t n_vocab() const { return static_cast<int32_t>(texts_.size()); }
  std::string_view token_text(TokenId token) const { return texts_.at(static_cast<size_t>(token)); }
  uint32_t token_attr(TokenId token) const { return attrs_.at(static_cast<size_t>(token)); }
  TokenId find_token(std::string_view text) const;
  TokenId bos() const { return bos_; }
  TokenId eos() const { return eos_; }
  TokenId eot() const { return eot_; }
  bool adds_bos() const { return add_bos_; }
  bool adds_eos() const { return add_eos_; }
  // End of generation: EOS, EOT and the other turn-ending tokens of the vocabulary.
  bool is_end_of_generation(TokenId token) const;
  const std::string& model_name() const { return model_; }
  const std::string& pre_tokenizer() const { return pre_; }

 protected:
  Tokenizer() = default;
  void load_vocabulary(const gguf::File& file);
  // Splits the input at special tokens (longest first); returns fragments that
  // are either a token id or a range of raw text.
  struct Fragment {
    TokenId token = kNoToken;  // kNoToken: raw text
    std::string_view text;
  };
  std::vector<Fragment> split_special(std::string_view text, bool parse_special) const;
  // Tokens for a stretch of text with no special tokens in it; after_special:
  // it follows a special token or starts the input.
  virtual void encode_fragment(std::string_view text, bool after_special, std::vector<TokenId>& out) const = 0;
  virtual std::string normal_piece(TokenId token) const = 0;
  static void clean_up_spaces(std::string& text);
  void assign_roles_by_text();

  // Every token's text back to back in one string: a 128k-token vocabulary takes
  // 1.5 MiB so, where a std::string per token took 6.
  class Texts {
   public:
    void assign(const std::vector<std::string>& texts);
    size_t size() const { return starts_.empty() ? 0 : starts_.size() - 1; }
    std::string_view operator[](size_t i) const { return std::string_view(chars_).substr(starts_[i], starts_[i + 1] - starts_[i]); }
    std::string_view at(size_t i) const;
   private:
    std::string chars_;
    std::vector<size_t> starts_;  // size() + 1 of them
  };

  std::string model_, pre_;
  Texts texts_;
  std::vector<float> scores_;
  std::vector<uint32_t> attrs_;
  std::vector<TokenId> special_tokens_;  // split out of text, longest first
  std::vector<TokenId> end_of_generation_;
  TokenId bos_ = kNoToken, eos_ = kNoToken, eot_ = kNoToken;
  bool add_bos_ = false, add_eos_ = false, add_space_prefix_ = false, clean_spaces_ = false;

 private:
  struct TextIndex;
  std::shared_ptr<const TextIndex> index_;
};

// Turns generated tokens into printable text as they come: a UTF-8 character
// split across tokens is held back until it is whole. (llama.cpp's space
// clean-up, which some byte-level vocabularies ask for, needs the whole text and
// is not applied here.)
class TokenTextStream {
 public:
  explicit TokenTextStream(const Tokenizer& tokenizer, bool render_special = false)
      : tokenizer_(tokenizer), render_special_(render_special) {}
  // The text that became printable with this token (possibly empty).
  std::string push(TokenId token);
  // Whatever is still held back, for the end of the stream.
  std::string finish();

 private:
  const Tokenizer& tokenizer_;
  bool render_special_;
  std::string pending_;
};

// UTF-8 helpers shared by the tokenizers and the CLI.
// The length of the UTF-8 sequence a lead byte announces (1 for invalid leads),
// as llama.cpp counts it.
size_t utf8_sequence_length(unsigned char lead);
// Bytes at the end of `text` that start an incomplete UTF-8 sequence, so a
// streaming printer can hold them back until the rest arrives.
size_t incomplete_utf8_suffix(std::string_view text);

}  // namespace tiller
