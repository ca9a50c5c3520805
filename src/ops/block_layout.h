// The block geometry the kernels read, taken from the tensor type table
// (src/quant/tensor_type_table.h), and the plain loads of a block's fields. The
// bit layouts are the ones the dequantizers in src/quant/dequantize.cpp read.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

#include "quant/tensor_type_table.h"

namespace tiller::ops {

// Weights per block: the 32-weight formats and the K-quants' super-blocks.
inline constexpr int64_t kQK = quant::block_size(TensorType::Q4_0);
inline constexpr int64_t kQK_K = quant::block_size(TensorType::Q4_K);
static_assert(kQK == 32 && kQK_K == 256);

// Bytes per weight block.
inline constexpr uint64_t kQ4_0Bytes = quant::block_bytes(TensorType::Q4_0);
inline constexpr uint64_t kQ4_1Bytes = quant::block_bytes(TensorType::Q4_1);
inline constexpr uint64_t kQ5_0Bytes = quant::block_bytes(TensorType::Q5_0);
inline constexpr uint64_t kQ5_1Bytes = quant::block_bytes(TensorType::Q5_1);
inline constexpr uint64_t kQ8_0Bytes = quant::block_bytes(TensorType::Q8_0);
inline constexpr uint64_t kQ4_KBytes = quant::block_bytes(TensorType::Q4_K);
inline constexpr uint64_t kQ5_KBytes = quant::block_bytes(TensorType::Q5_K);
inline constexpr uint64_t kQ6_KBytes = quant::block_bytes(TensorType::Q6_K);
inline constexpr uint64_t kQ2_KBytes = quant::block_bytes(TensorType::Q2_K);
inline constexpr uint64_t kQ3_KBytes = quant::block_bytes(TensorType::Q3_K);
inline constexpr uint64_t kIQ4_NLBytes = quant::block_bytes(TensorType::IQ4_NL);
inline constexpr uint64_t kIQ4_XSBytes = quant::block_bytes(TensorType::IQ4_XS);
static_assert(quant::block_size(TensorType::IQ4_NL) == kQK && quant::block_size(TensorType::IQ4_XS) == kQK_K);

// Bytes per activation block: the quantized activations are ggml's Q8_0, Q8_1 and
// Q8_K blocks (activation_quant.h has their fields).
inline constexpr uint64_t kQ8_0ActBytes = quant::block_bytes(TensorType::Q8_0);
inline constexpr uint64_t kQ8_1ActBytes = quant::block_bytes(TensorType::Q8_1);
inline constexpr uint64_t kQ8_KActBytes = quant::block_bytes(TensorType::Q8_K);
// Offset of the int16 sums of 16 quants in a Q8_K block (after f32 d and 256 quants).
inline constexpr uint64_t kQ8_KBsums = 4 + kQK_K;
static_assert(kQ8_KActBytes == kQ8_KBsums + 2 * kQK_K / 16);

namespace blocks {

// f16 -> f32 without branches on the common path: the exponent is rebiased by a
// float multiplication (which also carries infinities and NaNs over), and
// subnormals are built as 0.5 + m x 2^-24 and then have 0.5 taken away (exact).
inline float half_bits_to_float(uint16_t h) {
  const uint32_t w = static_cast<uint32_t>(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;
  const float normal = std::bit_cast<float>((two_w >> 4) + (0xe0u << 23)) * 0x1.0p-112f;
  const float subnormal = std::bit_cast<float>((two_w >> 17) | (126u << 23)) - 0.5f;
  const uint32_t magnitude =
      two_w < (1u << 27) ? std::bit_cast<uint32_t>(subnormal) : std::bit_cast<uint32_t>(normal);
  return std::bit_cast<float>(sign | magnitude);
}

inline float load_half(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return half_bits_to_float(bits);
}

inline float load_f32(const uint8_t* p) {
  float value;
  std::memcpy(&value, p, 4);
  return value;
}

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t value;
  std::memcpy(&value, p, 2);
  return value;
}

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t value;
  std::memcpy(&value, p, 4);
  return value;
}

inline const int8_t* as_int8(const uint8_t* p) { return reinterpret_cast<const int8_t*>(p); }

// Sum over the 8 sub-blocks of 32 of min_j x (sum of their activation quants).
inline int32_t k_min_sum(const uint8_t* min, const uint8_t* act_block) {
  int16_t bsums[16];
  std::memcpy(bsums, act_block + kQ8_KBsums, sizeof bsums);
  int32_t sum = 0;
  for (int j = 0; j < 8; ++j) sum += min[j] * (bsums[2 * j] + bsums[2 * j + 1]);
  return sum;
}

}  // namespace blocks
}  // namespace tiller::ops
