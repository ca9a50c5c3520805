#include "ops/attention.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "ops/ops.h"
#include "tiller/cpu_features.h"
#include "tiller/dequantize.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define TILLER_X86_ATTENTION 1
#else
#define TILLER_X86_ATTENTION 0
#endif

namespace tiller::ops {
namespace {

// Every f16 value as a float: one load instead of bit manipulation per element.
const float* f16_table() {
  static const std::vector<float> table = [] {
    std::vector<float> values(65536);
    for (uint32_t bits = 0; bits < 65536; ++bits) values[bits] = fp16_to_fp32(static_cast<uint16_t>(bits));
    return values;
  }();
  return table.data();
}

// One query head against the cache, the portable way: f16 values through the table.
void attend_head(const float* q_head, const uint16_t* keys, const uint16_t* values, int64_t kv_width, int64_t first,
                 int64_t pos, int64_t hd, float scale, float* scores, float* o) {
  const float* f16 = f16_table();
  thread_local std::vector<float> query, row;
  query.resize(static_cast<size_t>(hd));
  row.resize(static_cast<size_t>(hd));
  for (int64_t i = 0; i < hd; ++i) query[static_cast<size_t>(i)] = f16[fp32_to_fp16(q_head[i])];
  for (int64_t j = first; j <= pos; ++j) {
    const uint16_t* k = keys + j * kv_width;
    for (int64_t i = 0; i < hd; ++i) row[static_cast<size_t>(i)] = f16[k[i]];
    scores[j - first] = dot(query.data(), row.data(), hd) * scale;
  }
  softmax(scores, pos - first + 1);
  std::fill(o, o + hd, 0.0f);
  for (int64_t j = first; j <= pos; ++j) {
    const float weight = f16[fp32_to_fp16(scores[j - first])];
    const uint16_t* v = values + j * kv_width;
    for (int64_t i = 0; i < hd; ++i) o[i] += weight * f16[v[i]];
  }
}

#if TILLER_X86_ATTENTION
// The same with AVX-512: 16 halves converted per instruction (exactly, as the
// table does), the query rounded to f16 by a round trip through vcvtps2ph (to
// nearest, ties to even, as fp32_to_fp16). The weighted sum of values multiplies
// and adds in the portable order, so it gives the same bits; the dot products add
// their terms in another order (float rounding). head_dim is a multiple of 16.
// GCC 12 warns that the intrinsics' own _mm512_undefined_ps() "may be used
// uninitialized" when they are inlined here; a known false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define TILLER_AVX512 __attribute__((target("avx512f,avx2,fma,f16c")))

TILLER_AVX512 inline __m512 load_halves(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

TILLER_AVX512 inline __m512 round_f16(__m512 x) {
  return _mm512_cvtph_ps(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

TILLER_AVX512 void attend_head_avx512(const float* q_head, const uint16_t* keys, const uint16_t* values,
                                      int64_t kv_width, int64_t first, int64_t pos, int64_t hd, float scale,
                                      float* scores, float* o) {
  constexpr int64_t kMaxChunks = 16;  // head_dim up to 256 keeps the query in registers
  const int64_t chunks = hd / 16;
  __m512 query[kMaxChunks];
  for (int64_t c = 0; c < chunks; ++c) query[c] = round_f16(_mm512_loadu_ps(q_head + 16 * c));
  for (int64_t j = first; j <= pos; ++j) {
    const uint16_t* k = keys + j * kv_width;
    __m512 sum0 = _mm512_mul_ps(query[0], load_halves(k));
    __m512 sum1 = _mm512_setzero_ps();
    for (int64_t c = 1; c + 1 < chunks; c += 2) {
      sum1 = _mm512_fmadd_ps(query[c], load_halves(k + 16 * c), sum1);
      sum0 = _mm512_fmadd_ps(query[c + 1], load_halves(k + 16 * (c + 1)), sum0);
    }
    if (chunks % 2 == 0) sum1 = _mm512_fmadd_ps(query[chunks - 1], load_halves(k + 16 * (chunks - 1)), sum1);
    scores[j - first] = _mm512_reduce_add_ps(_mm512_add_ps(sum0, sum1)) * scale;
  }
  softmax(scores, pos - first + 1);
  // Weights rounded to f16, 16 at a time.
  int64_t n = pos - first + 1, i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(scores + i, round_f16(_mm512_loadu_ps(scores + i)));
  if (i < n) {
    const auto mask = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(scores + i, mask, round_f16(_mm512_maskz_loadu_ps(mask, scores + i)));
  }
  // Four chunks of the output at a time stay in registers while the values stream by.
  for (int64_t c0 = 0; c0 < chunks; c0 += 4) {
    const int64_t width = std::min<int64_t>(4, chunks - c0);
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t j = first; j <= pos; ++j) {
      const __m512 weight = _mm512_set1_ps(scores[j - first]);
      const uint16_t* v = values + j * kv_width + 16 * c0;
      for (int64_t c = 0; c < width; ++c) acc[c] = _mm512_add_ps(acc[c], _mm512_mul_ps(weight, load_halves(v + 16 * c)));
    }
    for (int64_t c = 0; c < width; ++c) _mm512_storeu_ps(o + 16 * (c0 + c), acc[c]);
  }
}
#endif

using AttendHead = void (*)(const float* q_head, const uint16_t* keys, const uint16_t* values, int64_t kv_width,
                            int64_t first, int64_t pos, int64_t hd, float scale, float* scores, float* o);

AttendHead pick_kernel(int64_t hd) {
#if TILLER_X86_ATTENTION
  const CpuFeatures& f = cpu_features();
  if (f.avx512f && f.avx2 && f.fma && f.f16c && hd % 16 == 0 && hd <= 256) return attend_head_avx512;
#endif
  (void)hd;
  return attend_head;
}

}  // namespace

float round_to_f16(float x) { return f16_table()[fp32_to_fp16(x)]; }

void causal_attention(const float* q, int64_t n_tokens, int64_t first_position, KvCacheView cache,
                      const AttentionShape& shape, int64_t window, float scale, float* out, float* scores_scratch,
                      int64_t scores_stride, ThreadPool& pool) {
  const int64_t hd = shape.head_dim, q_width = shape.n_head * hd, kv_width = shape.n_head_kv * hd;
  const int64_t group = shape.n_head / shape.n_head_kv;
  const AttendHead attend = pick_kernel(hd);
  // A token's cost grows with its position, so the tokens are dealt first, last,
  // second, second to last...: every contiguous share of the items the pool hands
  // a thread then holds about the same work.
  pool.parallel_for(n_tokens * shape.n_head, [&](int64_t begin, int64_t end, int thread) {
    float* scores = scores_scratch + thread * scores_stride;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t turn = item / shape.n_head, head = item % shape.n_head, kv_head = head / group;
      const int64_t t = turn % 2 == 0 ? turn / 2 : n_tokens - 1 - turn / 2;
      const int64_t pos = first_position + t;
      const int64_t first = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
      attend(q + t * q_width + head * hd, cache.keys + kv_head * hd, cache.values + kv_head * hd, kv_width, first,
             pos, hd, scale, scores, out + t * q_width + head * hd);
    }
  });
}

}  // namespace tiller::ops
