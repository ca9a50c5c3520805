// Tiny synthetic GGUF models written with Tiller's own writer, for unit tests.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "tiller/gguf.h"

namespace tiller::testing {

struct TinyModelSpec {
  std::string architecture = "llama";
  int64_t n_layer = 2;
  int64_t n_embd = 64;
  int64_t n_head = 4;
  int64_t n_head_kv = 2;
  int64_t n_ff = 96;
  int64_t n_vocab = 260;
  int64_t n_ctx_train = 256;
  TensorType weight_type = TensorType::Q8_0;  // matrices; norms stay F32
  bool tied_output = true;
  uint32_t seed = 1;
};

gguf::Writer make_tiny_model(const TinyModelSpec& spec);

// Random but valid bytes for n_elements weights of a dequantizable type:
// finite f16 scales, arbitrary quant bits.
std::vector<uint8_t> random_tensor_bytes(TensorType type, int64_t n_elements, std::mt19937& rng);

}  // namespace tiller::testing
