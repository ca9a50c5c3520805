// The geometry of every ggml tensor type as compile-time data: tensor_type.cpp
// answers lookups from it, and the kernels (src/ops) take their block sizes and
// bytes per block from it rather than restating them.
#pragma once

#include <array>
#include <cstdint>

#include "tiller/tensor_type.h"

namespace tiller::quant {

inline constexpr int64_t QK = 32;    // weights in a 32-weight block
inline constexpr int64_t QK_K = 256; // weights in a K-quant super-block

// Geometry of every type GGUF files may hold, so that any file can be parsed and
// sized even where Tiller cannot dequantize a type.
inline constexpr std::array kTypes = {
    TensorTypeInfo{TensorType::F32, "F32", 1, 4, true},
    TensorTypeInfo{TensorType::F16, "F16", 1, 2, true},
    TensorTypeInfo{TensorType::Q4_0, "Q4_0", QK, 18, true},
    TensorTypeInfo{TensorType::Q4_1, "Q4_1", QK, 20, true},
    TensorTypeInfo{TensorType::Q5_0, "Q5_0", QK, 22, true},
    TensorTypeInfo{TensorType::Q5_1, "Q5_1", QK, 24, true},
    TensorTypeInfo{TensorType::Q8_0, "Q8_0", QK, 34, true},
    TensorTypeInfo{TensorType::Q8_1, "Q8_1", QK, 36, false},
    TensorTypeInfo{TensorType::Q2_K, "Q2_K", QK_K, 84, true},
    TensorTypeInfo{TensorType::Q3_K, "Q3_K", QK_K, 110, true},
    TensorTypeInfo{TensorType::Q4_K, "Q4_K", QK_K, 144, true},
    TensorTypeInfo{TensorType::Q5_K, "Q5_K", QK_K, 176, true},
    TensorTypeInfo{TensorType::Q6_K, "Q6_K", QK_K, 210, true},
    TensorTypeInfo{TensorType::Q8_K, "Q8_K", QK_K, 292, false},
    TensorTypeInfo{TensorType::IQ2_XXS, "IQ2_XXS", QK_K, 66, false},
    TensorTypeInfo{TensorType::IQ2_XS, "IQ2_XS", QK_K, 74, false},
    TensorTypeInfo{TensorType::IQ3_XXS, "IQ3_XXS", QK_K, 98, false},
    TensorTypeInfo{TensorType::IQ1_S, "IQ1_S", QK_K, 50, false},
    TensorTypeInfo{TensorType::IQ4_NL, "IQ4_NL", QK, 18, true},
    TensorTypeInfo{TensorType::IQ3_S, "IQ3_S", QK_K, 110, false},
    TensorTypeInfo{TensorType::IQ2_S, "IQ2_S", QK_K, 82, false},
    TensorTypeInfo{TensorType::IQ4_XS, "IQ4_XS", QK_K, 136, true},
    TensorTypeInfo{TensorType::I8, "I8", 1, 1, false},
    TensorTypeInfo{TensorType::I16, "I16", 1, 2, false},
    TensorTypeInfo{TensorType::I32, "I32", 1, 4, false},
    TensorTypeInfo{TensorType::I64, "I64", 1, 8, false},
    TensorTypeInfo{TensorType::F64, "F64", 1, 8, false},
    TensorTypeInfo{TensorType::IQ1_M, "IQ1_M", QK_K, 56, false},
    TensorTypeInfo{TensorType::BF16, "BF16", 1, 2, true},
    TensorTypeInfo{TensorType::TQ1_0, "TQ1_0", QK_K, 54, false},
    TensorTypeInfo{TensorType::TQ2_0, "TQ2_0", QK_K, 66, false},
    TensorTypeInfo{TensorType::MXFP4, "MXFP4", QK, 17, false},
};


// The entry of a type, at compile time (a type not in the table does not compile).
consteval const TensorTypeInfo& geometry(TensorType type) {
  for (const TensorTypeInfo& info : kTypes) {
    if (info.type == type) return info;
  }
  throw "a tensor type without geometry";
}
consteval int64_t block_size(TensorType type) { return geometry(type).block_size; }
consteval uint64_t block_bytes(TensorType type) { return geometry(type).block_bytes; }

}  // namespace tiller::quant
