// The AVX2 row kernels (row_kernels.h).
#include <cstring>

#include "ops/block_layout.h"
#include "ops/half_row_kernels.h"
#include "ops/k_scales.h"
#include "ops/row_kernels.h"
#include "quant/iq4_levels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include "ops/x86_block_bits.h"
#include "ops/x86_simd.h"

namespace tiller::ops {
namespace {

using blocks::as_int8;
using blocks::k_min_sum;
using blocks::load_f32;
using blocks::load_u16;
using blocks::load_u32;
constexpr int kRows = kRowKernelRows;

// AVX2 kernels. Their float arithmetic (per block: one fused multiply-add of the
// 8 int32 lane sums, converted to float, by d_w x d_x into an 8-float accumulator,
// block after block; at the end the lanes added as ((0+4)+(2+6))+((1+5)+(3+7));
// minimum terms summed apart in block order and added last) reproduces llama.cpp's
// CPU results bit for bit for Q4_1, Q5_0 and Q8_0 (tests/test_quantized_dot.cpp
// checks this against its tensors; Q4_0 and Q5_1 are built the same way, with no
// tensors to check them against). The K-quants agree to float rounding only.
// The Avx512Vnni level has its own row kernels, in vnni_row_kernels.cpp.

#define TILLER_AVX2 __attribute__((target("avx2,fma,f16c")))

TILLER_AVX2 inline float half_avx2(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return _cvtsh_ss(bits);
}

TILLER_AVX2 inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

TILLER_AVX2 inline float hsum_avx2(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Unsigned bytes times signed bytes, summed in fours into 8 int32. Products of
// pairs stay within int16: the unsigned side is at most 128 here (63 for K-quants'
// 6-bit values, |q8_0| for the sign trick) and the signed side at most 127.
TILLER_AVX2 inline __m256i mul_sum_u8s8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}
// Signed times signed: move the sign of a onto b.
TILLER_AVX2 inline __m256i mul_sum_s8s8(__m256i a, __m256i b) {
  return mul_sum_u8s8(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
}

using x86::bit_bytes;
using x86::nibbles;

// The 32-weight formats: `block` returns the 8 int32 lane sums of one block's
// integer dot product. The kernels take R weight rows at once against one
// activation row: R independent accumulator chains hide the multiply-add latency,
// and each row's float operations are exactly those of a single-row call.
using BlockSums = __m256i (*)(const uint8_t* weight_block, const uint8_t* activation_block);

template <uint64_t kWeightBytes, BlockSums block, bool kMinimum, int R>
TILLER_AVX2 inline void dot_32_rows_avx2(const uint8_t* w, uint64_t row_bytes, const uint8_t* x, int64_t n,
                                         float* out) {
  constexpr uint64_t kActBytes = kMinimum ? kQ8_1ActBytes : kQ8_0ActBytes;
  __m256 acc[R];
  float minimums[R];
  for (int r = 0; r < R; ++r) {
    acc[r] = _mm256_setzero_ps();
    minimums[r] = 0.0f;
  }
  for (int64_t b = 0; b < n / 32; ++b) {
    const uint8_t* xb = x + static_cast<uint64_t>(b) * kActBytes;
    const float dx = half_avx2(xb);
    for (int r = 0; r < R; ++r) {
      const uint8_t* wb = w + static_cast<uint64_t>(r) * row_bytes + static_cast<uint64_t>(b) * kWeightBytes;
      // The same place in the next group of R rows, fetched while this one computes:
      // on the model's mapped file (4 KiB pages) the hardware prefetchers alone
      // fall behind.
      _mm_prefetch(reinterpret_cast<const char*>(wb + R * row_bytes), _MM_HINT_T0);
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(half_avx2(wb) * dx), _mm256_cvtepi32_ps(block(wb, xb)), acc[r]);
      if constexpr (kMinimum) minimums[r] += half_avx2(wb + 2) * half_avx2(xb + 2);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = kMinimum ? hsum_avx2(acc[r]) + minimums[r] : hsum_avx2(acc[r]);
}

TILLER_AVX2 inline __m256i block_q4_0_avx2(const uint8_t* wb, const uint8_t* xb) {
  const __m256i q = _mm256_sub_epi8(nibbles(wb + 2), _mm256_set1_epi8(8));
  return mul_sum_s8s8(q, load256(xb + 2));
}

TILLER_AVX2 inline __m256i block_q4_1_avx2(const uint8_t* wb, const uint8_t* xb) {
  return mul_sum_u8s8(nibbles(wb + 4), load256(xb + 4));
}

// value = nibble + 16 x bit - 16: where the bit is clear, OR-ing 0xf0 makes the
// byte (nibble - 16) in two's complement.
TILLER_AVX2 inline __m256i block_q5_0_avx2(const uint8_t* wb, const uint8_t* xb) {
  const __m256i clear =
      _mm256_andnot_si256(bit_bytes(load_u32(wb + 2)), _mm256_set1_epi8(static_cast<char>(0xf0)));
  return mul_sum_s8s8(_mm256_or_si256(nibbles(wb + 6), clear), load256(xb + 2));
}

TILLER_AVX2 inline __m256i block_q5_1_avx2(const uint8_t* wb, const uint8_t* xb) {
  const __m256i high = _mm256_and_si256(bit_bytes(load_u32(wb + 4)), _mm256_set1_epi8(0x10));
  return mul_sum_u8s8(_mm256_or_si256(nibbles(wb + 8), high), load256(xb + 4));
}

TILLER_AVX2 inline __m256i block_q8_0_avx2(const uint8_t* wb, const uint8_t* xb) {
  return mul_sum_s8s8(load256(wb + 2), load256(xb + 2));
}

// IQ4_NL and IQ4_XS: 32 indices (nibbles) looked up in the 16 levels, which lie
// in -127..113, so that the sign trick's products of pairs stay within int16.
TILLER_AVX2 inline __m256i iq4_levels_avx2(const uint8_t* qs) {
  const __m256i levels =
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(quant::kIq4nlLevels.data())));
  return _mm256_shuffle_epi8(levels, nibbles(qs));
}

TILLER_AVX2 inline __m256i block_iq4_nl_avx2(const uint8_t* wb, const uint8_t* xb) {
  return mul_sum_s8s8(iq4_levels_avx2(wb + 2), load256(xb + 2));
}

// Unsigned 32 quants times 32 activations, pairs summed in int16, then times the
// sub-block scale and summed in pairs again: 8 int32.
TILLER_AVX2 inline __m256i scaled_sum_avx2(__m256i q, const int8_t* y, int scale) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(q, load256(y)), _mm256_set1_epi16(static_cast<int16_t>(scale)));
}

// The K-quants: `block` returns the 8 int32 lane sums of one 256-block (scales
// applied) and adds its minimum term, if any, to *minimum.
using KBlockSums = __m256i (*)(const uint8_t* weight_block, const uint8_t* activation_block, float dx,
                               float* minimum);

// Q4_K: each 64-weight chunk takes the low nibbles of 32 bytes for one sub-block
// and their high nibbles for the next.
TILLER_AVX2 inline __m256i block_q4_k_avx2(const uint8_t* wb, const uint8_t* xb, float dx, float* minimum) {
  const __m256i low_mask = _mm256_set1_epi8(0x0f);
  const int8_t* y = as_int8(xb + 4);
  uint8_t scale[8], min[8];
  unpack_k_scales(wb + 4, scale, min);
  __m256i sumi = _mm256_setzero_si256();
  for (int chunk = 0; chunk < 4; ++chunk) {
    const __m256i raw = load256(wb + 16 + 32 * chunk);
    const __m256i low = _mm256_and_si256(raw, low_mask);
    const __m256i high = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low_mask);
    sumi = _mm256_add_epi32(sumi, scaled_sum_avx2(low, y + 64 * chunk, scale[2 * chunk]));
    sumi = _mm256_add_epi32(sumi, scaled_sum_avx2(high, y + 64 * chunk + 32, scale[2 * chunk + 1]));
  }
  *minimum += half_avx2(wb + 2) * dx * static_cast<float>(k_min_sum(min, xb));
  return sumi;
}

// Q5_K: as Q4_K, plus bits 2c and 2c+1 of qh[l] for chunk c.
TILLER_AVX2 inline __m256i block_q5_k_avx2(const uint8_t* wb, const uint8_t* xb, float dx, float* minimum) {
  const __m256i low_mask = _mm256_set1_epi8(0x0f), bit0 = _mm256_set1_epi8(1), bit1 = _mm256_set1_epi8(2);
  const int8_t* y = as_int8(xb + 4);
  uint8_t scale[8], min[8];
  unpack_k_scales(wb + 4, scale, min);
  __m256i high_bits = load256(wb + 16);  // shifted down 2 per chunk
  __m256i sumi = _mm256_setzero_si256();
  for (int chunk = 0; chunk < 4; ++chunk) {
    const __m256i raw = load256(wb + 48 + 32 * chunk);
    const __m256i low = _mm256_or_si256(_mm256_and_si256(raw, low_mask),
                                        _mm256_slli_epi16(_mm256_and_si256(high_bits, bit0), 4));
    const __m256i high = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(raw, 4), low_mask),
                                         _mm256_slli_epi16(_mm256_and_si256(high_bits, bit1), 3));
    sumi = _mm256_add_epi32(sumi, scaled_sum_avx2(low, y + 64 * chunk, scale[2 * chunk]));
    sumi = _mm256_add_epi32(sumi, scaled_sum_avx2(high, y + 64 * chunk + 32, scale[2 * chunk + 1]));
    high_bits = _mm256_srli_epi16(high_bits, 2);
  }
  *minimum += half_avx2(wb + 2) * dx * static_cast<float>(k_min_sum(min, xb));
  return sumi;
}

// Q6_K: the quants are taken unsigned (0..63) and the offset of 32 is taken off
// each pair of products (32 x the pair's activation sum) before the scale: every
// int32 lane then holds scale x sum((q - 32) x q8) over its own four bytes.
TILLER_AVX2 inline __m256i block_q6_k_avx2(const uint8_t* wb, const uint8_t* xb, float, float*) {
  const __m256i low_mask = _mm256_set1_epi8(0x0f), high_mask = _mm256_set1_epi8(0x30);
  const __m256i offset = _mm256_set1_epi8(32);
  const int8_t* y = as_int8(xb + 4);
  const int8_t* scales = as_int8(wb + 192);
  __m256i sumi = _mm256_setzero_si256();
  for (int half = 0; half < 2; ++half) {
    const uint8_t* ql = wb + 64 * half;
    const __m256i ql0 = load256(ql), ql1 = load256(ql + 32), qh = load256(wb + 128 + 32 * half);
    const __m256i q[4] = {
        _mm256_or_si256(_mm256_and_si256(ql0, low_mask), _mm256_and_si256(_mm256_slli_epi16(qh, 4), high_mask)),
        _mm256_or_si256(_mm256_and_si256(ql1, low_mask), _mm256_and_si256(_mm256_slli_epi16(qh, 2), high_mask)),
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low_mask), _mm256_and_si256(qh, high_mask)),
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low_mask),
                        _mm256_and_si256(_mm256_srli_epi16(qh, 2), high_mask)),
    };
    const int8_t* s = scales + 8 * half;
    for (int k = 0; k < 4; ++k) {
      // Bytes 0..15 belong to sub-block 2k, bytes 16..31 to 2k+1. Pairs stay in
      // int16: 63 x 127 x 2 less 32 x (-127) x 2 is below 2^15.
      const __m256i scale = _mm256_set_m128i(_mm_set1_epi16(s[2 * k + 1]), _mm_set1_epi16(s[2 * k]));
      const __m256i y_k = load256(y + 128 * half + 32 * k);
      const __m256i products = _mm256_sub_epi16(_mm256_maddubs_epi16(q[k], y_k), _mm256_maddubs_epi16(offset, y_k));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(products, scale));
    }
  }
  return sumi;
}

// The int16 scales of sub-blocks of 16: `lane_scales` holds eight of them in each
// 128-bit half (the same eight in both); the result has scale j in the low half and
// scale j + 1 in the high one, to multiply the int16 pair sums of 32 quants whose
// bytes 0..15 are sub-block j and 16..31 sub-block j + 1.
TILLER_AVX2 inline __m256i scale_pair_avx2(__m256i lane_scales, int j) {
  auto pick = [](int k) { return _mm_set1_epi16(static_cast<int16_t>(((2 * k + 1) << 8) | (2 * k))); };
  return _mm256_shuffle_epi8(lane_scales, _mm256_set_m128i(pick(j + 1), pick(j)));
}

// Q2_K and Q3_K: run r (0..3) of 32 weights in each 128-weight half takes bits 2r,
// 2r+1 of the half's 32 bytes of low bits, and spans two sub-blocks of 16. Their
// sixteen scales are widened to int16 (0..7 in the low 128 bits, 8..15 in the high).
// Q2_K: unsigned 2-bit quants with 4-bit scales and mins. Minimum: dmin x d_x x
// sum_j(min_j x bsum_j), summed apart.
TILLER_AVX2 inline __m256i block_q2_k_avx2(const uint8_t* wb, const uint8_t* xb, float dx, float* minimum) {
  const __m256i mask = _mm256_set1_epi8(3);
  const int8_t* y = as_int8(xb + 4);
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(wb));
  const __m256i scales = _mm256_cvtepu8_epi16(_mm_and_si128(packed, _mm_set1_epi8(0x0f)));
  const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0x0f)));
  __m256i sumi = _mm256_setzero_si256();
  for (int half = 0; half < 2; ++half) {
    const __m256i raw = load256(wb + 16 + 32 * half);
    const __m256i lane_scales = half == 0 ? _mm256_permute2x128_si256(scales, scales, 0x00)
                                      : _mm256_permute2x128_si256(scales, scales, 0x11);
    for (int run = 0; run < 4; ++run) {
      const __m256i q = _mm256_and_si256(_mm256_srli_epi16(raw, 2 * run), mask);
      const __m256i pairs = _mm256_maddubs_epi16(q, load256(y + 128 * half + 32 * run));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(pairs, scale_pair_avx2(lane_scales, 2 * run)));
    }
  }
  const __m256i min_sums = _mm256_madd_epi16(mins, load256(xb + kQ8_KBsums));
  __m128i m = _mm_add_epi32(_mm256_castsi256_si128(min_sums), _mm256_extracti128_si256(min_sums, 1));
  m = _mm_add_epi32(m, _mm_shuffle_epi32(m, 0x4e));
  m = _mm_add_epi32(m, _mm_shuffle_epi32(m, 0xb1));
  *minimum += half_avx2(wb + 82) * dx * static_cast<float>(_mm_cvtsi128_si32(m));
  return sumi;
}

// Q3_K's sixteen scales as unpack_q3_k_scales (k_scales.h) gives them, in one
// vector: the low nibbles from bytes 0..7 (low nibbles for scales 0..7, high for
// 8..15), the top two bits of scale j from bits 2(j/4), 2(j/4)+1 of byte 8 + j % 4.
TILLER_AVX2 inline __m128i q3_k_scales_avx2(const uint8_t* s) {
  const __m128i mask = _mm_set1_epi8(0x0f);
  const __m128i packed = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(s));
  const __m128i low = _mm_unpacklo_epi64(_mm_and_si128(packed, mask), _mm_and_si128(_mm_srli_epi16(packed, 4), mask));
  // Byte j holds byte 8 + j % 4, shifted right by 2(j/4) within its 32-bit lane j/4.
  const __m128i spread = _mm_srlv_epi32(_mm_set1_epi32(static_cast<int>(load_u32(s + 8))), _mm_setr_epi32(0, 2, 4, 6));
  const __m128i high = _mm_slli_epi16(_mm_and_si128(spread, _mm_set1_epi8(3)), 4);
  return _mm_sub_epi8(_mm_or_si128(low, high), _mm_set1_epi8(32));
}

// Q3_K: the two low bits less 4 where the weight's bit in hmask is clear (bit r of
// hmask[l] for weight l of run r of 32 in the block), so -4..3; signed 6-bit scales.
TILLER_AVX2 inline __m256i block_q3_k_avx2(const uint8_t* wb, const uint8_t* xb, float, float*) {
  const __m256i mask = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
  const int8_t* y = as_int8(xb + 4);
  const __m256i scales = _mm256_cvtepi8_epi16(q3_k_scales_avx2(wb + 96));
  const __m256i hmask = load256(wb);
  __m256i sumi = _mm256_setzero_si256();
  for (int half = 0; half < 2; ++half) {
    const __m256i raw = load256(wb + 32 + 32 * half);
    const __m256i lane_scales = half == 0 ? _mm256_permute2x128_si256(scales, scales, 0x00)
                                      : _mm256_permute2x128_si256(scales, scales, 0x11);
    for (int run = 0; run < 4; ++run) {
      const __m256i low = _mm256_and_si256(_mm256_srli_epi16(raw, 2 * run), mask);
      const __m256i set = _mm256_and_si256(_mm256_srli_epi16(hmask, 4 * half + run), one);
      const __m256i q = _mm256_sub_epi8(low, _mm256_slli_epi16(_mm256_xor_si256(set, one), 2));
      const __m256i y_run = load256(y + 128 * half + 32 * run);
      const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(y_run, q));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(pairs, scale_pair_avx2(lane_scales, 2 * run)));
    }
  }
  return sumi;
}

// IQ4_XS's eight scales as unpack_iq4_xs_scales (k_scales.h) gives them, as int16
// in both 128-bit halves: low four bits from the nibbles of scales_l (low nibble
// first), top two bits 2j, 2j+1 of scales_h.
TILLER_AVX2 inline __m256i iq4_xs_scales_avx2(const uint8_t* wb) {
  const __m128i mask = _mm_set1_epi8(0x0f);
  const __m128i packed = _mm_cvtsi32_si128(static_cast<int>(load_u32(wb + 4)));
  const __m128i low = _mm_unpacklo_epi8(_mm_and_si128(packed, mask), _mm_and_si128(_mm_srli_epi16(packed, 4), mask));
  const __m256i spread = _mm256_srlv_epi32(_mm256_set1_epi32(load_u16(wb + 2)), _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14));
  const __m256i high32 = _mm256_and_si256(spread, _mm256_set1_epi32(3));
  const __m128i high = _mm_packs_epi32(_mm256_castsi256_si128(high32), _mm256_extracti128_si256(high32, 1));
  const __m128i scales = _mm_sub_epi16(_mm_or_si128(_mm_cvtepu8_epi16(low), _mm_slli_epi16(high, 4)), _mm_set1_epi16(32));
  return _mm256_broadcastsi128_si256(scales);
}

// IQ4_XS: eight sub-blocks of 32 levels, each with a signed 6-bit scale.
TILLER_AVX2 inline __m256i block_iq4_xs_avx2(const uint8_t* wb, const uint8_t* xb, float, float*) {
  const int8_t* y = as_int8(xb + 4);
  const __m256i scales = iq4_xs_scales_avx2(wb);
  __m256i sumi = _mm256_setzero_si256();
  for (int j = 0; j < 8; ++j) {
    const __m256i q = iq4_levels_avx2(wb + 8 + 16 * j);
    const __m256i y_j = load256(y + 32 * j);
    const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(y_j, q));
    const __m256i scale = _mm256_shuffle_epi8(scales, _mm256_set1_epi16(static_cast<int16_t>(((2 * j + 1) << 8) | (2 * j))));
    sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(pairs, scale));
  }
  return sumi;
}

// Per 256-block: acc += (d_w x d_x) x lanes; the minimum terms are summed apart
// and taken off at the end.
template <uint64_t kWeightBytes, uint64_t kScaleOffset, KBlockSums block, int R>
TILLER_AVX2 inline void dot_k_rows_avx2(const uint8_t* w, uint64_t row_bytes, const uint8_t* x, int64_t n,
                                        float* out) {
  __m256 acc[R];
  float minimums[R];
  for (int r = 0; r < R; ++r) {
    acc[r] = _mm256_setzero_ps();
    minimums[r] = 0.0f;
  }
  for (int64_t b = 0; b < n / 256; ++b) {
    const uint8_t* xb = x + static_cast<uint64_t>(b) * kQ8_KActBytes;
    const float dx = load_f32(xb);
    for (int r = 0; r < R; ++r) {
      const uint8_t* wb = w + static_cast<uint64_t>(r) * row_bytes + static_cast<uint64_t>(b) * kWeightBytes;
      for (uint64_t line = 0; line < kWeightBytes; line += 64) {  // as in dot_32_rows_avx2
        _mm_prefetch(reinterpret_cast<const char*>(wb + R * row_bytes + line), _MM_HINT_T0);
      }
      const __m256i sumi = block(wb, xb, dx, &minimums[r]);
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(half_avx2(wb + kScaleOffset) * dx), _mm256_cvtepi32_ps(sumi), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = hsum_avx2(acc[r]) - minimums[r];
}

// The single-row QuantizedDot of a row kernel.
template <QuantizedRows rows>
TILLER_AVX2 float single_row(const uint8_t* w, const uint8_t* x, int64_t n) {
  float out;
  rows(w, 0, x, n, &out);
  return out;
}

template <uint64_t kWeightBytes, BlockSums block, bool kMinimum>
constexpr RowKernels kernels_32() {
  return {single_row<dot_32_rows_avx2<kWeightBytes, block, kMinimum, 1>>,
          dot_32_rows_avx2<kWeightBytes, block, kMinimum, kRows>};
}
template <uint64_t kWeightBytes, uint64_t kScaleOffset, KBlockSums block>
constexpr RowKernels kernels_k() {
  return {single_row<dot_k_rows_avx2<kWeightBytes, kScaleOffset, block, 1>>,
          dot_k_rows_avx2<kWeightBytes, kScaleOffset, block, kRows>};
}

}  // namespace

RowKernels avx2_row_kernels(TensorType weight_type) {
  switch (weight_type) {
    case TensorType::Q4_0: return kernels_32<kQ4_0Bytes, block_q4_0_avx2, false>();
    case TensorType::Q4_1: return kernels_32<kQ4_1Bytes, block_q4_1_avx2, true>();
    case TensorType::Q5_0: return kernels_32<kQ5_0Bytes, block_q5_0_avx2, false>();
    case TensorType::Q5_1: return kernels_32<kQ5_1Bytes, block_q5_1_avx2, true>();
    case TensorType::Q8_0: return kernels_32<kQ8_0Bytes, block_q8_0_avx2, false>();
    case TensorType::Q4_K: return kernels_k<kQ4_KBytes, 0, block_q4_k_avx2>();
    case TensorType::Q5_K: return kernels_k<kQ5_KBytes, 0, block_q5_k_avx2>();
    case TensorType::Q6_K: return kernels_k<kQ6_KBytes, 208, block_q6_k_avx2>();  // d after ql, qh, scales
    case TensorType::Q2_K: return kernels_k<kQ2_KBytes, 80, block_q2_k_avx2>();   // d after scales, qs
    case TensorType::Q3_K: return kernels_k<kQ3_KBytes, 108, block_q3_k_avx2>();  // d after hmask, qs, scales
    case TensorType::IQ4_NL: return kernels_32<kIQ4_NLBytes, block_iq4_nl_avx2, false>();
    case TensorType::IQ4_XS: return kernels_k<kIQ4_XSBytes, 0, block_iq4_xs_avx2>();
    default: return avx2_half_row_kernels(weight_type);  // F16, BF16; else {}
  }
}

}  // namespace tiller::ops

#else

namespace tiller::ops {
RowKernels avx2_row_kernels(TensorType) { return {}; }
}  // namespace tiller::ops

#endif
