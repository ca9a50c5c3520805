// Turning stored weights into f32: the scalar reference that fast kernels are tested against.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "tiller/gguf.h"
#include "tiller/tensor_type.h"

namespace tiller {

float fp16_to_fp32(uint16_t bits);
// Rounds to the nearest half-precision value (ties to even), as F16C does.
uint16_t fp32_to_fp16(float value);
float bf16_to_fp32(uint16_t bits);
// Rounds to the nearest bfloat16 value (ties to even; NaN stays a quiet NaN), as
// ggml converts activations for BF16 weights.
uint16_t fp32_to_bf16(float value);

// Dequantizes dst.size() weights of `type` from src. dst.size() must be a whole
// number of blocks and src exactly their bytes; an undequantizable type is an error.
void dequantize_row(TensorType type, std::span<const uint8_t> src, std::span<float> dst);

// One row (shape[0] weights) of a tensor; errors name the file and the tensor.
std::vector<float> dequantize_tensor_row(const gguf::File& file, const gguf::TensorInfo& tensor,
                                         int64_t row);

}  // namespace tiller
