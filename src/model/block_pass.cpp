#include "model/block_pass.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "ops/attention.h"
#include "ops/matmul.h"
#include "tiller/dequantize.h"

namespace tiller {

bool ffn_in_blocks(const ModelConfig& config, const LayerWeights& weights, int64_t n_rows) {
  // Blocks of whole 256-unit quantization blocks (the largest activation block).
  return n_rows > kFfnBlockMinRows && config.n_ff > kFfnBlockColumns && config.n_ff % 256 == 0 &&
         ops::takes_quantized_activations(weights.ffn_down.type);
}

size_t ffn_buffer_floats(const ModelConfig& config, const ModelWeights& weights, int64_t n_batch) {
  for (const LayerWeights& layer : weights.layers) {
    if (!ffn_in_blocks(config, layer, n_batch)) return static_cast<size_t>(n_batch * config.n_ff);
  }
  // Blocks for chunks of more than kFfnBlockMinRows rows, the whole width below.
  return static_cast<size_t>(std::max(n_batch * kFfnBlockColumns, std::min(n_batch, kFfnBlockMinRows) * config.n_ff));
}

size_t ffn_quantized_bytes(const ModelConfig& config, const ModelWeights& weights, int64_t n_batch) {
  uint64_t row_bytes = 0;
  for (const LayerWeights& layer : weights.layers) {
    if (ffn_in_blocks(config, layer, n_batch)) {
      row_bytes = std::max(row_bytes, ops::activation_row_bytes(ops::activation_format(layer.ffn_down.type), config.n_ff));
    }
  }
  return static_cast<size_t>(n_batch) * row_bytes;
}

BlockPass::BlockPass(const ChunkContext& chunk, int64_t layer)
    : c_(chunk), config_(chunk.config), w_(chunk.weights.layers[static_cast<size_t>(layer)]), layer_(layer) {}

// Row-wise work (norms, rope, the cache write, residual adds) split across the
// threads for prompts (+7% on Gemma's at 2 threads); generation's one row stays
// on this thread.
template <typename Body>
void BlockPass::for_rows(Body&& body) {
  ops::parallel_rows(c_.pool, c_.n_rows, [&](int64_t begin, int64_t end, int) { body(begin, end); });
}

void BlockPass::norm(const NormWeights& weights, std::vector<float>& in, std::vector<float>& out) {
  const int64_t width = config_.n_embd;
  const auto eps = static_cast<float>(config_.norm_eps);
  for_rows([&](int64_t begin, int64_t end) {
    if (c_.traits.norm == NormKind::Layer) {
      ops::layer_norm(in.data() + begin * width, weights.weight.data(), weights.bias.data(), end - begin, width, eps,
                      out.data() + begin * width);
    } else {
      ops::rms_norm(in.data() + begin * width, weights.weight.data(), end - begin, width, eps,
                    out.data() + begin * width);
    }
  });
}

void BlockPass::add_bias(float* rows, const std::vector<float>& bias, int64_t width, int64_t first) {
  if (bias.empty()) return;
  for_rows([&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      float* row = rows + t * width;
      for (int64_t i = 0; i < width; ++i) row[i] += bias[static_cast<size_t>(first + i)];
    }
  });
}

void BlockPass::add_to_residual(const std::vector<float>& from) {
  std::vector<float>& into = c_.a.residual;
  const int64_t width = config_.n_embd;
  for_rows([&](int64_t begin, int64_t end) {
    for (int64_t i = begin * width; i < end * width; ++i) into[static_cast<size_t>(i)] += from[static_cast<size_t>(i)];
  });
}

void BlockPass::attention() {
  const ModelConfig& c = config_;
  const FamilyTraits& traits = c_.traits;
  Activations& a = c_.a;
  const int64_t hd = c.head_dim, q_width = c.n_head * hd, kv_width = c.n_head_kv * hd;
  const auto eps = static_cast<float>(c.norm_eps);
  const int period = traits.sliding_window_period;
  const bool sliding = period > 0 && c.sliding_window && layer_ % period != period - 1;

  ops::RopeParams rope;
  rope.neox = traits.rope == RopeKind::Neox;
  rope.freq_base = static_cast<float>(sliding && c.rope_freq_base_sliding ? *c.rope_freq_base_sliding
                                                                          : c.rope_freq_base);
  // Scaling stretches the global context; local (sliding) blocks keep their positions.
  rope.freq_scale = sliding ? 1.0f : static_cast<float>(c.rope_freq_scale);
  rope.freq_factors = c_.rope_factors;
  rope.attn_factor = static_cast<float>(c.rope_attn_factor);

  {  // one parallel region for the three projections of the same input
    const std::array<const ops::WeightMatrix*, 3> qkv{&w_.attn_q, &w_.attn_k, &w_.attn_v};
    const std::array<float*, 3> outs{a.q.data(), a.k.data(), a.v.data()};
    ops::quantized_matmul_shared(qkv, a.normed.data(), c_.n_rows, outs, c_.pool, c_.level, c_.independent_rows);
  }
  add_bias(a.q.data(), w_.bias_q, q_width);
  add_bias(a.k.data(), w_.bias_k, kv_width);
  add_bias(a.v.data(), w_.bias_v, kv_width);

  uint16_t* k_layer = c_.k_cache + layer_ * c_.n_ctx * kv_width;
  uint16_t* v_layer = c_.v_cache + layer_ * c_.n_ctx * kv_width;
  const std::span<const int32_t> positions(a.positions.data(), static_cast<size_t>(c_.n_rows));
  const int64_t first_slot = c_.first_slot;
  const float scale = c.attention_scale > 0 ? static_cast<float>(c.attention_scale)
                                            : 1.0f / std::sqrt(static_cast<float>(hd));
  for_rows([&](int64_t begin, int64_t end) {
    float* q = a.q.data() + begin * q_width;
    float* k = a.k.data() + begin * kv_width;
    const int64_t rows = end - begin;
    if (!w_.attn_q_norm.empty()) {
      ops::rms_norm(q, w_.attn_q_norm.data(), rows * c.n_head, hd, eps, q);
      ops::rms_norm(k, w_.attn_k_norm.data(), rows * c.n_head_kv, hd, eps, k);
    }
    if (traits.rope != RopeKind::None) {
      const auto row_positions = positions.subspan(static_cast<size_t>(begin), static_cast<size_t>(rows));
      ops::rope(q, rows, c.n_head, hd, row_positions, rope);
      ops::rope(k, rows, c.n_head_kv, hd, row_positions, rope);
    }
    if (traits.scale_queries) {
      for (int64_t i = 0; i < rows * q_width; ++i) q[i] *= scale;
    }
    for (int64_t t = begin; t < end; ++t) {
      const int64_t slot = c_.row_slots != nullptr ? c_.row_slots[t] : first_slot + t;
      for (int64_t i = 0; i < kv_width; ++i) {
        k_layer[slot * kv_width + i] = fp32_to_fp16(a.k[static_cast<size_t>(t * kv_width + i)]);
        v_layer[slot * kv_width + i] = fp32_to_fp16(a.v[static_cast<size_t>(t * kv_width + i)]);
      }
    }
  });
  const ops::AttentionShape shape{c.n_head, c.n_head_kv, hd, static_cast<float>(c.attn_logit_softcap)};
  const int64_t window = sliding ? *c.sliding_window : 0;
  // The heads' outputs replace their queries in q (a prompt chunk's own buffer of that size).
  ops::causal_attention(a.q.data(), c_.n_rows, first_slot, {k_layer, v_layer}, shape, window,
                        traits.scale_queries ? 1.0f : scale, a.q.data(), a.scores.data(), c_.n_ctx, c_.pool, c_.level,
                        c_.first_visible, c_.row_slots);
  ops::matmul(w_.attn_output, a.q.data(), c_.n_rows, a.projected.data(), c_.pool, c_.level, c_.independent_rows);
  add_bias(a.projected.data(), w_.bias_output, c.n_embd);
}

// A prompt's FFN goes through the hidden units kFfnBlockColumns at a time: gate
// and up of every row over one block, the activation, and the block's quantized
// activations written into the rows the down projection reads, which then runs
// once over the whole width. Each activation block is quantized on its own, so
// this gives the bits of one pass over the whole width: the same results for any
// chunk size. The float hidden rows of a 512-row chunk of a 1B model took 2 x 512
// x 8192 floats (32 MiB) at once; a block takes an eighth of that.
void BlockPass::feed_forward() {
  const ModelConfig& c = config_;
  Activations& a = c_.a;
  const int64_t n = c_.n_rows;
  if (!ffn_in_blocks(c, w_, n)) {
    hidden_units(w_.ffn_gate, w_.ffn_up, 0, c.n_ff);
    ops::matmul(w_.ffn_down, a.gate.data(), n, a.projected.data(), c_.pool, c_.level, c_.independent_rows);
  } else {
    const ops::ActivationFormat format = ops::activation_format(w_.ffn_down.type);
    const uint64_t row_bytes = ops::activation_row_bytes(format, c.n_ff);
    for (int64_t first = 0; first < c.n_ff; first += kFfnBlockColumns) {
      const int64_t columns = std::min(kFfnBlockColumns, c.n_ff - first);  // the last may be shorter
      hidden_units(c_.traits.gated_ffn ? ops::output_rows(w_.ffn_gate, first, columns) : w_.ffn_gate,
                   ops::output_rows(w_.ffn_up, first, columns), first, columns);
      uint8_t* into = a.hidden_quantized.data() + ops::activation_row_bytes(format, first);
      ops::quantize_rows(format, a.gate.data(), n, columns, into, row_bytes, c_.pool, c_.level);
    }
    ops::quantized_matmul_quantized(w_.ffn_down, a.hidden_quantized.data(), n, a.projected.data(), c_.pool, c_.level,
                                    c_.independent_rows);
  }
  add_bias(a.projected.data(), w_.bias_down, c.n_embd);
}

void BlockPass::hidden_units(const ops::WeightMatrix& gate, const ops::WeightMatrix& up, int64_t first,
                             int64_t columns) {
  Activations& a = c_.a;
  const int64_t n = c_.n_rows;
  if (c_.traits.gated_ffn) {
    const std::array<const ops::WeightMatrix*, 2> gate_up{&gate, &up};
    const std::array<float*, 2> outs{a.gate.data(), a.up.data()};
    ops::quantized_matmul_shared(gate_up, a.normed.data(), n, outs, c_.pool, c_.level, c_.independent_rows);
  } else {
    ops::matmul(up, a.normed.data(), n, a.gate.data(), c_.pool, c_.level, c_.independent_rows);
    add_bias(a.gate.data(), w_.bias_up, columns, first);
  }
  // Element by element, so split across the threads for prompts (one row is too
  // little work to be worth waking them).
  const bool gated = c_.traits.gated_ffn;
  const bool gelu = c_.traits.activation == FfnActivation::GeluF16;
  auto activate_span = [&](int64_t begin, int64_t end) {
    float* gate_rows = a.gate.data() + begin * columns;
    const float* up_rows = a.up.data() + begin * columns;
    const int64_t count = (end - begin) * columns;
    if (!gated) {
      ops::gelu_f16(gate_rows, count);
    } else if (gelu) {
      ops::gelu_f16_times(gate_rows, up_rows, count, c_.level);
    } else {
      ops::silu_times(gate_rows, up_rows, count, c_.level);
    }
  };
  // Independent rows go one at a time: over several rows, the SIMD tail of one row
  // (n_ff not a multiple of the vector width) would be computed with the next.
  auto activate = [&](int64_t begin, int64_t end, int) {
    if (!c_.independent_rows) return activate_span(begin, end);
    for (int64_t r = begin; r < end; ++r) activate_span(r, r + 1);
  };
  if (n > 1) {
    c_.pool.parallel_for(n, activate);
  } else {
    activate(0, n, 0);
  }
}

void pre_norm_block(BlockPass& p) {
  const LayerWeights& w = p.weights();
  p.at(HookPoint::ResidPre, p.residual());
  p.norm(w.attn_norm, p.residual(), p.normed());
  p.attention();
  p.at(HookPoint::AttnOut, p.projected());
  p.add_to_residual(p.projected());
  p.at(HookPoint::ResidMid, p.residual());
  p.norm(w.ffn_norm, p.residual(), p.normed());
  p.feed_forward();
  p.at(HookPoint::MlpOut, p.projected());
  p.add_to_residual(p.projected());
  p.at(HookPoint::ResidPost, p.residual());
}

void sandwich_norm_block(BlockPass& p) {
  const LayerWeights& w = p.weights();
  p.at(HookPoint::ResidPre, p.residual());
  p.norm(w.attn_norm, p.residual(), p.normed());
  p.attention();
  p.norm(w.post_attention_norm, p.projected(), p.projected());
  p.at(HookPoint::AttnOut, p.projected());
  p.add_to_residual(p.projected());
  p.at(HookPoint::ResidMid, p.residual());
  p.norm(w.ffn_norm, p.residual(), p.normed());
  p.feed_forward();
  p.norm(w.post_ffw_norm, p.projected(), p.projected());
  p.at(HookPoint::MlpOut, p.projected());
  p.add_to_residual(p.projected());
  p.at(HookPoint::ResidPost, p.residual());
}

}  // namespace tiller
