// AVX-512 VNNI row kernels; see vnni_row_kernels.h. Block layouts as in
// src/quant/dequantize.cpp, activation layouts as in activation_quant.h.
#include "ops/vnni_row_kernels.h"

#include <cstring>

#include "ops/block_layout.h"
#include "ops/k_scales.h"
#include "quant/iq4_levels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include "ops/x86_simd.h"
#define TILLER_VNNI_ROWS 1
#else
#define TILLER_VNNI_ROWS 0
#endif



namespace tiller::ops {

#if TILLER_VNNI_ROWS
// GCC 12 warns that the intrinsics' own _mm512_undefined_*() "may be used
// uninitialized" when they are inlined here; a known false positive.
#if !defined(__clang__)  // clang has no such warning and rejects the name under -Werror
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
#define TILLER_VNNI TILLER_TARGET_AVX512_VNNI

namespace {


// Zero bytes standing in for the second block of a pair when a row has an odd
// number of blocks: scale 0, quants 0, so the pair's second half adds 0.
alignas(64) constexpr uint8_t kZeroBlock[64] = {};

TILLER_VNNI inline float half(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return _cvtsh_ss(bits);
}
TILLER_VNNI inline float load_f32(const uint8_t* p) {
  float value;
  std::memcpy(&value, p, 4);
  return value;
}
TILLER_VNNI inline uint64_t load_u32(const uint8_t* p) {
  uint32_t value;
  std::memcpy(&value, p, 4);
  return value;
}
// Two f16 values side by side (a K-quant block's d and dmin) as lanes 0 and 1: one
// conversion instead of two scalar ones, each a load into a vector lane first.
TILLER_VNNI inline __m128 half_pair(const uint8_t* p) {
  return _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(load_u32(p))));
}
TILLER_VNNI inline __m256i load256(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
TILLER_VNNI inline __m128i load128(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
TILLER_VNNI inline __m512i pair(__m256i low, __m256i high) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(low), high, 1);
}
// a in lanes 0..7, b in lanes 8..15.
TILLER_VNNI inline __m512 pair_scale(float a, float b) {
  return _mm512_castpd_ps(
      _mm512_insertf64x4(_mm512_castps_pd(_mm512_set1_ps(a)), _mm256_castps_pd(_mm256_set1_ps(b)), 1));
}
// Into the outer caches (T2), not L1: on a Xeon (Emerald Rapids, weights in huge
// pages) generation read 10% to 15% more bandwidth so (a Llama-3.2-1B-shaped
// Q4_K_M model 13.3 -> 15.6 GB/s at 1 thread, 26.5 -> 29.5 at 2; the 8B shape
// 24.4 -> 28.4 at 2; NTA: 10.6 GB/s at 1 thread). Likely because a prefetch into
// L1 holds one of its few fill buffers until the line comes; the L2 hit the
// kernel's load then takes is hidden by its other work. SmolLM2 (whose weights
// fit in L3) measured the same either way.
TILLER_VNNI inline void prefetch(const uint8_t* p) {
  _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetchAhead), _MM_HINT_T2);
}

// ---------------------------------------------------------------------------
// The 32-weight formats. Each gives two blocks' weights as 64 unsigned bytes in
// activation order (block a in bytes 0..31, b in 32..63) and the offset that
// makes them signed: weight = byte - kOffset. vpdpbusd multiplies unsigned by
// signed bytes, so the offset comes off as kOffset x (the activations' sums),
// which is the same for every weight row and is computed once per block pair.

// Bytes j and j + 16 of a block are the low and high nibbles of its byte j.
TILLER_VNNI inline __m512i nibble_pair(const uint8_t* qs_a, const uint8_t* qs_b) {
  const __m256i packed = _mm256_set_m128i(load128(qs_b), load128(qs_a));
  const __m512i spread =  // 128-bit lanes: a, a, b, b
      _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 0, 1, 2, 3, 2, 3), _mm512_castsi256_si512(packed));
  const __m512i shifted = _mm512_srlv_epi64(spread, _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4));
  return _mm512_and_si512(shifted, _mm512_set1_epi8(0x0f));
}
// 16 where bit j of the blocks' 32-bit qh is set (the fifth bit of weight j).
TILLER_VNNI inline __m512i fifth_bits(const uint8_t* qh_a, const uint8_t* qh_b) {
  const __mmask64 bits = load_u32(qh_a) | load_u32(qh_b) << 32;
  return _mm512_maskz_mov_epi8(bits, _mm512_set1_epi8(0x10));
}

struct Q4_0 {
  static constexpr uint64_t kBytes = kQ4_0Bytes;
  static constexpr int kOffset = 8;
  static constexpr bool kMinimum = false;
  TILLER_VNNI static __m512i weights(const uint8_t* a, const uint8_t* b) { return nibble_pair(a + 2, b + 2); }
};
struct Q4_1 {
  static constexpr uint64_t kBytes = kQ4_1Bytes;
  static constexpr int kOffset = 0;
  static constexpr bool kMinimum = true;
  TILLER_VNNI static __m512i weights(const uint8_t* a, const uint8_t* b) { return nibble_pair(a + 4, b + 4); }
};
struct Q5_0 {
  static constexpr uint64_t kBytes = kQ5_0Bytes;
  static constexpr int kOffset = 16;
  static constexpr bool kMinimum = false;
  TILLER_VNNI static __m512i weights(const uint8_t* a, const uint8_t* b) {
    return _mm512_or_si512(nibble_pair(a + 6, b + 6), fifth_bits(a + 2, b + 2));
  }
};
struct Q5_1 {
  static constexpr uint64_t kBytes = kQ5_1Bytes;
  static constexpr int kOffset = 0;
  static constexpr bool kMinimum = true;
  TILLER_VNNI static __m512i weights(const uint8_t* a, const uint8_t* b) {
    return _mm512_or_si512(nibble_pair(a + 8, b + 8), fifth_bits(a + 4, b + 4));
  }
};
struct Q8_0 {
  static constexpr uint64_t kBytes = kQ8_0Bytes;
  static constexpr int kOffset = 128;
  static constexpr bool kMinimum = false;
  TILLER_VNNI static __m512i weights(const uint8_t* a, const uint8_t* b) {  // q + 128, as unsigned
    return _mm512_xor_si512(pair(load256(a + 2), load256(b + 2)), _mm512_set1_epi8(static_cast<char>(0x80)));
  }
};

// IQ4_NL: the nibbles index the 16 levels (-127..113), looked up with vpshufb in a
// table that holds them plus 128, as unsigned bytes.
struct IQ4_NL {
  static constexpr uint64_t kBytes = kIQ4_NLBytes;
  static constexpr int kOffset = 128;
  static constexpr bool kMinimum = false;
  TILLER_VNNI static __m512i weights(const uint8_t* a, const uint8_t* b) {
    const __m128i levels = _mm_loadu_si128(reinterpret_cast<const __m128i*>(quant::kIq4nlLevels.data()));
    const __m512i table = _mm512_broadcast_i32x4(_mm_xor_si128(levels, _mm_set1_epi8(static_cast<char>(0x80))));
    return _mm512_shuffle_epi8(table, nibble_pair(a + 2, b + 2));
  }
};

// Per block pair and row: acc += (d_w x d_x) x lane sums (16 lanes, 8 per block);
// with a minimum (Q4_1, Q5_1; Q8_1 activations) m_w x s_x is summed apart and
// added at the end, as in the AVX2 kernels.
template <class F, int R>
TILLER_VNNI void rows_32(const uint8_t* w, uint64_t row_bytes, const uint8_t* x, int64_t n, float* out) {
  constexpr uint64_t kActBytes = F::kMinimum ? kQ8_1ActBytes : kQ8_0ActBytes;
  constexpr uint64_t kActQuants = F::kMinimum ? 4 : 2;
  __m512 acc[R];
  float minimums[R];
  for (int r = 0; r < R; ++r) {
    acc[r] = _mm512_setzero_ps();
    minimums[r] = 0.0f;
  }
  const int64_t blocks = n / 32;
  for (int64_t b = 0; b < blocks; b += 2) {
    const bool whole = b + 1 < blocks;
    const uint8_t* xa = x + static_cast<uint64_t>(b) * kActBytes;
    const uint8_t* xb = whole ? xa + kActBytes : kZeroBlock;
    const __m512i xq = pair(load256(xa + kActQuants), load256(xb + kActQuants));
    const float dxa = half(xa), dxb = half(xb);
    __m512i offset_sums = _mm512_setzero_si512();
    if constexpr (F::kOffset != 0) {
      offset_sums = _mm512_dpbusd_epi32(offset_sums, _mm512_set1_epi8(static_cast<char>(F::kOffset)), xq);
    }
    for (int r = 0; r < R; ++r) {
      const uint8_t* wa = w + static_cast<uint64_t>(r) * row_bytes + static_cast<uint64_t>(b) * F::kBytes;
      const uint8_t* wb = whole ? wa + F::kBytes : kZeroBlock;
      prefetch(wa);
      __m512i sumi = _mm512_dpbusd_epi32(_mm512_setzero_si512(), F::weights(wa, wb), xq);
      if constexpr (F::kOffset != 0) sumi = _mm512_sub_epi32(sumi, offset_sums);
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), pair_scale(half(wa) * dxa, half(wb) * dxb), acc[r]);
      if constexpr (F::kMinimum) minimums[r] += half(wa + 2) * half(xa + 2) + half(wb + 2) * half(xb + 2);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(acc[r]) + minimums[r];
}

// rows_32<F, kRowKernelRows> for T activation rows at once: each weight block pair
// is unpacked once and meets the T rows. Per (weight row, activation row) every
// operation is rows_32's, in its order, so each output is the bits rows_32 gives.
template <class F, int T>
TILLER_VNNI void rows_32_by(const uint8_t* w, uint64_t row_bytes, const uint8_t* x, uint64_t x_row_bytes, int64_t n,
                            float* out, int64_t out_stride) {
  constexpr int R = kRowKernelRows;
  constexpr uint64_t kActBytes = F::kMinimum ? kQ8_1ActBytes : kQ8_0ActBytes;
  constexpr uint64_t kActQuants = F::kMinimum ? 4 : 2;
  __m512 acc[R][T];
  float minimums[R][T];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) {
      acc[r][t] = _mm512_setzero_ps();
      minimums[r][t] = 0.0f;
    }
  }
  const int64_t blocks = n / 32;
  for (int64_t b = 0; b < blocks; b += 2) {
    const bool whole = b + 1 < blocks;
    __m512i xq[T], offset_sums[T];
    __m512 dx[T];  // d_x of block a in lanes 0..7, of b in 8..15
    float sxa[T], sxb[T];
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) {
      const uint8_t* xa = x + t * x_row_bytes + static_cast<uint64_t>(b) * kActBytes;
      const uint8_t* xb = whole ? xa + kActBytes : kZeroBlock;
      xq[t] = pair(load256(xa + kActQuants), load256(xb + kActQuants));
      dx[t] = pair_scale(half(xa), half(xb));
      offset_sums[t] = _mm512_setzero_si512();
      if constexpr (F::kOffset != 0) {
        offset_sums[t] = _mm512_dpbusd_epi32(offset_sums[t], _mm512_set1_epi8(static_cast<char>(F::kOffset)), xq[t]);
      }
      if constexpr (F::kMinimum) {
        sxa[t] = half(xa + 2);
        sxb[t] = half(xb + 2);
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const uint8_t* wa = w + static_cast<uint64_t>(r) * row_bytes + static_cast<uint64_t>(b) * F::kBytes;
      const uint8_t* wb = whole ? wa + F::kBytes : kZeroBlock;
      prefetch(wa);
      const __m512i weights = F::weights(wa, wb);
      // Lane by lane the same single products d_w x d_x as rows_32's scalar ones.
      const __m512 dw = pair_scale(half(wa), half(wb));
      float mwa = 0.0f, mwb = 0.0f;
      if constexpr (F::kMinimum) {
        mwa = half(wa + 2);
        mwb = half(wb + 2);
      }
#pragma GCC unroll 4
      for (int t = 0; t < T; ++t) {
        __m512i sumi = _mm512_dpbusd_epi32(_mm512_setzero_si512(), weights, xq[t]);
        if constexpr (F::kOffset != 0) sumi = _mm512_sub_epi32(sumi, offset_sums[t]);
        acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_mul_ps(dw, dx[t]), acc[r][t]);
        if constexpr (F::kMinimum) minimums[r][t] += mwa * sxa[t] + mwb * sxb[t];
      }
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) out[t * out_stride + r] = _mm512_reduce_add_ps(acc[r][t]) + minimums[r][t];
  }
}

template <class F>
TILLER_VNNI void rows_32_by_any(const uint8_t* w, uint64_t row_bytes, const uint8_t* x, uint64_t x_row_bytes, int n_x,
                                int64_t n, float* out, int64_t out_stride) {
  switch (n_x) {
    case 1: return rows_32_by<F, 1>(w, row_bytes, x, x_row_bytes, n, out, out_stride);
    case 2: return rows_32_by<F, 2>(w, row_bytes, x, x_row_bytes, n, out, out_stride);
    case 3: return rows_32_by<F, 3>(w, row_bytes, x, x_row_bytes, n, out, out_stride);
    default: return rows_32_by<F, 4>(w, row_bytes, x, x_row_bytes, n, out, out_stride);
  }
}

// ---------------------------------------------------------------------------
// The K-quants, 256 weights per block against one Q8_K block. Per 64 weights,
// vpmaddubsw sums pairs of products into int16 and vpdpwssd multiplies those by
// the sub-block scales and sums them into int32 lanes.

TILLER_VNNI inline __m512i load512(const uint8_t* p) { return _mm512_loadu_si512(p); }

// vpermw indices putting scale a in the 16 int16 lanes of the low 256 bits and b
// in the high ones.
TILLER_VNNI inline __m512i scale_pair_index(int a, int b) {
  return _mm512_inserti64x4(_mm512_set1_epi16(static_cast<int16_t>(a)), _mm256_set1_epi16(static_cast<int16_t>(b)), 1);
}

// ---------------------------------------------------------------------------
// Q4_K: f16 d, f16 dmin, 12 bytes of scales and mins, 128 bytes of nibbles. Per
// block: d x sum_j(scale_j x sum_j) - dmin x sum_j(min_j x (activation sum_j)).
// Two layouts, each a Block type with unpack() and sums(): the GGUF file's, and
// the one Q4_K read into memory is interleaved to at load (interleaved_k_quants.h).
// Both share the float steps below, so a row's bits do not depend on whether it is
// computed alone, among four, or by several activation rows.

// The GGUF layout: each 32 bytes of nibbles hold sub-block 2c in their low nibbles
// and 2c+1 in their high ones; every 64 weights need their own two scales.
struct Q4_KGgufBlock {
  __m512i q[4];   // 64 quants (0..15) per vector in activation order: sub-blocks 2c, 2c+1
  __m512i sc[4];  // vector c's two 6-bit scales as int16 lanes (2c low 256 bits, 2c+1 high)
  __m128i mins;   // the eight mins as int16
  __m128 d_dmin;  // d, dmin, 0, 0

  TILLER_VNNI void unpack(const uint8_t* wb) {
    uint64_t packed_scales, packed_mins;
    unpack_k_scales_words(wb + 4, packed_scales, packed_mins);
    const __m512i scales =
        _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>(packed_scales))));
    mins = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>(packed_mins)));
    const __m512i nibble_shift = _mm512_setr_epi64(0, 0, 0, 0, 4, 4, 4, 4);
    for (int c = 0; c < 4; ++c) {
      const __m512i raw = _mm512_broadcast_i64x4(load256(wb + 16 + 32 * c));
      q[c] = _mm512_and_si512(_mm512_srlv_epi64(raw, nibble_shift), _mm512_set1_epi8(0x0f));
      sc[c] = _mm512_permutexvar_epi16(scale_pair_index(2 * c, 2 * c + 1), scales);
    }
    d_dmin = half_pair(wb);
  }
  // The scaled integer sums per lane against a Q8_K block's 256 quants. Two chains
  // of two vpdpwssd each instead of one of four: the block's latency bounds a
  // single row's throughput (integer sums: the same bits either way).
  TILLER_VNNI __m512i sums(const uint8_t* xq) const {
    __m512i even = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_maddubs_epi16(q[0], load512(xq)), sc[0]);
    __m512i odd = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_maddubs_epi16(q[1], load512(xq + 64)), sc[1]);
    even = _mm512_dpwssd_epi32(even, _mm512_maddubs_epi16(q[2], load512(xq + 128)), sc[2]);
    odd = _mm512_dpwssd_epi32(odd, _mm512_maddubs_epi16(q[3], load512(xq + 192)), sc[3]);
    return _mm512_add_epi32(even, odd);
  }
  static constexpr bool kInterleavedActivations = false;
};

// The interleaved layout: lane i of every 64-weight vector holds 4 of the 16
// weights of group i (half of sub-block i / 2), so the products of a whole block
// sum in their lanes with one vpdpbusd per 64 weights (weights 0..15, activations
// -128..127: at most 16 x 15 x 128 per lane) and one multiply by the lanes' scales
// finishes the block, where the GGUF layout needs a vpmaddubsw, a vpdpwssd and a
// vpermw of the scales per 64 weights. The activations come interleaved alike.
struct Q4_KInterleavedBlock {
  __m512i q[4];    // vector v's 64 quants (0..15)
  __m512i scales;  // lane i: scale of sub-block i / 2 in its low 16 bits, the high 16 zero
  __m128i mins;    // the eight 6-bit mins as int16
  __m128 d_dmin;   // d, dmin, 0, 0

  TILLER_VNNI void unpack(const uint8_t* wb) {
    const __m512i low = _mm512_set1_epi8(0x0f);
    __m512i first = load512(wb + 16), second = load512(wb + 80);
#if !defined(TILLER_EMULATE_AVX512)  // SIMDe's vectors are structs, not registers
    // One load each: folded into both of its uses, each line-crossing load would be
    // made twice (the kernel ran 5% slower from L2).
    asm("" : "+v"(first), "+v"(second));
#endif
    q[0] = _mm512_and_si512(first, low);
    q[1] = _mm512_and_si512(_mm512_srli_epi16(first, 4), low);
    q[2] = _mm512_and_si512(second, low);
    q[3] = _mm512_and_si512(_mm512_srli_epi16(second, 4), low);
    uint64_t scale_bytes;
    std::memcpy(&scale_bytes, wb + 4, 8);
    const uint64_t min_nibbles = load_u32(wb + 12);
    // The 8 scale bytes in every 64 bits (a broadcast load, no shuffle port), then
    // one in-lane byte shuffle gives lane i byte i / 2, zero-extended: the vector
    // ports bound this kernel, and this is two of their operations where widening
    // a register of interleaved bytes took four.
    const __m512i scale_bytes_everywhere = _mm512_set1_epi64(static_cast<int64_t>(scale_bytes));
    const __m512i byte_of_lane = _mm512_broadcast_i32x4(_mm_setr_epi8(0, -1, -1, -1, 0, -1, -1, -1, 1, -1, -1, -1,
                                                                       1, -1, -1, -1));
    const __m512i lane_pair_base = _mm512_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2, 4, 4, 4, 4, 6, 6, 6, 6);
    scales = _mm512_and_si512(_mm512_shuffle_epi8(scale_bytes_everywhere, _mm512_add_epi32(byte_of_lane, lane_pair_base)),
                              _mm512_set1_epi32(63));
    // Each min's top two bits sit in bits 6..7 of its scale's byte.
    const uint64_t packed_mins = ((scale_bytes >> 2) & 0x3030303030303030ull) | (min_nibbles & 0x0f0f0f0fu) |
                                 ((min_nibbles >> 4) & 0x0f0f0f0fu) << 32;
    mins = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>(packed_mins)));
    d_dmin = half_pair(wb);
  }
  TILLER_VNNI __m512i sums(const uint8_t* xq) const {
    __m512i even = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[0], load512(xq));
    __m512i odd = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[1], load512(xq + 64));
    even = _mm512_dpbusd_epi32(even, q[2], load512(xq + 128));
    odd = _mm512_dpbusd_epi32(odd, q[3], load512(xq + 192));
    // A lane's sum fits in int16 (above) and its scale's high half is zero, so
    // vpmaddwd's low product is the whole one: sum x scale, one operation where
    // vpmulld takes two.
    return _mm512_madd_epi16(_mm512_add_epi32(even, odd), scales);
  }
  static constexpr bool kInterleavedActivations = true;
};

// One Q4_K block's float steps for one (weight row, activation row): the scaled
// sums times d x d_x into 16 lanes, the mins' term into 4.
template <class Block>
TILLER_VNNI inline void add_q4_k_block(const Block& block, const uint8_t* xb, __m128i sub_sums, __m512& acc,
                                       __m128& minimums) {
  const __m128 scaled = _mm_mul_ps(block.d_dmin, _mm_set1_ps(load_f32(xb)));  // d x d_x, dmin x d_x
  acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(block.sums(xb + 4)), _mm512_broadcastss_ps(scaled), acc);
  minimums = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_madd_epi16(block.mins, sub_sums)),
                          _mm_shuffle_ps(scaled, scaled, 0x55), minimums);
}
// The activations' sums over each sub-block of 32, from the stored sums of 16.
TILLER_VNNI inline __m128i q8_k_sums_of_32(const uint8_t* xb) {
  return _mm_hadd_epi16(load128(xb + kQ8_KBsums), load128(xb + kQ8_KBsums + 16));
}
TILLER_VNNI inline float finish_q4_k(__m512 acc, __m128 minimums) {
  __m128 m = _mm_add_ps(minimums, _mm_movehl_ps(minimums, minimums));
  m = _mm_add_ss(m, _mm_movehdup_ps(m));
  return _mm512_reduce_add_ps(acc) - _mm_cvtss_f32(m);
}

template <class Block>
TILLER_VNNI void row_q4_k(const uint8_t* w, uint64_t, const uint8_t* x, int64_t n, float* out) {
  __m512 acc = _mm512_setzero_ps();
  __m128 minimums = _mm_setzero_ps();
  for (int64_t b = 0; b < n / 256; ++b) {
    const uint8_t* xb = x + static_cast<uint64_t>(b) * kQ8_KActBytes;
    const uint8_t* wb = w + static_cast<uint64_t>(b) * kQ4_KBytes;
    for (uint64_t line = 0; line < kQ4_KBytes; line += 64) prefetch(wb + line);
    Block block;
    block.unpack(wb);
    add_q4_k_block(block, xb, q8_k_sums_of_32(xb), acc, minimums);
  }
  *out = finish_q4_k(acc, minimums);
}

// kRowKernelRows weight rows by T activation rows: each weight block unpacked once
// and met by the T rows, each (weight row, activation row) through row_q4_k's steps,
// so the bits row_q4_k gives (a sequence's logits do not depend on its neighbours).
template <class Block, int T>
TILLER_VNNI void rows_q4_k_by(const uint8_t* w, uint64_t row_bytes, const uint8_t* x, uint64_t x_row_bytes, int64_t n,
                              float* out, int64_t out_stride) {
  constexpr int R = kRowKernelRows;
  __m512 acc[R][T];
  __m128 minimums[R][T];
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) {
      acc[r][t] = _mm512_setzero_ps();
      minimums[r][t] = _mm_setzero_ps();
    }
  }
  for (int64_t b = 0; b < n / 256; ++b) {
    const uint8_t* xb[T];
    __m128i sub_sums[T];
    for (int t = 0; t < T; ++t) {
      xb[t] = x + t * x_row_bytes + static_cast<uint64_t>(b) * kQ8_KActBytes;
      sub_sums[t] = q8_k_sums_of_32(xb[t]);
    }
    for (int r = 0; r < R; ++r) {
      const uint8_t* wb = w + static_cast<uint64_t>(r) * row_bytes + static_cast<uint64_t>(b) * kQ4_KBytes;
      for (uint64_t line = 0; line < kQ4_KBytes; line += 64) prefetch(wb + line);
      Block block;
      block.unpack(wb);
      for (int t = 0; t < T; ++t) add_q4_k_block(block, xb[t], sub_sums[t], acc[r][t], minimums[r][t]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) out[t * out_stride + r] = finish_q4_k(acc[r][t], minimums[r][t]);
  }
}

// ---------------------------------------------------------------------------
// Q6_K: 128 bytes of low nibbles, 64 of 2-bit high parts, 16 int8 scales (one per
// sub-block of 16), f16 d. The quants are taken unsigned (0..63); 32 x the
// activations' sums comes off before the scales. Two layouts, as for Q4_K, each a
// Block with unpack() and sums() (the scaled integer sums per lane against a Q8_K
// block, d_x and bsums included), sharing the float steps.

// The GGUF layout: each 64 weights span four sub-blocks, so each vector needs its
// four scales as int16 lanes (a vpermw) and a vpmaddubsw/vpdpwssd pair; the offset
// is taken off each int16 pair product, as in the AVX2 kernel.
struct Q6_KGgufBlock {
  __m512i q[4];   // 64 quants (0..63) per vector in activation order
  __m512i sc[4];  // scale 4k + i in 128-bit lane i of vector k, as int16
  float d;

  TILLER_VNNI void unpack(const uint8_t* wb) {
    const __m512i low_mask = _mm512_set1_epi8(0x0f), high_mask = _mm512_set1_epi8(0x30);
    // qh's 2-bit parts for the quants of ql's first and second 32 bytes (low nibbles),
    // shifted into bits 4..5; the high nibbles take them from 2 bits further up.
    const __m512i low_shift = _mm512_setr_epi64(4, 4, 4, 4, 2, 2, 2, 2);
    const __m512i high_shift = _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2);
    for (int half_block = 0; half_block < 2; ++half_block) {
      const __m512i ql = load512(wb + 64 * half_block);
      const __m512i qh = _mm512_broadcast_i64x4(load256(wb + 128 + 32 * half_block));
      q[2 * half_block] = _mm512_or_si512(_mm512_and_si512(ql, low_mask),
                                          _mm512_and_si512(_mm512_sllv_epi64(qh, low_shift), high_mask));
      q[2 * half_block + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low_mask),
                                              _mm512_and_si512(_mm512_srlv_epi64(qh, high_shift), high_mask));
    }
    const __m512i scales = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(load128(wb + 192)));
    for (int k = 0; k < 4; ++k) {
      const __m512i index = _mm512_inserti64x4(
          _mm512_castsi256_si512(_mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(4 * k + 1)),
                                                  _mm_set1_epi16(static_cast<int16_t>(4 * k)))),
          _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(4 * k + 3)),
                           _mm_set1_epi16(static_cast<int16_t>(4 * k + 2))),
          1);
      sc[k] = _mm512_permutexvar_epi16(index, scales);
    }
    d = half(wb + 208);
  }
  TILLER_VNNI __m512i sums(const uint8_t* xb) const {
    __m512i chains[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};  // as in Q4_KGgufBlock::sums
    for (int k = 0; k < 4; ++k) {
      const __m512i y = load512(xb + 4 + 64 * k);
      const __m512i products = _mm512_sub_epi16(_mm512_maddubs_epi16(q[k], y), _mm512_maddubs_epi16(_mm512_set1_epi8(32), y));
      chains[k % 2] = _mm512_dpwssd_epi32(chains[k % 2], products, sc[k]);
    }
    return _mm512_add_epi32(chains[0], chains[1]);
  }
  static constexpr bool kInterleavedActivations = false;
};

// The interleaved layout: lane i of every vector belongs to sub-block i, so a
// block is four vpdpbusd (weights 0..63: at most 16 x 63 x 128 per lane), 32 x the
// activations' stored sum of sub-block i (bsums, one per 16) off lane i, and one
// multiply by the 16 scales as they are stored.
struct Q6_KInterleavedBlock {
  __m512i q[4];    // vector v's 64 quants (0..63)
  __m512i scales;  // lane i: scale i
  float d;

  TILLER_VNNI void unpack(const uint8_t* wb) {
    const __m512i low = _mm512_set1_epi8(0x0f), high = _mm512_set1_epi8(0x30);
    __m512i first = load512(wb), second = load512(wb + 64), top = load512(wb + 128);
#if !defined(TILLER_EMULATE_AVX512)
    asm("" : "+v"(first), "+v"(second), "+v"(top));  // one load each, as in Q4_KInterleavedBlock
#endif
    // Vector v's top two bits are bits 2v..2v+1 of `top`, moved to bits 4..5 (the
    // 16-bit shifts' spill from the neighbouring byte falls outside the mask).
    q[0] = _mm512_or_si512(_mm512_and_si512(first, low), _mm512_and_si512(_mm512_slli_epi16(top, 4), high));
    q[1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(first, 4), low),
                           _mm512_and_si512(_mm512_slli_epi16(top, 2), high));
    q[2] = _mm512_or_si512(_mm512_and_si512(second, low), _mm512_and_si512(top, high));
    q[3] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(second, 4), low),
                           _mm512_and_si512(_mm512_srli_epi16(top, 2), high));
    scales = _mm512_cvtepi8_epi32(load128(wb + 192));
    d = half(wb + 208);
  }
  TILLER_VNNI __m512i sums(const uint8_t* xb) const {
    __m512i even = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[0], load512(xb + 4));
    __m512i odd = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[1], load512(xb + 68));
    even = _mm512_dpbusd_epi32(even, q[2], load512(xb + 132));
    odd = _mm512_dpbusd_epi32(odd, q[3], load512(xb + 196));
    const __m512i offsets = _mm512_slli_epi32(_mm512_cvtepi16_epi32(load256(xb + kQ8_KBsums)), 5);
    return _mm512_mullo_epi32(_mm512_sub_epi32(_mm512_add_epi32(even, odd), offsets), scales);
  }
  static constexpr bool kInterleavedActivations = true;
};

template <class Block>
TILLER_VNNI inline void add_q6_k_block(const Block& block, const uint8_t* xb, __m512& acc) {
  acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(block.sums(xb)), _mm512_set1_ps(block.d * load_f32(xb)), acc);
}

template <class Block>
TILLER_VNNI void row_q6_k(const uint8_t* w, uint64_t, const uint8_t* x, int64_t n, float* out) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t b = 0; b < n / 256; ++b) {
    const uint8_t* wb = w + static_cast<uint64_t>(b) * kQ6_KBytes;
    for (uint64_t line = 0; line < kQ6_KBytes; line += 64) prefetch(wb + line);
    Block block;
    block.unpack(wb);
    add_q6_k_block(block, x + static_cast<uint64_t>(b) * kQ8_KActBytes, acc);
  }
  *out = _mm512_reduce_add_ps(acc);
}

// row_q6_k for kRowKernelRows weight rows by T activation rows, as rows_q4_k_by is
// to row_q4_k: the same bits per (weight row, activation row).
template <class Block, int T>
TILLER_VNNI void rows_q6_k_by(const uint8_t* w, uint64_t row_bytes, const uint8_t* x, uint64_t x_row_bytes, int64_t n,
                              float* out, int64_t out_stride) {
  constexpr int R = kRowKernelRows;
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  }
  for (int64_t b = 0; b < n / 256; ++b) {
    for (int r = 0; r < R; ++r) {
      const uint8_t* wb = w + static_cast<uint64_t>(r) * row_bytes + static_cast<uint64_t>(b) * kQ6_KBytes;
      for (uint64_t line = 0; line < kQ6_KBytes; line += 64) prefetch(wb + line);
      Block block;
      block.unpack(wb);
      for (int t = 0; t < T; ++t) {
        add_q6_k_block(block, x + t * x_row_bytes + static_cast<uint64_t>(b) * kQ8_KActBytes, acc[r][t]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) out[t * out_stride + r] = _mm512_reduce_add_ps(acc[r][t]);
  }
}

// The _by kernels for any number of activation rows up to kRowKernelRows.
template <template <int> class Kernel>
TILLER_VNNI void rows_k_by_any(const uint8_t* w, uint64_t row_bytes, const uint8_t* x, uint64_t x_row_bytes, int n_x,
                               int64_t n, float* out, int64_t out_stride) {
  switch (n_x) {
    case 1: return Kernel<1>::run(w, row_bytes, x, x_row_bytes, n, out, out_stride);
    case 2: return Kernel<2>::run(w, row_bytes, x, x_row_bytes, n, out, out_stride);
    case 3: return Kernel<3>::run(w, row_bytes, x, x_row_bytes, n, out, out_stride);
    default: return Kernel<4>::run(w, row_bytes, x, x_row_bytes, n, out, out_stride);
  }
}
template <class Block>
struct Q4_KBy {
  template <int T>
  struct Of {
    TILLER_VNNI static void run(const uint8_t* w, uint64_t rb, const uint8_t* x, uint64_t xrb, int64_t n, float* out,
                                int64_t stride) {
      rows_q4_k_by<Block, T>(w, rb, x, xrb, n, out, stride);
    }
  };
};
template <class Block>
struct Q6_KBy {
  template <int T>
  struct Of {
    TILLER_VNNI static void run(const uint8_t* w, uint64_t rb, const uint8_t* x, uint64_t xrb, int64_t n, float* out,
                                int64_t stride) {
      rows_q6_k_by<Block, T>(w, rb, x, xrb, n, out, stride);
    }
  };
};

// IQ4_XS: f16 d, 16-bit scales_h, 4 bytes scales_l, 128 bytes of indices; eight
// sub-blocks of 32 with signed 6-bit scales (unpack_iq4_xs_scales in k_scales.h).
// Each 64 weights (sub-blocks 2c and 2c+1) are looked up as IQ4_NL's, plus 128 as
// unsigned bytes, meet their activations in one vpdpbusd, lose 128 x the
// activations' sums of four (the same for every row), and are multiplied by their
// sub-block's scale in int32.
TILLER_VNNI inline __m256i iq4_xs_scales_vnni(const uint8_t* wb) {
  const __m128i mask = _mm_set1_epi8(0x0f);
  const __m128i packed = _mm_cvtsi32_si128(static_cast<int>(load_u32(wb + 4)));
  const __m128i low = _mm_unpacklo_epi8(_mm_and_si128(packed, mask), _mm_and_si128(_mm_srli_epi16(packed, 4), mask));
  uint16_t scales_h;
  std::memcpy(&scales_h, wb + 2, 2);
  const __m256i high = _mm256_and_si256(
      _mm256_srlv_epi32(_mm256_set1_epi32(scales_h), _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14)), _mm256_set1_epi32(3));
  return _mm256_sub_epi32(_mm256_or_si256(_mm256_cvtepu8_epi32(low), _mm256_slli_epi32(high, 4)), _mm256_set1_epi32(32));
}

template <int R>
TILLER_VNNI void rows_iq4_xs(const uint8_t* w, uint64_t row_bytes, const uint8_t* x, int64_t n, float* out) {
  constexpr uint64_t kBytes = kIQ4_XSBytes;
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  const __m128i levels = _mm_loadu_si128(reinterpret_cast<const __m128i*>(quant::kIq4nlLevels.data()));
  const __m512i table = _mm512_broadcast_i32x4(_mm_xor_si128(levels, _mm_set1_epi8(static_cast<char>(0x80))));
  __m512i scale_index[4];  // scale 2c in lanes 0..7, 2c + 1 in lanes 8..15
  for (int c = 0; c < 4; ++c) {
    scale_index[c] = _mm512_inserti64x4(_mm512_set1_epi32(2 * c), _mm256_set1_epi32(2 * c + 1), 1);
  }
  for (int64_t b = 0; b < n / 256; ++b) {
    const uint8_t* xb = x + static_cast<uint64_t>(b) * kQ8_KActBytes;
    const float dx = load_f32(xb);
    __m512i y[4], offsets[4];
    for (int c = 0; c < 4; ++c) {
      y[c] = load512(xb + 4 + 64 * c);
      offsets[c] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(static_cast<char>(0x80)), y[c]);
    }
    for (int r = 0; r < R; ++r) {
      const uint8_t* wb = w + static_cast<uint64_t>(r) * row_bytes + static_cast<uint64_t>(b) * kBytes;
      for (uint64_t line = 0; line < kBytes; line += 64) prefetch(wb + line);
      const __m512i scales = _mm512_castsi256_si512(iq4_xs_scales_vnni(wb));
      __m512i sumi = _mm512_setzero_si512();
      for (int c = 0; c < 4; ++c) {
        const __m512i q = _mm512_shuffle_epi8(table, nibble_pair(wb + 8 + 32 * c, wb + 8 + 32 * c + 16));
        const __m512i sums = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), q, y[c]), offsets[c]);
        sumi = _mm512_add_epi32(sumi, _mm512_mullo_epi32(sums, _mm512_permutexvar_epi32(scale_index[c], scales)));
      }
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_set1_ps(half(wb) * dx), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(acc[r]);
}

template <QuantizedRows rows>
TILLER_VNNI float one_row(const uint8_t* w, const uint8_t* x, int64_t n) {
  float out;
  rows(w, 0, x, n, &out);
  return out;
}

// kRowKernelRows weight rows one after the other, each read whole before the next:
// generation reads the weights as one linear stream, which the prefetchers follow.
// Four rows read side by side (each block of one, then the same block of the next)
// drew half the bandwidth on a Zen 5 (one activation row against a 1536 x 65536
// matrix, 1 thread: Q8_0 9.3 against 19.6 GB/s, Q4_K 10.9 against 15.7, Q6_K 8.9
// against 14.2), and a Llama-3.2-1B-shaped Q4_K_M model generated 14 tokens/s
// against 22. Every row's arithmetic is the single row's. The _by kernels keep four
// rows side by side: several activation rows make them compute-bound instead.
template <QuantizedRows rows>
TILLER_VNNI void rows_in_turn(const uint8_t* w, uint64_t row_bytes, const uint8_t* x, int64_t n, float* out) {
  for (int r = 0; r < kRowKernelRows; ++r) rows(w + static_cast<uint64_t>(r) * row_bytes, 0, x, n, out + r);
}

// A K-quant block layout's kernels: its single row, rows in turn, and by several
// activation rows; the activations in the block's order.
template <class Block, QuantizedRows row, template <int> class By>
RowKernels k_quant_kernels() {
  RowKernels kernels{one_row<row>, rows_in_turn<row>, rows_k_by_any<By>};
  kernels.interleaved_activations = Block::kInterleavedActivations;
  return kernels;
}
template <class Block>
RowKernels q4_k_kernels() {
  return k_quant_kernels<Block, row_q4_k<Block>, Q4_KBy<Block>::template Of>();
}
template <class Block>
RowKernels q6_k_kernels() {
  return k_quant_kernels<Block, row_q6_k<Block>, Q6_KBy<Block>::template Of>();
}

template <class F>
constexpr RowKernels kernels_32() {
  return {one_row<rows_32<F, 1>>, rows_in_turn<rows_32<F, 1>>, rows_32_by_any<F>};
}

}  // namespace
#endif  // TILLER_VNNI_ROWS

RowKernels vnni_row_kernels(TensorType weight_type) {
#if TILLER_VNNI_ROWS
  switch (weight_type) {
    case TensorType::Q4_0: return kernels_32<Q4_0>();
    case TensorType::Q4_1: return kernels_32<Q4_1>();
    case TensorType::Q5_0: return kernels_32<Q5_0>();
    case TensorType::Q5_1: return kernels_32<Q5_1>();
    case TensorType::Q8_0: return kernels_32<Q8_0>();
    case TensorType::IQ4_NL: return kernels_32<IQ4_NL>();
    case TensorType::IQ4_XS: return {one_row<rows_iq4_xs<1>>, rows_in_turn<rows_iq4_xs<1>>};
    case TensorType::Q4_K: return q4_k_kernels<Q4_KGgufBlock>();
    case TensorType::Q6_K: return q6_k_kernels<Q6_KGgufBlock>();
    default: return {};  // Q5_K, Q2_K, Q3_K, F16, BF16: the AVX2 kernels
  }
#else
  (void)weight_type;
  return {};
#endif
}

RowKernels vnni_interleaved_row_kernels(WeightLayout layout) {
#if TILLER_VNNI_ROWS
  switch (layout) {
    case WeightLayout::Q4_KInterleaved: return q4_k_kernels<Q4_KInterleavedBlock>();
    case WeightLayout::Q6_KInterleaved: return q6_k_kernels<Q6_KInterleavedBlock>();
    case WeightLayout::Gguf: break;
  }
  return {};
#else
  (void)layout;
  return {};
#endif
}

}  // namespace tiller::ops
