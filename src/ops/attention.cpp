#include "ops/attention.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "ops/exp_avx512.h"
#include "ops/ops.h"
#include "tiller/dequantize.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include "ops/x86_simd.h"
#define TILLER_X86_ATTENTION 1
#else
#define TILLER_X86_ATTENTION 0
#endif

namespace tiller::ops {
namespace {

// How a query-key dot product becomes a score: times `scale`, then, when softcap > 0,
// squashed into (-softcap, softcap) by softcap * tanh(score / softcap) (Gemma 2's
// attention logit soft-capping, applied before the softmax as llama.cpp does).
struct ScoreScale {
  float scale = 1.0f;
  float softcap = 0.0f;
};

void cap_scores(float* scores, int64_t n, float softcap) {
  if (softcap <= 0.0f) return;
  for (int64_t i = 0; i < n; ++i) scores[i] = softcap * std::tanh(scores[i] / softcap);
}

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
                 int64_t pos, int64_t hd, ScoreScale score, float* scores, float* o) {
  const float* f16 = f16_table();
  thread_local std::vector<float> query, row;
  query.resize(static_cast<size_t>(hd));
  row.resize(static_cast<size_t>(hd));
  for (int64_t i = 0; i < hd; ++i) query[static_cast<size_t>(i)] = f16[fp32_to_fp16(q_head[i])];
  for (int64_t j = first; j <= pos; ++j) {
    const uint16_t* k = keys + j * kv_width;
    for (int64_t i = 0; i < hd; ++i) row[static_cast<size_t>(i)] = f16[k[i]];
    scores[j - first] = dot(query.data(), row.data(), hd, KernelLevel::Portable) * score.scale;
  }
  cap_scores(scores, pos - first + 1, score.softcap);
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
// and adds in the portable order; the dot products add their terms in another
// order, and the softmax takes e^x from exp_avx512 (a float step or two from
// libm's expf), so the results differ by float rounding. head_dim is a multiple
// of 16.
// GCC 12 warns that the intrinsics' own _mm512_undefined_ps() / _pd() "may be"
// or "is used uninitialized" when they are inlined here; a known false positive.
#if !defined(__clang__)  // clang has no such warning and rejects the name under -Werror
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
#define TILLER_AVX512 TILLER_TARGET_AVX512

TILLER_AVX512 inline __m512 load_halves(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

TILLER_AVX512 inline __m512 round_f16(__m512 x) {
  return _mm512_cvtph_ps(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

// softmax(x) over n scores, each then rounded to f16: the maximum and the sum in
// 16 lanes (the sum finished in double), e^x by exp_avx512.
TILLER_AVX512 void softmax_to_f16_avx512(float* x, int64_t n) {
  auto tail = [&](int64_t i) { return static_cast<__mmask16>((1u << (n - i)) - 1); };
  __m512 top = _mm512_set1_ps(-INFINITY);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) top = _mm512_max_ps(top, _mm512_loadu_ps(x + i));
  if (i < n) top = _mm512_mask_max_ps(top, tail(i), top, _mm512_maskz_loadu_ps(tail(i), x + i));
  const __m512 max = _mm512_set1_ps(_mm512_reduce_max_ps(top));
  __m512 sums = _mm512_setzero_ps();
  for (i = 0; i + 16 <= n; i += 16) {
    const __m512 e = exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(x + i), max));
    _mm512_storeu_ps(x + i, e);
    sums = _mm512_add_ps(sums, e);
  }
  if (i < n) {
    const __m512 e = exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail(i), x + i), max));
    _mm512_mask_storeu_ps(x + i, tail(i), e);
    sums = _mm512_mask_add_ps(sums, tail(i), sums, e);
  }
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, sums);
  double sum = 0.0;
  for (const float lane : lanes) sum += lane;
  const __m512 inverse = _mm512_set1_ps(static_cast<float>(1.0 / sum));
  for (i = 0; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, round_f16(_mm512_mul_ps(_mm512_loadu_ps(x + i), inverse)));
  if (i < n) {
    _mm512_mask_storeu_ps(x + i, tail(i), round_f16(_mm512_mul_ps(_mm512_maskz_loadu_ps(tail(i), x + i), inverse)));
  }
}

// G query heads that read the same key/value head, so that each cached row is
// converted once for all of them. Per head: the dot product with each key (one
// accumulator, chunk after chunk), the softmax, the weights rounded to f16, then
// the weighted sum of values (multiply, then add, in position order).
template <int G>
TILLER_AVX512 void attend_group_avx512(const float* q_heads, const uint16_t* keys, const uint16_t* values,
                                       int64_t kv_width, int64_t first, int64_t pos, int64_t hd, ScoreScale score,
                                       float* scores, int64_t scores_stride, float* out) {
  constexpr int64_t kMaxChunks = 16;  // head_dim up to 256
  const int64_t chunks = hd / 16, n = pos - first + 1;
  alignas(64) float query[G][kMaxChunks * 16];
  for (int h = 0; h < G; ++h) {
    for (int64_t c = 0; c < chunks; ++c) {
      _mm512_store_ps(query[h] + 16 * c, round_f16(_mm512_loadu_ps(q_heads + h * hd + 16 * c)));
    }
  }
  for (int64_t j = first; j <= pos; ++j) {
    const uint16_t* k = keys + j * kv_width;
    __m512 sums[G];
    for (int h = 0; h < G; ++h) sums[h] = _mm512_setzero_ps();
    for (int64_t c = 0; c < chunks; ++c) {
      const __m512 key = load_halves(k + 16 * c);
      for (int h = 0; h < G; ++h) sums[h] = _mm512_fmadd_ps(_mm512_load_ps(query[h] + 16 * c), key, sums[h]);
    }
    for (int h = 0; h < G; ++h) scores[h * scores_stride + j - first] = _mm512_reduce_add_ps(sums[h]) * score.scale;
  }
  for (int h = 0; h < G; ++h) {
    cap_scores(scores + h * scores_stride, n, score.softcap);
    softmax_to_f16_avx512(scores + h * scores_stride, n);
  }
  // Up to 16 / G chunks of every head's output stay in registers while the values stream by.
  constexpr int64_t kWidth = 16 / G > 4 ? 4 : 16 / G;
  for (int64_t c0 = 0; c0 < chunks; c0 += kWidth) {
    const int64_t width = std::min<int64_t>(kWidth, chunks - c0);
    __m512 acc[G][kWidth];
    for (int h = 0; h < G; ++h) {
      for (int64_t c = 0; c < kWidth; ++c) acc[h][c] = _mm512_setzero_ps();
    }
    for (int64_t j = first; j <= pos; ++j) {
      const uint16_t* v = values + j * kv_width + 16 * c0;
      __m512 value[kWidth];
      for (int64_t c = 0; c < width; ++c) value[c] = load_halves(v + 16 * c);
      for (int h = 0; h < G; ++h) {
        const __m512 weight = _mm512_set1_ps(scores[h * scores_stride + j - first]);
        for (int64_t c = 0; c < width; ++c) acc[h][c] = _mm512_add_ps(acc[h][c], _mm512_mul_ps(weight, value[c]));
      }
    }
    for (int h = 0; h < G; ++h) {
      for (int64_t c = 0; c < width; ++c) _mm512_storeu_ps(out + h * hd + 16 * (c0 + c), acc[h][c]);
    }
  }
}

TILLER_AVX512 void attend_heads_avx512(const float* q_heads, int heads, const uint16_t* keys, const uint16_t* values,
                                       int64_t kv_width, int64_t first, int64_t pos, int64_t hd, ScoreScale score,
                                       float* scores, int64_t scores_stride, float* out) {
  switch (heads) {
    case 1: attend_group_avx512<1>(q_heads, keys, values, kv_width, first, pos, hd, score, scores, scores_stride, out); break;
    case 2: attend_group_avx512<2>(q_heads, keys, values, kv_width, first, pos, hd, score, scores, scores_stride, out); break;
    case 3: attend_group_avx512<3>(q_heads, keys, values, kv_width, first, pos, hd, score, scores, scores_stride, out); break;
    default: attend_group_avx512<4>(q_heads, keys, values, kv_width, first, pos, hd, score, scores, scores_stride, out); break;
  }
}

// The same with AVX2 and F16C, 8 lanes, for CPUs without AVX-512: the portable
// softmax (libm's expf), the weights rounded to f16 by vcvtps2ph, and the dot
// products and weighted sums as in attend_group_avx512. head_dim is a multiple of 8.
#define TILLER_AVX2_ATTENTION __attribute__((target("avx2,fma,f16c")))

TILLER_AVX2_ATTENTION inline __m256 load_halves_avx2(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

TILLER_AVX2_ATTENTION inline __m256 round_f16_avx2(__m256 x) {
  return _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

TILLER_AVX2_ATTENTION inline float sum_lanes_avx2(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

TILLER_AVX2_ATTENTION void softmax_to_f16_avx2(float* x, int64_t n) {
  softmax(x, n);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, round_f16_avx2(_mm256_loadu_ps(x + i)));
  for (; i < n; ++i) x[i] = round_to_f16(x[i]);
}

template <int G>
TILLER_AVX2_ATTENTION void attend_group_avx2(const float* q_heads, const uint16_t* keys, const uint16_t* values,
                                             int64_t kv_width, int64_t first, int64_t pos, int64_t hd, ScoreScale score,
                                             float* scores, int64_t scores_stride, float* out) {
  constexpr int64_t kMaxChunks = 32;  // head_dim up to 256
  const int64_t chunks = hd / 8, n = pos - first + 1;
  alignas(32) float query[G][kMaxChunks * 8];
  for (int h = 0; h < G; ++h) {
    for (int64_t c = 0; c < chunks; ++c) {
      _mm256_store_ps(query[h] + 8 * c, round_f16_avx2(_mm256_loadu_ps(q_heads + h * hd + 8 * c)));
    }
  }
  for (int64_t j = first; j <= pos; ++j) {
    const uint16_t* k = keys + j * kv_width;
    __m256 sums[G];
    for (int h = 0; h < G; ++h) sums[h] = _mm256_setzero_ps();
    for (int64_t c = 0; c < chunks; ++c) {
      const __m256 key = load_halves_avx2(k + 8 * c);
      for (int h = 0; h < G; ++h) sums[h] = _mm256_fmadd_ps(_mm256_load_ps(query[h] + 8 * c), key, sums[h]);
    }
    for (int h = 0; h < G; ++h) scores[h * scores_stride + j - first] = sum_lanes_avx2(sums[h]) * score.scale;
  }
  for (int h = 0; h < G; ++h) {
    cap_scores(scores + h * scores_stride, n, score.softcap);
    softmax_to_f16_avx2(scores + h * scores_stride, n);
  }
  // G x kWidth accumulators, kWidth value chunks and a weight: at most 13 of 16 registers.
  constexpr int64_t kWidth = G == 1 ? 6 : G == 2 ? 4 : G == 3 ? 3 : 2;
  for (int64_t c0 = 0; c0 < chunks; c0 += kWidth) {
    const int64_t width = std::min<int64_t>(kWidth, chunks - c0);
    __m256 acc[G][kWidth];
    for (int h = 0; h < G; ++h) {
      for (int64_t c = 0; c < kWidth; ++c) acc[h][c] = _mm256_setzero_ps();
    }
    for (int64_t j = first; j <= pos; ++j) {
      const uint16_t* v = values + j * kv_width + 8 * c0;
      __m256 value[kWidth];
      for (int64_t c = 0; c < width; ++c) value[c] = load_halves_avx2(v + 8 * c);
      for (int h = 0; h < G; ++h) {
        const __m256 weight = _mm256_set1_ps(scores[h * scores_stride + j - first]);
        for (int64_t c = 0; c < width; ++c) acc[h][c] = _mm256_add_ps(acc[h][c], _mm256_mul_ps(weight, value[c]));
      }
    }
    for (int h = 0; h < G; ++h) {
      for (int64_t c = 0; c < width; ++c) _mm256_storeu_ps(out + h * hd + 8 * (c0 + c), acc[h][c]);
    }
  }
}

TILLER_AVX2_ATTENTION void attend_heads_avx2(const float* q_heads, int heads, const uint16_t* keys,
                                             const uint16_t* values, int64_t kv_width, int64_t first, int64_t pos,
                                             int64_t hd, ScoreScale score, float* scores, int64_t scores_stride,
                                             float* out) {
  switch (heads) {
    case 1: attend_group_avx2<1>(q_heads, keys, values, kv_width, first, pos, hd, score, scores, scores_stride, out); break;
    case 2: attend_group_avx2<2>(q_heads, keys, values, kv_width, first, pos, hd, score, scores, scores_stride, out); break;
    case 3: attend_group_avx2<3>(q_heads, keys, values, kv_width, first, pos, hd, score, scores, scores_stride, out); break;
    default: attend_group_avx2<4>(q_heads, keys, values, kv_width, first, pos, hd, score, scores, scores_stride, out); break;
  }
}
#endif

// Up to kMaxHeads query heads of one key/value head at a time; scores holds
// `heads` rows of scores_stride floats.
constexpr int kMaxHeads = kAttentionScoreRows;
using AttendHeads = void (*)(const float* q_heads, int heads, const uint16_t* keys, const uint16_t* values,
                             int64_t kv_width, int64_t first, int64_t pos, int64_t hd, ScoreScale score, float* scores,
                             int64_t scores_stride, float* out);

void attend_heads(const float* q_heads, int heads, const uint16_t* keys, const uint16_t* values, int64_t kv_width,
                  int64_t first, int64_t pos, int64_t hd, ScoreScale score, float* scores, int64_t, float* out) {
  for (int h = 0; h < heads; ++h) attend_head(q_heads + h * hd, keys, values, kv_width, first, pos, hd, score, scores, out + h * hd);
}

// The level's kernel where the head size suits it, else the next level down's.
AttendHeads pick_kernel(int64_t hd, KernelLevel level) {
#if TILLER_X86_ATTENTION
  if (level >= KernelLevel::Avx512Vnni && hd % 16 == 0 && hd <= 256) return attend_heads_avx512;
  if (level >= KernelLevel::Avx2 && hd % 8 == 0 && hd <= 256) return attend_heads_avx2;
#endif
  (void)hd;
  (void)level;
  return attend_heads;
}

}  // namespace

float round_to_f16(float x) { return f16_table()[fp32_to_fp16(x)]; }

void causal_attention(const float* q, int64_t n_tokens, int64_t first_position, KvCacheView cache,
                      const AttentionShape& shape, int64_t window, float scale, float* out, float* scores_scratch,
                      int64_t scores_stride, ThreadPool& pool, KernelLevel level, const int32_t* first_visible,
                      const int32_t* row_slots) {
  const int64_t hd = shape.head_dim, q_width = shape.n_head * hd, kv_width = shape.n_head_kv * hd;
  const int64_t group = shape.n_head / shape.n_head_kv;
  const AttendHeads attend = pick_kernel(hd, level);
  // Work items: a token and up to kMaxHeads query heads that share a key/value head.
  const int64_t parts = (group + kMaxHeads - 1) / kMaxHeads, per_token = shape.n_head_kv * parts;
  // A token's cost grows with its position, so the tokens are dealt first, last,
  // second, second to last...: every contiguous share of the items the pool hands
  // a thread then holds about the same work.
  const ScoreScale score{scale, shape.softcap};
  pool.parallel_for(n_tokens * per_token, [&](int64_t begin, int64_t end, int thread) {
    float* scores = scores_scratch + thread * kAttentionScoreRows * scores_stride;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t turn = item / per_token, kv_head = item % per_token / parts, part = item % parts;
      const int64_t t = turn % 2 == 0 ? turn / 2 : n_tokens - 1 - turn / 2;
      const int64_t pos = row_slots != nullptr ? row_slots[t] : first_position + t;
      const int64_t start = first_visible != nullptr ? first_visible[t] : 0;
      const int64_t first = window > 0 && pos - window + 1 > start ? pos - window + 1 : start;
      const int64_t head = kv_head * group + part * kMaxHeads;
      const int heads = static_cast<int>(std::min<int64_t>(kMaxHeads, group - part * kMaxHeads));
      attend(q + t * q_width + head * hd, heads, cache.keys + kv_head * hd, cache.values + kv_head * hd, kv_width,
             first, pos, hd, score, scores, scores_stride, out + t * q_width + head * hd);
    }
  });
}

}  // namespace tiller::ops
