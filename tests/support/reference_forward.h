// A plain double-precision forward pass written from the papers (Llama; Gemma 3),
// independent of Tiller's Session: no cache, no batching, no rounding. Tests
// compare the engine against it on tiny models; its switches let a test show
// that a wrong choice (rope pairing, head grouping, window) would be caught.
#pragma once

#include <string>
#include <vector>

#include "tiller/tokenizer.h"

namespace tiller::testing {

struct ReferenceVariant {
  bool swap_rope_pairing = false;   // use the other architecture's rope pairs
  bool interleave_kv_heads = false; // query head h reads kv head h % n_kv instead of h / group
  bool ignore_window = false;       // attend to every earlier position in local blocks
};

// Logits [tokens.size() x n_vocab], row-major, for the model file at `path`
// (architecture llama or gemma3).
std::vector<double> reference_logits(const std::string& path, const std::vector<TokenId>& tokens,
                                     const ReferenceVariant& variant = {});

}  // namespace tiller::testing
