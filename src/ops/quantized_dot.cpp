// Integer dot products of quantized weights with quantized activations.
//
// Every kernel computes, per weight block, the integer sum of weight quants times
// activation quants, then scales it by the two blocks' scales; formats with a
// minimum add (weight minimum) x (activation block sum). The block layouts are the
// ones the dequantizers in src/quant/dequantize.cpp read; see there for the bits.
//
// Kernels come in levels: Portable (plain loops, cloned per instruction set so the
// compiler vectorizes them) and Avx2 (intrinsics, selected at run time from
// cpu_features(); the binary itself targets baseline x86-64).
#include "ops/quantized_dot.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "tiller/printable.h"
#include "ops/k_scales.h"
#include "ops/tiled_matmul.h"
#include "ops/vnni_row_kernels.h"
#include "ops/x86_block_bits.h"
#include "tiller/cpu_features.h"
#include "tiller/dequantize.h"
#include "common/fail.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include "ops/x86_simd.h"
#define TILLER_X86_KERNELS 1
#else
#define TILLER_X86_KERNELS 0
#endif

// One clone of each portable kernel per instruction set, chosen at load time.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define TILLER_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define TILLER_CLONES
#endif

namespace tiller::ops {
namespace {

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

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t value;
  std::memcpy(&value, p, 4);
  return value;
}

inline const int8_t* as_int8(const uint8_t* p) { return reinterpret_cast<const int8_t*>(p); }

constexpr int kRows = 4;

// Block geometry, in bytes.
constexpr uint64_t kQ4_0Bytes = 18, kQ4_1Bytes = 20, kQ5_0Bytes = 22, kQ5_1Bytes = 24, kQ8_0Bytes = 34;
constexpr uint64_t kQ4_KBytes = 144, kQ5_KBytes = 176, kQ6_KBytes = 210;
constexpr uint64_t kQ8_0ActBytes = 34, kQ8_1ActBytes = 36, kQ8_KActBytes = 292;
constexpr uint64_t kQ8_KBsums = 4 + 256;  // offset of the int16 sums in a Q8_K block

// Sum over the 8 sub-blocks of 32 of min_j x (sum of their activation quants).
inline int32_t k_min_sum(const uint8_t* min, const uint8_t* act_block) {
  int16_t bsums[16];
  std::memcpy(bsums, act_block + kQ8_KBsums, sizeof bsums);
  int32_t sum = 0;
  for (int j = 0; j < 8; ++j) sum += min[j] * (bsums[2 * j] + bsums[2 * j + 1]);
  return sum;
}

// ---------------------------------------------------------------------------
// Activation quantization. A block holding an infinity or a NaN gets quants 0 and
// a NaN scale, so that the products it enters are NaN, as the float path's are.

inline bool all_finite(const float* v, int n) {
  float zeros = 0.0f;  // x * 0 is 0 for finite x, NaN for infinities and NaNs
#pragma omp simd reduction(+ : zeros)
  for (int i = 0; i < n; ++i) zeros += v[i] * 0.0f;
  return zeros == 0.0f;
}

// Q8_0 and Q8_1 share the rounding; Q8_1 also stores f16(unrounded d x sum q).
TILLER_CLONES void quantize_q8_0_or_1(const float* x, int64_t n, uint8_t* out, bool with_sum) {
  const uint64_t block_bytes = with_sum ? kQ8_1ActBytes : kQ8_0ActBytes;
  const uint64_t quants = with_sum ? 4 : 2;
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* v = x + 32 * b;
    uint8_t* block = out + static_cast<uint64_t>(b) * block_bytes;
    float amax = 0.0f;
#pragma omp simd reduction(max : amax)
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(v[i]));
    const bool finite = all_finite(v, 32);
    const float d = finite ? amax / 127.0f : NAN;
    const float inverse = amax != 0.0f ? 127.0f / amax : 0.0f;
    int8_t q[32] = {};
    int32_t sum = 0;
    if (finite) {
      for (int i = 0; i < 32; ++i) {
        q[i] = static_cast<int8_t>(std::nearbyint(v[i] * inverse));
        sum += q[i];
      }
    }
    const uint16_t d_bits = fp32_to_fp16(d);
    std::memcpy(block, &d_bits, 2);
    if (with_sum) {
      const uint16_t s_bits = fp32_to_fp16(d * static_cast<float>(sum));
      std::memcpy(block + 2, &s_bits, 2);
    }
    std::memcpy(block + quants, q, 32);
  }
}

TILLER_CLONES void quantize_q8_k(const float* x, int64_t n, uint8_t* out) {
  for (int64_t b = 0; b < n / 256; ++b) {
    const float* v = x + 256 * b;
    uint8_t* block = out + static_cast<uint64_t>(b) * kQ8_KActBytes;
    float amax = 0.0f;
#pragma omp simd reduction(max : amax)
    for (int i = 0; i < 256; ++i) amax = std::max(amax, std::fabs(v[i]));
    int8_t q[256] = {};
    float d = 0.0f;
    if (!all_finite(v, 256)) {
      d = NAN;
    } else if (amax != 0.0f) {
      int first = 0;  // the first value of largest magnitude, sign included
      while (first < 255 && std::fabs(v[first]) != amax) ++first;
      const float inverse = -127.0f / v[first];
      d = 1.0f / inverse;
      for (int i = 0; i < 256; ++i) q[i] = static_cast<int8_t>(std::min(127.0f, std::nearbyint(inverse * v[i])));
    }
    int16_t bsums[16];
    for (int j = 0; j < 16; ++j) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) sum += q[16 * j + i];
      bsums[j] = static_cast<int16_t>(sum);
    }
    std::memcpy(block, &d, 4);
    std::memcpy(block + 4, q, 256);
    std::memcpy(block + kQ8_KBsums, bsums, sizeof bsums);
  }
}

// ---------------------------------------------------------------------------
// Portable kernels: plain int32-accumulating loops over a weight block (the
// K-quants unpack theirs into a local int8 array first) that the compiler
// vectorizes, one clone per instruction set.
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

TILLER_CLONES float dot_q4_0_portable(const uint8_t* w, const uint8_t* x, int64_t n) {
  return dot_32_portable<kQ4_0Bytes, block_q4_0, false>(w, x, n);
}
TILLER_CLONES float dot_q4_1_portable(const uint8_t* w, const uint8_t* x, int64_t n) {
  return dot_32_portable<kQ4_1Bytes, block_q4_1, true>(w, x, n);
}
TILLER_CLONES float dot_q5_0_portable(const uint8_t* w, const uint8_t* x, int64_t n) {
  return dot_32_portable<kQ5_0Bytes, block_q5_0, false>(w, x, n);
}
TILLER_CLONES float dot_q5_1_portable(const uint8_t* w, const uint8_t* x, int64_t n) {
  return dot_32_portable<kQ5_1Bytes, block_q5_1, true>(w, x, n);
}
TILLER_CLONES float dot_q8_0_portable(const uint8_t* w, const uint8_t* x, int64_t n) {
  return dot_32_portable<kQ8_0Bytes, block_q8_0, false>(w, x, n);
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

TILLER_CLONES float dot_q4_k_portable(const uint8_t* w, const uint8_t* x, int64_t n) {
  return dot_q4_q5_k_portable<false>(w, x, n);
}
TILLER_CLONES float dot_q5_k_portable(const uint8_t* w, const uint8_t* x, int64_t n) {
  return dot_q4_q5_k_portable<true>(w, x, n);
}

// Q6_K: 16 sub-blocks of 16 with signed 8-bit scales; weight i of a 128-half is a
// low or high nibble of ql and a 2-bit part of qh, as the dequantizer reads them.
TILLER_CLONES float dot_q6_k_portable(const uint8_t* w, const uint8_t* x, int64_t n) {
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

// ---------------------------------------------------------------------------
// AVX2 kernels. Their float arithmetic (per block: one fused multiply-add of the
// 8 int32 lane sums, converted to float, by d_w x d_x into an 8-float accumulator,
// block after block; at the end the lanes added as ((0+4)+(2+6))+((1+5)+(3+7));
// minimum terms summed apart in block order and added last) reproduces llama.cpp's
// CPU results bit for bit for Q4_1, Q5_0 and Q8_0 (tests/test_quantized_dot.cpp
// checks this against its tensors; Q4_0 and Q5_1 are built the same way, with no
// tensors to check them against). The K-quants agree to float rounding only.
// The Avx512Vnni level has its own row kernels, in vnni_row_kernels.cpp.

#if TILLER_X86_KERNELS
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

#endif  // TILLER_X86_KERNELS

// ---------------------------------------------------------------------------
// Dispatch

constexpr int kLevels = 4;

// By KernelLevel; nullptr: use the level below. `rows` takes kRows weight rows at
// once (nullptr: the single-row kernel row by row). Avx2Tiled has no row kernels
// of its own; Avx512Vnni's entries are empty here too: rows_at and dot_at take its
// row kernels from vnni_row_kernels.h. Both add the tiled matrix-matrix kernels of
// tiled_matmul.h for several activation rows.
struct KernelTable {
  TensorType type;
  std::array<QuantizedDot, kLevels> dots;
  std::array<QuantizedRows, kLevels> rows;
};

#if TILLER_X86_KERNELS
template <uint64_t kWeightBytes, BlockSums block, bool kMinimum>
constexpr KernelTable table_32(TensorType type, QuantizedDot portable) {
  return {type,
          {portable, single_row<dot_32_rows_avx2<kWeightBytes, block, kMinimum, 1>>, nullptr, nullptr},
          {nullptr, dot_32_rows_avx2<kWeightBytes, block, kMinimum, kRows>, nullptr, nullptr}};
}
template <uint64_t kWeightBytes, uint64_t kScaleOffset, KBlockSums block>
constexpr KernelTable table_k(TensorType type, QuantizedDot portable) {
  return {type,
          {portable, single_row<dot_k_rows_avx2<kWeightBytes, kScaleOffset, block, 1>>, nullptr, nullptr},
          {nullptr, dot_k_rows_avx2<kWeightBytes, kScaleOffset, block, kRows>, nullptr, nullptr}};
}
const std::array<KernelTable, 8> kKernels = {{
    table_32<kQ4_0Bytes, block_q4_0_avx2, false>(TensorType::Q4_0, dot_q4_0_portable),
    table_32<kQ4_1Bytes, block_q4_1_avx2, true>(TensorType::Q4_1, dot_q4_1_portable),
    table_32<kQ5_0Bytes, block_q5_0_avx2, false>(TensorType::Q5_0, dot_q5_0_portable),
    table_32<kQ5_1Bytes, block_q5_1_avx2, true>(TensorType::Q5_1, dot_q5_1_portable),
    table_32<kQ8_0Bytes, block_q8_0_avx2, false>(TensorType::Q8_0, dot_q8_0_portable),
    table_k<kQ4_KBytes, 0, block_q4_k_avx2>(TensorType::Q4_K, dot_q4_k_portable),
    table_k<kQ5_KBytes, 0, block_q5_k_avx2>(TensorType::Q5_K, dot_q5_k_portable),
    table_k<kQ6_KBytes, 208, block_q6_k_avx2>(TensorType::Q6_K, dot_q6_k_portable),
}};
#else
const std::array<KernelTable, 8> kKernels = {{
    {TensorType::Q4_0, {dot_q4_0_portable, nullptr, nullptr, nullptr}, {}},
    {TensorType::Q4_1, {dot_q4_1_portable, nullptr, nullptr, nullptr}, {}},
    {TensorType::Q5_0, {dot_q5_0_portable, nullptr, nullptr, nullptr}, {}},
    {TensorType::Q5_1, {dot_q5_1_portable, nullptr, nullptr, nullptr}, {}},
    {TensorType::Q8_0, {dot_q8_0_portable, nullptr, nullptr, nullptr}, {}},
    {TensorType::Q4_K, {dot_q4_k_portable, nullptr, nullptr, nullptr}, {}},
    {TensorType::Q5_K, {dot_q5_k_portable, nullptr, nullptr, nullptr}, {}},
    {TensorType::Q6_K, {dot_q6_k_portable, nullptr, nullptr, nullptr}, {}},
}};
#endif

const KernelTable* find_kernels(TensorType type) {
  for (const KernelTable& entry : kKernels) {
    if (entry.type == type) return &entry;
  }
  return nullptr;
}

template <class T>
T at_level(const std::array<T, kLevels>& kernels, KernelLevel level) {
  for (int l = static_cast<int>(level); l >= 0; --l) {
    if (kernels[static_cast<size_t>(l)] != nullptr) return kernels[static_cast<size_t>(l)];
  }
  return nullptr;
}

// The row kernels of a level: from Avx512Vnni, those of vnni_row_kernels.h where
// the type has them.
QuantizedRows rows_at(const KernelTable& kernels, KernelLevel level) {
  if (level >= KernelLevel::Avx512Vnni) {
    if (QuantizedRows four = vnni_row_kernels(kernels.type).four) return four;
  }
  return at_level(kernels.rows, level);
}

QuantizedDot dot_at(const KernelTable& kernels, KernelLevel level) {
  if (level >= KernelLevel::Avx512Vnni) {
    if (QuantizedDot one = vnni_row_kernels(kernels.type).one) return one;
  }
  return at_level(kernels.dots, level);
}

std::vector<KernelLevel> detect_levels() {
  std::vector<KernelLevel> levels = {KernelLevel::Portable};
#if TILLER_X86_KERNELS
  const CpuFeatures& f = cpu_features();
  if (f.avx2 && f.fma && f.f16c) levels.push_back(KernelLevel::Avx2);
  if (tiled_kernel(TensorType::Q4_1, KernelLevel::Avx2Tiled) != nullptr) levels.push_back(KernelLevel::Avx2Tiled);
  if (tiled_kernel(TensorType::Q8_0, KernelLevel::Avx512Vnni) != nullptr) levels.push_back(KernelLevel::Avx512Vnni);
#endif
  return levels;
}

// Quantizes n_rows activation rows of n_in values; a prompt's rows are split
// across the threads (each row's bytes are the same either way).
void quantize_rows(ActivationFormat format, const float* x, int64_t n_rows, int64_t n_in, uint8_t* out,
                   uint64_t row_bytes, ThreadPool& pool) {
  auto rows = [&](int64_t begin, int64_t end, int) {
    for (int64_t t = begin; t < end; ++t) {
      quantize_activations(format, x + t * n_in, n_in, out + static_cast<uint64_t>(t) * row_bytes);
    }
  };
  parallel_rows(pool, n_rows, rows);
}

// The tiled kernel when it applies: from level Avx2Tiled, with enough rows; the
// best tiled level at or below `level` that has one for the type.
TiledKernel tiled_for(TensorType type, int64_t n_rows, KernelLevel level) {
  if (n_rows < kTiledMinRows) return nullptr;
  for (const KernelLevel tiled : {KernelLevel::Avx512Vnni, KernelLevel::Avx2Tiled}) {
    if (level < tiled) continue;
    if (TiledKernel kernel = tiled_kernel(type, tiled)) return kernel;
  }
  return nullptr;
}

struct MatmulJob {
  const WeightMatrix* w;
  const uint8_t* activations;
  uint64_t activation_row_bytes;
  int64_t n_rows;
  float* out;
  QuantizedDot dot;
  QuantizedRows rows;  // may be nullptr
  TiledKernel tiled = nullptr;  // when set, all rows go through it
  const TiledActivations* tiled_x = nullptr;
  int64_t group = kRows;  // output rows per unit of parallel work
};

// Output rows [begin, end) for every token row. Weight rows go kRows at a time
// and meet all token rows while they are in cache.
void run_matmul_chunk(const MatmulJob& job, int64_t begin, int64_t end) {
  const WeightMatrix& m = *job.w;
  if (job.tiled != nullptr) {
    job.tiled(m, begin, end, *job.tiled_x, job.out);
    return;
  }
  auto activation = [&](int64_t t) { return job.activations + static_cast<uint64_t>(t) * job.activation_row_bytes; };
  int64_t r = begin;
  if (job.rows != nullptr) {
    for (; r + kRows <= end; r += kRows) {
      const uint8_t* weights = m.data + static_cast<uint64_t>(r) * m.row_bytes;
      for (int64_t t = 0; t < job.n_rows; ++t) job.rows(weights, m.row_bytes, activation(t), m.n_in, job.out + t * m.n_out + r);
    }
  }
  for (; r < end; ++r) {
    const uint8_t* weights = m.data + static_cast<uint64_t>(r) * m.row_bytes;
    for (int64_t t = 0; t < job.n_rows; ++t) job.out[t * m.n_out + r] = job.dot(weights, activation(t), m.n_in);
  }
}

}  // namespace

float half_to_float(uint16_t bits) { return half_bits_to_float(bits); }

ActivationFormat activation_format(TensorType weight_type) {
  switch (weight_type) {
    case TensorType::Q4_0: case TensorType::Q5_0: case TensorType::Q8_0: return ActivationFormat::Q8_0;
    case TensorType::Q4_1: case TensorType::Q5_1: return ActivationFormat::Q8_1;
    case TensorType::Q4_K: case TensorType::Q5_K: case TensorType::Q6_K: return ActivationFormat::Q8_K;
    default: return ActivationFormat::F32;
  }
}

int64_t activation_block_size(ActivationFormat format) {
  switch (format) {
    case ActivationFormat::Q8_0: case ActivationFormat::Q8_1: return 32;
    case ActivationFormat::Q8_K: return 256;
    case ActivationFormat::F32: break;
  }
  return 1;
}

uint64_t activation_block_bytes(ActivationFormat format) {
  switch (format) {
    case ActivationFormat::Q8_0: return kQ8_0ActBytes;
    case ActivationFormat::Q8_1: return kQ8_1ActBytes;
    case ActivationFormat::Q8_K: return kQ8_KActBytes;
    case ActivationFormat::F32: break;
  }
  return 4;
}

uint64_t activation_row_bytes(ActivationFormat format, int64_t n) {
  const int64_t block = activation_block_size(format);
  if (n < 0 || n % block != 0) fail("quantized activations: {} values are not whole blocks of {}", n, block);
  return static_cast<uint64_t>(n / block) * activation_block_bytes(format);
}

void quantize_activations(ActivationFormat format, const float* x, int64_t n, uint8_t* out) {
  activation_row_bytes(format, n);  // checks n
  switch (format) {
    case ActivationFormat::Q8_0: quantize_q8_0_or_1(x, n, out, false); return;
    case ActivationFormat::Q8_1: quantize_q8_0_or_1(x, n, out, true); return;
    case ActivationFormat::Q8_K: quantize_q8_k(x, n, out); return;
    case ActivationFormat::F32: std::memcpy(out, x, static_cast<size_t>(n) * sizeof(float)); return;
  }
}

void dequantize_activations(ActivationFormat format, const uint8_t* in, int64_t n, float* out) {
  const int64_t block = activation_block_size(format);
  const uint64_t bytes = activation_block_bytes(format);
  activation_row_bytes(format, n);
  for (int64_t b = 0; b < n / block; ++b) {
    const uint8_t* p = in + static_cast<uint64_t>(b) * bytes;
    switch (format) {
      case ActivationFormat::Q8_0: case ActivationFormat::Q8_1: {
        const float d = fp16_to_fp32(static_cast<uint16_t>(p[0] | p[1] << 8));
        const int8_t* q = as_int8(p + (format == ActivationFormat::Q8_1 ? 4 : 2));
        for (int i = 0; i < 32; ++i) out[32 * b + i] = d * static_cast<float>(q[i]);
        break;
      }
      case ActivationFormat::Q8_K: {
        const float d = load_f32(p);
        const int8_t* q = as_int8(p + 4);
        for (int i = 0; i < 256; ++i) out[256 * b + i] = d * static_cast<float>(q[i]);
        break;
      }
      case ActivationFormat::F32: std::memcpy(out + b, p, 4); break;
    }
  }
}

std::string_view kernel_level_name(KernelLevel level) {
  switch (level) {
    case KernelLevel::Portable: return "portable";
    case KernelLevel::Avx2: return "avx2";
    case KernelLevel::Avx2Tiled: return "avx2tiled";
    case KernelLevel::Avx512Vnni: return "avx512vnni";
  }
  return "?";
}

std::span<const KernelLevel> available_kernel_levels() {
  static const std::vector<KernelLevel> levels = detect_levels();
  return levels;
}

KernelLevel best_kernel_level() { return available_kernel_levels().back(); }

namespace {

KernelLevel checked_level(KernelLevel level) {
  const auto levels = available_kernel_levels();
  if (std::find(levels.begin(), levels.end(), level) == levels.end()) {
    fail("this CPU cannot run the {} kernels", kernel_level_name(level));
  }
  return level;
}

KernelLevel level_from_environment() {
  const char* name = std::getenv("TILLER_KERNELS");
  if (name == nullptr || *name == '\0') return best_kernel_level();
  for (const KernelLevel level :
       {KernelLevel::Portable, KernelLevel::Avx2, KernelLevel::Avx2Tiled, KernelLevel::Avx512Vnni}) {
    if (kernel_level_name(level) == name) return checked_level(level);
  }
  fail("TILLER_KERNELS='{}' is none of portable, avx2, avx2tiled, avx512vnni", printable(name));
}

std::atomic<int> chosen_level{-1};  // -1: not read from the environment yet

}  // namespace

KernelLevel kernel_level() {
  int level = chosen_level.load(std::memory_order_relaxed);
  if (level < 0) {
    level = static_cast<int>(level_from_environment());
    chosen_level.store(level, std::memory_order_relaxed);
  }
  return static_cast<KernelLevel>(level);
}

void set_kernel_level(KernelLevel level) {
  chosen_level.store(static_cast<int>(checked_level(level)), std::memory_order_relaxed);
}

QuantizedDot quantized_dot(TensorType weight_type, KernelLevel level) {
  const KernelTable* kernels = find_kernels(weight_type);
  return kernels != nullptr ? dot_at(*kernels, level) : nullptr;
}

void quantized_matmul(const WeightMatrix& w, const float* x, int64_t n_rows, float* out, ThreadPool& pool,
                      KernelLevel level) {
  const KernelTable* kernels = find_kernels(w.type);
  if (kernels == nullptr) {
    matmul_reference(w, x, n_rows, out, pool);
    return;
  }
  const ActivationFormat format = activation_format(w.type);
  const int64_t weight_block = tensor_type_info(w.type).block_size;
  if (w.n_in % weight_block != 0 || w.n_in % activation_block_size(format) != 0) {
    fail("matmul: {} ({}) has rows of {} weights, not whole blocks", w.name, tensor_type_name(w.type), w.n_in);
  }
  const uint64_t row_bytes = activation_row_bytes(format, w.n_in);
  // Reused across calls: after the first call of each size, no allocation.
  thread_local std::vector<uint8_t> activations;
  activations.resize(static_cast<size_t>(n_rows) * row_bytes);
  quantize_rows(format, x, n_rows, w.n_in, activations.data(), row_bytes, pool);
  MatmulJob job{&w, activations.data(), row_bytes, n_rows, out, dot_at(*kernels, level),
                rows_at(*kernels, level)};
  thread_local TiledActivationBuffers tiled_buffers;
  TiledActivations tiled_x;
  job.tiled = tiled_for(w.type, n_rows, level);
  if (job.tiled != nullptr) {
    tiled_x = prepare_tiled_activations(format, activations.data(), n_rows, w.n_in, tiled_buffers);
    job.tiled_x = &tiled_x;
    job.group = kPanelRows;
  }
  // Chunks of whole groups, so that every row takes the same path whatever the
  // thread count (the results do not depend on it either way).
  const int64_t n_groups = (w.n_out + job.group - 1) / job.group;
  pool.parallel_for(n_groups, [&job](int64_t begin, int64_t end, int) {
    run_matmul_chunk(job, begin * job.group, std::min(end * job.group, job.w->n_out));
  });
}

void quantized_matmul_shared(std::span<const WeightMatrix* const> ws, const float* x, int64_t n_rows,
                             std::span<float* const> outs, ThreadPool& pool, KernelLevel level) {
  if (ws.size() != outs.size() || ws.size() > kMaxShared) fail("matmul: {} matrices, {} outputs", ws.size(), outs.size());
  bool all_integer = true;
  for (const WeightMatrix* w : ws) {
    all_integer = all_integer && find_kernels(w->type) != nullptr && w->n_in == ws[0]->n_in &&
                  w->n_in % tensor_type_info(w->type).block_size == 0 &&
                  w->n_in % activation_block_size(activation_format(w->type)) == 0;
  }
  if (!all_integer) {  // the single-matrix path handles (or reports) these
    for (size_t m = 0; m < ws.size(); ++m) quantized_matmul(*ws[m], x, n_rows, outs[m], pool, level);
    return;
  }
  // One quantized copy of x per activation format, reused by every matrix that reads it.
  thread_local std::array<std::vector<uint8_t>, kMaxShared> buffers;
  thread_local std::array<TiledActivationBuffers, kMaxShared> tiled_buffers;
  std::array<TiledActivations, kMaxShared> tiled_x{};
  std::array<bool, kMaxShared> tiled_ready{};
  std::array<ActivationFormat, kMaxShared> formats{};
  std::array<MatmulJob, kMaxShared> jobs{};
  std::array<int64_t, kMaxShared + 1> first_group{};  // jobs' group ranges, back to back
  size_t n_formats = 0;
  const int64_t n_in = ws[0]->n_in;
  for (size_t m = 0; m < ws.size(); ++m) {
    const WeightMatrix& w = *ws[m];
    const ActivationFormat format = activation_format(w.type);
    const uint64_t row_bytes = activation_row_bytes(format, n_in);
    size_t f = 0;
    while (f < n_formats && formats[f] != format) ++f;
    if (f == n_formats) {
      formats[n_formats++] = format;
      buffers[f].resize(static_cast<size_t>(n_rows) * row_bytes);
      quantize_rows(format, x, n_rows, n_in, buffers[f].data(), row_bytes, pool);
    }
    const KernelTable* kernels = find_kernels(w.type);
    jobs[m] = MatmulJob{&w, buffers[f].data(), row_bytes, n_rows, outs[m], dot_at(*kernels, level),
                        rows_at(*kernels, level)};
    jobs[m].tiled = tiled_for(w.type, n_rows, level);
    if (jobs[m].tiled != nullptr) {
      if (!tiled_ready[f]) tiled_x[f] = prepare_tiled_activations(format, buffers[f].data(), n_rows, n_in, tiled_buffers[f]);
      tiled_ready[f] = true;
      jobs[m].tiled_x = &tiled_x[f];
      jobs[m].group = kPanelRows;
    }
    first_group[m + 1] = first_group[m] + (w.n_out + jobs[m].group - 1) / jobs[m].group;
  }
  const size_t n_jobs = ws.size();
  // Groups start at multiples of the group size within each matrix, as in quantized_matmul,
  // so every row takes the same kernel path and gives the same result.
  pool.parallel_for(first_group[n_jobs], [&](int64_t begin, int64_t end, int) {
    for (size_t m = 0; m < n_jobs; ++m) {
      const int64_t lo = std::max(begin, first_group[m]), hi = std::min(end, first_group[m + 1]);
      if (lo >= hi) continue;
      const MatmulJob& job = jobs[m];
      run_matmul_chunk(job, (lo - first_group[m]) * job.group,
                       std::min((hi - first_group[m]) * job.group, job.w->n_out));
    }
  });
}

}  // namespace tiller::ops
