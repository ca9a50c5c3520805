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
      past_(static_cast<size_t>(std::max(options.n_seq, 1)), 0),
      engine_(std::move(engine)),
      level_(engine_ ? engine_->kernel_level() : KernelLevel::Portable),
      pool_(engine_ ? &engine_->pool() : nullptr),
      buffers_(std::make_unique<Buffers>()) {
  if (!engine_) fail("a session needs an engine");
  const ModelConfig& c = model_->config();
  if (options.n_ctx < 0) fail("context size {} must be positive", options.n_ctx);
  if (n_ctx_ > (1 << 24)) fail("context size {} is beyond what Tiller supports (16M)", n_ctx_);
  if (n_batch_ <= 0) fail("batch size {} must be positive", n_batch_);
  if (options.n_seq <= 0 || options.n_seq > 4096) fail("{} sequences: a session holds 1 to 4096", options.n_seq);
  if (static_cast<int64_t>(n_ctx_) * options.n_seq > (1 << 24)) {
    fail("{} sequences of {} positions are beyond what Tiller supports (16M)", options.n_seq, n_ctx_);
  }
  // A chunk never exceeds a sequence's context, nor a step its sequences.
  n_batch_ = std::min(n_batch_, std::max(n_ctx_, static_cast<int>(past_.size())));
  const ModelWeights& w = model_->weights();
  if (w.position_embd.data != nullptr && n_ctx_ > w.position_embd.n_out) {
    fail("context size {} is beyond the model's {} learned positions", n_ctx_, w.position_embd.n_out);
  }
  // Phi-3's LongRoPE: the long factors once the context exceeds the original one, as llama.cpp chooses.
  const bool long_rope = !w.rope_factors_long.empty() && n_ctx_ > c.n_ctx_orig;
  const std::vector<float>& factors = long_rope ? w.rope_factors_long : w.rope_freqs;
  rope_factors_ = factors.empty() ? nullptr : factors.data();
  const size_t slots = static_cast<size_t>(n_ctx_) * past_.size();
  const size_t cache = static_cast<size_t>(c.n_layer) * slots * static_cast<size_t>(c.n_head_kv * c.head_dim);
  k_cache_.reset(new uint16_t[cache]);
  v_cache_.reset(new uint16_t[cache]);

  Buffers& b = *buffers_;
  const auto rows = static_cast<size_t>(n_batch_);
  b.residual.resize(rows * static_cast<size_t>(c.n_embd));
  b.normed.resize(b.residual.size());
  b.projected.resize(b.residual.size());
  b.q.resize(rows * static_cast<size_t>(c.n_head * c.head_dim));
  b.k.resize(rows * static_cast<size_t>(c.n_head_kv * c.head_dim));
  b.v.resize(b.k.size());
  b.gate.resize(ffn_buffer_floats(c, w, n_batch_));
  b.up.resize(b.gate.size());
  b.hidden_quantized.resize(ffn_quantized_bytes(c, w, n_batch_));
  b.positions.resize(rows);
  b.logit_rows.resize(rows);
  b.slots.resize(rows);
  b.visible_from.resize(rows);
  b.scores.resize(static_cast<size_t>(pool_->size() * ops::kAttentionScoreRows) * slots);
  logits_.reserve(static_cast<size_t>(c.n_vocab));
  hooks_.resize(static_cast<size_t>(c.n_layer * kHookPointCount));
}

Session::~Session() = default;

HookHandle Session::add_hook(int layer, HookPoint point, HookFunction hook) {
  return add_hook(layer, point, std::move(hook), -1);
}

HookHandle Session::add_hook(int layer, HookPoint point, HookFunction hook, int seq) {
  if (seq != -1) check_seq(seq);
  const int64_t n_layer = model_->config().n_layer;
  if (layer < 0 || layer >= n_layer) {
    fail("{}: block {} does not exist (the model has blocks 0 to {})", hook_name(layer, point), layer, n_layer - 1);
  }
  if (!hook) fail("{}: empty hook", hook_name(layer, point));
  auto& list = hooks_[static_cast<size_t>(layer * kHookPointCount + static_cast<int>(point))];
  list.push_back({next_handle_, std::move(hook), seq});
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

void Session::check_seq(int seq) const {
  if (seq < 0 || seq >= n_seq()) fail("sequence {} does not exist (the session holds {})", seq, n_seq());
}

int Session::n_past(int seq) const {
  check_seq(seq);
  return past_[static_cast<size_t>(seq)];
}

void Session::rewind(int seq, int n) {
  const int past = n_past(seq);
  if (n < 0 || n > past) fail("cannot rewind to position {}: {} positions are filled", n, past);
  past_[static_cast<size_t>(seq)] = n;
}

void Session::check_tokens(int seq, std::span<const TokenId> tokens) const {
  if (tokens.empty()) fail("decode needs at least one token");
  const int past = n_past(seq);
  if (past + static_cast<int64_t>(tokens.size()) > n_ctx_) {
    fail("{} tokens do not fit: {} of the context's {} positions are used", tokens.size(), past, n_ctx_);
  }
  const int64_t n_vocab = model_->config().n_vocab;
  for (const TokenId token : tokens) {
    if (token < 0 || token >= n_vocab) fail("token id {} is outside the vocabulary", token);
  }
}

std::span<const float> Session::decode(std::span<const TokenId> tokens, bool all_logits) {
  return decode(0, tokens, all_logits);
}

std::span<const float> Session::decode(int seq, std::span<const TokenId> tokens, bool all_logits) {
  check_tokens(seq, tokens);
  const size_t rows = all_logits ? tokens.size() : 1;
  logits_.resize(rows * static_cast<size_t>(model_->config().n_vocab));
  decode_chunks(seq, tokens, all_logits, logits_.data());
  return logits_;
}

std::span<const float> Session::decode_step(std::span<const int> seqs, std::span<const TokenId> tokens) {
  if (seqs.size() != tokens.size()) fail("decode_step: {} sequences but {} tokens", seqs.size(), tokens.size());
  if (seqs.empty()) fail("decode_step needs at least one sequence");
  if (seqs.size() > static_cast<size_t>(n_batch_)) {
    fail("decode_step: {} rows are more than the batch size {}", seqs.size(), n_batch_);
  }
  Buffers& a = *buffers_;
  for (size_t i = 0; i < seqs.size(); ++i) {
    const int seq = seqs[i];
    check_tokens(seq, tokens.subspan(i, 1));
    for (size_t j = 0; j < i; ++j) {
      if (seqs[j] == seq) fail("decode_step: sequence {} has two rows", seq);
    }
    const int32_t base = seq * n_ctx_;
    a.positions[i] = past_[static_cast<size_t>(seq)];
    a.slots[i] = base + a.positions[i];
    a.visible_from[i] = base;
    a.logit_rows[i] = static_cast<int32_t>(i);
  }
  const size_t rows = seqs.size();
  logits_.resize(rows * static_cast<size_t>(model_->config().n_vocab));
  const ChunkRows where{.first_slot = a.slots[0],
                        .first_visible = a.visible_from.data(),
                        .row_slots = a.slots.data(),
                        .seq = -1,
                        .row_seqs = seqs.data()};
  forward_chunk(tokens, where, std::span(a.logit_rows.data(), rows), logits_.data());
  for (const int seq : seqs) ++past_[static_cast<size_t>(seq)];
  return logits_;
}

void Session::decode_into(std::span<const TokenId> tokens, std::span<float> logits) {
  check_tokens(0, tokens);
  const size_t wanted = tokens.size() * static_cast<size_t>(model_->config().n_vocab);
  if (logits.size() != wanted) {
    fail("decode_into: {} tokens need room for {} logits, not {}", tokens.size(), wanted, logits.size());
  }
  decode_chunks(0, tokens, true, logits.data());
}

void Session::decode_chunks(int seq, std::span<const TokenId> tokens, bool all_logits, float* logits) {
  const int64_t n_vocab = model_->config().n_vocab;
  Buffers& a = *buffers_;
  int& past = past_[static_cast<size_t>(seq)];
  const int32_t base = seq * n_ctx_;
  // Sequence 0 sees from slot 0, as a one-sequence session always did.
  if (seq > 0) std::fill(a.visible_from.begin(), a.visible_from.end(), base);
  for (size_t start = 0; start < tokens.size(); start += static_cast<size_t>(n_batch_)) {
    const auto chunk = tokens.subspan(start, std::min(tokens.size() - start, static_cast<size_t>(n_batch_)));
    const auto n = static_cast<int32_t>(chunk.size());
    const bool last_chunk = start + chunk.size() == tokens.size();
    for (int32_t t = 0; t < n; ++t) a.positions[static_cast<size_t>(t)] = past + t;
    int32_t n_out = 0;
    if (all_logits) {
      for (int32_t t = 0; t < n; ++t) a.logit_rows[static_cast<size_t>(n_out++)] = t;
    } else if (last_chunk) {
      a.logit_rows[static_cast<size_t>(n_out++)] = n - 1;
    }
    float* out = all_logits ? logits + start * static_cast<size_t>(n_vocab) : logits;
    const ChunkRows where{.first_slot = base + past, .first_visible = seq > 0 ? a.visible_from.data() : nullptr, .seq = seq};
    forward_chunk(chunk, where, std::span(a.logit_rows.data(), static_cast<size_t>(n_out)), out);
    past += n;
  }
}

std::span<const float> Session::decode_packed(std::span<const TokenId> tokens, std::span<const int> lengths,
                                              PackedLogits which) {
  reset();
  check_tokens(0, tokens);
  return run_packed(tokens, 0, {}, lengths, which);
}

std::span<const float> Session::decode_packed_from(int first_layer, std::span<const float> residual,
                                                   std::span<const int> lengths, PackedLogits which) {
  const ModelConfig& c = model_->config();
  if (first_layer < 0 || first_layer >= c.n_layer) {
    fail("decode_packed_from: block {} does not exist (the model has blocks 0 to {})", first_layer, c.n_layer - 1);
  }
  if (residual.empty() || residual.size() % static_cast<size_t>(c.n_embd) != 0) {
    fail("decode_packed_from: {} floats are not rows of the stream's width {}", residual.size(), c.n_embd);
  }
  const size_t n_rows = residual.size() / static_cast<size_t>(c.n_embd);
  if (n_rows > static_cast<size_t>(n_ctx_)) {
    fail("{} rows do not fit: the context holds {} positions", n_rows, n_ctx_);
  }
  return run_packed({}, first_layer, residual, lengths, which);
}

std::span<const float> Session::run_packed(std::span<const TokenId> tokens, int first_layer,
                                           std::span<const float> residual, std::span<const int> lengths,
                                           PackedLogits which) {
  reset();
  const int64_t n_embd = model_->config().n_embd;
  const size_t n_rows = residual.empty() ? tokens.size() : residual.size() / static_cast<size_t>(n_embd);
  int64_t total = 0;
  for (const int length : lengths) {
    if (length <= 0) fail("a packed sequence needs at least one token, not {}", length);
    total += length;
  }
  if (total != static_cast<int64_t>(n_rows)) {
    fail("the packed sequences' lengths add up to {}, but {} {} are given", total, n_rows,
         residual.empty() ? "tokens" : "rows");
  }
  // Every row's position in its sequence, the cache slot its sequence starts at, and the sequence.
  packed_positions_.resize(n_rows);
  packed_starts_.resize(n_rows);
  packed_sequences_.resize(n_rows);
  std::vector<int32_t>& ends = buffers_->sequence_ends;  // the last row of each sequence, as slots
  ends.clear();
  int32_t slot = 0;
  for (size_t s = 0; s < lengths.size(); ++s) {
    const int length = lengths[s];
    for (int32_t i = 0; i < length; ++i) {
      packed_positions_[static_cast<size_t>(slot + i)] = i;
      packed_starts_[static_cast<size_t>(slot + i)] = slot;
      packed_sequences_[static_cast<size_t>(slot + i)] = static_cast<int32_t>(s);
    }
    slot += length;
    ends.push_back(slot - 1);
  }
  const int64_t n_vocab = model_->config().n_vocab;
  const size_t rows = which == PackedLogits::All ? n_rows : which == PackedLogits::LastOfEach ? ends.size() : 0;
  logits_.resize(rows * static_cast<size_t>(n_vocab));
  Buffers& a = *buffers_;
  size_t next_end = 0;  // the next sequence whose last row's logits are due
  float* out = logits_.data();
  for (size_t start = 0; start < n_rows; start += static_cast<size_t>(n_batch_)) {
    const size_t count = std::min(n_rows - start, static_cast<size_t>(n_batch_));
    const auto n = static_cast<int32_t>(count);
    std::copy_n(packed_positions_.begin() + static_cast<std::ptrdiff_t>(start), n, a.positions.begin());
    int32_t n_out = 0;
    if (which == PackedLogits::All) {
      for (int32_t t = 0; t < n; ++t) a.logit_rows[static_cast<size_t>(n_out++)] = t;
    } else if (which == PackedLogits::LastOfEach) {
      while (next_end < ends.size() && ends[next_end] < static_cast<int32_t>(start) + n) {
        a.logit_rows[static_cast<size_t>(n_out++)] = ends[next_end++] - static_cast<int32_t>(start);
      }
    }
    const ChunkRows where{.first_slot = past_[0],
                          .first_visible = packed_starts_.data() + start,
                          .seq = 0,
                          .packed = true,
                          .sequences = packed_sequences_.data() + start};
    const std::span<const int32_t> logit_rows(a.logit_rows.data(), static_cast<size_t>(n_out));
    if (residual.empty()) {
      forward_chunk(tokens.subspan(start, count), where, logit_rows, out);
    } else {
      forward_chunk({}, where, logit_rows, out, first_layer, residual.data() + start * static_cast<size_t>(n_embd), n);
    }
    past_[0] += n;
    out += static_cast<size_t>(n_out) * static_cast<size_t>(n_vocab);
  }
  reset();  // the cache holds a mixture of sequences: nothing to continue from
  return logits_;
}

void Session::forward_chunk(std::span<const TokenId> tokens, const ChunkRows& where,
                            std::span<const int32_t> logit_rows, float* logits, int first_layer,
                            const float* residual, int64_t n_rows) {
  const ModelConfig& c = model_->config();
  const Family& family = model_->family();
  const ModelWeights& w = model_->weights();
  Activations& a = *buffers_;
  const int64_t n = residual != nullptr ? n_rows : static_cast<int64_t>(tokens.size());
  const int64_t n_embd = c.n_embd;

  const float embedding_scale = std::sqrt(static_cast<float>(n_embd));
  chunk_rows_ = n;
  chunk_where_ = &where;
  if (residual != nullptr) std::copy_n(residual, n * n_embd, a.residual.begin());
  for (int64_t t = 0; residual == nullptr && t < n; ++t) {
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

  const ChunkContext chunk{c,
                           family.traits,
                           w,
                           a,
                           n,
                           where.first_slot,
                           where.first_visible,
                           k_cache_.get(),
                           v_cache_.get(),
                           static_cast<int64_t>(n_ctx_) * n_seq(),
                           rope_factors_,
                           *pool_,
                           level_,
                           &Session::call_hooks,
                           this,
                           where.row_slots,
                           where.row_seqs != nullptr};
  for (int64_t layer = first_layer; layer < c.n_layer; ++layer) {
    BlockPass pass(chunk, layer);
    family.block(pass);
  }
  chunk_where_ = nullptr;
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
  ops::matmul(w.output, a.normed.data(), rows, logits, *pool_, level_, where.row_seqs != nullptr);
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
  const ChunkRows& where = *session.chunk_where_;
  const int32_t* positions = session.buffers_->positions.data();
  const auto& registered = session.hooks_[static_cast<size_t>(layer * kHookPointCount + static_cast<int>(point))];
  const auto first_position = static_cast<int>(where.first_slot);
  for (const RegisteredHook& h : registered) {
    if (where.row_seqs == nullptr) {  // one sequence's rows: its hooks and the global ones
      if (h.seq != -1 && h.seq != where.seq) continue;
      h.function({static_cast<int>(layer), point, rows.data(), n, n_embd,
                  where.packed ? first_position : positions[0], where.packed ? positions : nullptr,
                  where.packed ? where.sequences : nullptr});
    } else if (h.seq == -1) {  // a step: every row, each at its own position
      h.function({static_cast<int>(layer), point, rows.data(), n, n_embd, first_position, positions});
    } else {  // a step: the one row of the hook's sequence, if it has one
      for (int64_t r = 0; r < n; ++r) {
        if (where.row_seqs[r] != h.seq) continue;
        h.function({static_cast<int>(layer), point, rows.data() + r * n_embd, 1, n_embd, positions[r], nullptr});
        break;
      }
    }
  }
  // The observer's first_position: the chunk's first position when its rows follow
  // one another in one sequence, else the cache slot of its first row.
  const bool in_order = where.row_seqs == nullptr && !where.packed;
  if (session.observer_) {
    session.observer_(static_cast<int>(layer), point, rows.data(), n, n_embd, in_order ? positions[0] : first_position);
  }
}

}  // namespace tiller
