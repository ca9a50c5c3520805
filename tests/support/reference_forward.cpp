#include "support/reference_forward.h"

#include <cmath>

#include "common/fail.h"
#include "model/family.h"
#include "tiller/dequantize.h"
#include "tiller/gguf.h"
#include "tiller/model_config.h"

namespace tiller::testing {
namespace {

using Matrix = std::vector<std::vector<double>>;  // [rows][cols]
using Vector = std::vector<double>;

// Tensors by their GGUF names, dequantized to double.
struct Weights {
  const gguf::File& file;
  bool has(const std::string& name) const { return file.find_tensor(name) != nullptr; }
  Matrix matrix(const std::string& name) const {
    const gguf::TensorInfo* info = file.find_tensor(name);
    if (info == nullptr) fail("reference: no tensor {}", name);
    Matrix rows(static_cast<size_t>(info->shape.size() > 1 ? info->shape[1] : 1));
    for (size_t r = 0; r < rows.size(); ++r) {
      const auto row = dequantize_tensor_row(file, *info, static_cast<int64_t>(r));
      rows[r].assign(row.begin(), row.end());
    }
    return rows;
  }
  Vector vector(const std::string& name) const { return matrix(name)[0]; }
  Vector optional_vector(const std::string& name) const { return has(name) ? vector(name) : Vector{}; }
};

// Rows [first, first + count) of a fused matrix; entries of a fused bias (empty stays empty).
Matrix rows_of(const Matrix& m, size_t first, size_t count) {
  return {m.begin() + static_cast<std::ptrdiff_t>(first), m.begin() + static_cast<std::ptrdiff_t>(first + count)};
}
Vector part_of(const Vector& v, size_t first, size_t count) {
  if (v.empty()) return {};
  return {v.begin() + static_cast<std::ptrdiff_t>(first), v.begin() + static_cast<std::ptrdiff_t>(first + count)};
}

struct Norm {
  Vector weight, bias;  // bias: LayerNorm only
};

// One block's weights, whatever the file's layout: fused tensors are split here.
struct Layer {
  Norm attn_norm, ffn_norm;
  Norm post_attention_norm, post_ffw_norm;  // empty: none (all but gemma)
  Vector q_norm, k_norm;                    // empty: none
  Matrix wq, wk, wv, wo;
  Vector bq, bk, bv, bo;                    // empty: no bias
  Matrix gate, up, down;                    // gate empty: ungated MLP
  Vector b_up, b_down;
};

Norm read_norm(const Weights& w, const std::string& base, NormKind kind, bool required = true) {
  if (!required && !w.has(base + ".weight")) return {};
  return {w.vector(base + ".weight"), kind == NormKind::Layer ? w.vector(base + ".bias") : Vector{}};
}

void read_attention(const Weights& w, const ModelConfig& c, const std::string& p, Layer& l) {
  const auto q_width = static_cast<size_t>(c.n_head * c.head_dim), kv_width = static_cast<size_t>(c.n_head_kv * c.head_dim);
  if (w.has(p + "attn_qkv.weight")) {  // phi3, gpt2: rows q, then k, then v
    const Matrix qkv = w.matrix(p + "attn_qkv.weight");
    const Vector bias = w.optional_vector(p + "attn_qkv.bias");
    l.wq = rows_of(qkv, 0, q_width);
    l.wk = rows_of(qkv, q_width, kv_width);
    l.wv = rows_of(qkv, q_width + kv_width, kv_width);
    l.bq = part_of(bias, 0, q_width);
    l.bk = part_of(bias, q_width, kv_width);
    l.bv = part_of(bias, q_width + kv_width, kv_width);
  } else {
    l.wq = w.matrix(p + "attn_q.weight");
    l.wk = w.matrix(p + "attn_k.weight");
    l.wv = w.matrix(p + "attn_v.weight");
    l.bq = w.optional_vector(p + "attn_q.bias");
    l.bk = w.optional_vector(p + "attn_k.bias");
    l.bv = w.optional_vector(p + "attn_v.bias");
  }
  l.wo = w.matrix(p + "attn_output.weight");
  l.bo = w.optional_vector(p + "attn_output.bias");
  l.q_norm = w.optional_vector(p + "attn_q_norm.weight");
  l.k_norm = w.optional_vector(p + "attn_k_norm.weight");
}

void read_feed_forward(const Weights& w, const ModelConfig& c, const FamilyTraits& traits, const std::string& p,
                       const ReferenceVariant& variant, Layer& l) {
  if (w.has(p + "ffn_gate.weight")) {
    l.gate = w.matrix(p + "ffn_gate.weight");
    l.up = w.matrix(p + "ffn_up.weight");
  } else if (traits.gated_ffn) {  // phi3: one ffn_up of 2 x n_ff rows, the gate first
    const Matrix fused = w.matrix(p + "ffn_up.weight");
    const auto n_ff = static_cast<size_t>(c.n_ff);
    l.gate = rows_of(fused, variant.swap_gate_up_halves ? n_ff : 0, n_ff);
    l.up = rows_of(fused, variant.swap_gate_up_halves ? 0 : n_ff, n_ff);
  } else {
    l.up = w.matrix(p + "ffn_up.weight");
  }
  l.b_up = w.optional_vector(p + "ffn_up.bias");
  l.down = w.matrix(p + "ffn_down.weight");
  l.b_down = w.optional_vector(p + "ffn_down.bias");
}

Layer read_layer(const Weights& w, const ModelConfig& c, const FamilyTraits& traits, int64_t index,
                 const ReferenceVariant& variant) {
  const std::string p = "blk." + std::to_string(index) + ".";
  Layer l;
  l.attn_norm = read_norm(w, p + "attn_norm", traits.norm);
  l.ffn_norm = read_norm(w, p + "ffn_norm", traits.norm);
  l.post_attention_norm = read_norm(w, p + "post_attention_norm", traits.norm, false);
  l.post_ffw_norm = read_norm(w, p + "post_ffw_norm", traits.norm, false);
  read_attention(w, c, p, l);
  read_feed_forward(w, c, traits, p, variant, l);
  if (variant.skip_biases) l.bq = l.bk = l.bv = l.bo = l.b_up = l.b_down = {};
  if (variant.skip_qk_norm) l.q_norm = l.k_norm = {};
  return l;
}

Vector times(const Matrix& w, const Vector& x, const Vector& bias = {}) {  // w is [out][in]
  Vector y = bias.empty() ? Vector(w.size(), 0.0) : bias;
  for (size_t r = 0; r < w.size(); ++r) {
    for (size_t i = 0; i < x.size(); ++i) y[r] += w[r][i] * x[i];
  }
  return y;
}

Vector rms_norm(const Vector& x, const Vector& weight, double eps, size_t offset = 0, size_t width = 0) {
  if (width == 0) width = x.size();
  double sum = 0;
  for (size_t i = 0; i < width; ++i) sum += x[offset + i] * x[offset + i];
  const double scale = 1.0 / std::sqrt(sum / static_cast<double>(width) + eps);
  Vector y(width);
  for (size_t i = 0; i < width; ++i) y[i] = x[offset + i] * scale * weight[i];
  return y;
}

Vector layer_norm(const Vector& x, const Norm& norm, double eps) {
  const auto width = static_cast<double>(x.size());
  double mean = 0, variance = 0;
  for (double v : x) mean += v / width;
  for (double v : x) variance += (v - mean) * (v - mean) / width;
  Vector y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = (x[i] - mean) / std::sqrt(variance + eps) * norm.weight[i] + norm.bias[i];
  return y;
}

Vector apply_norm(const Vector& x, const Norm& norm, NormKind kind, double eps) {
  return kind == NormKind::Layer ? layer_norm(x, norm, eps) : rms_norm(x, norm.weight, eps);
}

// Each head of `x` RMS-normed on its own (qwen3's and gemma3's q/k norms).
void norm_heads(Vector& x, const Vector& weight, size_t n_heads, size_t head_dim, double eps) {
  if (weight.empty()) return;
  for (size_t head = 0; head < n_heads; ++head) {
    const Vector y = rms_norm(x, weight, eps, head * head_dim, head_dim);
    std::copy(y.begin(), y.end(), x.begin() + static_cast<std::ptrdiff_t>(head * head_dim));
  }
}

struct Rope {
  bool neox = false;          // pairs (i, i + d/2), else (2i, 2i+1)
  double base = 10000.0;
  double freq_scale = 1.0;
  double attn_factor = 1.0;   // cos and sin scaled by it
  Vector factors;             // per-pair divisors of the angle; empty: none
};

// Rotates each head's pairs by position * freq_scale * base^(-2i/d) / factor_i.
void rope(Vector& x, size_t n_heads, size_t head_dim, int position, const Rope& r) {
  const size_t half = head_dim / 2;
  for (size_t h = 0; h < n_heads; ++h) {
    for (size_t i = 0; i < half; ++i) {
      const double factor = r.factors.empty() ? 1.0 : r.factors[i];
      const double angle = position * r.freq_scale *
                           std::pow(r.base, -2.0 * static_cast<double>(i) / static_cast<double>(head_dim)) / factor;
      const double cos = std::cos(angle) * r.attn_factor, sin = std::sin(angle) * r.attn_factor;
      const size_t a = h * head_dim + (r.neox ? i : 2 * i), b = h * head_dim + (r.neox ? i + half : 2 * i + 1);
      const double x0 = x[a], x1 = x[b];
      x[a] = x0 * cos - x1 * sin;
      x[b] = x0 * sin + x1 * cos;
    }
  }
}

// rope_freqs (Llama 3.1), or Phi-3's LongRoPE factors: the long ones only past the
// original context, as llama.cpp chooses them.
Vector rope_factors(const Weights& w, const ModelConfig& c, size_t n_ctx, const ReferenceVariant& variant) {
  if (variant.skip_rope_factors) return {};
  if (w.has("rope_freqs.weight")) return w.vector("rope_freqs.weight");
  const bool long_context = variant.long_rope_factors || static_cast<int64_t>(n_ctx) > c.n_ctx_orig;
  return w.optional_vector(long_context ? "rope_factors_long.weight" : "rope_factors_short.weight");
}

double soft_cap(double x, double cap) { return cap * std::tanh(x / cap); }
double gelu_tanh(double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); }
double silu(double x) { return x / (1 + std::exp(-x)); }

// What one forward pass shares across its blocks.
struct Pass {
  const ModelConfig& c;
  const FamilyTraits& traits;
  const ReferenceVariant& variant;
  Vector rope_factors;
};

// Self-attention of every position (causal, windowed in local blocks); adds the
// output to the residual stream x.
void attention(const Pass& pass, const Layer& l, int64_t index, std::vector<Vector>& x) {
  const ModelConfig& c = pass.c;
  const ReferenceVariant& variant = pass.variant;
  const auto hd = static_cast<size_t>(c.head_dim), n_head = static_cast<size_t>(c.n_head),
             n_kv = static_cast<size_t>(c.n_head_kv);
  const size_t n = x.size();
  // Local (sliding-window) blocks: all but each period-th one.
  const int period = pass.traits.sliding_window_period;
  const bool local = period > 0 && c.sliding_window && index % period != period - 1;
  const bool windowed = local && !variant.ignore_window;
  Rope r;
  r.neox = (pass.traits.rope == RopeKind::Neox) != variant.swap_rope_pairing;
  r.base = local ? c.rope_freq_base_sliding.value_or(c.rope_freq_base) : c.rope_freq_base;
  r.freq_scale = local ? 1.0 : c.rope_freq_scale;
  r.attn_factor = variant.skip_rope_attn_factor ? 1.0 : c.rope_attn_factor;
  r.factors = pass.rope_factors;

  std::vector<Vector> q(n), k(n), v(n);
  for (size_t t = 0; t < n; ++t) {
    const Vector h = apply_norm(x[t], l.attn_norm, pass.traits.norm, c.norm_eps);
    q[t] = times(l.wq, h, l.bq);
    k[t] = times(l.wk, h, l.bk);
    v[t] = times(l.wv, h, l.bv);
    norm_heads(q[t], l.q_norm, n_head, hd, c.norm_eps);
    norm_heads(k[t], l.k_norm, n_kv, hd, c.norm_eps);
    if (pass.traits.rope != RopeKind::None) {
      rope(q[t], n_head, hd, static_cast<int>(t), r);
      rope(k[t], n_kv, hd, static_cast<int>(t), r);
    }
  }
  const double cap = variant.skip_attn_softcap ? 0.0 : c.attn_logit_softcap;
  const double scale = c.attention_scale > 0 && !variant.head_dim_attention_scale
                           ? c.attention_scale
                           : 1.0 / std::sqrt(static_cast<double>(hd));
  for (size_t t = 0; t < n; ++t) {
    Vector attended(n_head * hd, 0.0);
    const auto window = static_cast<size_t>(c.sliding_window.value_or(0));
    const size_t first = windowed && t + 1 > window ? t + 1 - window : 0;
    for (size_t head = 0; head < n_head; ++head) {
      const size_t kv = variant.interleave_kv_heads ? head % n_kv : head / (n_head / n_kv);
      std::vector<double> scores;
      double max = -INFINITY;
      for (size_t j = first; j <= t; ++j) {
        double s = 0;
        for (size_t i = 0; i < hd; ++i) s += q[t][head * hd + i] * k[j][kv * hd + i];
        s *= scale;
        scores.push_back(cap > 0 ? soft_cap(s, cap) : s);  // gemma2: capped after the scale
        max = std::max(max, scores.back());
      }
      double total = 0;
      for (double& s : scores) total += (s = std::exp(s - max));
      for (size_t j = first; j <= t; ++j) {
        for (size_t i = 0; i < hd; ++i) attended[head * hd + i] += scores[j - first] / total * v[j][kv * hd + i];
      }
    }
    Vector out = times(l.wo, attended, l.bo);
    if (!l.post_attention_norm.weight.empty()) out = apply_norm(out, l.post_attention_norm, pass.traits.norm, c.norm_eps);
    for (size_t i = 0; i < out.size(); ++i) x[t][i] += out[i];
  }
}

// The MLP of every position, gated (act(gate h) * up h) or not (act(up h + b)),
// added to the residual stream x.
void feed_forward(const Pass& pass, const Layer& l, std::vector<Vector>& x) {
  const ModelConfig& c = pass.c;
  const bool gelu = pass.traits.activation == FfnActivation::GeluF16;
  for (Vector& row : x) {
    const Vector h = apply_norm(row, l.ffn_norm, pass.traits.norm, c.norm_eps);
    Vector a = times(l.gate.empty() ? l.up : l.gate, h, l.gate.empty() ? l.b_up : Vector{});
    for (double& value : a) value = gelu ? gelu_tanh(value) : silu(value);
    if (!l.gate.empty()) {
      const Vector u = times(l.up, h, l.b_up);
      for (size_t i = 0; i < a.size(); ++i) a[i] *= u[i];
    }
    Vector out = times(l.down, a, l.b_down);
    if (!l.post_ffw_norm.weight.empty()) out = apply_norm(out, l.post_ffw_norm, pass.traits.norm, c.norm_eps);
    for (size_t i = 0; i < out.size(); ++i) row[i] += out[i];
  }
}

// Token embeddings (scaled by sqrt(n_embd) where the family does), plus learned
// positions where the file has them.
std::vector<Vector> embed(const Weights& w, const Matrix& embedding, const Pass& pass,
                          const std::vector<TokenId>& tokens) {
  const Matrix positions = w.has("position_embd.weight") && !pass.variant.skip_positions
                               ? w.matrix("position_embd.weight")
                               : Matrix{};
  std::vector<Vector> x(tokens.size());
  for (size_t t = 0; t < tokens.size(); ++t) {
    x[t] = embedding[static_cast<size_t>(tokens[t])];
    if (pass.traits.scale_embeddings) {
      for (double& v : x[t]) v *= std::sqrt(static_cast<double>(pass.c.n_embd));
    }
    if (!positions.empty()) {
      for (size_t i = 0; i < x[t].size(); ++i) x[t][i] += positions[t][i];
    }
  }
  return x;
}

}  // namespace

std::vector<double> reference_logits(const std::string& path, const std::vector<TokenId>& tokens,
                                     const ReferenceVariant& variant) {
  const gguf::File file = gguf::File::open(path);
  const ModelConfig c = read_model_config(file);
  const Family* family = find_family(c.architecture);
  if (family == nullptr) fail("reference: architecture {}", c.architecture);
  const Weights w{file};
  const Pass pass{c, family->traits, variant, rope_factors(w, c, tokens.size(), variant)};

  const Matrix embedding = w.matrix("token_embd.weight");
  std::vector<Vector> x = embed(w, embedding, pass, tokens);
  for (int64_t index = 0; index < c.n_layer; ++index) {
    const Layer l = read_layer(w, c, pass.traits, index, variant);
    attention(pass, l, index, x);
    feed_forward(pass, l, x);
  }
  const Matrix output = w.has("output.weight") ? w.matrix("output.weight") : embedding;
  const Norm output_norm = read_norm(w, "output_norm", pass.traits.norm);
  const double cap = variant.skip_final_softcap ? 0.0 : c.final_logit_softcap;
  std::vector<double> logits;
  for (const Vector& row : x) {
    for (const double logit : times(output, apply_norm(row, output_norm, pass.traits.norm, c.norm_eps))) {
      logits.push_back(cap > 0 ? soft_cap(logit, cap) : logit);
    }
  }
  return logits;
}

}  // namespace tiller::testing
