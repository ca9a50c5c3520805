#include "ops/attention.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "ops/ops.h"
#include "tiller/dequantize.h"

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

}  // namespace

float round_to_f16(float x) { return f16_table()[fp32_to_fp16(x)]; }

void causal_attention(const float* q, int64_t n_tokens, int64_t first_position, KvCacheView cache,
                      const AttentionShape& shape, int64_t window, float scale, float* out, float* scores_scratch,
                      int64_t scores_stride, ThreadPool& pool, const int32_t* first_visible) {
  const int64_t hd = shape.head_dim, q_width = shape.n_head * hd, kv_width = shape.n_head_kv * hd;
  const int64_t group = shape.n_head / shape.n_head_kv;
  const float* f16 = f16_table();
  pool.parallel_for(n_tokens * shape.n_head, [&](int64_t begin, int64_t end, int thread) {
    float* scores = scores_scratch + thread * scores_stride;
    thread_local std::vector<float> query, row;
    query.resize(static_cast<size_t>(hd));
    row.resize(static_cast<size_t>(hd));
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / shape.n_head, head = item % shape.n_head, kv_head = head / group;
      const int64_t pos = first_position + t;
      const int64_t start = first_visible != nullptr ? first_visible[t] : 0;
      const int64_t first = window > 0 && pos - window + 1 > start ? pos - window + 1 : start;
      const float* q_head = q + t * q_width + head * hd;
      for (int64_t i = 0; i < hd; ++i) query[static_cast<size_t>(i)] = round_to_f16(q_head[i]);
      for (int64_t j = first; j <= pos; ++j) {
        const uint16_t* k = cache.keys + j * kv_width + kv_head * hd;
        for (int64_t i = 0; i < hd; ++i) row[static_cast<size_t>(i)] = f16[k[i]];
        scores[j - first] = dot(query.data(), row.data(), hd) * scale;
      }
      softmax(scores, pos - first + 1);
      float* o = out + t * q_width + head * hd;
      std::fill(o, o + hd, 0.0f);
      for (int64_t j = first; j <= pos; ++j) {
        const float weight = round_to_f16(scores[j - first]);
        const uint16_t* v = cache.values + j * kv_width + kv_head * hd;
        for (int64_t i = 0; i < hd; ++i) o[i] += weight * f16[v[i]];
      }
    }
  });
}

}  // namespace tiller::ops
