// ggml tensor types: ids as stored in GGUF, block geometry, names.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tiller {

// Ids are the ones GGUF files store; gaps are ids ggml retired.
enum class TensorType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22,
  IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
};

struct TensorTypeInfo {
  TensorType type;
  std::string_view name;
  int64_t block_size;    // weights per block
  uint64_t block_bytes;  // bytes per block
  bool dequantizable;    // Tiller can turn it into f32
};

// nullptr when the id is not a type Tiller knows the geometry of.
const TensorTypeInfo* find_tensor_type(uint32_t id);
const TensorTypeInfo& tensor_type_info(TensorType type);
std::string_view tensor_type_name(TensorType type);
std::optional<TensorType> tensor_type_from_name(std::string_view name);

// Bytes needed for `n_weights` weights of `type` laid out in blocks;
// nullopt when n_weights is not a whole number of blocks or the size overflows.
std::optional<uint64_t> tensor_bytes(TensorType type, int64_t n_weights);

}  // namespace tiller
