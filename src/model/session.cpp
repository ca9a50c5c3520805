// The forward pass. One block reads like the paper: norm, attention, residual,
// norm, MLP, residual; the architecture traits switch Gemma 3's extras on.
#include <cmath>

#include "model/model_weights.h"
#include "ops/ops.h"
#include "tiller/error.h"
#include "tiller/model.h"
#include "tiller/thread_pool.h"

namespace tiller {

Session::Session(std::shared_ptr<const Model> model, int n_ctx, int n_threads)
    : model_(std::move(model)), n_ctx_(n_ctx), pool_(std::make_unique<ThreadPool>(n_threads)) {
  const ModelConfig& c = model_->config();
  if (n_ctx_ <= 0) fail("context size {} must be positive", n_ctx_);
  const size_t cache = static_cast<size_t>(c.n_layer) * static_cast<size_t>(n_ctx_) *
                       static_cast<size_t>(c.n_head_kv * c.head_dim);
  k_cache_.assign(cache, 0.0f);
  v_cache_.assign(cache, 0.0f);
}

Session::~Session() = default;

std::string_view hook_point_name(HookPoint point) {
  switch (point) {
    case HookPoint::ResidPre: return "hook_resid_pre";
    case HookPoint::AttnOut: return "hook_attn_out";
    case HookPoint::ResidMid: return "hook_resid_mid";
    case HookPoint::MlpOut: return "hook_mlp_out";
    case HookPoint::ResidPost: return "hook_resid_post";
  }
  return "unknown";
}

std::vector<float> Session::decode(std::span<const TokenId> tokens, bool all_logits) {
  if (tokens.empty()) fail("decode needs at least one token");
  if (n_past_ + static_cast<int64_t>(tokens.size()) > n_ctx_) {
    fail("{} tokens do not fit: {} of the context's {} are used", tokens.size(), n_past_, n_ctx_);
  }
  for (const TokenId token : tokens) {
    if (token < 0 || token >= model_->config().n_vocab) fail("token id {} is outside the vocabulary", token);
  }
  std::vector<float> logits;
  forward_chunk(tokens, all_logits, logits);
  return logits;
}

namespace {

// The activations of one chunk, [n_tokens x width] each.
struct Activations {
  std::vector<float> residual, normed, q, k, v, attention, projected, gate, up;
};

void add_in_place(std::vector<float>& into, const std::vector<float>& from) {
  for (size_t i = 0; i < into.size(); ++i) into[i] += from[i];
}

}  // namespace

void Session::forward_chunk(std::span<const TokenId> tokens, bool all_logits, std::vector<float>& logits) {
  const ModelConfig& c = model_->config();
  const ArchitectureTraits& traits = model_->traits();
  const ModelWeights& w = model_->weights();
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t n_embd = c.n_embd, hd = c.head_dim;
  const int64_t q_width = c.n_head * hd, kv_width = c.n_head_kv * hd;
  const float eps = static_cast<float>(c.norm_eps);
  const float attention_scale = 1.0f / std::sqrt(static_cast<float>(hd));

  std::vector<int32_t> positions(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t) positions[static_cast<size_t>(t)] = static_cast<int32_t>(n_past_ + t);

  Activations a;
  a.residual.resize(static_cast<size_t>(n * n_embd));
  a.normed.resize(a.residual.size());
  a.projected.resize(a.residual.size());
  a.q.resize(static_cast<size_t>(n * q_width));
  a.attention.resize(a.q.size());
  a.k.resize(static_cast<size_t>(n * kv_width));
  a.v.resize(a.k.size());
  a.gate.resize(static_cast<size_t>(n * c.n_ff));
  a.up.resize(a.gate.size());

  const float embedding_scale = traits.scale_embeddings ? std::sqrt(static_cast<float>(n_embd)) : 1.0f;
  for (int64_t t = 0; t < n; ++t) {
    float* row = a.residual.data() + t * n_embd;
    ops::weight_row(w.token_embd, tokens[static_cast<size_t>(t)], row);
    if (traits.scale_embeddings) {
      for (int64_t i = 0; i < n_embd; ++i) row[i] *= embedding_scale;
    }
  }

  auto hook = [&](int64_t layer, HookPoint point, const std::vector<float>& rows) {
    if (observer_) observer_(static_cast<int>(layer), point, rows.data(), n, n_embd, n_past_);
  };

  for (int64_t layer = 0; layer < c.n_layer; ++layer) {
    const LayerWeights& L = w.layers[static_cast<size_t>(layer)];
    hook(layer, HookPoint::ResidPre, a.residual);
    const bool sliding = traits.sliding_window_period > 0 && c.sliding_window &&
                         (layer + 1) % traits.sliding_window_period != 0;
    const float rope_base = static_cast<float>(sliding && c.rope_freq_base_sliding ? *c.rope_freq_base_sliding
                                                                                   : c.rope_freq_base);
    const int64_t window = sliding ? *c.sliding_window : INT64_MAX;

    // Attention.
    ops::rms_norm(a.residual.data(), L.attn_norm.data(), n, n_embd, eps, a.normed.data());
    ops::matmul(L.attn_q, a.normed.data(), n, a.q.data(), *pool_);
    ops::matmul(L.attn_k, a.normed.data(), n, a.k.data(), *pool_);
    ops::matmul(L.attn_v, a.normed.data(), n, a.v.data(), *pool_);
    if (traits.qk_norm) {
      ops::rms_norm(a.q.data(), L.attn_q_norm.data(), n * c.n_head, hd, eps, a.q.data());
      ops::rms_norm(a.k.data(), L.attn_k_norm.data(), n * c.n_head_kv, hd, eps, a.k.data());
    }
    ops::rope(a.q.data(), n, c.n_head, hd, positions, rope_base, traits.neox_rope);
    ops::rope(a.k.data(), n, c.n_head_kv, hd, positions, rope_base, traits.neox_rope);
    float* k_layer = k_cache_.data() + layer * n_ctx_ * kv_width;
    float* v_layer = v_cache_.data() + layer * n_ctx_ * kv_width;
    std::copy(a.k.begin(), a.k.end(), k_layer + n_past_ * kv_width);
    std::copy(a.v.begin(), a.v.end(), v_layer + n_past_ * kv_width);

    const int64_t group = c.n_head / c.n_head_kv;
    pool_->parallel_for(n * c.n_head, [&](int64_t begin, int64_t end, int) {
      thread_local std::vector<float> scores;
      for (int64_t item = begin; item < end; ++item) {
        const int64_t t = item / c.n_head, head = item % c.n_head, kv_head = head / group;
        const int64_t pos = n_past_ + t;
        const int64_t first = std::max<int64_t>(0, window == INT64_MAX ? 0 : pos - window + 1);
        const float* q = a.q.data() + t * q_width + head * hd;
        scores.resize(static_cast<size_t>(pos - first + 1));
        for (int64_t j = first; j <= pos; ++j) {
          scores[static_cast<size_t>(j - first)] =
              ops::dot(q, k_layer + j * kv_width + kv_head * hd, hd) * attention_scale;
        }
        ops::softmax(scores.data(), static_cast<int64_t>(scores.size()));
        float* out = a.attention.data() + t * q_width + head * hd;
        std::fill(out, out + hd, 0.0f);
        for (int64_t j = first; j <= pos; ++j) {
          const float weight = scores[static_cast<size_t>(j - first)];
          const float* v = v_layer + j * kv_width + kv_head * hd;
          for (int64_t i = 0; i < hd; ++i) out[i] += weight * v[i];
        }
      }
    });
    ops::matmul(L.attn_output, a.attention.data(), n, a.projected.data(), *pool_);
    if (traits.post_norms) {
      ops::rms_norm(a.projected.data(), L.post_attention_norm.data(), n, n_embd, eps, a.projected.data());
    }
    hook(layer, HookPoint::AttnOut, a.projected);
    add_in_place(a.residual, a.projected);
    hook(layer, HookPoint::ResidMid, a.residual);

    // MLP.
    ops::rms_norm(a.residual.data(), L.ffn_norm.data(), n, n_embd, eps, a.normed.data());
    ops::matmul(L.ffn_gate, a.normed.data(), n, a.gate.data(), *pool_);
    ops::matmul(L.ffn_up, a.normed.data(), n, a.up.data(), *pool_);
    for (size_t i = 0; i < a.gate.size(); ++i) {
      a.gate[i] = (traits.gelu ? ops::gelu_tanh(a.gate[i]) : ops::silu(a.gate[i])) * a.up[i];
    }
    ops::matmul(L.ffn_down, a.gate.data(), n, a.projected.data(), *pool_);
    if (traits.post_norms) {
      ops::rms_norm(a.projected.data(), L.post_ffw_norm.data(), n, n_embd, eps, a.projected.data());
    }
    hook(layer, HookPoint::MlpOut, a.projected);
    add_in_place(a.residual, a.projected);
    hook(layer, HookPoint::ResidPost, a.residual);
  }
  n_past_ += static_cast<int>(n);

  // Logits only for the rows asked for.
  const int64_t first_row = all_logits ? 0 : n - 1, rows = n - first_row;
  ops::rms_norm(a.residual.data() + first_row * n_embd, w.output_norm.data(), rows, n_embd, eps, a.normed.data());
  logits.resize(static_cast<size_t>(rows * c.n_vocab));
  ops::matmul(w.output, a.normed.data(), rows, logits.data(), *pool_);
}

}  // namespace tiller
