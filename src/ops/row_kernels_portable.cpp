// The portable row kernels (row_kernels.h).
#include <cstring>

#include "ops/block_layout.h"
#include "ops/half_row_kernels.h"
#include "ops/k_scales.h"
#include "ops/row_kernels.h"
#include "quant/iq4_levels.h"

namespace tiller::ops {
namespace {

using blocks::as_int8;
using blocks::k_min_sum;
using blocks::load_f32;
using blocks::load_half;
using blocks::load_u16;
using blocks::load_u32;

// Portable kernels: plain int32-accumulating loops over a weight block (the
// K-quants unpack theirs into a local int8 array first) that the compiler
// vectorizes for baseline x86-64 (SSE2): the same code, and bits, on every CPU.
// Per block, the float arithmetic is (d_w x d_x) x sumi, plus m_w x s_x for the
// formats with a minimum, summed block after block.

// Integer dot products of one weight block with its 32 activation quants y, read
// straight from the packed bytes: byte j holds weight j (low nibble) and weight
// j + 16 (high nibble). Single reductions; "unroll 1" keeps GCC -O3 from
// unrolling them completely before the vectorizer sees them (it then leaves
// scalar code, three times slower).
inline int32_t block_q4_0(const uint8_t* wb, const int8_t* y) {
  const uint8_t* qs = wb + 2;
  int32_t sum = 0;
#pragma GCC unroll 1
  for (int j = 0; j < 16; ++j) sum += ((qs[j] & 0x0f) - 8) * y[j] + ((qs[j] >> 4) - 8) * y[j + 16];
  return sum;
}
inline int32_t block_q4_1(const uint8_t* wb, const int8_t* y) {
  const uint8_t* qs = wb + 4;
  int32_t sum = 0;
#pragma GCC unroll 1
  for (int j = 0; j < 16; ++j) sum += (qs[j] & 0x0f) * y[j] + (qs[j] >> 4) * y[j + 16];
  return sum;
}
// Q5: bit j of the 32-bit qh is the fifth bit of weight j.
inline int32_t block_q5_0(const uint8_t* wb, const int8_t* y) {
  const uint32_t qh = load_u32(wb + 2);
  const uint8_t* qs = wb + 6;
  int32_t sum = 0;
#pragma GCC unroll 1
  for (int j = 0; j < 16; ++j) {
    const int low = (qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int high = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    sum += (low - 16) * y[j] + (high - 16) * y[j + 16];
  }
  return sum;
}
inline int32_t block_q5_1(const uint8_t* wb, const int8_t* y) {
  const uint32_t qh = load_u32(wb + 4);
  const uint8_t* qs = wb + 8;
  int32_t sum = 0;
#pragma GCC unroll 1
  for (int j = 0; j < 16; ++j) {
    const int low = (qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int high = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    sum += low * y[j] + high * y[j + 16];
  }
  return sum;
}

inline int32_t dot_int8(const int8_t* q, const int8_t* y, int n) {
  int32_t sum = 0;
#pragma GCC unroll 1
  for (int i = 0; i < n; ++i) sum += q[i] * y[i];
  return sum;
}
inline int32_t block_q8_0(const uint8_t* wb, const int8_t* y) { return dot_int8(as_int8(wb + 2), y, 32); }

// IQ4_NL: 16 bytes of 4-bit indices into the levels, packed as Q4_0's nibbles.
inline int32_t iq4_indices_dot(const uint8_t* qs, const int8_t* y) {
  int32_t sum = 0;
#pragma GCC unroll 1
  for (int j = 0; j < 16; ++j) {
    sum += quant::kIq4nlLevels[qs[j] & 0x0f] * y[j] + quant::kIq4nlLevels[qs[j] >> 4] * y[j + 16];
  }
  return sum;
}
inline int32_t block_iq4_nl(const uint8_t* wb, const int8_t* y) { return iq4_indices_dot(wb + 2, y); }

using Block32 = int32_t (*)(const uint8_t* weight_block, const int8_t* activation_quants);

// The 32-weight formats. With a minimum (Q4_1, Q5_1) the activations are Q8_1 and
// the weight minimum, the f16 after d, multiplies the activation block's s.
template <uint64_t kWeightBytes, Block32 block, bool kMinimum>
inline __attribute__((always_inline)) float dot_32_portable(const uint8_t* w, const uint8_t* x, int64_t n) {
  constexpr uint64_t kActBytes = kMinimum ? kQ8_1ActBytes : kQ8_0ActBytes;
  constexpr uint64_t kActQuants = kMinimum ? 4 : 2;
  float sum = 0.0f;
  for (int64_t b = 0; b < n / 32; ++b) {
    const uint8_t* wb = w + static_cast<uint64_t>(b) * kWeightBytes;
    const uint8_t* xb = x + static_cast<uint64_t>(b) * kActBytes;
    const int32_t sumi = block(wb, as_int8(xb + kActQuants));
    if constexpr (kMinimum) {
      sum += load_half(wb) * load_half(xb) * static_cast<float>(sumi) + load_half(wb + 2) * load_half(xb + 2);
    } else {
      sum += load_half(wb) * load_half(xb) * static_cast<float>(sumi);
    }
  }
  return sum;
}

float dot_q4_0_portable(const uint8_t* w, const uint8_t* x, int64_t n) {
  return dot_32_portable<kQ4_0Bytes, block_q4_0, false>(w, x, n);
}
float dot_q4_1_portable(const uint8_t* w, const uint8_t* x, int64_t n) {
  return dot_32_portable<kQ4_1Bytes, block_q4_1, true>(w, x, n);
}
float dot_q5_0_portable(const uint8_t* w, const uint8_t* x, int64_t n) {
  return dot_32_portable<kQ5_0Bytes, block_q5_0, false>(w, x, n);
}
float dot_q5_1_portable(const uint8_t* w, const uint8_t* x, int64_t n) {
  return dot_32_portable<kQ5_1Bytes, block_q5_1, true>(w, x, n);
}
float dot_q8_0_portable(const uint8_t* w, const uint8_t* x, int64_t n) {
  return dot_32_portable<kQ8_0Bytes, block_q8_0, false>(w, x, n);
}
float dot_iq4_nl_portable(const uint8_t* w, const uint8_t* x, int64_t n) {
  return dot_32_portable<kIQ4_NLBytes, block_iq4_nl, false>(w, x, n);
}

// Q4_K / Q5_K: 8 sub-blocks of 32; each 64-weight chunk takes the low nibbles of 32
// bytes for one sub-block and their high nibbles for the next (Q5_K: plus bits 2c
// and 2c+1 of qh[l] for chunk c). Per 256-block: d x sum_j(scale_j x sumi_j) -
// dmin x sum_j(min_j x bsum_j), d and dmin already times the activation scale.
template <bool kFifthBit>
inline __attribute__((always_inline)) float dot_q4_q5_k_portable(const uint8_t* w, const uint8_t* x, int64_t n) {
  constexpr uint64_t kWeightBytes = kFifthBit ? kQ5_KBytes : kQ4_KBytes;
  float sum = 0.0f;
  for (int64_t b = 0; b < n / 256; ++b) {
    const uint8_t* wb = w + static_cast<uint64_t>(b) * kWeightBytes;
    const uint8_t* xb = x + static_cast<uint64_t>(b) * kQ8_KActBytes;
    const int8_t* y = as_int8(xb + 4);
    uint8_t scale[8], min[8];
    unpack_k_scales(wb + 4, scale, min);
    const uint8_t* qh = wb + 16;
    const uint8_t* qs = wb + (kFifthBit ? 48 : 16);
    int8_t q[256];
    for (int chunk = 0; chunk < 4; ++chunk) {
      for (int l = 0; l < 32; ++l) {
        int low = qs[32 * chunk + l] & 0x0f, high = qs[32 * chunk + l] >> 4;
        if constexpr (kFifthBit) {
          low |= ((qh[l] >> (2 * chunk)) & 1) << 4;
          high |= ((qh[l] >> (2 * chunk + 1)) & 1) << 4;
        }
        q[64 * chunk + l] = static_cast<int8_t>(low);
        q[64 * chunk + 32 + l] = static_cast<int8_t>(high);
      }
    }
    int32_t sumi = 0;
    for (int j = 0; j < 8; ++j) sumi += scale[j] * dot_int8(q + 32 * j, y + 32 * j, 32);
    const float dx = load_f32(xb);
    const float d = load_half(wb) * dx, dmin = load_half(wb + 2) * dx;
    sum += d * static_cast<float>(sumi) - dmin * static_cast<float>(k_min_sum(min, xb));
  }
  return sum;
}

float dot_q4_k_portable(const uint8_t* w, const uint8_t* x, int64_t n) {
  return dot_q4_q5_k_portable<false>(w, x, n);
}
float dot_q5_k_portable(const uint8_t* w, const uint8_t* x, int64_t n) {
  return dot_q4_q5_k_portable<true>(w, x, n);
}

// Q6_K: 16 sub-blocks of 16 with signed 8-bit scales; weight i of a 128-half is a
// low or high nibble of ql and a 2-bit part of qh, as the dequantizer reads them.
float dot_q6_k_portable(const uint8_t* w, const uint8_t* x, int64_t n) {
  float sum = 0.0f;
  for (int64_t b = 0; b < n / 256; ++b) {
    const uint8_t* wb = w + static_cast<uint64_t>(b) * kQ6_KBytes;
    const uint8_t* xb = x + static_cast<uint64_t>(b) * kQ8_KActBytes;
    const int8_t* y = as_int8(xb + 4);
    const int8_t* scales = as_int8(wb + 192);
    int8_t q[256];
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = wb + 64 * half;
      const uint8_t* qh = wb + 128 + 32 * half;
      int8_t* o = q + 128 * half;
      for (int l = 0; l < 32; ++l) {
        o[l] = static_cast<int8_t>(((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32);
        o[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32);
        o[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        o[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
      }
    }
    int32_t sumi = 0;
    for (int j = 0; j < 16; ++j) sumi += scales[j] * dot_int8(q + 16 * j, y + 16 * j, 16);
    sum += load_half(wb + 208) * load_f32(xb) * static_cast<float>(sumi);
  }
  return sum;
}

// Q2_K and Q3_K keep each weight's two low bits in 64 bytes: run r (0..3) of 32
// weights in a 128-weight half takes bits 2r, 2r+1 of that half's 32 bytes. Both
// have 16 sub-blocks of 16, each with its own integer sum, as ggml's generic code.
inline void unpack_two_low_bits(const uint8_t* qs, int8_t* q) {
  for (int half = 0; half < 2; ++half) {
    for (int run = 0; run < 4; ++run) {
      for (int l = 0; l < 32; ++l) q[128 * half + 32 * run + l] = static_cast<int8_t>((qs[32 * half + l] >> (2 * run)) & 3);
    }
  }
}

// Q2_K: byte j of the scales holds sub-block j's 4-bit scale (low nibble) and 4-bit
// min (high nibble). Per 256-block: (d x d_x) x sum_j(scale_j x sumi_j) -
// (dmin x d_x) x sum_j(min_j x bsum_j), Q8_K's bsums being the sums of 16.
float dot_q2_k_portable(const uint8_t* w, const uint8_t* x, int64_t n) {
  float sum = 0.0f;
  for (int64_t b = 0; b < n / 256; ++b) {
    const uint8_t* wb = w + static_cast<uint64_t>(b) * kQ2_KBytes;
    const uint8_t* xb = x + static_cast<uint64_t>(b) * kQ8_KActBytes;
    const int8_t* y = as_int8(xb + 4);
    const uint8_t* scales = wb;
    int8_t q[256];
    unpack_two_low_bits(wb + 16, q);
    int16_t bsums[16];
    std::memcpy(bsums, xb + kQ8_KBsums, sizeof bsums);
    int32_t sumi = 0, summs = 0;
    for (int j = 0; j < 16; ++j) {
      sumi += (scales[j] & 0x0f) * dot_int8(q + 16 * j, y + 16 * j, 16);
      summs += (scales[j] >> 4) * bsums[j];
    }
    const float dx = load_f32(xb);
    sum += dx * load_half(wb + 80) * static_cast<float>(sumi) - dx * load_half(wb + 82) * static_cast<float>(summs);
  }
  return sum;
}

// Q3_K: a weight is its two low bits less 4 where its bit in hmask is clear (bit r
// of hmask[l] for weight l of run r of 32); signed 6-bit scales per 16.
float dot_q3_k_portable(const uint8_t* w, const uint8_t* x, int64_t n) {
  float sum = 0.0f;
  for (int64_t b = 0; b < n / 256; ++b) {
    const uint8_t* wb = w + static_cast<uint64_t>(b) * kQ3_KBytes;
    const uint8_t* xb = x + static_cast<uint64_t>(b) * kQ8_KActBytes;
    const int8_t* y = as_int8(xb + 4);
    const uint8_t* hmask = wb;
    int8_t q[256];
    unpack_two_low_bits(wb + 32, q);
    for (int run = 0; run < 8; ++run) {  // a fixed shift per run: the inner loop vectorizes
      for (int l = 0; l < 32; ++l) q[32 * run + l] = static_cast<int8_t>(q[32 * run + l] - (((hmask[l] >> run) & 1) ? 0 : 4));
    }
    int8_t scale[16];
    unpack_q3_k_scales(wb + 96, scale);
    int32_t sumi = 0;
    for (int j = 0; j < 16; ++j) sumi += scale[j] * dot_int8(q + 16 * j, y + 16 * j, 16);
    sum += load_half(wb + 108) * load_f32(xb) * static_cast<float>(sumi);
  }
  return sum;
}

// IQ4_XS: eight IQ4_NL-like sub-blocks of 32 under one f16 d, each with a signed
// 6-bit scale: (d x d_x) x sum_j(scale_j x sumi_j) per 256-block.
float dot_iq4_xs_portable(const uint8_t* w, const uint8_t* x, int64_t n) {
  float sum = 0.0f;
  for (int64_t b = 0; b < n / 256; ++b) {
    const uint8_t* wb = w + static_cast<uint64_t>(b) * kIQ4_XSBytes;
    const uint8_t* xb = x + static_cast<uint64_t>(b) * kQ8_KActBytes;
    const int8_t* y = as_int8(xb + 4);
    int8_t scale[8];
    unpack_iq4_xs_scales(load_u16(wb + 2), wb + 4, scale);
    int32_t sumi = 0;
    for (int j = 0; j < 8; ++j) sumi += scale[j] * iq4_indices_dot(wb + 8 + 16 * j, y + 32 * j);
    sum += load_half(wb) * load_f32(xb) * static_cast<float>(sumi);
  }
  return sum;
}

}  // namespace

RowKernels portable_row_kernels(TensorType weight_type) {
  switch (weight_type) {
    case TensorType::Q4_0: return {dot_q4_0_portable, nullptr};
    case TensorType::Q4_1: return {dot_q4_1_portable, nullptr};
    case TensorType::Q5_0: return {dot_q5_0_portable, nullptr};
    case TensorType::Q5_1: return {dot_q5_1_portable, nullptr};
    case TensorType::Q8_0: return {dot_q8_0_portable, nullptr};
    case TensorType::Q4_K: return {dot_q4_k_portable, nullptr};
    case TensorType::Q5_K: return {dot_q5_k_portable, nullptr};
    case TensorType::Q6_K: return {dot_q6_k_portable, nullptr};
    case TensorType::Q2_K: return {dot_q2_k_portable, nullptr};
    case TensorType::Q3_K: return {dot_q3_k_portable, nullptr};
    case TensorType::IQ4_NL: return {dot_iq4_nl_portable, nullptr};
    case TensorType::IQ4_XS: return {dot_iq4_xs_portable, nullptr};
    default: return portable_half_row_kernels(weight_type);  // F16, BF16; else {}
  }
}

}  // namespace tiller::ops
