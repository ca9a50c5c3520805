// libFuzzer target: any byte string either parses into a File whose every
// tensor row dequantizes within bounds, or fails with tiller::Error. Anything
// else (a crash, a sanitizer report, another exception, a hang) is a bug.
#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <span>

#include "tiller/dequantize.h"
#include "common/fail.h"
#include "tiller/gguf.h"
#include "tiller/model_config.h"
#include "tiller/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto file = tiller::gguf::File::parse(std::span<const uint8_t>(data, size), "fuzz.gguf");
    (void)tiller::read_model_config(file);
    for (const auto& [key, value] : file.metadata()) (void)tiller::gguf::describe(value);
    for (const auto& tensor : file.tensors()) {
      if (tensor.n_rows() == 0 || tensor.row_length() > (1 << 16)) continue;
      (void)tiller::dequantize_tensor_row(file, tensor, tensor.n_rows() - 1);
    }
  } catch (const tiller::Error&) {
  }
  // A vocabulary from hostile metadata: building it, tokenizing and rendering
  // every token must also end cleanly.
  try {
    const auto file = tiller::gguf::File::parse(std::span<const uint8_t>(data, size), "fuzz.gguf");
    const auto tokenizer = tiller::Tokenizer::from_gguf(file);
    (void)tokenizer->tokenize("Hello <s> world\n\t 123", {true, true});
    for (tiller::TokenId id = 0; id < std::min(tokenizer->n_vocab(), 4096); ++id) {
      (void)tokenizer->token_to_piece(id, true);
    }
  } catch (const tiller::Error&) {
  }
  return 0;
}
