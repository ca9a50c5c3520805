// The forward pass: embeddings, the family's block for every layer
// (model/block_pass.h, model/families/), the final norm and the logits.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>

#include "model/block_pass.h"
#include "model/family.h"
#include "model/model_weights.h"
#include "ops/attention.h"
#include "ops/ops.h"
#include "ops/matmul.h"
#include "tiller/dequantize.h"
#include "common/fail.h"
#include "tiller/model.h"
#include "tiller/thread_pool.h"

namespace tiller {

// The named activations (model/block_pass.h).
struct Session::Buffers : Activations {};

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
  const ModelWeights& w = model_->weights();
  if (w.position_embd.data != nullptr && n_ctx_ > w.position_embd.n_out) {
    fail("context size {} is beyond the model's {} learned positions", n_ctx_, w.position_embd.n_out);
  }
  // Phi-3's LongRoPE: the long factors once the context exceeds the original one, as llama.cpp chooses.
  const bool long_rope = !w.rope_factors_long.empty() && n_ctx_ > c.n_ctx_orig;
  const std::vector<float>& factors = long_rope ? w.rope_factors_long : w.rope_freqs;
  rope_factors_ = factors.empty() ? nullptr : factors.data();
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
  const Family& family = model_->family();
  const ModelWeights& w = model_->weights();
  Activations& a = *buffers_;
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t n_embd = c.n_embd;

  const float embedding_scale = std::sqrt(static_cast<float>(n_embd));
  chunk_rows_ = n;
  chunk_packed_positions_ = first_visible != nullptr ? a.positions.data() : nullptr;
  for (int64_t t = 0; t < n; ++t) {
    float* row = a.residual.data() + t * n_embd;
    ops::weight_row(w.token_embd, tokens[static_cast<size_t>(t)], row);
    if (family.traits.scale_embeddings) {
      for (int64_t i = 0; i < n_embd; ++i) row[i] *= embedding_scale;
    }
    if (w.position_embd.data != nullptr) {
      float* position_row = a.projected.data() + t * n_embd;  // free until the first block
      ops::weight_row(w.position_embd, a.positions[static_cast<size_t>(t)], position_row);
      for (int64_t i = 0; i < n_embd; ++i) row[i] += position_row[i];
    }
  }

  const ChunkContext chunk{c,       family.traits,   w,      a,       n,      n_past_, first_visible,
                           k_cache_.get(), v_cache_.get(), n_ctx_, rope_factors_, *pool_, level_,
                           &Session::call_hooks, this};
  for (int64_t layer = 0; layer < c.n_layer; ++layer) {
    BlockPass pass(chunk, layer);
    family.block(pass);
  }
  n_past_ += static_cast<int>(n);
  if (logit_rows.empty()) return;

  // Logits only for the rows asked for, gathered row by row into `normed`.
  const auto rows = static_cast<int64_t>(logit_rows.size());
  const auto eps = static_cast<float>(c.norm_eps);
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = a.residual.data() + logit_rows[static_cast<size_t>(r)] * n_embd;
    float* out = a.normed.data() + r * n_embd;
    if (family.traits.norm == NormKind::Layer) {
      ops::layer_norm(row, w.output_norm.weight.data(), w.output_norm.bias.data(), 1, n_embd, eps, out);
    } else {
      ops::rms_norm(row, w.output_norm.weight.data(), 1, n_embd, eps, out);
    }
  }
  ops::matmul(w.output, a.normed.data(), rows, logits, *pool_, level_);
  if (c.final_logit_softcap > 0) {
    const auto cap = static_cast<float>(c.final_logit_softcap);
    const int64_t count = rows * c.n_vocab;
    for (int64_t i = 0; i < count; ++i) logits[i] = cap * std::tanh(logits[i] / cap);
  }
}

void Session::call_hooks(void* self, int64_t layer, HookPoint point, std::vector<float>& rows) {
  auto& session = *static_cast<Session*>(self);
  const int64_t n_embd = session.model_->config().n_embd;
  const int64_t n = session.chunk_rows_;
  const auto& registered = session.hooks_[static_cast<size_t>(layer * kHookPointCount + static_cast<int>(point))];
  if (!registered.empty()) {
    const HookRows view{static_cast<int>(layer), point, rows.data(), n, n_embd, session.n_past_,
                        session.chunk_packed_positions_};
    for (const RegisteredHook& h : registered) h.function(view);
  }
  if (session.observer_) session.observer_(static_cast<int>(layer), point, rows.data(), n, n_embd, session.n_past_);
}

}  // namespace tiller
