// F16 and BF16 row kernels; see half_row_kernels.h.
#include "ops/half_row_kernels.h"

#include <bit>
#include <cstring>

#include "ops/block_layout.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include "ops/x86_simd.h"
#define TILLER_HALF_AVX2_KERNELS 1
#else
#define TILLER_HALF_AVX2_KERNELS 0
#endif

namespace tiller::ops {
namespace {

using blocks::load_f32;
using blocks::load_u16;

inline float bf16_bits_to_float(uint16_t bits) { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }

// blocks::half_bits_to_float's arithmetic, with the choice between the normal and
// the subnormal result made by a bit mask: GCC leaves a loop with the other's
// conditional unvectorized ("control flow in loop"), at a tenth of this speed.
inline float f16_bits_to_float(uint16_t h) {
  const uint32_t w = static_cast<uint32_t>(h) << 16;
  const uint32_t two_w = w + w;
  const uint32_t normal = std::bit_cast<uint32_t>(std::bit_cast<float>((two_w >> 4) + (0xe0u << 23)) * 0x1.0p-112f);
  const uint32_t subnormal = std::bit_cast<uint32_t>(std::bit_cast<float>((two_w >> 17) | (126u << 23)) - 0.5f);
  const uint32_t is_subnormal = 0u - static_cast<uint32_t>((h & 0x7c00) == 0);  // all ones or none
  return std::bit_cast<float>((w & 0x80000000u) | (subnormal & is_subnormal) | (normal & ~is_subnormal));
}

// Portable: one reduction the compiler vectorizes for baseline x86-64 (SSE2, no
// FMA, so each product rounds to f32 before the sum, which is exact here anyway).
template <bool kBf16>
float dot_half_portable(const uint8_t* w, const uint8_t* x, int64_t n) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t bits = load_u16(w + 2 * i);
    const float weight = kBf16 ? bf16_bits_to_float(bits) : f16_bits_to_float(bits);
    sum += weight * load_f32(x + 4 * i);
  }
  return sum;
}

#if TILLER_HALF_AVX2_KERNELS
#define TILLER_AVX2 __attribute__((target("avx2,fma,f16c")))

// Eight weights as f32: F16C for f16; bf16 is the top half of an f32.
template <bool kBf16>
TILLER_AVX2 inline __m256 weights8(const uint8_t* p) {
  const __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if constexpr (kBf16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16));
  return _mm256_cvtph_ps(bits);
}

TILLER_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// R weight rows against one activation row. Each row has two 8-lane accumulators:
// values 16k..16k+7 go to the first, 16k+8..16k+15 to the second, a last 8 to the
// first, then the lanes are added and a tail of fewer than 8 added one by one. The
// operations of a row are the same whatever R, so a row gives the same bits alone
// or among four. The weights of the next group of R rows are prefetched as in
// row_kernels_avx2.cpp (the mapped file's 4 KiB pages stop the hardware prefetchers).
template <bool kBf16, int R>
TILLER_AVX2 void rows_half_avx2(const uint8_t* w, uint64_t row_bytes, const uint8_t* x, int64_t n, float* out) {
  __m256 acc0[R], acc1[R];
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {  // 64 weight bytes: one cache line per row
    const __m256 x0 = _mm256_loadu_ps(reinterpret_cast<const float*>(x + 4 * i));
    const __m256 x1 = _mm256_loadu_ps(reinterpret_cast<const float*>(x + 4 * i + 32));
    const __m256 x2 = _mm256_loadu_ps(reinterpret_cast<const float*>(x + 4 * i + 64));
    const __m256 x3 = _mm256_loadu_ps(reinterpret_cast<const float*>(x + 4 * i + 96));
    for (int r = 0; r < R; ++r) {
      const uint8_t* wr = w + static_cast<uint64_t>(r) * row_bytes + 2 * static_cast<uint64_t>(i);
      _mm_prefetch(reinterpret_cast<const char*>(wr + R * row_bytes), _MM_HINT_T0);
      acc0[r] = _mm256_fmadd_ps(weights8<kBf16>(wr), x0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(weights8<kBf16>(wr + 16), x1, acc1[r]);
      acc0[r] = _mm256_fmadd_ps(weights8<kBf16>(wr + 32), x2, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(weights8<kBf16>(wr + 48), x3, acc1[r]);
    }
  }
  for (; i + 16 <= n; i += 16) {
    const __m256 x0 = _mm256_loadu_ps(reinterpret_cast<const float*>(x + 4 * i));
    const __m256 x1 = _mm256_loadu_ps(reinterpret_cast<const float*>(x + 4 * i + 32));
    for (int r = 0; r < R; ++r) {
      const uint8_t* wr = w + static_cast<uint64_t>(r) * row_bytes + 2 * static_cast<uint64_t>(i);
      acc0[r] = _mm256_fmadd_ps(weights8<kBf16>(wr), x0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(weights8<kBf16>(wr + 16), x1, acc1[r]);
    }
  }
  if (i + 8 <= n) {
    const __m256 x0 = _mm256_loadu_ps(reinterpret_cast<const float*>(x + 4 * i));
    for (int r = 0; r < R; ++r) {
      const uint8_t* wr = w + static_cast<uint64_t>(r) * row_bytes + 2 * static_cast<uint64_t>(i);
      acc0[r] = _mm256_fmadd_ps(weights8<kBf16>(wr), x0, acc0[r]);
    }
    i += 8;
  }
  for (int r = 0; r < R; ++r) {
    float sum = hsum(_mm256_add_ps(acc0[r], acc1[r]));
    const uint8_t* wr = w + static_cast<uint64_t>(r) * row_bytes;
    for (int64_t j = i; j < n; ++j) {
      const uint16_t bits = load_u16(wr + 2 * j);
      sum += (kBf16 ? bf16_bits_to_float(bits) : _cvtsh_ss(bits)) * load_f32(x + 4 * j);
    }
    out[r] = sum;
  }
}

template <QuantizedRows rows>
TILLER_AVX2 float one_row_avx2(const uint8_t* w, const uint8_t* x, int64_t n) {
  float out;
  rows(w, 0, x, n, &out);
  return out;
}

template <bool kBf16>
constexpr RowKernels half_kernels_avx2() {
  return {one_row_avx2<rows_half_avx2<kBf16, 1>>, rows_half_avx2<kBf16, kRowKernelRows>};
}
#endif  // TILLER_HALF_AVX2_KERNELS

}  // namespace

RowKernels portable_half_row_kernels(TensorType weight_type) {
  switch (weight_type) {
    case TensorType::F16: return {dot_half_portable<false>, nullptr};
    case TensorType::BF16: return {dot_half_portable<true>, nullptr};
    default: return {};
  }
}

RowKernels avx2_half_row_kernels(TensorType weight_type) {
#if TILLER_HALF_AVX2_KERNELS
  switch (weight_type) {
    case TensorType::F16: return half_kernels_avx2<false>();
    case TensorType::BF16: return half_kernels_avx2<true>();
    default: return {};
  }
#else
  (void)weight_type;
  return {};
#endif
}

}  // namespace tiller::ops
