// Splits text into words before BPE, with the regex list a vocabulary's
// tokenizer.ggml.pre names. Each regex splits every current word further; text
// between matches stays as words of its own, so nothing is dropped.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tiller {

class PreTokenizer {
 public:
  // Throws tiller::Error for a name it does not know, listing those it does.
  explicit PreTokenizer(const std::string& name);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Word boundaries as [begin, end) indices into code_points.
  std::vector<std::pair<size_t, size_t>> split(const std::vector<uint32_t>& code_points) const;

  static const std::vector<std::string>& supported_names();

  // Vocabulary flags llama.cpp ties to the pre-tokenizer's name.
  bool clean_spaces() const { return clean_spaces_; }
  bool add_bos() const { return add_bos_; }
  bool ignore_merges() const { return ignore_merges_; }

 private:
  std::string name_;
  bool clean_spaces_ = true, add_bos_ = false, ignore_merges_ = false;
  struct CompiledRegex;
  std::vector<std::unique_ptr<CompiledRegex>> regexes_;
};

}  // namespace tiller
