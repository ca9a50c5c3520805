// libFuzzer target: any bytes tokenize, in every mode, with the real vocabularies
// (the models must be fetched), and every token id detokenizes. Anything but a
// clean return is a bug.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "tiller/gguf.h"
#include "cli/models_dir.h"
#include "tiller/tokenizer.h"

namespace {

std::vector<std::pair<std::unique_ptr<tiller::gguf::File>, std::unique_ptr<tiller::Tokenizer>>>& tokenizers() {
  static auto loaded = [] {
    std::vector<std::pair<std::unique_ptr<tiller::gguf::File>, std::unique_ptr<tiller::Tokenizer>>> out;
    for (const char* name : {"smollm2-135m-instruct", "gemma-3-270m"}) {
      const std::string path = (tiller::default_models_dir() / (std::string(name) + ".gguf")).string();
      auto file = std::make_unique<tiller::gguf::File>(tiller::gguf::File::open(path));
      auto tokenizer = tiller::Tokenizer::from_gguf(*file);
      out.emplace_back(std::move(file), std::move(tokenizer));
    }
    return out;
  }();
  return loaded;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (auto& [file, tokenizer] : tokenizers()) {
    for (const bool add_special : {false, true}) {
      for (const bool parse_special : {false, true}) {
        const auto ids = tokenizer->tokenize(text, {add_special, parse_special});
        for (const auto id : ids) {
          if (id < 0 || id >= tokenizer->n_vocab()) std::abort();
        }
        (void)tokenizer->detokenize(ids, parse_special);
      }
    }
  }
  return 0;
}
