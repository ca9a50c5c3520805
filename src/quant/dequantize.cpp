// Scalar dequantization, one function per block format, written for clarity.
// The arithmetic order (scale products first, then times the quant, then the
// min) is the one ggml and the gguf package use, so results agree bit for bit.
#include "tiller/dequantize.h"

#include <array>
#include <bit>
#include <cmath>
#include <cstring>

#include "common/fail.h"
#include "quant/iq4_levels.h"

namespace tiller {

float fp16_to_fp32(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  uint32_t exponent = (bits >> 10) & 0x1fu;
  uint32_t mantissa = bits & 0x3ffu;
  uint32_t result;
  if (exponent == 0x1f) {  // infinity or NaN
    result = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {  // normal
    result = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {  // signed zero
    result = sign;
  } else {  // subnormal: shift until the leading bit becomes the implicit one
    exponent = 113;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --exponent;
    }
    result = sign | (exponent << 23) | ((mantissa & 0x3ffu) << 13);
  }
  return std::bit_cast<float>(result);
}

uint16_t fp32_to_fp16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude >= 0x7f800000u) {  // infinity or NaN (keep NaN quiet)
    return static_cast<uint16_t>(sign | 0x7c00u | (magnitude > 0x7f800000u ? 0x200u : 0u));
  }
  if (magnitude >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds past 65504
  if (magnitude < 0x38800000u) {  // below the smallest normal half: subnormal or zero
    const float scaled = std::bit_cast<float>(magnitude) * 16777216.0f;  // 2^24: one unit per subnormal step
    const auto steps = static_cast<uint32_t>(std::nearbyint(scaled));    // ties to even
    return static_cast<uint16_t>(sign | steps);
  }
  // Normal: keep 10 mantissa bits, rounding the dropped 13 to nearest, ties to even.
  const uint32_t rounded = magnitude + 0xfffu + ((magnitude >> 13) & 1u);
  return static_cast<uint16_t>(sign | ((rounded - 0x38000000u) >> 13));
}

float bf16_to_fp32(uint16_t bits) { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }

uint16_t fp32_to_bf16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);  // NaN, made quiet
  // Keep the top 16 bits, rounding the dropped 16 to nearest, ties to even; a
  // carry moves into the exponent, and past the largest finite value to infinity.
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

namespace {

uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
float load_f16(const uint8_t* p) { return fp16_to_fp32(load_u16(p)); }

// 32-weight blocks: the low nibbles hold weights 0..15, the high nibbles 16..31.
void dequantize_q4_0(const uint8_t* block, float* out) {
  const float d = load_f16(block);
  const uint8_t* qs = block + 2;
  for (int j = 0; j < 16; ++j) {
    out[j] = static_cast<float>((qs[j] & 0x0f) - 8) * d;
    out[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
  }
}

void dequantize_q4_1(const uint8_t* block, float* out) {
  const float d = load_f16(block);
  const float m = load_f16(block + 2);
  const uint8_t* qs = block + 4;
  for (int j = 0; j < 16; ++j) {
    out[j] = d * static_cast<float>(qs[j] & 0x0f) + m;
    out[j + 16] = d * static_cast<float>(qs[j] >> 4) + m;
  }
}

// Q5: bit j of the 32-bit qh is the fifth bit of weight j.
void dequantize_q5_0(const uint8_t* block, float* out) {
  const float d = load_f16(block);
  uint32_t qh;
  std::memcpy(&qh, block + 2, 4);
  const uint8_t* qs = block + 6;
  for (int j = 0; j < 16; ++j) {
    const int low = (qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int high = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    out[j] = d * static_cast<float>(low - 16);
    out[j + 16] = d * static_cast<float>(high - 16);
  }
}

void dequantize_q5_1(const uint8_t* block, float* out) {
  const float d = load_f16(block);
  const float m = load_f16(block + 2);
  uint32_t qh;
  std::memcpy(&qh, block + 4, 4);
  const uint8_t* qs = block + 8;
  for (int j = 0; j < 16; ++j) {
    const int low = (qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int high = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    out[j] = d * static_cast<float>(low) + m;
    out[j + 16] = d * static_cast<float>(high) + m;
  }
}

void dequantize_q8_0(const uint8_t* block, float* out) {
  const float d = load_f16(block);
  const auto* qs = reinterpret_cast<const int8_t*>(block + 2);
  for (int j = 0; j < 32; ++j) out[j] = static_cast<float>(qs[j]) * d;
}

// K-quants pack eight 6-bit (scale, min) pairs into 12 bytes.
void k_scale_min(int j, const uint8_t* s, int& scale, int& min) {
  if (j < 4) {
    scale = s[j] & 63;
    min = s[j + 4] & 63;
  } else {
    scale = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
    min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Q4_K: 256 weights in 8 sub-blocks of 32; each 64-weight chunk takes the low
// nibbles of 32 bytes for one sub-block and their high nibbles for the next.
void dequantize_q4_k(const uint8_t* block, float* out) {
  const float d = load_f16(block);
  const float dmin = load_f16(block + 2);
  const uint8_t* scales = block + 4;
  const uint8_t* qs = block + 16;
  for (int chunk = 0; chunk < 4; ++chunk) {
    int sc_low, m_low, sc_high, m_high;
    k_scale_min(2 * chunk, scales, sc_low, m_low);
    k_scale_min(2 * chunk + 1, scales, sc_high, m_high);
    const float d_low = d * static_cast<float>(sc_low), min_low = dmin * static_cast<float>(m_low);
    const float d_high = d * static_cast<float>(sc_high), min_high = dmin * static_cast<float>(m_high);
    for (int l = 0; l < 32; ++l) out[l] = d_low * static_cast<float>(qs[l] & 0x0f) - min_low;
    for (int l = 0; l < 32; ++l) out[32 + l] = d_high * static_cast<float>(qs[l] >> 4) - min_high;
    qs += 32;
    out += 64;
  }
}

// Q5_K: as Q4_K plus a fifth bit from qh; chunk c reads bits 2c and 2c+1 of qh[l].
void dequantize_q5_k(const uint8_t* block, float* out) {
  const float d = load_f16(block);
  const float dmin = load_f16(block + 2);
  const uint8_t* scales = block + 4;
  const uint8_t* qh = block + 16;
  const uint8_t* qs = block + 48;
  for (int chunk = 0; chunk < 4; ++chunk) {
    int sc_low, m_low, sc_high, m_high;
    k_scale_min(2 * chunk, scales, sc_low, m_low);
    k_scale_min(2 * chunk + 1, scales, sc_high, m_high);
    const float d_low = d * static_cast<float>(sc_low), min_low = dmin * static_cast<float>(m_low);
    const float d_high = d * static_cast<float>(sc_high), min_high = dmin * static_cast<float>(m_high);
    const int low_bit = 2 * chunk, high_bit = 2 * chunk + 1;
    for (int l = 0; l < 32; ++l) {
      const int q = (qs[l] & 0x0f) | (((qh[l] >> low_bit) & 1) << 4);
      out[l] = d_low * static_cast<float>(q) - min_low;
    }
    for (int l = 0; l < 32; ++l) {
      const int q = (qs[l] >> 4) | (((qh[l] >> high_bit) & 1) << 4);
      out[32 + l] = d_high * static_cast<float>(q) - min_high;
    }
    qs += 32;
    out += 64;
  }
}

// Q6_K: 16 sub-blocks of 16 with signed 8-bit scales. Each 128-weight half takes
// 64 bytes of low nibbles (ql) and 32 bytes of 2-bit high parts (qh).
void dequantize_q6_k(const uint8_t* block, float* out) {
  const uint8_t* ql = block;
  const uint8_t* qh = block + 128;
  const auto* scales = reinterpret_cast<const int8_t*>(block + 192);
  const float d = load_f16(block + 208);
  for (int half = 0; half < 2; ++half) {
    for (int l = 0; l < 32; ++l) {
      const int sub = l / 16;
      const int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      out[l] = d * static_cast<float>(scales[sub]) * static_cast<float>(q1);
      out[l + 32] = d * static_cast<float>(scales[sub + 2]) * static_cast<float>(q2);
      out[l + 64] = d * static_cast<float>(scales[sub + 4]) * static_cast<float>(q3);
      out[l + 96] = d * static_cast<float>(scales[sub + 6]) * static_cast<float>(q4);
    }
    ql += 64;
    qh += 32;
    scales += 8;
    out += 128;
  }
}

// Q2_K and Q3_K keep the two low bits of each weight in 64 bytes: each 128-weight
// half reads its 32 bytes four times, the r-th run of 32 weights taking bits 2r, 2r+1.
int two_low_bits(const uint8_t* qs, int i) {
  const int half = i / 128, run = (i / 32) % 4;
  return (qs[32 * half + i % 32] >> (2 * run)) & 3;
}

// Q2_K: 16 sub-blocks of 16; byte j of the scales holds sub-block j's 4-bit
// scale (low nibble, times d) and 4-bit min (high nibble, times dmin).
void dequantize_q2_k(const uint8_t* block, float* out) {
  const uint8_t* scales = block;
  const uint8_t* qs = block + 16;
  const float d = load_f16(block + 80);
  const float dmin = load_f16(block + 82);
  for (int sub = 0; sub < 16; ++sub) {
    const float dl = d * static_cast<float>(scales[sub] & 0x0f);
    const float ml = dmin * static_cast<float>(scales[sub] >> 4);
    for (int i = 16 * sub; i < 16 * sub + 16; ++i) {
      out[i] = dl * static_cast<float>(two_low_bits(qs, i)) - ml;
    }
  }
}

// Q3_K: 16 sub-blocks of 16 with 6-bit scales stored with an offset of 32. Their
// low four bits are the nibbles of bytes 0..7 (sub-block j < 8 the low nibble of
// byte j, else the high nibble of byte j - 8); the top two are bits 2(j/4), 2(j/4)+1
// of byte 8 + j % 4. A weight's third bit, in hmask (bit r of hmask[l] for weight l
// of the r-th run of 32), counts the other way round: clear subtracts 4, set adds nothing.
void dequantize_q3_k(const uint8_t* block, float* out) {
  const uint8_t* hmask = block;
  const uint8_t* qs = block + 32;
  const uint8_t* s = block + 96;
  const float d = load_f16(block + 108);
  for (int sub = 0; sub < 16; ++sub) {
    const int low = (sub < 8 ? s[sub] : s[sub - 8] >> 4) & 0x0f;
    const int high = (s[8 + sub % 4] >> (2 * (sub / 4))) & 3;
    const float dl = d * static_cast<float>((low | (high << 4)) - 32);
    for (int i = 16 * sub; i < 16 * sub + 16; ++i) {
      const int q = two_low_bits(qs, i) - (((hmask[i % 32] >> (i / 32)) & 1) ? 0 : 4);
      out[i] = dl * static_cast<float>(q);
    }
  }
}

// IQ4_NL and IQ4_XS: 4-bit indices into 16 levels (quant/iq4_levels.h).
using quant::kIq4nlLevels;

// 16 bytes of indices for 32 weights: low nibbles 0..15, high nibbles 16..31, as in Q4_0.
void iq4_levels(const uint8_t* qs, float scale, float* out) {
  for (int j = 0; j < 16; ++j) {
    out[j] = scale * static_cast<float>(kIq4nlLevels[qs[j] & 0x0f]);
    out[j + 16] = scale * static_cast<float>(kIq4nlLevels[qs[j] >> 4]);
  }
}

void dequantize_iq4_nl(const uint8_t* block, float* out) { iq4_levels(block + 2, load_f16(block), out); }

// IQ4_XS: 8 IQ4_NL-like sub-blocks of 32 sharing d, each with a 6-bit scale stored
// with an offset of 32: low four bits in nibble (j % 2) of scales_l[j / 2], top two
// in bits 2j, 2j+1 of the 16-bit scales_h.
void dequantize_iq4_xs(const uint8_t* block, float* out) {
  const float d = load_f16(block);
  const uint16_t scales_h = load_u16(block + 2);
  const uint8_t* scales_l = block + 4;
  const uint8_t* qs = block + 8;
  for (int sub = 0; sub < 8; ++sub) {
    const int low = (scales_l[sub / 2] >> (4 * (sub % 2))) & 0x0f;
    const int high = (scales_h >> (2 * sub)) & 3;
    iq4_levels(qs + 16 * sub, d * static_cast<float>((low | (high << 4)) - 32), out + 32 * sub);
  }
}

using BlockDequantizer = void (*)(const uint8_t* block, float* out);

BlockDequantizer block_dequantizer(TensorType type) {
  switch (type) {
    case TensorType::Q4_0: return dequantize_q4_0;
    case TensorType::Q4_1: return dequantize_q4_1;
    case TensorType::Q5_0: return dequantize_q5_0;
    case TensorType::Q5_1: return dequantize_q5_1;
    case TensorType::Q8_0: return dequantize_q8_0;
    case TensorType::Q2_K: return dequantize_q2_k;
    case TensorType::Q3_K: return dequantize_q3_k;
    case TensorType::Q4_K: return dequantize_q4_k;
    case TensorType::Q5_K: return dequantize_q5_k;
    case TensorType::Q6_K: return dequantize_q6_k;
    case TensorType::IQ4_NL: return dequantize_iq4_nl;
    case TensorType::IQ4_XS: return dequantize_iq4_xs;
    default: return nullptr;
  }
}

}  // namespace

void dequantize_row(TensorType type, std::span<const uint8_t> src, std::span<float> dst) {
  const TensorTypeInfo& info = tensor_type_info(type);
  const auto n = static_cast<int64_t>(dst.size());
  const auto bytes = tensor_bytes(type, n);
  if (!bytes || *bytes != src.size()) {
    fail("dequantize: {} weights of {} need {} bytes, got {}", n, info.name,
         bytes ? *bytes : 0, src.size());
  }
  if (!info.dequantizable) fail("dequantize: tensor type {} is not supported", info.name);
  const uint8_t* in = src.data();
  float* out = dst.data();
  switch (type) {
    case TensorType::F32: std::memcpy(out, in, src.size()); return;
    case TensorType::F16:
      for (int64_t i = 0; i < n; ++i) out[i] = fp16_to_fp32(load_u16(in + 2 * i));
      return;
    case TensorType::BF16:
      for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_fp32(load_u16(in + 2 * i));
      return;
    default: break;
  }
  const BlockDequantizer dequantize_block = block_dequantizer(type);
  for (int64_t block = 0; block < n / info.block_size; ++block) {
    dequantize_block(in + block * info.block_bytes, out + block * info.block_size);
  }
}

std::vector<float> dequantize_tensor_row(const gguf::File& file, const gguf::TensorInfo& tensor,
                                         int64_t row) {
  const TensorTypeInfo& info = tensor_type_info(tensor.type);
  if (!info.dequantizable) {
    fail("{}: tensor '{}' has type {}, which Tiller cannot dequantize yet", file.name(), tensor.name,
         info.name);
  }
  std::vector<float> out(static_cast<size_t>(tensor.row_length()));
  dequantize_row(tensor.type, file.row_data(tensor, row), out);
  return out;
}

}  // namespace tiller
