// The steps a block is built from, over one chunk of rows, and the two block
// shapes the families use. A family's block function reads like its paper:
// hook points, norms, attention, feed-forward, residual adds, in order.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/family.h"
#include "model/model_weights.h"
#include "ops/ops.h"
#include "tiller/hooks.h"
#include "tiller/model_config.h"
#include "tiller/thread_pool.h"

namespace tiller {

// The named activations of one chunk, [n_batch x width] each, allocated once per session.
struct Activations {
  std::vector<float> residual, normed, q, k, v, projected, gate, up;  // q: then the attention's output
  std::vector<uint8_t> hidden_quantized;  // a prompt's FFN hidden rows for the down projection
  std::vector<float> scores;           // attention scores, n_ctx per thread
  std::vector<int32_t> positions;      // each row's position (RoPE, learned positions, hooks)
  std::vector<int32_t> logit_rows;     // rows of the chunk whose logits are wanted
  std::vector<int32_t> sequence_ends;  // decode_packed: the last slot of each sequence
  std::vector<int32_t> slots;          // decode_step: each row's cache slot
  std::vector<int32_t> visible_from;   // each row's first visible cache slot (its sequence's region)
};

// What every block of one chunk shares. The session fills it once per chunk.
struct ChunkContext {
  const ModelConfig& config;
  const FamilyTraits& traits;
  const ModelWeights& weights;
  Activations& a;
  int64_t n_rows;                 // rows of this chunk
  int64_t first_slot;             // the cache slot of its first row (rows follow it), unless row_slots
  const int32_t* first_visible;   // each row's first visible cache slot (packed passes, sequences past
                                  // the first); nullptr: slot 0
  uint16_t* k_cache;              // [n_layer][n_ctx][n_head_kv * head_dim] f16
  uint16_t* v_cache;
  int64_t n_ctx;                  // cache slots per layer (every sequence's)
  const float* rope_factors;      // per-pair divisors chosen for the session, or nullptr
  ThreadPool& pool;
  KernelLevel level;
  // Runs the hooks and the observer at a point: call(self, layer, point, rows).
  void (*call_hooks)(void* self, int64_t layer, HookPoint point, std::vector<float>& rows);
  void* hooks_self;
  const int32_t* row_slots = nullptr;  // decode_step: each row's own cache slot
  bool independent_rows = false;       // decode_step: matmuls compute each row as if alone (ops/matmul.h)
};

// A prompt chunk's FFN goes kFfnBlockColumns hidden units at a time
// (BlockPass::feed_forward), with the same results as in one pass, when the chunk
// has more than kFfnBlockMinRows rows, n_ff is a whole number of 256-unit
// quantization blocks (the last FFN block may be shorter) and the down projection
// has integer kernels.
inline constexpr int64_t kFfnBlockColumns = 1024;
inline constexpr int64_t kFfnBlockMinRows = 64;
bool ffn_in_blocks(const ModelConfig& config, const LayerWeights& weights, int64_t n_rows);
// What a session's Activations need for chunks of up to n_batch rows: floats in
// each of gate and up, bytes in hidden_quantized.
size_t ffn_buffer_floats(const ModelConfig& config, const ModelWeights& weights, int64_t n_batch);
size_t ffn_quantized_bytes(const ModelConfig& config, const ModelWeights& weights, int64_t n_batch);

class BlockPass {
 public:
  BlockPass(const ChunkContext& chunk, int64_t layer);

  // The residual stream and the two scratch activations the steps pass along.
  std::vector<float>& residual() { return c_.a.residual; }
  std::vector<float>& normed() { return c_.a.normed; }
  std::vector<float>& projected() { return c_.a.projected; }
  const LayerWeights& weights() const { return w_; }

  // The hooks registered at this block's `point` see (and may change) `rows`.
  void at(HookPoint point, std::vector<float>& rows) { c_.call_hooks(c_.hooks_self, layer_, point, rows); }
  // The family's norm of `in` into `out` (may be the same buffer).
  void norm(const NormWeights& weights, std::vector<float>& in, std::vector<float>& out);
  // Self-attention of normed() into projected(): q, k, v (and their biases), the
  // q/k norms where the family has them, rope, the cache, attention, the output
  // projection (and its bias).
  void attention();
  // The MLP of normed() into projected().
  void feed_forward();
  void add_to_residual(const std::vector<float>& from);

 private:
  template <typename Body>
  void for_rows(Body&& body);
  // Hidden units [first, first + columns) of normed() into gate: the gate and up
  // rows given (those units' rows of the layer's), the activation.
  void hidden_units(const ops::WeightMatrix& gate, const ops::WeightMatrix& up, int64_t first, int64_t columns);
  // Each row of `width` (of the chunk's rows, `width` apart) plus bias[first .. first + width).
  void add_bias(float* rows, const std::vector<float>& bias, int64_t width, int64_t first = 0);
  const ChunkContext& c_;
  const ModelConfig& config_;
  const LayerWeights& w_;
  int64_t layer_;
};

// Norm, attention, residual; norm, MLP, residual (llama, qwen2, qwen3, phi3, gpt2).
void pre_norm_block(BlockPass& pass);
// The same with each sub-layer's output normed again before its residual add
// (gemma2, gemma3).
void sandwich_norm_block(BlockPass& pass);

}  // namespace tiller
