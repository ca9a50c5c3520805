#include "ops/ops.h"

#include <algorithm>
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

namespace {

// Q8_0 / Q8_1: q = nearest(x * 127 / max|x|), scale stored as f16.
void round_to_q8_0(const float* x, int64_t n, float* out) {
  for (int64_t b = 0; b + 32 <= n; b += 32) {
    float amax = 0.0f;
    for (int64_t i = b; i < b + 32; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float inverse = amax != 0.0f ? 127.0f / amax : 0.0f;
    const float scale = fp16_to_fp32(fp32_to_fp16(amax / 127.0f));
    for (int64_t i = b; i < b + 32; ++i) out[i] = scale * std::nearbyint(x[i] * inverse);
  }
}

// Q8_K: the scale comes from the value of largest magnitude, sign included, and stays f32.
void round_to_q8_k(const float* x, int64_t n, float* out) {
  for (int64_t b = 0; b + 256 <= n; b += 256) {
    float amax = 0.0f, extreme = 0.0f;
    for (int64_t i = b; i < b + 256; ++i) {
      if (std::fabs(x[i]) > amax) {
        amax = std::fabs(x[i]);
        extreme = x[i];
      }
    }
    if (amax == 0.0f) {
      std::fill(out + b, out + b + 256, 0.0f);
      continue;
    }
    const float inverse = -127.0f / extreme;
    const float scale = 1.0f / inverse;
    for (int64_t i = b; i < b + 256; ++i) out[i] = scale * std::min(127.0f, std::nearbyint(inverse * x[i]));
  }
}

}  // namespace

void round_activations(TensorType weight_type, const float* x, int64_t n, float* out) {
  switch (weight_type) {
    case TensorType::Q4_0: case TensorType::Q4_1: case TensorType::Q5_0: case TensorType::Q5_1:
    case TensorType::Q8_0:
      round_to_q8_0(x, n, out);
      return;
    case TensorType::Q4_K: case TensorType::Q5_K: case TensorType::Q6_K:
      round_to_q8_k(x, n, out);
      return;
    default:
      std::copy(x, x + n, out);
  }
}

void matmul(const WeightMatrix& w, const float* x_in, int64_t n_rows, float* out, ThreadPool& pool) {
  thread_local std::vector<float> rounded;
  rounded.resize(static_cast<size_t>(n_rows * w.n_in));
  round_activations(w.type, x_in, n_rows * w.n_in, rounded.data());
  const float* x = rounded.data();
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
