// The forward pass. One block reads like the paper: norm, attention, residual,
// norm, MLP, residual; the architecture traits switch Gemma 3's extras on.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>

#include "model/model_weights.h"
#include "ops/attention.h"
#include "ops/ops.h"
#include "ops/matmul.h"
#include "tiller/dequantize.h"
#include "common/fail.h"
#include "tiller/model.h"
#include "tiller/thread_pool.h"

namespace tiller {

// The named activations of one chunk, [n_batch x width] each, allocated once.
struct Session::Buffers {
  std::vector<float> residual, normed, q, k, v, attention, projected, gate, up;
  std::vector<float> scores;  // attention scores, n_ctx per thread
  std::vector<int32_t> positions;      // each row's position (RoPE, hooks)
  std::vector<int32_t> logit_rows;     // rows of the chunk whose logits are wanted
  std::vector<int32_t> sequence_ends;  // decode_packed: the last slot of each sequence
};

int default_context_size(const ModelConfig& config) {
  constexpr int64_t kCap = 4096;
  return static_cast<int>(config.n_ctx_train > 0 ? std::min(config.n_ctx_train, kCap) : kCap);
}

Session::Session(std::shared_ptr<const Model> model, const SessionOptions& options)
    : Session(std::move(model), Engine::create({.n_threads = options.n_threads, .kernels = std::nullopt}), options) {}

Session::Session(std::shared_ptr<const Model> model, std::shared_ptr<Engine> engine, const SessionOptions& options)
    : model_(std::move(model)),
      n_ctx_(options.n_ctx > 0 ? options.n_ctx : default_context_size(model_->config())),
      n_batch_(options.n_batch),
      engine_(std::move(engine)),
      level_(engine_ ? engine_->kernel_level() : KernelLevel::Portable),
      pool_(engine_ ? &engine_->pool() : nullptr),
      buffers_(std::make_unique<Buffers>()) {
  if (!engine_) fail("a session needs an engine");
  const ModelConfig& c = model_->config();
  if (options.n_ctx < 0) fail("context size {} must be positive", options.n_ctx);
  if (n_ctx_ > (1 << 24)) fail("context size {} is beyond what Tiller supports (16M)", n_ctx_);
  if (n_batch_ <= 0) fail("batch size {} must be positive", n_batch_);
  n_batch_ = std::min(n_batch_, n_ctx_);
  const size_t cache = static_cast<size_t>(c.n_layer) * static_cast<size_t>(n_ctx_) *
                       static_cast<size_t>(c.n_head_kv * c.head_dim);
  k_cache_.reset(new uint16_t[cache]);
  v_cache_.reset(new uint16_t[cache]);

  Buffers& b = *buffers_;
  const auto rows = static_cast<size_t>(n_batch_);
  b.residual.resize(rows * static_cast<size_t>(c.n_embd));
  b.normed.resize(b.residual.size());
  b.projected.resize(b.residual.size());
  b.q.resize(rows * static_cast<size_t>(c.n_head * c.head_dim));
  b.attention.resize(b.q.size());
  b.k.resize(rows * static_cast<size_t>(c.n_head_kv * c.head_dim));
  b.v.resize(b.k.size());
  b.gate.resize(rows * static_cast<size_t>(c.n_ff));
  b.up.resize(b.gate.size());
  b.positions.resize(rows);
  b.logit_rows.resize(rows);
  b.scores.resize(static_cast<size_t>(pool_->size() * ops::kAttentionScoreRows) * static_cast<size_t>(n_ctx_));
  logits_.reserve(static_cast<size_t>(c.n_vocab));
  hooks_.resize(static_cast<size_t>(c.n_layer * kHookPointCount));
}

Session::~Session() = default;

HookHandle Session::add_hook(int layer, HookPoint point, HookFunction hook) {
  const int64_t n_layer = model_->config().n_layer;
  if (layer < 0 || layer >= n_layer) {
    fail("{}: block {} does not exist (the model has blocks 0 to {})", hook_name(layer, point), layer, n_layer - 1);
  }
  if (!hook) fail("{}: empty hook", hook_name(layer, point));
  auto& list = hooks_[static_cast<size_t>(layer * kHookPointCount + static_cast<int>(point))];
  list.push_back({next_handle_, std::move(hook)});
  return next_handle_++;
}

void Session::remove_hook(HookHandle handle) {
  for (auto& list : hooks_) {
    std::erase_if(list, [handle](const RegisteredHook& hook) { return hook.handle == handle; });
  }
}

void Session::clear_hooks() {
  for (auto& list : hooks_) list.clear();
}

void Session::rewind(int n) {
  if (n < 0 || n > n_past_) fail("cannot rewind to position {}: {} positions are filled", n, n_past_);
  n_past_ = n;
}

void Session::check_tokens(std::span<const TokenId> tokens) const {
  if (tokens.empty()) fail("decode needs at least one token");
  if (n_past_ + static_cast<int64_t>(tokens.size()) > n_ctx_) {
    fail("{} tokens do not fit: {} of the context's {} positions are used", tokens.size(), n_past_, n_ctx_);
  }
  const int64_t n_vocab = model_->config().n_vocab;
  for (const TokenId token : tokens) {
    if (token < 0 || token >= n_vocab) fail("token id {} is outside the vocabulary", token);
  }
}

std::span<const float> Session::decode(std::span<const TokenId> tokens, bool all_logits) {
  check_tokens(tokens);
  const size_t rows = all_logits ? tokens.size() : 1;
  logits_.resize(rows * static_cast<size_t>(model_->config().n_vocab));
  decode_chunks(tokens, all_logits, logits_.data());
  return logits_;
}

void Session::decode_into(std::span<const TokenId> tokens, std::span<float> logits) {
  check_tokens(tokens);
  const size_t wanted = tokens.size() * static_cast<size_t>(model_->config().n_vocab);
  if (logits.size() != wanted) {
    fail("decode_into: {} tokens need room for {} logits, not {}", tokens.size(), wanted, logits.size());
  }
  decode_chunks(tokens, true, logits.data());
}

void Session::decode_chunks(std::span<const TokenId> tokens, bool all_logits, float* logits) {
  const int64_t n_vocab = model_->config().n_vocab;
  Buffers& a = *buffers_;
  for (size_t start = 0; start < tokens.size(); start += static_cast<size_t>(n_batch_)) {
    const auto chunk = tokens.subspan(start, std::min(tokens.size() - start, static_cast<size_t>(n_batch_)));
    const auto n = static_cast<int32_t>(chunk.size());
    const bool last_chunk = start + chunk.size() == tokens.size();
    for (int32_t t = 0; t < n; ++t) a.positions[static_cast<size_t>(t)] = n_past_ + t;
    int32_t n_out = 0;
    if (all_logits) {
      for (int32_t t = 0; t < n; ++t) a.logit_rows[static_cast<size_t>(n_out++)] = t;
    } else if (last_chunk) {
      a.logit_rows[static_cast<size_t>(n_out++)] = n - 1;
    }
    float* out = all_logits ? logits + start * static_cast<size_t>(n_vocab) : logits;
    forward_chunk(chunk, nullptr, std::span(a.logit_rows.data(), static_cast<size_t>(n_out)), out);
  }
}

std::span<const float> Session::decode_packed(std::span<const TokenId> tokens, std::span<const int> lengths,
                                              PackedLogits which) {
  reset();
  check_tokens(tokens);
  int64_t total = 0;
  for (const int length : lengths) {
    if (length <= 0) fail("a packed sequence needs at least one token, not {}", length);
    total += length;
  }
  if (total != static_cast<int64_t>(tokens.size())) {
    fail("the packed sequences' lengths add up to {}, but {} tokens are given", total, tokens.size());
  }
  // Every row's position in its sequence and the cache slot its sequence starts at.
  packed_positions_.resize(tokens.size());
  packed_starts_.resize(tokens.size());
  std::vector<int32_t>& ends = buffers_->sequence_ends;  // the last row of each sequence, as slots
  ends.clear();
  int32_t slot = 0;
  for (const int length : lengths) {
    for (int32_t i = 0; i < length; ++i) {
      packed_positions_[static_cast<size_t>(slot + i)] = i;
      packed_starts_[static_cast<size_t>(slot + i)] = slot;
    }
    slot += length;
    ends.push_back(slot - 1);
  }
  const int64_t n_vocab = model_->config().n_vocab;
  const size_t rows = which == PackedLogits::All ? tokens.size() : which == PackedLogits::LastOfEach ? ends.size() : 0;
  logits_.resize(rows * static_cast<size_t>(n_vocab));
  Buffers& a = *buffers_;
  size_t next_end = 0;  // the next sequence whose last row's logits are due
  float* out = logits_.data();
  for (size_t start = 0; start < tokens.size(); start += static_cast<size_t>(n_batch_)) {
    const auto chunk = tokens.subspan(start, std::min(tokens.size() - start, static_cast<size_t>(n_batch_)));
    const auto n = static_cast<int32_t>(chunk.size());
    std::copy_n(packed_positions_.begin() + static_cast<std::ptrdiff_t>(start), n, a.positions.begin());
    int32_t n_out = 0;
    if (which == PackedLogits::All) {
      for (int32_t t = 0; t < n; ++t) a.logit_rows[static_cast<size_t>(n_out++)] = t;
    } else if (which == PackedLogits::LastOfEach) {
      while (next_end < ends.size() && ends[next_end] < static_cast<int32_t>(start) + n) {
        a.logit_rows[static_cast<size_t>(n_out++)] = ends[next_end++] - static_cast<int32_t>(start);
      }
    }
    forward_chunk(chunk, packed_starts_.data() + start, std::span(a.logit_rows.data(), static_cast<size_t>(n_out)),
                  out);
    out += static_cast<size_t>(n_out) * static_cast<size_t>(n_vocab);
  }
  reset();  // the cache holds a mixture of sequences: nothing to continue from
  return logits_;
}

void Session::forward_chunk(std::span<const TokenId> tokens, const int32_t* first_visible,
                            std::span<const int32_t> logit_rows, float* logits) {
  const ModelConfig& c = model_->config();
  const ArchitectureTraits& traits = model_->traits();
  const ModelWeights& w = model_->weights();
  Buffers& a = *buffers_;
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t n_embd = c.n_embd, hd = c.head_dim;
  const int64_t kv_width = c.n_head_kv * hd;
  const float eps = static_cast<float>(c.norm_eps);
  const float attention_scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const ops::AttentionShape shape{c.n_head, c.n_head_kv, hd};
  const std::span<const int32_t> positions(a.positions.data(), static_cast<size_t>(n));
  const int32_t* packed_positions = first_visible != nullptr ? a.positions.data() : nullptr;

  const float embedding_scale = traits.scale_embeddings ? std::sqrt(static_cast<float>(n_embd)) : 1.0f;
  for (int64_t t = 0; t < n; ++t) {
    float* row = a.residual.data() + t * n_embd;
    ops::weight_row(w.token_embd, tokens[static_cast<size_t>(t)], row);
    if (traits.scale_embeddings) {
      for (int64_t i = 0; i < n_embd; ++i) row[i] *= embedding_scale;
    }
  }

  auto hook = [&](int64_t layer, HookPoint point, std::vector<float>& rows) {
    const auto& registered = hooks_[static_cast<size_t>(layer * kHookPointCount + static_cast<int>(point))];
    if (!registered.empty()) {
      const HookRows view{static_cast<int>(layer), point, rows.data(), n, n_embd, n_past_, packed_positions};
      for (const RegisteredHook& h : registered) h.function(view);
    }
    if (observer_) observer_(static_cast<int>(layer), point, rows.data(), n, n_embd, n_past_);
  };
  // Row-wise work (norms, rope, the cache write, residual adds) split across the
  // threads for prompts (+7% on Gemma's at 2 threads); generation's one row stays
  // on this thread.
  auto for_rows = [&](auto&& body) {
    ops::parallel_rows(*pool_, n, [&](int64_t begin, int64_t end, int) { body(begin, end); });
  };
  auto norm_rows = [&](const float* x, const std::vector<float>& weight, float* out) {
    for_rows([&](int64_t begin, int64_t end) {
      ops::rms_norm(x + begin * n_embd, weight.data(), end - begin, n_embd, eps, out + begin * n_embd);
    });
  };
  auto add_in_place = [&](std::vector<float>& into, const std::vector<float>& from) {
    for_rows([&](int64_t begin, int64_t end) {
      for (int64_t i = begin * n_embd; i < end * n_embd; ++i) into[static_cast<size_t>(i)] += from[static_cast<size_t>(i)];
    });
  };

  for (int64_t layer = 0; layer < c.n_layer; ++layer) {
    const LayerWeights& L = w.layers[static_cast<size_t>(layer)];
    hook(layer, HookPoint::ResidPre, a.residual);
    const bool sliding = traits.sliding_window_period > 0 && c.sliding_window &&
                         (layer + 1) % traits.sliding_window_period != 0;
    ops::RopeParams rope;
    rope.neox = traits.neox_rope;
    rope.freq_base = static_cast<float>(sliding && c.rope_freq_base_sliding ? *c.rope_freq_base_sliding
                                                                            : c.rope_freq_base);
    // Scaling stretches the global context; local (sliding) blocks keep their positions.
    rope.freq_scale = sliding ? 1.0f : static_cast<float>(c.rope_freq_scale);
    rope.freq_factors = w.rope_freqs.empty() ? nullptr : w.rope_freqs.data();
    const int64_t window = sliding ? *c.sliding_window : 0;

    // Attention.
    norm_rows(a.residual.data(), L.attn_norm, a.normed.data());
    {  // one parallel region for the three projections of the same input
      const std::array<const ops::WeightMatrix*, 3> qkv{&L.attn_q, &L.attn_k, &L.attn_v};
      const std::array<float*, 3> outs{a.q.data(), a.k.data(), a.v.data()};
      ops::quantized_matmul_shared(qkv, a.normed.data(), n, outs, *pool_, level_);
    }
    uint16_t* k_layer = k_cache_.get() + layer * n_ctx_ * kv_width;
    uint16_t* v_layer = v_cache_.get() + layer * n_ctx_ * kv_width;
    const int64_t q_width = c.n_head * hd;
    for_rows([&](int64_t begin, int64_t end) {
      float* q = a.q.data() + begin * q_width;
      float* k = a.k.data() + begin * kv_width;
      const int64_t rows = end - begin;
      if (traits.qk_norm) {
        ops::rms_norm(q, L.attn_q_norm.data(), rows * c.n_head, hd, eps, q);
        ops::rms_norm(k, L.attn_k_norm.data(), rows * c.n_head_kv, hd, eps, k);
      }
      const auto row_positions = positions.subspan(static_cast<size_t>(begin), static_cast<size_t>(rows));
      ops::rope(q, rows, c.n_head, hd, row_positions, rope);
      ops::rope(k, rows, c.n_head_kv, hd, row_positions, rope);
      for (int64_t i = begin * kv_width; i < end * kv_width; ++i) {
        k_layer[n_past_ * kv_width + i] = fp32_to_fp16(a.k[static_cast<size_t>(i)]);
        v_layer[n_past_ * kv_width + i] = fp32_to_fp16(a.v[static_cast<size_t>(i)]);
      }
    });
    ops::causal_attention(a.q.data(), n, n_past_, {k_layer, v_layer}, shape, window, attention_scale,
                          a.attention.data(), a.scores.data(), n_ctx_, *pool_, level_, first_visible);
    ops::matmul(L.attn_output, a.attention.data(), n, a.projected.data(), *pool_, level_);
    if (traits.post_norms) norm_rows(a.projected.data(), L.post_attention_norm, a.projected.data());
    hook(layer, HookPoint::AttnOut, a.projected);
    add_in_place(a.residual, a.projected);
    hook(layer, HookPoint::ResidMid, a.residual);

    // MLP.
    norm_rows(a.residual.data(), L.ffn_norm, a.normed.data());
    {
      const std::array<const ops::WeightMatrix*, 2> gate_up{&L.ffn_gate, &L.ffn_up};
      const std::array<float*, 2> outs{a.gate.data(), a.up.data()};
      ops::quantized_matmul_shared(gate_up, a.normed.data(), n, outs, *pool_, level_);
    }
    // Element by element, so split across the threads for prompts (one row is too
    // little work to be worth waking them).
    auto gated = [&](int64_t begin, int64_t end, int) {
      float* gate = a.gate.data() + begin * c.n_ff;
      const float* up = a.up.data() + begin * c.n_ff;
      if (traits.gelu) {
        ops::gelu_f16_times(gate, up, (end - begin) * c.n_ff, level_);
      } else {
        ops::silu_times(gate, up, (end - begin) * c.n_ff, level_);
      }
    };
    if (n > 1) {
      pool_->parallel_for(n, gated);
    } else {
      gated(0, n, 0);
    }
    ops::matmul(L.ffn_down, a.gate.data(), n, a.projected.data(), *pool_, level_);
    if (traits.post_norms) norm_rows(a.projected.data(), L.post_ffw_norm, a.projected.data());
    hook(layer, HookPoint::MlpOut, a.projected);
    add_in_place(a.residual, a.projected);
    hook(layer, HookPoint::ResidPost, a.residual);
  }
  n_past_ += static_cast<int>(n);
  if (logit_rows.empty()) return;

  // Logits only for the rows asked for, gathered row by row into `normed`.
  const auto rows = static_cast<int64_t>(logit_rows.size());
  for (int64_t r = 0; r < rows; ++r) {
    ops::rms_norm(a.residual.data() + logit_rows[static_cast<size_t>(r)] * n_embd, w.output_norm.data(), 1, n_embd,
                  eps, a.normed.data() + r * n_embd);
  }
  ops::matmul(w.output, a.normed.data(), rows, logits, *pool_, level_);
}

}  // namespace tiller
