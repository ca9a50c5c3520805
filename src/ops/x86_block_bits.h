// AVX2 helpers that unpack the bits of 32-weight blocks, shared by the row
// kernels (row_kernels_avx2.cpp) and the tiled kernels' packing (tiled_matmul.cpp).
// Functions with a wider target attribute may inline them.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__)
#include "ops/x86_simd.h"

#include <cstdint>

namespace tiller::ops::x86 {

#define TILLER_AVX2_HELPER __attribute__((target("avx2,fma,f16c"))) inline

// 32 nibbles: the 16 low ones in bytes 0..15, the 16 high ones in bytes 16..31.
TILLER_AVX2_HELPER __m256i nibbles(const uint8_t* qs) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

// Byte j is 0xff where bit j of `bits` is set, else 0.
TILLER_AVX2_HELPER __m256i bit_bytes(uint32_t bits) {
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(bits)),
      _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  const __m256i select = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
  return _mm256_cmpeq_epi8(_mm256_and_si256(spread, select), select);
}

#undef TILLER_AVX2_HELPER

}  // namespace tiller::ops::x86
#endif
