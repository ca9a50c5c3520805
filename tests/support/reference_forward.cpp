#include "support/reference_forward.h"

#include <cmath>

#include "tiller/dequantize.h"
#include "common/fail.h"
#include "tiller/gguf.h"
#include "tiller/model_config.h"

namespace tiller::testing {
namespace {

using Matrix = std::vector<std::vector<double>>;  // [rows][cols]
using Vector = std::vector<double>;

struct Weights {
  const gguf::File& file;
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
};

Vector times(const Matrix& w, const Vector& x) {  // w is [out][in]
  Vector y(w.size(), 0.0);
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

// Rotates each head's pairs by position * freq_scale * base^(-2i/d).
void rope(Vector& x, size_t n_heads, size_t head_dim, int position, double base, double freq_scale, bool neox) {
  const size_t half = head_dim / 2;
  for (size_t h = 0; h < n_heads; ++h) {
    for (size_t i = 0; i < half; ++i) {
      const double angle = position * freq_scale * std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
      const size_t a = h * head_dim + (neox ? i : 2 * i), b = h * head_dim + (neox ? i + half : 2 * i + 1);
      const double x0 = x[a], x1 = x[b];
      x[a] = x0 * std::cos(angle) - x1 * std::sin(angle);
      x[b] = x0 * std::sin(angle) + x1 * std::cos(angle);
    }
  }
}

double gelu_tanh(double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); }
double silu(double x) { return x / (1 + std::exp(-x)); }

}  // namespace

std::vector<double> reference_logits(const std::string& path, const std::vector<TokenId>& tokens,
                                     const ReferenceVariant& variant) {
  const gguf::File file = gguf::File::open(path);
  const ModelConfig c = read_model_config(file);
  const bool gemma = c.architecture == "gemma3";
  if (!gemma && c.architecture != "llama") fail("reference: architecture {}", c.architecture);
  const Weights weights{file};
  const auto n_embd = static_cast<size_t>(c.n_embd), hd = static_cast<size_t>(c.head_dim);
  const auto n_head = static_cast<size_t>(c.n_head), n_kv = static_cast<size_t>(c.n_head_kv);
  const size_t n = tokens.size();
  const double eps = c.norm_eps;
  const bool neox = gemma != variant.swap_rope_pairing;

  const Matrix embedding = weights.matrix("token_embd.weight");
  std::vector<Vector> x(n);
  for (size_t t = 0; t < n; ++t) {
    x[t] = embedding[static_cast<size_t>(tokens[t])];
    if (gemma) {
      for (double& v : x[t]) v *= std::sqrt(static_cast<double>(n_embd));
    }
  }
  for (int64_t layer = 0; layer < c.n_layer; ++layer) {
    const std::string p = "blk." + std::to_string(layer) + ".";
    // Gemma 3: five local (sliding-window) blocks, then one global block.
    const bool local = gemma && (layer + 1) % 6 != 0 && !variant.ignore_window;
    const bool local_rope = gemma && (layer + 1) % 6 != 0;
    const double base = local_rope ? *c.rope_freq_base_sliding : c.rope_freq_base;
    const double freq_scale = local_rope ? 1.0 : c.rope_freq_scale;
    const Matrix wq = weights.matrix(p + "attn_q.weight"), wk = weights.matrix(p + "attn_k.weight"),
                 wv = weights.matrix(p + "attn_v.weight"), wo = weights.matrix(p + "attn_output.weight");
    // Each block's norm weights, read once rather than per position.
    const Vector attn_norm = weights.vector(p + "attn_norm.weight"), ffn_norm = weights.vector(p + "ffn_norm.weight");
    const Vector qn = gemma ? weights.vector(p + "attn_q_norm.weight") : Vector{},
                 kn = gemma ? weights.vector(p + "attn_k_norm.weight") : Vector{},
                 post_attention = gemma ? weights.vector(p + "post_attention_norm.weight") : Vector{},
                 post_ffw = gemma ? weights.vector(p + "post_ffw_norm.weight") : Vector{};
    std::vector<Vector> q(n), k(n), v(n);
    for (size_t t = 0; t < n; ++t) {
      const Vector h = rms_norm(x[t], attn_norm, eps);
      q[t] = times(wq, h);
      k[t] = times(wk, h);
      v[t] = times(wv, h);
      if (gemma) {  // each head normalized on its own
        for (size_t head = 0; head < n_head; ++head) {
          const Vector y = rms_norm(q[t], qn, eps, head * hd, hd);
          std::copy(y.begin(), y.end(), q[t].begin() + static_cast<std::ptrdiff_t>(head * hd));
        }
        for (size_t head = 0; head < n_kv; ++head) {
          const Vector y = rms_norm(k[t], kn, eps, head * hd, hd);
          std::copy(y.begin(), y.end(), k[t].begin() + static_cast<std::ptrdiff_t>(head * hd));
        }
      }
      rope(q[t], n_head, hd, static_cast<int>(t), base, freq_scale, neox);
      rope(k[t], n_kv, hd, static_cast<int>(t), base, freq_scale, neox);
    }
    for (size_t t = 0; t < n; ++t) {
      Vector attended(n_head * hd, 0.0);
      for (size_t head = 0; head < n_head; ++head) {
        const size_t kv = variant.interleave_kv_heads ? head % n_kv : head / (n_head / n_kv);
        std::vector<double> scores;
        size_t first = 0;
        if (local && t + 1 > static_cast<size_t>(*c.sliding_window)) first = t + 1 - static_cast<size_t>(*c.sliding_window);
        double max = -INFINITY;
        for (size_t j = first; j <= t; ++j) {
          double s = 0;
          for (size_t i = 0; i < hd; ++i) s += q[t][head * hd + i] * k[j][kv * hd + i];
          scores.push_back(s / std::sqrt(static_cast<double>(hd)));
          max = std::max(max, scores.back());
        }
        double total = 0;
        for (double& s : scores) total += (s = std::exp(s - max));
        for (size_t j = first; j <= t; ++j) {
          for (size_t i = 0; i < hd; ++i) attended[head * hd + i] += scores[j - first] / total * v[j][kv * hd + i];
        }
      }
      Vector out = times(wo, attended);
      if (gemma) out = rms_norm(out, post_attention, eps);
      for (size_t i = 0; i < n_embd; ++i) x[t][i] += out[i];
    }
    const Matrix gate = weights.matrix(p + "ffn_gate.weight"), up = weights.matrix(p + "ffn_up.weight"),
                 down = weights.matrix(p + "ffn_down.weight");
    for (size_t t = 0; t < n; ++t) {
      const Vector h = rms_norm(x[t], ffn_norm, eps);
      Vector g = times(gate, h);
      const Vector u = times(up, h);
      for (size_t i = 0; i < g.size(); ++i) g[i] = (gemma ? gelu_tanh(g[i]) : silu(g[i])) * u[i];
      Vector out = times(down, g);
      if (gemma) out = rms_norm(out, post_ffw, eps);
      for (size_t i = 0; i < n_embd; ++i) x[t][i] += out[i];
    }
  }
  const Matrix output = file.find_tensor("output.weight") ? weights.matrix("output.weight") : embedding;
  const Vector output_norm = weights.vector("output_norm.weight");
  std::vector<double> logits;
  for (size_t t = 0; t < n; ++t) {
    const Vector row = times(output, rms_norm(x[t], output_norm, eps));
    logits.insert(logits.end(), row.begin(), row.end());
  }
  return logits;
}

}  // namespace tiller::testing
