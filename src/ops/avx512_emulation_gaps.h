// The AVX-512 intrinsics our kernels use that Debian 12's SIMDe (0.7.4) does not
// provide, written lane by lane for the emulation build only (see x86_simd.h).
// Each does what Intel's intrinsics guide says the instruction does; where the
// order of float additions is the compiler's choice (reduce_add), GCC's order
// is followed, so that emulated and real results can match bit for bit.
#pragma once

#if !defined(TILLER_EMULATE_AVX512)
#error "avx512_emulation_gaps.h belongs to the TILLER_EMULATE_AVX512 build only"
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace tiller::ops::emulated {

struct Floats16 {
  float v[16];
};
struct Ints16 {
  int32_t v[16];
};

inline Floats16 floats(simde__m512 a) {
  Floats16 out;
  simde_mm512_storeu_ps(out.v, a);
  return out;
}
inline Ints16 ints(simde__m512i a) {
  Ints16 out;
  simde_mm512_storeu_si512(out.v, a);
  return out;
}
inline simde__m512 vector(const Floats16& a) { return simde_mm512_loadu_ps(a.v); }
inline simde__m512i vector(const Ints16& a) { return simde_mm512_loadu_si512(a.v); }
inline bool lane_on(simde__mmask16 k, int i) { return ((k >> i) & 1u) != 0; }

inline simde__m512 mm512_undefined_ps() { return simde_mm512_setzero_ps(); }

// The aligned loads and stores fault on the hardware when the address is not a
// multiple of 64; SIMDe's are a memcpy, so they check it here.
inline void require_aligned(const void* p) {
  if (reinterpret_cast<uintptr_t>(p) % 64 != 0) __builtin_trap();
}
inline simde__m512 mm512_load_ps(const void* p) {
  require_aligned(p);
  return simde_mm512_loadu_ps(p);
}
inline simde__m512i mm512_load_si512(const void* p) {
  require_aligned(p);
  return simde_mm512_loadu_si512(p);
}
inline void mm512_store_ps(void* p, simde__m512 a) {
  require_aligned(p);
  simde_mm512_storeu_ps(p, a);
}
inline void mm512_store_si512(void* p, simde__m512i a) {
  require_aligned(p);
  simde_mm512_storeu_si512(p, a);
}

inline simde__m512 mm512_cvtepi32_ps(simde__m512i a) {
  const Ints16 in = ints(a);
  Floats16 out;
  for (int i = 0; i < 16; ++i) out.v[i] = static_cast<float>(in.v[i]);  // round to nearest, as MXCSR's default
  return vector(out);
}

// vpmovzx / vpmovsx to 32 bits: 16 lanes of Lane (the whole of `a`), each widened.
template <class Lane, class Vector>
inline simde__m512i widen_to_epi32(Vector a) {
  static_assert(sizeof(Vector) == 16 * sizeof(Lane));
  Lane in[16];
  std::memcpy(in, &a, sizeof in);
  Ints16 out;
  for (int i = 0; i < 16; ++i) out.v[i] = in[i];
  return vector(out);
}
inline simde__m512i mm512_cvtepu16_epi32(simde__m256i a) { return widen_to_epi32<uint16_t>(a); }
inline simde__m512i mm512_cvtepi16_epi32(simde__m256i a) { return widen_to_epi32<int16_t>(a); }
inline simde__m512i mm512_cvtepu8_epi32(simde__m128i a) { return widen_to_epi32<uint8_t>(a); }
inline simde__m512i mm512_cvtepi8_epi32(simde__m128i a) { return widen_to_epi32<int8_t>(a); }

// vpmovdw: the low 16 bits of each 32-bit lane.
inline simde__m256i mm512_cvtepi32_epi16(simde__m512i a) {
  const Ints16 in = ints(a);
  uint16_t out[16];
  for (int i = 0; i < 16; ++i) out[i] = static_cast<uint16_t>(static_cast<uint32_t>(in.v[i]));
  return simde_mm256_loadu_si256(out);
}

// Halves to floats and back through the 256-bit F16C instructions (this build
// requires F16C), so the rounding is the hardware's.
inline simde__m512 mm512_cvtph_ps(simde__m256i halves) {
  Floats16 out;
  _mm256_storeu_ps(out.v, _mm256_cvtph_ps(simde_mm256_extracti128_si256(halves, 0)));
  _mm256_storeu_ps(out.v + 8, _mm256_cvtph_ps(simde_mm256_extracti128_si256(halves, 1)));
  return vector(out);
}
template <int kRounding>
simde__m256i mm512_cvtps_ph(simde__m512 a) {
  const Floats16 in = floats(a);
  uint16_t out[16];
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm256_cvtps_ph(_mm256_loadu_ps(in.v), kRounding));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 8), _mm256_cvtps_ph(_mm256_loadu_ps(in.v + 8), kRounding));
  return simde_mm256_loadu_si256(out);
}

inline simde__m512 mm512_maskz_loadu_ps(simde__mmask16 k, const void* memory) {
  const auto* p = static_cast<const float*>(memory);
  Floats16 out{};
  for (int i = 0; i < 16; ++i)
    if (lane_on(k, i)) out.v[i] = p[i];  // lanes that are off are not read, as on the hardware
  return vector(out);
}
inline void mm512_mask_storeu_ps(void* memory, simde__mmask16 k, simde__m512 a) {
  const Floats16 in = floats(a);
  auto* p = static_cast<float*>(memory);
  for (int i = 0; i < 16; ++i)
    if (lane_on(k, i)) p[i] = in.v[i];
}

inline int32_t load_i32(const void* base, int32_t index, int scale) {
  int32_t value;
  std::memcpy(&value, static_cast<const char*>(base) + static_cast<int64_t>(index) * scale, sizeof value);
  return value;
}
inline simde__m512i mm512_mask_i32gather_epi32(simde__m512i source, simde__mmask16 k, simde__m512i index,
                                               const void* base, int scale) {
  const Ints16 at = ints(index);
  Ints16 out = ints(source);
  for (int i = 0; i < 16; ++i)
    if (lane_on(k, i)) out.v[i] = load_i32(base, at.v[i], scale);
  return vector(out);
}
inline simde__m512i mm512_i32gather_epi32(simde__m512i index, const void* base, int scale) {
  return mm512_mask_i32gather_epi32(simde_mm512_setzero_si512(), 0xffff, index, base, scale);
}
inline simde__m512 mm512_i32gather_ps(simde__m512i index, const void* base, int scale) {
  return simde_mm512_castsi512_ps(mm512_i32gather_epi32(index, base, scale));
}

// vscalefps: a x 2^floor(b) rounded once. SIMDe 0.7.4 forms 2^floor(b) first,
// which overflows for b = 128 where the product does not (e^88.4 came out as
// infinity), so this replaces it.
inline float scalef(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return a + b;
  if (std::isinf(b)) {
    if (b > 0) return a == 0 ? std::nanf("") : std::copysign(INFINITY, a);
    return std::isinf(a) ? std::nanf("") : std::copysign(0.0f, a);
  }
  return std::ldexp(a, static_cast<int>(std::clamp(std::floor(b), -1000.0f, 1000.0f)));
}
inline simde__m512 mm512_scalef_ps(simde__m512 a, simde__m512 b) {
  const Floats16 x = floats(a), y = floats(b);
  Floats16 out;
  for (int i = 0; i < 16; ++i) out.v[i] = scalef(x.v[i], y.v[i]);
  return vector(out);
}

// GCC 12's order for _mm512_reduce_add_ps: the upper 256 bits with the lower,
// then 128 with 128, then lanes 2,3 with 0,1, then lane 1 with lane 0 (a sum of
// two is the same either way round). clang's order may differ.
template <typename Op>
float reduce(simde__m512 a, Op op) {
  Floats16 x = floats(a);
  for (int width = 8; width >= 2; width /= 2)
    for (int i = 0; i < width; ++i) x.v[i] = op(x.v[i + width], x.v[i]);
  return op(x.v[0], x.v[1]);
}
inline float mm512_reduce_add_ps(simde__m512 a) {
  return reduce(a, [](float x, float y) { return x + y; });
}
// The same order; for max, which operand wins a tie of +0 and -0 or which NaN
// survives may differ from GCC's code. No kernel depends on either.
inline float mm512_reduce_max_ps(simde__m512 a) {
  return reduce(a, [](float x, float y) { return x > y ? x : y; });
}

}  // namespace tiller::ops::emulated

#undef _mm512_load_ps
#define _mm512_load_ps tiller::ops::emulated::mm512_load_ps
#undef _mm512_load_si512
#define _mm512_load_si512 tiller::ops::emulated::mm512_load_si512
#undef _mm512_store_ps
#define _mm512_store_ps tiller::ops::emulated::mm512_store_ps
#undef _mm512_store_si512
#define _mm512_store_si512 tiller::ops::emulated::mm512_store_si512
#undef _mm512_undefined_ps
#define _mm512_undefined_ps tiller::ops::emulated::mm512_undefined_ps
#undef _mm512_cvtepi32_ps
#define _mm512_cvtepi32_ps tiller::ops::emulated::mm512_cvtepi32_ps
#undef _mm512_cvtepu16_epi32
#define _mm512_cvtepu16_epi32 tiller::ops::emulated::mm512_cvtepu16_epi32
#undef _mm512_cvtepu8_epi32
#define _mm512_cvtepu8_epi32 tiller::ops::emulated::mm512_cvtepu8_epi32
#undef _mm512_cvtepi16_epi32
#define _mm512_cvtepi16_epi32 tiller::ops::emulated::mm512_cvtepi16_epi32
#undef _mm512_cvtepi8_epi32
#define _mm512_cvtepi8_epi32 tiller::ops::emulated::mm512_cvtepi8_epi32
#undef _mm512_cvtepi32_epi16
#define _mm512_cvtepi32_epi16 tiller::ops::emulated::mm512_cvtepi32_epi16
#undef _mm512_cvtph_ps
#define _mm512_cvtph_ps tiller::ops::emulated::mm512_cvtph_ps
#undef _mm512_cvtps_ph
#define _mm512_cvtps_ph(a, rounding) tiller::ops::emulated::mm512_cvtps_ph<(rounding)>(a)
#undef _mm512_maskz_loadu_ps
#define _mm512_maskz_loadu_ps tiller::ops::emulated::mm512_maskz_loadu_ps
#undef _mm512_mask_storeu_ps
#define _mm512_mask_storeu_ps tiller::ops::emulated::mm512_mask_storeu_ps
#undef _mm512_mask_i32gather_epi32
#define _mm512_mask_i32gather_epi32 tiller::ops::emulated::mm512_mask_i32gather_epi32
#undef _mm512_i32gather_epi32
#define _mm512_i32gather_epi32 tiller::ops::emulated::mm512_i32gather_epi32
#undef _mm512_i32gather_ps
#define _mm512_i32gather_ps tiller::ops::emulated::mm512_i32gather_ps
#undef _mm512_scalef_ps
#define _mm512_scalef_ps tiller::ops::emulated::mm512_scalef_ps
#undef _mm512_reduce_add_ps
#define _mm512_reduce_add_ps tiller::ops::emulated::mm512_reduce_add_ps
#undef _mm512_reduce_max_ps
#define _mm512_reduce_max_ps tiller::ops::emulated::mm512_reduce_max_ps
// SIMDe 0.7.4's alias takes the masked form's four arguments; its function is right.
#undef _mm512_madd_epi16
#define _mm512_madd_epi16 simde_mm512_madd_epi16
