#include "ops/ops.h"

#include <cmath>
#include <vector>

#include "tiller/dequantize.h"
#include "tiller/error.h"

namespace tiller::ops {

// One clone per instruction set, chosen at run time; the reduction order differs
// from a plain loop, which is fine for a dot product.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
float dot(const float* a, const float* b, int64_t n) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

void weight_row(const WeightMatrix& w, int64_t row, float* out) {
  dequantize_row(w.type, {w.data + static_cast<uint64_t>(row) * w.row_bytes, w.row_bytes},
                 {out, static_cast<size_t>(w.n_in)});
}

void matmul(const WeightMatrix& w, const float* x, int64_t n_rows, float* out, ThreadPool& pool) {
  pool.parallel_for(w.n_out, [&](int64_t begin, int64_t end, int) {
    thread_local std::vector<float> row;
    row.resize(static_cast<size_t>(w.n_in));
    for (int64_t r = begin; r < end; ++r) {
      weight_row(w, r, row.data());
      for (int64_t t = 0; t < n_rows; ++t) out[t * w.n_out + r] = dot(row.data(), x + t * w.n_in, w.n_in);
    }
  });
}

void rms_norm(const float* x, const float* weight, int64_t n_rows, int64_t width, float eps, float* out) {
  for (int64_t t = 0; t < n_rows; ++t) {
    const float* in = x + t * width;
    float* o = out + t * width;
    double sum = 0.0;
    for (int64_t i = 0; i < width; ++i) sum += static_cast<double>(in[i]) * in[i];
    const float scale = 1.0f / std::sqrt(static_cast<float>(sum / static_cast<double>(width)) + eps);
    for (int64_t i = 0; i < width; ++i) o[i] = in[i] * scale * weight[i];
  }
}

void rope(float* x, int64_t n_rows, int64_t n_heads, int64_t head_dim, std::span<const int32_t> positions,
          float freq_base, bool neox) {
  const int64_t half = head_dim / 2;
  const float theta_scale = std::pow(freq_base, -2.0f / static_cast<float>(head_dim));
  std::vector<float> cos_table(static_cast<size_t>(half)), sin_table(static_cast<size_t>(half));
  for (int64_t t = 0; t < n_rows; ++t) {
    float theta = static_cast<float>(positions[static_cast<size_t>(t)]);
    for (int64_t i = 0; i < half; ++i) {
      cos_table[static_cast<size_t>(i)] = std::cos(theta);
      sin_table[static_cast<size_t>(i)] = std::sin(theta);
      theta *= theta_scale;
    }
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + (t * n_heads + h) * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const int64_t a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
        const float c = cos_table[static_cast<size_t>(i)], s = sin_table[static_cast<size_t>(i)];
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * c - x1 * s;
        v[b] = x0 * s + x1 * c;
      }
    }
  }
}

void softmax(float* x, int64_t n) {
  float max = -INFINITY;
  for (int64_t i = 0; i < n; ++i) max = std::max(max, x[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inverse = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inverse;
}

float silu(float x) { return x / (1.0f + std::exp(-x)); }

float gelu_tanh(float x) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
}

}  // namespace tiller::ops
