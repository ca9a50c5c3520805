// Register-tiled matrix-matrix kernels (see tiled_matmul.h for the scheme).
//
// A packed panel holds, per weight block, the block's signed weight values of 16
// rows transposed into 64-byte groups (group g: weights 4g..4g+3 of row 0, then of
// row 1, ...), followed by per-row vectors of the block's integer correction and
// float scales. Rows past the end of the matrix are packed as zeros and never stored.
#include "ops/tiled_matmul.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "tiller/dequantize.h"
#include "ops/block_layout.h"
#include "ops/k_scales.h"
#include "ops/x86_block_bits.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include "ops/x86_simd.h"
#define TILLER_TILED_KERNELS 1
#else
#define TILLER_TILED_KERNELS 0
#endif

namespace tiller::ops {

namespace {

constexpr int64_t kGroup = 4 * kPanelRows;  // bytes of one transposed group: 4 weights x 16 rows

inline float load_half(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return fp16_to_fp32(bits);
}

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t value;
  std::memcpy(&value, p, 4);
  return value;
}

// ---------------------------------------------------------------------------
// Weight blocks unpacked to signed values (the bit layouts of
// src/quant/dequantize.cpp). The 32-weight formats are unpacked with AVX2 in
// pack_32 below.

// The K-quants give 256 values, one integer scale per sub-block, the eight 6-bit
// minimums of Q4_K / Q5_K, d and dmin.

// The eight 6-bit (scale, min) pairs of a Q4_K / Q5_K block (k_scales.h), widened
// to the packed layout's lane types.
inline void widen_k_scales(const uint8_t* scale8, const uint8_t* min8, int32_t* scale, int16_t* min) {
  for (int j = 0; j < 8; ++j) {
    scale[j] = scale8[j];
    min[j] = min8[j];
  }
}
inline void unpack_k_scales_wide(const uint8_t* s, int32_t* scale, int16_t* min) {
  uint8_t scale8[8], min8[8];
  unpack_k_scales(s, scale8, min8);
  widen_k_scales(scale8, min8, scale, min);
}

// Q4_K: each 64-weight chunk takes the low nibbles of 32 bytes, then their high nibbles.
struct Q4_K {
  static constexpr uint64_t kBytes = kQ4_KBytes;
  static constexpr int kSub = 32;
  static constexpr bool kMinimum = true;
  // The per-row terms alone (the vector packing unpacks the values itself).
  static void terms(const uint8_t* wb, int32_t* scale, int16_t* min, float& d, float& dmin) {
    d = load_half(wb);
    dmin = load_half(wb + 2);
    unpack_k_scales_wide(wb + 4, scale, min);
  }
  static void unpack(const uint8_t* wb, int8_t* q, int32_t* scale, int16_t* min, float& d, float& dmin) {
    terms(wb, scale, min, d, dmin);
    const uint8_t* qs = wb + 16;
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        q[64 * c + l] = static_cast<int8_t>(qs[32 * c + l] & 0x0f);
        q[64 * c + 32 + l] = static_cast<int8_t>(qs[32 * c + l] >> 4);
      }
    }
  }
};

// Interleaved Q4_K (interleaved_k_quants.h): Q4_K's geometry, and the same values
// unpacked from the other layout.
struct Q4_KInterleaved : Q4_K {
  static void unpack(const uint8_t* wb, int8_t* q, int32_t* scale, int16_t* min, float& d, float& dmin) {
    d = load_half(wb);
    dmin = load_half(wb + 2);
    uint8_t scale8[8], min8[8];
    interleaved_q4_k_scales(wb, scale8, min8);
    widen_k_scales(scale8, min8, scale, min);
    interleaved_q4_k_quants(wb, reinterpret_cast<uint8_t*>(q));  // 0..15: the same bits as int8
  }
};

// Q5_K: as Q4_K, with bits 2c and 2c+1 of qh[l] on top for chunk c.
struct Q5_K {
  static constexpr uint64_t kBytes = kQ5_KBytes;
  static constexpr int kSub = 32;
  static constexpr bool kMinimum = true;
  static void unpack(const uint8_t* wb, int8_t* q, int32_t* scale, int16_t* min, float& d, float& dmin) {
    d = load_half(wb);
    dmin = load_half(wb + 2);
    unpack_k_scales_wide(wb + 4, scale, min);
    const uint8_t* qh = wb + 16;
    const uint8_t* qs = wb + 48;
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        q[64 * c + l] = static_cast<int8_t>((qs[32 * c + l] & 0x0f) | (((qh[l] >> (2 * c)) & 1) << 4));
        q[64 * c + 32 + l] = static_cast<int8_t>((qs[32 * c + l] >> 4) | (((qh[l] >> (2 * c + 1)) & 1) << 4));
      }
    }
  }
};

// Q6_K: per half h, ql = 64 bytes and qh = 32 bytes; two bits of qh[l] top each
// of the four nibbles that land on values 128h + l, + 32, + 64, + 96; 16 int8
// scales for sub-blocks of 16; values less 32.
struct Q6_K {
  static constexpr uint64_t kBytes = kQ6_KBytes;
  static constexpr int kSub = 16;
  static constexpr bool kMinimum = false;
  static void terms(const uint8_t* wb, int32_t* scale, int16_t*, float& d, float& dmin) {
    d = load_half(wb + 208);
    dmin = 0.0f;
    for (int j = 0; j < 16; ++j) scale[j] = static_cast<int8_t>(wb[192 + j]);
  }
  static void unpack(const uint8_t* wb, int8_t* q, int32_t* scale, int16_t* min, float& d, float& dmin) {
    terms(wb, scale, min, d, dmin);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = wb + 64 * h;
      const uint8_t* qh = wb + 128 + 32 * h;
      int8_t* v = q + 128 * h;
      for (int l = 0; l < 32; ++l) {
        v[l] = static_cast<int8_t>(((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32);
        v[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32);
        v[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        v[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
      }
    }
  }
};

// Interleaved Q6_K (interleaved_k_quants.h): Q6_K's geometry, and the same values
// unpacked from the other layout.
struct Q6_KInterleaved : Q6_K {
  static void unpack(const uint8_t* wb, int8_t* q, int32_t* scale, int16_t* min, float& d, float& dmin) {
    terms(wb, scale, min, d, dmin);  // the interleaving leaves them where they were
    uint8_t quants[256];
    interleaved_q6_k_quants(wb, quants);
    for (int i = 0; i < 256; ++i) q[i] = static_cast<int8_t>(quants[i] - 32);
  }
};

// ---------------------------------------------------------------------------
// Packed layouts, per block: the transposed groups, then per-row vectors of 16.

// 32-weight formats: 8 groups, int32 correction 128 x sum(q), float d, float m.
struct Packed32 {
  static constexpr int64_t kGroups = 8;
  static constexpr int64_t kCorrection = kGroups * kGroup, kD = kCorrection + 64, kM = kD + 64;
  static constexpr int64_t kBytes = kM + 64;
};

// K-quants: 64 groups, int32 scales per sub-block, int32 correction
// 128 x sum_j(scale_j x sum of sub-block j), float d, float dmin, then the minimums
// as four int16 pairs (min 2g, min 2g+1) per row, for vpdpwssd.
template <int kSub>
struct PackedK {
  static constexpr int64_t kGroups = 64, kSubs = 256 / kSub;
  static constexpr int64_t kScales = kGroups * kGroup, kCorrection = kScales + kSubs * 64, kD = kCorrection + 64,
                           kDmin = kD + 64, kMins = kDmin + 64;
  static constexpr int64_t kBytes = kMins + 4 * 64;
};

inline void store_lane(uint8_t* vector16, int row, const void* value) { std::memcpy(vector16 + 4 * row, value, 4); }

// Transposes one row's values of a block into the groups.
inline void transpose_row(const int8_t* q, int64_t n, int row, uint8_t* groups) {
  for (int64_t g = 0; g < n / 4; ++g) std::memcpy(groups + g * kGroup + 4 * row, q + 4 * g, 4);
}

// One row's terms into the panel block's per-row vectors.
template <class P>
void store_row_terms(uint8_t* p, int row, const int32_t* scale, const int16_t* min, float d, float dmin) {
  for (int j = 0; j < P::kSubs; ++j) store_lane(p + P::kScales + 64 * j, row, &scale[j]);
  store_lane(p + P::kD, row, &d);
  store_lane(p + P::kDmin, row, &dmin);
  for (int g = 0; g < 4; ++g) store_lane(p + P::kMins + 64 * g, row, &min[2 * g]);
}

template <class F>
void pack_k(const WeightMatrix& w, int64_t r0, int nr, uint8_t* panel) {
  using P = PackedK<F::kSub>;
  const int64_t n_blocks = w.n_in / 256;
  for (int64_t b = 0; b < n_blocks; ++b) {
    uint8_t* p = panel + b * P::kBytes;
    for (int row = 0; row < kPanelRows; ++row) {
      int8_t q[256] = {};
      int32_t scale[P::kSubs] = {};
      int16_t min[8] = {};
      float d = 0.0f, dmin = 0.0f;
      if (row < nr) {
        F::unpack(w.data + static_cast<uint64_t>(r0 + row) * w.row_bytes + b * F::kBytes, q, scale, min, d, dmin);
      }
      transpose_row(q, 256, row, p);
      int32_t correction = 0;
      for (int j = 0; j < P::kSubs; ++j) {
        int32_t sum = 0;
        for (int i = 0; i < F::kSub; ++i) sum += q[F::kSub * j + i];
        correction += 128 * scale[j] * sum;
      }
      store_lane(p + P::kCorrection, row, &correction);
      store_row_terms<P>(p, row, scale, min, d, dmin);
    }
  }
}

// A 64-byte aligned panel buffer per thread, grown as needed.
uint8_t* panel_buffer(int64_t bytes) {
  thread_local std::vector<uint8_t> storage;
  if (storage.size() < static_cast<size_t>(bytes) + 64) storage.resize(static_cast<size_t>(bytes) + 64);
  const auto address = reinterpret_cast<uintptr_t>(storage.data());
  return storage.data() + ((64 - address % 64) % 64);
}

#if TILLER_TILED_KERNELS
// GCC 12 warns that the intrinsics' own _mm512_undefined_ps() "may be used
// uninitialized" when they are inlined here; a known false positive.
#if !defined(__clang__)  // clang has no such warning and rejects the name under -Werror
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#define TILLER_VNNI TILLER_TARGET_AVX512_VNNI
// Helpers that pass vectors by value: inlined always, so that no call passes a
// 64-byte vector (the emulation build's -Wpsabi, where it is a struct).
#define TILLER_VNNI_INLINE TILLER_VNNI inline __attribute__((always_inline))

#define TILLER_AVX2_TILED __attribute__((target("avx2,fma,f16c")))

TILLER_VNNI inline __m512i broadcast4(const uint8_t* p) { return _mm512_set1_epi32(static_cast<int>(load_u32(p))); }

// The 32-weight formats: one block's 32 signed values, f16 d at offset 0 and the
// minimum's f16 at offset 2 where there is one. AVX2 code, which both the AVX2 and
// the AVX-512 packing call.
struct Q4_0 {
  static constexpr uint64_t kBytes = kQ4_0Bytes;
  static constexpr bool kMinimum = false;
  TILLER_AVX2_TILED static __m256i values(const uint8_t* wb) {
    return _mm256_sub_epi8(x86::nibbles(wb + 2), _mm256_set1_epi8(8));
  }
};
struct Q4_1 {
  static constexpr uint64_t kBytes = kQ4_1Bytes;
  static constexpr bool kMinimum = true;
  TILLER_AVX2_TILED static __m256i values(const uint8_t* wb) { return x86::nibbles(wb + 4); }
};
// Q5: bit j of the 32-bit qh is the fifth bit of weight j; Q5_0's values are
// nibble + 16 x bit - 16, which OR-ing 0xf0 where the bit is clear makes.
struct Q5_0 {
  static constexpr uint64_t kBytes = kQ5_0Bytes;
  static constexpr bool kMinimum = false;
  TILLER_AVX2_TILED static __m256i values(const uint8_t* wb) {
    const __m256i clear =
        _mm256_andnot_si256(x86::bit_bytes(load_u32(wb + 2)), _mm256_set1_epi8(static_cast<char>(0xf0)));
    return _mm256_or_si256(x86::nibbles(wb + 6), clear);
  }
};
struct Q5_1 {
  static constexpr uint64_t kBytes = kQ5_1Bytes;
  static constexpr bool kMinimum = true;
  TILLER_AVX2_TILED static __m256i values(const uint8_t* wb) {
    const __m256i high = _mm256_and_si256(x86::bit_bytes(load_u32(wb + 4)), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(x86::nibbles(wb + 8), high);
  }
};
struct Q8_0 {
  static constexpr uint64_t kBytes = kQ8_0Bytes;
  static constexpr bool kMinimum = false;
  TILLER_AVX2_TILED static __m256i values(const uint8_t* wb) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + 2));
  }
};

// 16 f16 values row_bytes apart (rows past nr read as 0), as floats.
TILLER_VNNI inline __m512 gather_halves(const uint8_t* p, __m512i row_offsets, __mmask16 lanes) {
  const __m512i words = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), lanes, row_offsets, p, 1);
  return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(words));
}

// Each block of 16 rows: unpacked row after row into a 16 x 32 byte scratch, then
// transposed by gathering one group (4 bytes of every row) at a time; the
// correction is 128 x each row's sum of values, summed from the groups by vpdpbusd
// against ones.
template <class F>
TILLER_VNNI void pack_32(const WeightMatrix& w, int64_t r0, int nr, uint8_t* panel) {
  alignas(64) uint8_t rows[kPanelRows * 32] = {};
  const __mmask16 lanes = static_cast<__mmask16>((1u << nr) - 1);
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i row_offsets = _mm512_mullo_epi32(lane, _mm512_set1_epi32(static_cast<int>(w.row_bytes)));
  const __m512i group_index = _mm512_slli_epi32(lane, 3);  // row r's first dword in the scratch
  const __m512i ones = _mm512_set1_epi8(1);
  const int64_t n_blocks = w.n_in / 32;
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* base = w.data + static_cast<uint64_t>(r0) * w.row_bytes + static_cast<uint64_t>(b) * F::kBytes;
    for (int row = 0; row < nr; ++row) {
      _mm256_store_si256(reinterpret_cast<__m256i*>(rows + 32 * row), F::values(base + row * w.row_bytes));
    }
    uint8_t* p = panel + b * Packed32::kBytes;
    __m512i sums = _mm512_setzero_si512();
    for (int g = 0; g < Packed32::kGroups; ++g) {
      const __m512i group = _mm512_i32gather_epi32(_mm512_add_epi32(group_index, _mm512_set1_epi32(g)), rows, 4);
      _mm512_store_si512(p + g * kGroup, group);
      sums = _mm512_dpbusd_epi32(sums, ones, group);
    }
    _mm512_store_si512(p + Packed32::kCorrection, _mm512_slli_epi32(sums, 7));
    _mm512_store_ps(p + Packed32::kD, gather_halves(base, row_offsets, lanes));
    _mm512_store_ps(p + Packed32::kM, F::kMinimum ? gather_halves(base + 2, row_offsets, lanes) : _mm512_setzero_ps());
  }
}

// GGUF Q4_K and Q6_K packed on vectors, pack_k's panel byte for byte: every run of
// 32 weights (32k .. 32k + 31) of a block is one 32-byte vector of a row, its 8
// dwords groups 8k .. 8k + 7; an 8 x 8 dword transpose of 8 rows' runs gives those
// groups' halves (rows 0..7, then 8..15). AVX2, which the AVX-512 level's GGUF
// products (models mapped, not read) call too. The per-row terms stay scalar.

// Weights 32k .. 32k + 31 of a block as signed bytes.
template <int k>
TILLER_AVX2_TILED inline __m256i run_values(const uint8_t* wb, Q4_K) {
  // Each 32 bytes of nibbles hold 64 weights, the low nibbles first.
  const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + 16 + 32 * (k / 2)));
  return _mm256_and_si256(k % 2 == 0 ? bytes : _mm256_srli_epi16(bytes, 4), _mm256_set1_epi8(0x0f));
}
template <int k>
TILLER_AVX2_TILED inline __m256i run_values(const uint8_t* wb, Q6_K) {
  // Per half h (k / 4): runs 0, 1 from the low nibbles of ql[0..31], ql[32..63],
  // runs 2, 3 from their high nibbles; bits 2m, 2m + 1 of qh[0..31] on top of run m.
  constexpr int h = k / 4, m = k % 4;
  const __m256i ql =
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + 64 * h + 32 * (m % 2)));
  const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + 128 + 32 * h));
  const __m256i low = _mm256_and_si256(m < 2 ? ql : _mm256_srli_epi16(ql, 4), _mm256_set1_epi8(0x0f));
  const __m256i top = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * m), _mm256_set1_epi8(3));
  return _mm256_sub_epi8(_mm256_or_si256(low, _mm256_slli_epi16(top, 4)), _mm256_set1_epi8(32));
}

// m[i] lane r becomes m[r] lane i: an 8 x 8 transpose of dwords.
TILLER_AVX2_TILED inline void transpose_8x8(__m256i* m) {
  __m256i t[8], u[8];
  for (int k = 0; k < 4; ++k) {
    t[2 * k] = _mm256_unpacklo_epi32(m[2 * k], m[2 * k + 1]);
    t[2 * k + 1] = _mm256_unpackhi_epi32(m[2 * k], m[2 * k + 1]);
  }
  // u[4q + c], 128-bit lane L: column 4L + c of rows 4q .. 4q + 3.
  for (int q = 0; q < 2; ++q) {
    u[4 * q] = _mm256_unpacklo_epi64(t[4 * q], t[4 * q + 2]);
    u[4 * q + 1] = _mm256_unpackhi_epi64(t[4 * q], t[4 * q + 2]);
    u[4 * q + 2] = _mm256_unpacklo_epi64(t[4 * q + 1], t[4 * q + 3]);
    u[4 * q + 3] = _mm256_unpackhi_epi64(t[4 * q + 1], t[4 * q + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    m[c] = _mm256_permute2x128_si256(u[c], u[4 + c], 0x20);
    m[4 + c] = _mm256_permute2x128_si256(u[c], u[4 + c], 0x31);
  }
}

// Run k of the panel's rows, transposed into groups 8k .. 8k + 7; each group's sum
// of values per row added to sums[half][8k + c].
template <class F, int k>
TILLER_AVX2_TILED inline void pack_run(const uint8_t* base, uint64_t row_bytes, int nr, uint8_t* p,
                                       __m256i (*sums)[64]) {
  const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
  for (int half = 0; half < 2; ++half) {
    __m256i m[8];
    for (int r = 0; r < 8; ++r) {
      const int row = 8 * half + r;
      m[r] = row < nr ? run_values<k>(base + row * row_bytes, F{}) : _mm256_setzero_si256();
    }
    transpose_8x8(m);
    for (int c = 0; c < 8; ++c) {
      _mm256_store_si256(reinterpret_cast<__m256i*>(p + (8 * k + c) * kGroup + 32 * half), m[c]);
      sums[half][8 * k + c] = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, m[c]), ones16);
    }
  }
}

template <class F>
TILLER_AVX2_TILED void pack_k_avx2(const WeightMatrix& w, int64_t r0, int nr, uint8_t* panel) {
  using P = PackedK<F::kSub>;
  const int64_t n_blocks = w.n_in / 256;
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* base = w.data + static_cast<uint64_t>(r0) * w.row_bytes + static_cast<uint64_t>(b) * F::kBytes;
    uint8_t* p = panel + b * P::kBytes;
    for (int row = 0; row < kPanelRows; ++row) {
      int32_t scale[P::kSubs] = {};
      int16_t min[8] = {};
      float d = 0.0f, dmin = 0.0f;
      if (row < nr) F::terms(base + row * w.row_bytes, scale, min, d, dmin);
      store_row_terms<P>(p, row, scale, min, d, dmin);
    }
    __m256i sums[2][64];
    pack_run<F, 0>(base, w.row_bytes, nr, p, sums);
    pack_run<F, 1>(base, w.row_bytes, nr, p, sums);
    pack_run<F, 2>(base, w.row_bytes, nr, p, sums);
    pack_run<F, 3>(base, w.row_bytes, nr, p, sums);
    pack_run<F, 4>(base, w.row_bytes, nr, p, sums);
    pack_run<F, 5>(base, w.row_bytes, nr, p, sums);
    pack_run<F, 6>(base, w.row_bytes, nr, p, sums);
    pack_run<F, 7>(base, w.row_bytes, nr, p, sums);
    // 128 x sum_j(scale_j x sum of sub-block j); sub-block j is groups j x kSub / 4 on.
    for (int half = 0; half < 2; ++half) {
      __m256i correction = _mm256_setzero_si256();
      for (int j = 0; j < P::kSubs; ++j) {
        __m256i sum = _mm256_setzero_si256();
        for (int g = j * F::kSub / 4; g < (j + 1) * F::kSub / 4; ++g) sum = _mm256_add_epi32(sum, sums[half][g]);
        const __m256i scale = _mm256_load_si256(reinterpret_cast<const __m256i*>(p + P::kScales + 64 * j + 32 * half));
        correction = _mm256_add_epi32(correction, _mm256_mullo_epi32(sum, scale));
      }
      _mm256_store_si256(reinterpret_cast<__m256i*>(p + P::kCorrection + 32 * half), _mm256_slli_epi32(correction, 7));
    }
  }
}

// The GGUF layout's Q4_K and Q6_K have the vector packing; the others pack_k.
template <class F>
void pack_k_any(const WeightMatrix& w, int64_t r0, int nr, uint8_t* panel) {
  if constexpr (std::is_same_v<F, Q4_K> || std::is_same_v<F, Q6_K>) {
    pack_k_avx2<F>(w, r0, nr, panel);
  } else {
    pack_k<F>(w, r0, nr, panel);
  }
}

// Interleaved K-quant blocks (interleaved_k_quants.h), packed on vectors. Lane i of
// a block's vector v holds group 4i + v (weights 16i + 4v .. 16i + 4v + 3), so the
// dword transpose of 16 rows' vector v gives the panel's groups 4i + v, i = 0..15.
// The per-row terms (scales, minimums, d, dmin) are gathered from the 16 rows at
// once. Unpacking row after row (pack_k) took 65% of a 16-token prompt's time on
// the 1B shape: a chat turn's short prompt meets every weight panel only 16 times.

// m[i] lane r becomes m[r] lane i: a 16 x 16 transpose of dwords.
TILLER_VNNI_INLINE void transpose_16x16(__m512i* m) {
  __m512i a[16], b[16];
  // a[2k], 128-bit lane L: columns 4L and 4L + 1 of rows 2k and 2k + 1; a[2k + 1]:
  // columns 4L + 2 and 4L + 3.
  for (int k = 0; k < 8; ++k) {
    a[2 * k] = _mm512_unpacklo_epi32(m[2 * k], m[2 * k + 1]);
    a[2 * k + 1] = _mm512_unpackhi_epi32(m[2 * k], m[2 * k + 1]);
  }
  // b[4q + c], 128-bit lane L: column 4L + c of rows 4q .. 4q + 3.
  for (int q = 0; q < 4; ++q) {
    b[4 * q] = _mm512_unpacklo_epi64(a[4 * q], a[4 * q + 2]);
    b[4 * q + 1] = _mm512_unpackhi_epi64(a[4 * q], a[4 * q + 2]);
    b[4 * q + 2] = _mm512_unpacklo_epi64(a[4 * q + 1], a[4 * q + 3]);
    b[4 * q + 3] = _mm512_unpackhi_epi64(a[4 * q + 1], a[4 * q + 3]);
  }
  // Column 4L + c: lane L of b[c], b[4 + c], b[8 + c], b[12 + c].
  for (int c = 0; c < 4; ++c) {
    const __m512i top_even = _mm512_shuffle_i32x4(b[c], b[4 + c], _MM_SHUFFLE(2, 0, 2, 0));
    const __m512i top_odd = _mm512_shuffle_i32x4(b[c], b[4 + c], _MM_SHUFFLE(3, 1, 3, 1));
    const __m512i bottom_even = _mm512_shuffle_i32x4(b[8 + c], b[12 + c], _MM_SHUFFLE(2, 0, 2, 0));
    const __m512i bottom_odd = _mm512_shuffle_i32x4(b[8 + c], b[12 + c], _MM_SHUFFLE(3, 1, 3, 1));
    m[c] = _mm512_shuffle_i32x4(top_even, bottom_even, _MM_SHUFFLE(2, 0, 2, 0));
    m[8 + c] = _mm512_shuffle_i32x4(top_even, bottom_even, _MM_SHUFFLE(3, 1, 3, 1));
    m[4 + c] = _mm512_shuffle_i32x4(top_odd, bottom_odd, _MM_SHUFFLE(2, 0, 2, 0));
    m[12 + c] = _mm512_shuffle_i32x4(top_odd, bottom_odd, _MM_SHUFFLE(3, 1, 3, 1));
  }
}

// Vector v of an interleaved block as its 64 signed values.
template <int v>
TILLER_VNNI_INLINE __m512i interleaved_values(const uint8_t* wb, Q4_KInterleaved) {
  const __m512i bytes = _mm512_loadu_si512(wb + 16 + 64 * (v / 2));  // the nibbles follow d, dmin, scales
  return _mm512_and_si512(v % 2 == 0 ? bytes : _mm512_srli_epi16(bytes, 4), _mm512_set1_epi8(0x0f));
}
template <int v>
TILLER_VNNI_INLINE __m512i interleaved_values(const uint8_t* wb, Q6_KInterleaved) {
  const __m512i bytes = _mm512_loadu_si512(wb + 64 * (v / 2));
  const __m512i low = _mm512_and_si512(v % 2 == 0 ? bytes : _mm512_srli_epi16(bytes, 4), _mm512_set1_epi8(0x0f));
  const __m512i top = _mm512_and_si512(_mm512_srli_epi16(_mm512_loadu_si512(wb + 128), 2 * v), _mm512_set1_epi8(3));
  return _mm512_sub_epi8(_mm512_or_si512(low, _mm512_slli_epi16(top, 4)), _mm512_set1_epi8(32));
}

// The dword at `at` of each row's block (0 past the panel's rows).
TILLER_VNNI_INLINE __m512i gather_dwords(const uint8_t* base, int at, __m512i row_offsets, __mmask16 lanes) {
  return _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), lanes, row_offsets, base + at, 1);
}
TILLER_VNNI_INLINE __m512i bits(__m512i x, int shift, int mask) {
  return _mm512_and_si512(_mm512_srlv_epi32(x, _mm512_set1_epi32(shift)), _mm512_set1_epi32(mask));
}

// The per-row terms of a panel block: d and dmin (floats), the minimums' int16
// pairs, and the scales, which go back to the caller for the correction too.
TILLER_VNNI_INLINE void row_terms(const uint8_t* base, __m512i row_offsets, __mmask16 lanes, uint8_t* p,
                                  __m512i* scale, Q4_KInterleaved) {
  using P = PackedK<32>;
  const __m512i halves = gather_dwords(base, 0, row_offsets, lanes);
  _mm512_store_ps(p + P::kD, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(halves)));
  _mm512_store_ps(p + P::kDmin, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(halves, 16))));
  // Bytes 4..11: scale_j | (min_j >> 4) << 6; bytes 12..15: min_k & 15 | (min_(k+4) & 15) << 4.
  const __m512i packed[2] = {gather_dwords(base, 4, row_offsets, lanes), gather_dwords(base, 8, row_offsets, lanes)};
  const __m512i low_mins = gather_dwords(base, 12, row_offsets, lanes);
  __m512i min[8];
  for (int j = 0; j < 8; ++j) {
    const int byte = 8 * (j % 4);
    scale[j] = bits(packed[j / 4], byte, 63);
    min[j] = _mm512_or_si512(bits(low_mins, byte + 4 * (j / 4), 15),
                             _mm512_slli_epi32(bits(packed[j / 4], byte + 6, 3), 4));
    _mm512_store_si512(p + P::kScales + 64 * j, scale[j]);
  }
  for (int g = 0; g < 4; ++g) {
    _mm512_store_si512(p + P::kMins + 64 * g, _mm512_or_si512(min[2 * g], _mm512_slli_epi32(min[2 * g + 1], 16)));
  }
}
TILLER_VNNI_INLINE void row_terms(const uint8_t* base, __m512i row_offsets, __mmask16 lanes, uint8_t* p,
                                  __m512i* scale, Q6_KInterleaved) {
  using P = PackedK<16>;
  // The 16 int8 scales at 192, then f16 d at 208, the last two bytes of the block.
  for (int k = 0; k < 4; ++k) {
    const __m512i packed = gather_dwords(base, 192 + 4 * k, row_offsets, lanes);
    for (int byte = 0; byte < 4; ++byte) {
      const int j = 4 * k + byte;
      const __m512i sign = _mm512_set1_epi32(0x80);  // (b ^ 0x80) - 0x80 sign-extends byte b
      scale[j] = _mm512_sub_epi32(_mm512_xor_si512(bits(packed, 8 * byte, 0xff), sign), sign);
      _mm512_store_si512(p + P::kScales + 64 * j, scale[j]);
    }
  }
  const __m512i d_high = _mm512_srli_epi32(gather_dwords(base, 206, row_offsets, lanes), 16);
  _mm512_store_ps(p + P::kD, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(d_high)));
  _mm512_store_si512(p + P::kDmin, _mm512_setzero_si512());
  for (int g = 0; g < 4; ++g) _mm512_store_si512(p + P::kMins + 64 * g, _mm512_setzero_si512());
}

// Vector v of the panel's rows, transposed into groups 4i + v; each group's sum of
// values (per row) added to sums[i].
template <class F, int v>
TILLER_VNNI_INLINE void pack_vector(const uint8_t* base, uint64_t row_bytes, int nr, uint8_t* p, __m512i* sums) {
  __m512i m[16];
  for (int r = 0; r < 16; ++r) {
    m[r] = r < nr ? interleaved_values<v>(base + r * row_bytes, F{}) : _mm512_setzero_si512();
  }
  transpose_16x16(m);
  const __m512i ones = _mm512_set1_epi8(1);
  for (int i = 0; i < 16; ++i) {
    _mm512_store_si512(p + (4 * i + v) * kGroup, m[i]);
    sums[i] = _mm512_dpbusd_epi32(sums[i], ones, m[i]);
  }
}

// pack_k's panel, byte for byte, from interleaved blocks.
constexpr int64_t kPackAhead = 2;
template <class F>
TILLER_VNNI void pack_k_interleaved(const WeightMatrix& w, int64_t r0, int nr, uint8_t* panel) {
  using P = PackedK<F::kSub>;
  static_assert(kPanelRows == 16);
  const __mmask16 lanes = static_cast<__mmask16>((1u << nr) - 1);
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i row_offsets = _mm512_mullo_epi32(lane, _mm512_set1_epi32(static_cast<int>(w.row_bytes)));
  const int64_t n_blocks = w.n_in / 256;
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* base = w.data + static_cast<uint64_t>(r0) * w.row_bytes + static_cast<uint64_t>(b) * F::kBytes;
    uint8_t* p = panel + b * P::kBytes;
    // Sixteen streams of weights: the hardware's prefetchers lag on so many, so
    // each row's block kPackAhead blocks on is asked for now.
    if (b + kPackAhead < n_blocks) {
      for (int r = 0; r < nr; ++r) {
        const uint8_t* ahead = base + r * w.row_bytes + kPackAhead * F::kBytes;
        for (uint64_t line = 0; line < F::kBytes; line += 64) _mm_prefetch(reinterpret_cast<const char*>(ahead + line), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(ahead + F::kBytes - 1), _MM_HINT_T0);
      }
    }
    __m512i scale[P::kSubs];
    row_terms(base, row_offsets, lanes, p, scale, F{});
    __m512i sums[16];
    for (__m512i& sum : sums) sum = _mm512_setzero_si512();
    pack_vector<F, 0>(base, w.row_bytes, nr, p, sums);
    pack_vector<F, 1>(base, w.row_bytes, nr, p, sums);
    pack_vector<F, 2>(base, w.row_bytes, nr, p, sums);
    pack_vector<F, 3>(base, w.row_bytes, nr, p, sums);
    // 128 x sum_j(scale_j x sum of sub-block j); groups of 16 weights 16i.. lie in sub-block i x kSubs / 16.
    __m512i correction = _mm512_setzero_si512();
    for (int i = 0; i < 16; ++i) {
      correction = _mm512_add_epi32(correction, _mm512_mullo_epi32(sums[i], scale[i * P::kSubs / 16]));
    }
    _mm512_store_si512(p + P::kCorrection, _mm512_slli_epi32(correction, 7));
  }
}

// The next panel's weight rows, which the first tile over a panel asks into L2
// block by block while it computes: packing then reads them from there instead of
// waiting on memory for 16 rows at once (at a 16-token prompt the packing read the
// weights at about the core's whole bandwidth while the products waited).
struct Lookahead {
  const uint8_t* rows = nullptr;  // nullptr: nothing to fetch
  uint64_t row_bytes = 0, block_bytes = 0;
  int n_rows = 0;
};

// The panel of rows from `next` (none past row_end) of a matrix in format F.
template <class F>
Lookahead next_panel(const WeightMatrix& w, int64_t next, int64_t row_end) {
  if (next >= row_end) return {};
  return {w.data + static_cast<uint64_t>(next) * w.row_bytes, w.row_bytes, F::kBytes,
          static_cast<int>(std::min<int64_t>(kPanelRows, row_end - next))};
}

// Plain SSE prefetches: the AVX-512 and the AVX2 tiles both inline it.
inline void fetch_block(const Lookahead& ahead, int64_t block) {
  for (int r = 0; r < ahead.n_rows; ++r) {
    const uint8_t* p = ahead.rows + r * ahead.row_bytes + static_cast<uint64_t>(block) * ahead.block_bytes;
    for (uint64_t line = 0; line < ahead.block_bytes; line += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(p + line), _MM_HINT_T2);
    }
    _mm_prefetch(reinterpret_cast<const char*>(p + ahead.block_bytes - 1), _MM_HINT_T2);
  }
}

// T activation rows from t0 against one packed panel of a 32-weight format.
template <int T, bool kMinimum>
TILLER_VNNI void tile_32(const uint8_t* panel, const TiledActivations& x, int64_t t0, float* out, int64_t n_out,
                         __mmask16 lanes) {
  const int64_t n_blocks = x.n_in / 32;
  __m512 acc[T], minimums[T];
  const uint8_t* xq[T];
  for (int t = 0; t < T; ++t) {
    acc[t] = _mm512_setzero_ps();
    minimums[t] = _mm512_setzero_ps();
    xq[t] = x.quants + (t0 + t) * x.n_in;
  }
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* p = panel + b * Packed32::kBytes;
    __m512i sums[T];
    for (int t = 0; t < T; ++t) sums[t] = _mm512_setzero_si512();
    for (int g = 0; g < Packed32::kGroups; ++g) {
      const __m512i weights = _mm512_load_si512(p + g * kGroup);
      for (int t = 0; t < T; ++t) sums[t] = _mm512_dpbusd_epi32(sums[t], broadcast4(xq[t] + 32 * b + 4 * g), weights);
    }
    const __m512i correction = _mm512_load_si512(p + Packed32::kCorrection);
    const __m512 d = _mm512_load_ps(p + Packed32::kD);
    for (int t = 0; t < T; ++t) {
      const __m512 scale = _mm512_mul_ps(d, _mm512_set1_ps(x.scales[(t0 + t) * n_blocks + b]));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(sums[t], correction)), scale, acc[t]);
    }
    if constexpr (kMinimum) {
      const __m512 m = _mm512_load_ps(p + Packed32::kM);
      for (int t = 0; t < T; ++t) {
        minimums[t] = _mm512_fmadd_ps(m, _mm512_set1_ps(x.sums[(t0 + t) * n_blocks + b]), minimums[t]);
      }
    }
  }
  for (int t = 0; t < T; ++t) {
    const __m512 result = kMinimum ? _mm512_add_ps(acc[t], minimums[t]) : acc[t];
    _mm512_mask_storeu_ps(out + t * n_out, lanes, result);
  }
}

// T activation rows from t0 against one packed panel of a K-quant: per sub-block
// the byte dot products, times the sub-block's scale (exact in int32); per block
// the float step; the minimums' term sum_j min_j x (activation sum of sub-block j)
// by vpdpwssd on int16 pairs, scaled by dmin x d_x and taken off at the end.
template <int T, int kSub, bool kMinimum>
TILLER_VNNI void tile_k(const uint8_t* panel, const TiledActivations& x, int64_t t0, float* out, int64_t n_out,
                        __mmask16 lanes, const Lookahead& ahead) {
  using P = PackedK<kSub>;
  const int64_t n_blocks = x.n_in / 256;
  __m512 acc[T], minimums[T];
  const uint8_t* xq[T];
  for (int t = 0; t < T; ++t) {
    acc[t] = _mm512_setzero_ps();
    minimums[t] = _mm512_setzero_ps();
    xq[t] = x.quants + (t0 + t) * x.n_in;
  }
  for (int64_t b = 0; b < n_blocks; ++b) {
    if (ahead.rows != nullptr) fetch_block(ahead, b);
    const uint8_t* p = panel + b * P::kBytes;
    __m512i total[T];
    for (int t = 0; t < T; ++t) total[t] = _mm512_setzero_si512();
    for (int j = 0; j < P::kSubs; ++j) {
      // Unrolled whole: a rolled group loop kept the sums in memory (GCC 12).
      __m512i sums[T];
#pragma GCC unroll 4
      for (int t = 0; t < T; ++t) sums[t] = _mm512_setzero_si512();
#pragma GCC unroll 8
      for (int k = 0; k < kSub / 4; ++k) {
        const int g = j * kSub / 4 + k;
        const __m512i weights = _mm512_load_si512(p + g * kGroup);
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t) {
          sums[t] = _mm512_dpbusd_epi32(sums[t], broadcast4(xq[t] + 256 * b + 4 * g), weights);
        }
      }
      const __m512i scale = _mm512_load_si512(p + P::kScales + 64 * j);
#pragma GCC unroll 4
      for (int t = 0; t < T; ++t) total[t] = _mm512_add_epi32(total[t], _mm512_mullo_epi32(sums[t], scale));
    }
    const __m512i correction = _mm512_load_si512(p + P::kCorrection);
    const __m512 d = _mm512_load_ps(p + P::kD);
    for (int t = 0; t < T; ++t) {
      const __m512 dx = _mm512_set1_ps(x.scales[(t0 + t) * n_blocks + b]);
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(total[t], correction)), _mm512_mul_ps(d, dx),
                               acc[t]);
    }
    if constexpr (kMinimum) {
      const __m512 dmin = _mm512_load_ps(p + P::kDmin);
      for (int t = 0; t < T; ++t) {
        const int16_t* s = x.sums32 + ((t0 + t) * n_blocks + b) * 8;
        __m512i m = _mm512_setzero_si512();
        for (int g = 0; g < 4; ++g) {
          m = _mm512_dpwssd_epi32(m, broadcast4(reinterpret_cast<const uint8_t*>(s + 2 * g)),
                                  _mm512_load_si512(p + P::kMins + 64 * g));
        }
        const __m512 dx = _mm512_set1_ps(x.scales[(t0 + t) * n_blocks + b]);
        minimums[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(m), _mm512_mul_ps(dmin, dx), minimums[t]);
      }
    }
  }
  for (int t = 0; t < T; ++t) {
    const __m512 result = kMinimum ? _mm512_sub_ps(acc[t], minimums[t]) : acc[t];
    _mm512_mask_storeu_ps(out + t * n_out, lanes, result);
  }
}

// Activation rows per tile: each weight vector loaded serves this many rows.
constexpr int kTileRows = 4;

// All activation rows against one panel: whole tiles, then one shorter tile.
// The first tile fetches the lookahead's rows.
template <template <int> class Tile>
TILLER_VNNI void all_rows(const uint8_t* panel, const TiledActivations& x, float* out, int64_t n_out,
                          __mmask16 lanes, const Lookahead& ahead = {}) {
  const Lookahead none;
  int64_t t = 0;
  for (; t + kTileRows <= x.n_rows; t += kTileRows) {
    Tile<kTileRows>::run(panel, x, t, out + t * n_out, n_out, lanes, t == 0 ? ahead : none);
  }
  const Lookahead& rest = t == 0 ? ahead : none;
  switch (x.n_rows - t) {
    case 3: Tile<3>::run(panel, x, t, out + t * n_out, n_out, lanes, rest); break;
    case 2: Tile<2>::run(panel, x, t, out + t * n_out, n_out, lanes, rest); break;
    case 1: Tile<1>::run(panel, x, t, out + t * n_out, n_out, lanes, rest); break;
    default: break;
  }
}

template <class F>
struct Tile32 {
  template <int T>
  struct Of {
    static void run(const uint8_t* panel, const TiledActivations& x, int64_t t0, float* out, int64_t n_out,
                    __mmask16 lanes, const Lookahead&) {
      tile_32<T, F::kMinimum>(panel, x, t0, out, n_out, lanes);
    }
  };
};

template <class F>
struct TileK {
  template <int T>
  struct Of {
    static void run(const uint8_t* panel, const TiledActivations& x, int64_t t0, float* out, int64_t n_out,
                    __mmask16 lanes, const Lookahead& ahead) {
      tile_k<T, F::kSub, F::kMinimum>(panel, x, t0, out, n_out, lanes, ahead);
    }
  };
};

template <class F>
void tiled_32(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const TiledActivations& x, float* out) {
  uint8_t* panel = panel_buffer(w.n_in / 32 * Packed32::kBytes);
  for (int64_t r0 = row_begin; r0 < row_end; r0 += kPanelRows) {
    const int nr = static_cast<int>(std::min<int64_t>(kPanelRows, row_end - r0));
    pack_32<F>(w, r0, nr, panel);
    all_rows<Tile32<F>::template Of>(panel, x, out + r0, w.n_out, static_cast<__mmask16>((1u << nr) - 1));
  }
}

template <class F>
void tiled_k(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const TiledActivations& x, float* out) {
  uint8_t* panel = panel_buffer(w.n_in / 256 * PackedK<F::kSub>::kBytes);
  for (int64_t r0 = row_begin; r0 < row_end; r0 += kPanelRows) {
    const int nr = static_cast<int>(std::min<int64_t>(kPanelRows, row_end - r0));
    if constexpr (std::is_same_v<F, Q4_KInterleaved> || std::is_same_v<F, Q6_KInterleaved>) {
      pack_k_interleaved<F>(w, r0, nr, panel);
    } else {
      pack_k_any<F>(w, r0, nr, panel);
    }
    all_rows<TileK<F>::template Of>(panel, x, out + r0, w.n_out, static_cast<__mmask16>((1u << nr) - 1),
                                    next_panel<F>(w, r0 + kPanelRows, row_end));
  }
}

// ---------------------------------------------------------------------------
// The same panels with AVX2 (level Avx2Tiled), for CPUs without AVX-512 VNNI. A
// 16-row group is two 32-byte halves (rows 0..7 and 8..15); vpmaddubsw multiplies
// the 4 activation bytes (q + 128, unsigned) by 4 weights of 8 rows and sums them
// in int16 pairs, and vpmaddwd by ones sums the pairs into each row's int32 lane:
// vpdpbusd in two steps. The pairs stay within int16 only while |weight| <= 64
// (255 x 64 x 2 < 2^15), which every format but Q8_0 keeps (Q6_K's values reach
// -32, Q5's 31); Q8_0 takes a sign trick instead (tile_32_avx2). The integer sums
// are the VNNI kernels', the float steps the same per block but for the minimum's.

TILLER_AVX2_TILED inline __m256i broadcast4_avx2(const uint8_t* p) {
  return _mm256_set1_epi32(static_cast<int>(load_u32(p)));
}
// 4 unsigned activation bytes (broadcast) times 4 signed weights of 8 rows: int32 per row.
TILLER_AVX2_TILED inline __m256i dot4_avx2(__m256i activations, __m256i weights) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(activations, weights), _mm256_set1_epi16(1));
}
// Two groups at once, their vpmaddubsw pairs added in int16 before one vpmaddwd: a
// pair is at most 255 x 32 x 2 = 16320 in magnitude for weights within [-32, 31]
// (Q6_K's range; the 4- and 5-bit formats stay below), so two of them fit in int16.
TILLER_AVX2_TILED inline __m256i dot8_avx2(__m256i activations0, __m256i weights0, __m256i activations1,
                                           __m256i weights1) {
  const __m256i pairs =
      _mm256_add_epi16(_mm256_maddubs_epi16(activations0, weights0), _mm256_maddubs_epi16(activations1, weights1));
  return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}
TILLER_AVX2_TILED inline __m256i load_half_vector(const uint8_t* p, int half) {
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(p + 32 * half));
}
TILLER_AVX2_TILED inline __m256 load_half_floats(const uint8_t* p, int half) {
  return _mm256_load_ps(reinterpret_cast<const float*>(p + 32 * half));
}
// Rows [0, nr) of the 16 results of a panel: both halves, the rows past nr not stored.
TILLER_AVX2_TILED inline void store_rows(float* out, const __m256 (&halves)[2], int nr) {
  if (nr == kPanelRows) {
    _mm256_storeu_ps(out, halves[0]);
    _mm256_storeu_ps(out + 8, halves[1]);
    return;
  }
  alignas(32) float all[kPanelRows];
  _mm256_store_ps(all, halves[0]);
  _mm256_store_ps(all + 8, halves[1]);
  std::memcpy(out, all, static_cast<size_t>(nr) * sizeof(float));
}

// Groups [g_begin, g_end) of a packed block (an even count) times T activation
// rows (quants from xq[t] + offset), two groups per dot8_avx2, added to each row's
// two half sums.
template <int T>
TILLER_AVX2_TILED inline void add_group_pairs(const uint8_t* p, int g_begin, int g_end, const uint8_t* const (&xq)[T],
                                              int64_t offset, __m256i (&sums)[T][2]) {
  for (int g = g_begin; g < g_end; g += 2) {
    const __m256i low = load_half_vector(p + g * kGroup, 0), high = load_half_vector(p + g * kGroup, 1);
    const __m256i low1 = load_half_vector(p + (g + 1) * kGroup, 0), high1 = load_half_vector(p + (g + 1) * kGroup, 1);
    for (int t = 0; t < T; ++t) {
      const __m256i a = broadcast4_avx2(xq[t] + offset + 4 * g), a1 = broadcast4_avx2(xq[t] + offset + 4 * g + 4);
      sums[t][0] = _mm256_add_epi32(sums[t][0], dot8_avx2(a, low, a1, low1));
      sums[t][1] = _mm256_add_epi32(sums[t][1], dot8_avx2(a, high, a1, high1));
    }
  }
}

// As pack_32, with a scalar transpose and sums.
template <class F>
TILLER_AVX2_TILED void pack_32_avx2(const WeightMatrix& w, int64_t r0, int nr, uint8_t* panel) {
  const int64_t n_blocks = w.n_in / 32;
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* base = w.data + static_cast<uint64_t>(r0) * w.row_bytes + static_cast<uint64_t>(b) * F::kBytes;
    uint8_t* p = panel + b * Packed32::kBytes;
    for (int row = 0; row < kPanelRows; ++row) {
      alignas(32) int8_t q[32] = {};
      float d = 0.0f, m = 0.0f;
      if (row < nr) {
        const uint8_t* wb = base + static_cast<uint64_t>(row) * w.row_bytes;
        _mm256_store_si256(reinterpret_cast<__m256i*>(q), F::values(wb));
        d = load_half(wb);
        if constexpr (F::kMinimum) m = load_half(wb + 2);
      }
      transpose_row(q, 32, row, p);
      int32_t correction = 0;
      for (int i = 0; i < 32; ++i) correction += 128 * q[i];
      store_lane(p + Packed32::kCorrection, row, &correction);
      store_lane(p + Packed32::kD, row, &d);
      store_lane(p + Packed32::kM, row, &m);
    }
  }
}

// kFullRange (Q8_0, whose weights reach -128): the activations are taken back to
// signed q and the weights' signs moved onto them, so that vpmaddubsw multiplies
// |w| <= 128 by |q| <= 127 and the pairs stay within int16; there is then no
// 128 x sum(w) to take off.
template <int T, bool kMinimum, bool kFullRange>
TILLER_AVX2_TILED void tile_32_avx2(const uint8_t* panel, const TiledActivations& x, int64_t t0, float* out,
                                    int64_t n_out, int nr) {
  const int64_t n_blocks = x.n_in / 32;
  __m256 acc[T][2];
  const uint8_t* xq[T];
  for (int t = 0; t < T; ++t) {
    acc[t][0] = acc[t][1] = _mm256_setzero_ps();
    xq[t] = x.quants + (t0 + t) * x.n_in;
  }
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* p = panel + b * Packed32::kBytes;
    __m256i sums[T][2];
    for (int t = 0; t < T; ++t) sums[t][0] = sums[t][1] = _mm256_setzero_si256();
    if constexpr (kFullRange) {
      for (int g = 0; g < Packed32::kGroups; ++g) {
        const __m256i low = load_half_vector(p + g * kGroup, 0), high = load_half_vector(p + g * kGroup, 1);
        const __m256i low_abs = _mm256_abs_epi8(low), high_abs = _mm256_abs_epi8(high);
        for (int t = 0; t < T; ++t) {
          const __m256i q = _mm256_xor_si256(broadcast4_avx2(xq[t] + 32 * b + 4 * g),
                                             _mm256_set1_epi8(static_cast<char>(0x80)));
          sums[t][0] = _mm256_add_epi32(sums[t][0], dot4_avx2(low_abs, _mm256_sign_epi8(q, low)));
          sums[t][1] = _mm256_add_epi32(sums[t][1], dot4_avx2(high_abs, _mm256_sign_epi8(q, high)));
        }
      }
    } else {
      add_group_pairs<T>(p, 0, Packed32::kGroups, xq, 32 * b, sums);
    }
    for (int h = 0; h < 2; ++h) {
      const __m256i correction =
          kFullRange ? _mm256_setzero_si256() : load_half_vector(p + Packed32::kCorrection, h);
      const __m256 d = load_half_floats(p + Packed32::kD, h);
      for (int t = 0; t < T; ++t) {
        const __m256 scale = _mm256_mul_ps(d, _mm256_set1_ps(x.scales[(t0 + t) * n_blocks + b]));
        acc[t][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(sums[t][h], correction)), scale, acc[t][h]);
        if constexpr (kMinimum) {
          // Added into the same sums (the VNNI kernels keep them apart): 8 registers fewer.
          acc[t][h] = _mm256_fmadd_ps(load_half_floats(p + Packed32::kM, h),
                                      _mm256_set1_ps(x.sums[(t0 + t) * n_blocks + b]), acc[t][h]);
        }
      }
    }
  }
  for (int t = 0; t < T; ++t) store_rows(out + t * n_out, acc[t], nr);
}

template <int T, int kSub, bool kMinimum>
TILLER_AVX2_TILED void tile_k_avx2(const uint8_t* panel, const TiledActivations& x, int64_t t0, float* out,
                                   int64_t n_out, int nr, const Lookahead& ahead) {
  using P = PackedK<kSub>;
  const int64_t n_blocks = x.n_in / 256;
  __m256 acc[T][2], minimums[T][2];
  const uint8_t* xq[T];
  for (int t = 0; t < T; ++t) {
    acc[t][0] = acc[t][1] = minimums[t][0] = minimums[t][1] = _mm256_setzero_ps();
    xq[t] = x.quants + (t0 + t) * x.n_in;
  }
  for (int64_t b = 0; b < n_blocks; ++b) {
    if (ahead.rows != nullptr) fetch_block(ahead, b);
    const uint8_t* p = panel + b * P::kBytes;
    __m256i total[T][2];
    for (int t = 0; t < T; ++t) total[t][0] = total[t][1] = _mm256_setzero_si256();
    for (int j = 0; j < P::kSubs; ++j) {
      __m256i sums[T][2];
      for (int t = 0; t < T; ++t) sums[t][0] = sums[t][1] = _mm256_setzero_si256();
      add_group_pairs<T>(p, j * kSub / 4, (j + 1) * kSub / 4, xq, 256 * b, sums);  // 4 or 8 groups: whole pairs
      for (int h = 0; h < 2; ++h) {
        const __m256i scale = load_half_vector(p + P::kScales + 64 * j, h);
        for (int t = 0; t < T; ++t) total[t][h] = _mm256_add_epi32(total[t][h], _mm256_mullo_epi32(sums[t][h], scale));
      }
    }
    for (int h = 0; h < 2; ++h) {
      const __m256i correction = load_half_vector(p + P::kCorrection, h);
      const __m256 d = load_half_floats(p + P::kD, h);
      for (int t = 0; t < T; ++t) {
        const __m256 dx = _mm256_set1_ps(x.scales[(t0 + t) * n_blocks + b]);
        acc[t][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(total[t][h], correction)),
                                    _mm256_mul_ps(d, dx), acc[t][h]);
      }
      if constexpr (kMinimum) {
        const __m256 dmin = load_half_floats(p + P::kDmin, h);
        for (int t = 0; t < T; ++t) {
          const int16_t* s = x.sums32 + ((t0 + t) * n_blocks + b) * 8;
          __m256i m = _mm256_setzero_si256();
          for (int g = 0; g < 4; ++g) {
            m = _mm256_add_epi32(m, _mm256_madd_epi16(broadcast4_avx2(reinterpret_cast<const uint8_t*>(s + 2 * g)),
                                                      load_half_vector(p + P::kMins + 64 * g, h)));
          }
          const __m256 dx = _mm256_set1_ps(x.scales[(t0 + t) * n_blocks + b]);
          minimums[t][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(m), _mm256_mul_ps(dmin, dx), minimums[t][h]);
        }
      }
    }
  }
  for (int t = 0; t < T; ++t) {
    __m256 result[2] = {acc[t][0], acc[t][1]};
    if constexpr (kMinimum) {
      result[0] = _mm256_sub_ps(result[0], minimums[t][0]);
      result[1] = _mm256_sub_ps(result[1], minimums[t][1]);
    }
    store_rows(out + t * n_out, result, nr);
  }
}

// Activation rows per AVX2 tile: two rows' sums of both halves and their float
// accumulators take 8 of the 16 vector registers.
constexpr int kTileRowsAvx2 = 2;

// The first tile fetches the lookahead's rows, as in all_rows.
template <class Tile>
TILLER_AVX2_TILED void all_rows_avx2(const uint8_t* panel, const TiledActivations& x, float* out, int64_t n_out,
                                     int nr, const Lookahead& ahead = {}) {
  const Lookahead none;
  int64_t t = 0;
  for (; t + kTileRowsAvx2 <= x.n_rows; t += kTileRowsAvx2) {
    Tile::template run<kTileRowsAvx2>(panel, x, t, out + t * n_out, n_out, nr, t == 0 ? ahead : none);
  }
  if (t < x.n_rows) Tile::template run<1>(panel, x, t, out + t * n_out, n_out, nr, t == 0 ? ahead : none);
}

template <bool kMinimum, bool kFullRange>
struct Tile32Avx2 {
  template <int T>
  TILLER_AVX2_TILED static void run(const uint8_t* panel, const TiledActivations& x, int64_t t0, float* out,
                                    int64_t n_out, int nr, const Lookahead&) {
    tile_32_avx2<T, kMinimum, kFullRange>(panel, x, t0, out, n_out, nr);
  }
};

template <int kSub, bool kMinimum>
struct TileKAvx2 {
  template <int T>
  TILLER_AVX2_TILED static void run(const uint8_t* panel, const TiledActivations& x, int64_t t0, float* out,
                                    int64_t n_out, int nr, const Lookahead& ahead) {
    tile_k_avx2<T, kSub, kMinimum>(panel, x, t0, out, n_out, nr, ahead);
  }
};

template <class F>
void tiled_32_avx2(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const TiledActivations& x, float* out) {
  uint8_t* panel = panel_buffer(w.n_in / 32 * Packed32::kBytes);
  for (int64_t r0 = row_begin; r0 < row_end; r0 += kPanelRows) {
    const int nr = static_cast<int>(std::min<int64_t>(kPanelRows, row_end - r0));
    pack_32_avx2<F>(w, r0, nr, panel);
    all_rows_avx2<Tile32Avx2<F::kMinimum, std::is_same_v<F, Q8_0>>>(panel, x, out + r0, w.n_out, nr);
  }
}

template <class F>
void tiled_k_avx2(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const TiledActivations& x, float* out) {
  uint8_t* panel = panel_buffer(w.n_in / 256 * PackedK<F::kSub>::kBytes);
  for (int64_t r0 = row_begin; r0 < row_end; r0 += kPanelRows) {
    const int nr = static_cast<int>(std::min<int64_t>(kPanelRows, row_end - r0));
    pack_k_any<F>(w, r0, nr, panel);
    all_rows_avx2<TileKAvx2<F::kSub, F::kMinimum>>(panel, x, out + r0, w.n_out, nr,
                                                   next_panel<F>(w, r0 + kPanelRows, row_end));
  }
}
#endif  // TILLER_TILED_KERNELS

}  // namespace

TiledActivations prepare_tiled_activations(ActivationFormat format, const uint8_t* quantized, int64_t n_rows,
                                           int64_t n_in, TiledActivationBuffers& buffers) {
  const int64_t block = activation_block_size(format);
  const uint64_t block_bytes = activation_block_bytes(format);
  const uint64_t row_bytes = activation_row_bytes(format, n_in);
  const int64_t n_blocks = n_in / block;
  const auto total = static_cast<size_t>(n_rows * n_in);
  if (buffers.quants.size() < total) buffers.quants.resize(total);
  if (buffers.scales.size() < static_cast<size_t>(n_rows * n_blocks)) buffers.scales.resize(static_cast<size_t>(n_rows * n_blocks));
  const bool q8_1 = format == ActivationFormat::Q8_1, q8_k = format == ActivationFormat::Q8_K;
  if (q8_1 && buffers.sums.size() < static_cast<size_t>(n_rows * n_blocks)) buffers.sums.resize(static_cast<size_t>(n_rows * n_blocks));
  if (q8_k && buffers.sums32.size() < total / 32) buffers.sums32.resize(total / 32);
  const uint64_t quants_at = format == ActivationFormat::Q8_0 ? 2 : 4;
  for (int64_t t = 0; t < n_rows; ++t) {
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* p = quantized + static_cast<uint64_t>(t) * row_bytes + static_cast<uint64_t>(b) * block_bytes;
      const int64_t i = t * n_blocks + b;
      float d;
      if (q8_k) {
        std::memcpy(&d, p, 4);
        int16_t sums16[16];
        std::memcpy(sums16, p + kQ8_KBsums, sizeof sums16);
        for (int j = 0; j < 8; ++j) buffers.sums32[static_cast<size_t>(i * 8 + j)] = static_cast<int16_t>(sums16[2 * j] + sums16[2 * j + 1]);
      } else {
        d = load_half(p);
        if (q8_1) buffers.sums[static_cast<size_t>(i)] = load_half(p + 2);
      }
      buffers.scales[static_cast<size_t>(i)] = d;
      uint8_t* u = buffers.quants.data() + t * n_in + b * block;
      for (int64_t k = 0; k < block; ++k) u[k] = static_cast<uint8_t>(p[quants_at + k] ^ 0x80);  // q + 128
    }
  }
  return {n_rows, n_in, buffers.quants.data(), buffers.scales.data(), q8_1 ? buffers.sums.data() : nullptr,
          q8_k ? buffers.sums32.data() : nullptr};
}

TiledKernel tiled_kernel(TensorType weight_type, KernelLevel level, WeightLayout layout) {
#if TILLER_TILED_KERNELS
  if (layout != WeightLayout::Gguf) {
    if (weight_type != interleaved_type(layout)) return nullptr;
    const bool q4 = layout == WeightLayout::Q4_KInterleaved;
    if (level == KernelLevel::Avx512Vnni) return q4 ? tiled_k<Q4_KInterleaved> : tiled_k<Q6_KInterleaved>;
    if (level == KernelLevel::Avx2Tiled) return q4 ? tiled_k_avx2<Q4_KInterleaved> : tiled_k_avx2<Q6_KInterleaved>;
    return nullptr;
  }
  if (level == KernelLevel::Avx512Vnni) {
    switch (weight_type) {
      case TensorType::Q4_0: return tiled_32<Q4_0>;
      case TensorType::Q4_1: return tiled_32<Q4_1>;
      case TensorType::Q5_0: return tiled_32<Q5_0>;
      case TensorType::Q5_1: return tiled_32<Q5_1>;
      case TensorType::Q8_0: return tiled_32<Q8_0>;
      case TensorType::Q4_K: return tiled_k<Q4_K>;
      case TensorType::Q5_K: return tiled_k<Q5_K>;
      case TensorType::Q6_K: return tiled_k<Q6_K>;
      default: return nullptr;
    }
  }
  if (level == KernelLevel::Avx2Tiled) {
    switch (weight_type) {
      case TensorType::Q4_0: return tiled_32_avx2<Q4_0>;
      case TensorType::Q4_1: return tiled_32_avx2<Q4_1>;
      case TensorType::Q5_0: return tiled_32_avx2<Q5_0>;
      case TensorType::Q5_1: return tiled_32_avx2<Q5_1>;
      case TensorType::Q4_K: return tiled_k_avx2<Q4_K>;
      case TensorType::Q5_K: return tiled_k_avx2<Q5_K>;
      case TensorType::Q8_0: return tiled_32_avx2<Q8_0>;
      case TensorType::Q6_K: return tiled_k_avx2<Q6_K>;
      default: return nullptr;
    }
  }
  return nullptr;
#else
  (void)weight_type;
  (void)level;
  (void)layout;
  return nullptr;
#endif
}

}  // namespace tiller::ops
