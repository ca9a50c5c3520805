// The two tokenizer kinds, built from a GGUF vocabulary.
#pragma once

#include <memory>

#include "tiller/gguf.h"
#include "tiller/tokenizer.h"

namespace tiller {

std::unique_ptr<Tokenizer> make_byte_level_bpe(const gguf::File& file);    // "gpt2"
std::unique_ptr<Tokenizer> make_sentencepiece_bpe(const gguf::File& file);  // "llama"

}  // namespace tiller
