// Causal self-attention over an f16 key/value cache, with no knowledge of any model.
#pragma once

#include <cstdint>

#include "tiller/engine.h"
#include "tiller/thread_pool.h"

namespace tiller::ops {

struct AttentionShape {
  int64_t n_head = 0;     // query heads
  int64_t n_head_kv = 0;  // key/value heads; query head h reads kv head h / (n_head / n_head_kv)
  int64_t head_dim = 0;
  float softcap = 0.0f;   // > 0: scores become softcap * tanh(score / softcap) before the softmax
};

// The key/value cache of one block: row p holds position p, n_head_kv * head_dim
// halves wide. Stored as f16, as llama.cpp stores its cache by default: half the
// memory, and the same rounding as the reference.
struct KvCacheView {
  const uint16_t* keys = nullptr;
  const uint16_t* values = nullptr;
};

// For each of n_tokens query rows at positions first_position + t: softmax over
// the cached positions j with max(0, p - window + 1) <= j <= p of scale * q.k_j,
// then the weighted sum of v_j. out is [n_tokens x n_head * head_dim].
// As in llama.cpp's CPU path, the query and the attention weights are rounded to
// f16 before their products with the f16 cache, so both engines see the same numbers.
// scores is scratch space of pool.size() x kAttentionScoreRows x scores_stride
// floats, scores_stride at least first_position + n_tokens (the session's context
// size): query heads that share a key/value head are taken up to
// kAttentionScoreRows at a time.
// first_visible, when given ([n_tokens]), is the first cache row each query row may
// see: packed sequences share the cache, and row t of a sequence starting at slot s
// attends to rows max(s, p - window + 1) .. p only (block-diagonal causal attention;
// p - s is then the row's position within its sequence, so the window is per sequence).
// row_slots, when given ([n_tokens]), is each query row's own cache slot p in place of
// first_position + t: rows of different sequences, each in its own region of the
// cache, decoded in one pass (with first_visible the start of each row's region).
// The kernel is the level's (tiller/engine.h): Portable converts the cache through a
// table and takes libm's e^x; Avx2 and Avx2Tiled convert 8 values per instruction
// (F16C), with the portable softmax; Avx512Vnni 16, with exp_avx512's e^x. Head
// sizes a kernel does not take (not a multiple of its width, or above 256) go to the
// level below's.
// out may be q itself: each kernel reads its query heads before it writes their
// outputs, and no head reads another's query.
inline constexpr int64_t kAttentionScoreRows = 4;
void causal_attention(const float* q, int64_t n_tokens, int64_t first_position, KvCacheView cache,
                      const AttentionShape& shape, int64_t window, float scale, float* out, float* scores,
                      int64_t scores_stride, ThreadPool& pool, KernelLevel level,
                      const int32_t* first_visible = nullptr, const int32_t* row_slots = nullptr);

// Rounds x to the nearest f16 and back (ties to even).
float round_to_f16(float x);

}  // namespace tiller::ops
