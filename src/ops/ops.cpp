#include "ops/ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "ops/block_layout.h"
#include "ops/exp_avx512.h"
#include "ops/matmul.h"
#include "tiller/dequantize.h"
#include "common/fail.h"

namespace tiller::ops {

namespace {

// One loop, compiled once per level with that level's instruction set; the
// reduction order follows the vector width, which is fine for a dot product.
inline __attribute__((always_inline)) float dot_loop(const float* a, const float* b, int64_t n) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

float dot_portable(const float* a, const float* b, int64_t n) { return dot_loop(a, b, n); }

#if defined(__x86_64__) && defined(__GNUC__)
// No FMA in either target: a product and a sum round apart, as in the portable loop.
__attribute__((target("avx2"))) float dot_avx2(const float* a, const float* b, int64_t n) {
  return dot_loop(a, b, n);
}
#if defined(TILLER_EMULATE_AVX512)  // AVX-512 code runs on AVX2 there (x86_simd.h)
__attribute__((target("avx2")))
#else
__attribute__((target("avx512f")))
#endif
float dot_avx512(const float* a, const float* b, int64_t n) {
  return dot_loop(a, b, n);
}
#endif

}  // namespace

float dot(const float* a, const float* b, int64_t n, KernelLevel level) {
#if defined(__x86_64__) && defined(__GNUC__)
  switch (level) {
    case KernelLevel::Portable: break;
    case KernelLevel::Avx2: case KernelLevel::Avx2Tiled: return dot_avx2(a, b, n);
    case KernelLevel::Avx512Vnni: return dot_avx512(a, b, n);
  }
#else
  (void)level;
#endif
  return dot_portable(a, b, n);
}

WeightMatrix output_rows(const WeightMatrix& w, int64_t first, int64_t count) {
  if (first < 0 || count < 0 || first + count > w.n_out) fail("{}: rows {}..{} of {}", w.name, first, first + count, w.n_out);
  WeightMatrix part = w;
  part.data = w.data + static_cast<uint64_t>(first) * w.row_bytes;
  part.n_out = count;
  return part;
}

void weight_row(const WeightMatrix& w, int64_t row, float* out) {
  const uint8_t* bytes = w.data + static_cast<uint64_t>(row) * w.row_bytes;
  if (w.layout != WeightLayout::Gguf) {
    thread_local std::vector<uint8_t> gguf;
    gguf.resize(w.row_bytes);
    deinterleave_blocks(w.layout, bytes, w.row_bytes / tensor_type_info(w.type).block_bytes, gguf.data());
    bytes = gguf.data();
  }
  dequantize_row(w.type, {bytes, w.row_bytes}, {out, static_cast<size_t>(w.n_in)});
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
    case TensorType::Q8_0: case TensorType::IQ4_NL:
      round_to_q8_0(x, n, out);
      return;
    case TensorType::Q2_K: case TensorType::Q3_K: case TensorType::Q4_K: case TensorType::Q5_K:
    case TensorType::Q6_K: case TensorType::IQ4_XS:
      round_to_q8_k(x, n, out);
      return;
    case TensorType::F16:
      for (int64_t i = 0; i < n; ++i) out[i] = fp16_to_fp32(fp32_to_fp16(x[i]));
      return;
    case TensorType::BF16:
      for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_fp32(fp32_to_bf16(x[i]));
      return;
    default:
      std::copy(x, x + n, out);
  }
}

namespace {

// Q8_1 keeps, beside each block's f16 scale d, the f16 of (unrounded d) x (sum of
// the block's quants), and the formats with a block minimum (Q4_1, Q5_1) multiply
// that minimum by it. Dequantized weights times rounded activations give
// m x f16(d) x sum instead; these per-block corrections (s - f16(d) x sum) make up
// the difference, which otherwise leaves a relative error near 5e-4 per product.
bool uses_q8_1_sums(TensorType type) { return type == TensorType::Q4_1 || type == TensorType::Q5_1; }

void q8_1_sum_corrections(const float* x, int64_t n, float* out) {
  for (int64_t b = 0; b + 32 <= n; b += 32) {
    float amax = 0.0f;
    for (int64_t i = b; i < b + 32; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float d = amax / 127.0f, inverse = amax != 0.0f ? 127.0f / amax : 0.0f;
    float sum = 0.0f;  // an integer below 2^13: exact
    for (int64_t i = b; i < b + 32; ++i) sum += std::nearbyint(x[i] * inverse);
    const float stored = fp16_to_fp32(fp32_to_fp16(d * sum));
    out[b / 32] = stored - fp16_to_fp32(fp32_to_fp16(d)) * sum;
  }
}

}  // namespace

void matmul_reference(const WeightMatrix& w, const float* x_in, int64_t n_rows, float* out, ThreadPool& pool,
                      KernelLevel level) {
  thread_local std::vector<float> rounded, corrections;
  rounded.resize(static_cast<size_t>(n_rows * w.n_in));
  round_activations(w.type, x_in, n_rows * w.n_in, rounded.data());
  const float* x = rounded.data();
  const bool correct = uses_q8_1_sums(w.type);
  const int64_t n_blocks = w.n_in / 32;
  if (correct) {
    corrections.resize(static_cast<size_t>(n_rows * n_blocks));
    for (int64_t t = 0; t < n_rows; ++t) q8_1_sum_corrections(x_in + t * w.n_in, w.n_in, &corrections[t * n_blocks]);
  }
  const float* delta = corrections.data();
  pool.parallel_for(w.n_out, [&](int64_t begin, int64_t end, int) {
    thread_local std::vector<float> row, minimums;
    row.resize(static_cast<size_t>(w.n_in));
    minimums.resize(static_cast<size_t>(n_blocks));
    const uint64_t block_bytes = tensor_type_info(w.type).block_bytes;
    for (int64_t r = begin; r < end; ++r) {
      weight_row(w, r, row.data());
      if (correct) {  // the minimum m is the f16 after the f16 scale d in both formats
        const uint8_t* blocks = w.data + static_cast<uint64_t>(r) * w.row_bytes;
        for (int64_t b = 0; b < n_blocks; ++b) {
          uint16_t bits;
          std::memcpy(&bits, blocks + static_cast<uint64_t>(b) * block_bytes + 2, 2);
          minimums[static_cast<size_t>(b)] = fp16_to_fp32(bits);
        }
      }
      for (int64_t t = 0; t < n_rows; ++t) {
        float value = dot(row.data(), x + t * w.n_in, w.n_in, level);
        if (correct) value += dot(minimums.data(), delta + t * n_blocks, n_blocks, level);
        out[t * w.n_out + r] = value;
      }
    }
  });
}

void matmul(const WeightMatrix& w, const float* x, int64_t n_rows, float* out, ThreadPool& pool, KernelLevel level,
            bool independent_rows) {
  quantized_matmul(w, x, n_rows, out, pool, level, independent_rows);
}

void rms_norm(const float* x, const float* weight, int64_t n_rows, int64_t width, float eps, float* out) {
  for (int64_t t = 0; t < n_rows; ++t) {
    const float* in = x + t * width;
    float* o = out + t * width;
    double sum = 0.0;
    for (int64_t i = 0; i < width; ++i) sum += static_cast<double>(in[i] * in[i]);
    const float scale = 1.0f / std::sqrt(static_cast<float>(sum / static_cast<double>(width)) + eps);
    for (int64_t i = 0; i < width; ++i) o[i] = in[i] * scale * weight[i];
  }
}

void layer_norm(const float* x, const float* weight, const float* bias, int64_t n_rows, int64_t width, float eps,
                float* out) {
  for (int64_t t = 0; t < n_rows; ++t) {
    const float* in = x + t * width;
    float* o = out + t * width;
    double sum = 0.0;
    for (int64_t i = 0; i < width; ++i) sum += static_cast<double>(in[i]);
    const auto mean = static_cast<float>(sum / static_cast<double>(width));
    double squares = 0.0;
    for (int64_t i = 0; i < width; ++i) {
      o[i] = in[i] - mean;
      squares += static_cast<double>(o[i] * o[i]);
    }
    const float scale = 1.0f / std::sqrt(static_cast<float>(squares / static_cast<double>(width)) + eps);
    for (int64_t i = 0; i < width; ++i) o[i] = o[i] * scale * weight[i] + bias[i];
  }
}

void rope(float* x, int64_t n_rows, int64_t n_heads, int64_t head_dim, std::span<const int32_t> positions,
          const RopeParams& params) {
  const int64_t half = head_dim / 2;
  const float theta_scale = std::pow(params.freq_base, -2.0f / static_cast<float>(head_dim));
  thread_local std::vector<float> cos_table, sin_table;
  cos_table.resize(static_cast<size_t>(half));
  sin_table.resize(static_cast<size_t>(half));
  for (int64_t t = 0; t < n_rows; ++t) {
    float theta = static_cast<float>(positions[static_cast<size_t>(t)]);
    for (int64_t i = 0; i < half; ++i) {
      const float factor = params.freq_factors != nullptr ? params.freq_factors[i] : 1.0f;
      const float angle = params.freq_scale * (theta / factor);
      cos_table[static_cast<size_t>(i)] = std::cos(angle) * params.attn_factor;
      sin_table[static_cast<size_t>(i)] = std::sin(angle) * params.attn_factor;
      theta *= theta_scale;
    }
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + (t * n_heads + h) * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const int64_t a = params.neox ? i : 2 * i, b = params.neox ? i + half : 2 * i + 1;
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

#if defined(__x86_64__) && defined(__GNUC__)
// GCC 12's false positive on the intrinsics' _mm512_undefined_ps() (see attention.cpp).
#pragma GCC diagnostic push
#if !defined(__clang__)  // clang has no such warning and rejects the name under -Werror
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
namespace {
TILLER_TARGET_AVX512 void silu_times_avx512(float* gate, const float* up, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 x = _mm512_loadu_ps(gate + i);
    const __m512 silu = _mm512_div_ps(x, _mm512_add_ps(one, exp_avx512(_mm512_sub_ps(_mm512_setzero_ps(), x))));
    _mm512_storeu_ps(gate + i, _mm512_mul_ps(silu, _mm512_loadu_ps(up + i)));
  }
  for (; i < n; ++i) gate[i] = silu(gate[i]) * up[i];
}
}  // namespace
#pragma GCC diagnostic pop
#endif

void silu_times(float* gate, const float* up, int64_t n, KernelLevel level) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (level == KernelLevel::Avx512Vnni) {
    silu_times_avx512(gate, up, n);
    return;
  }
#else
  (void)level;
#endif
  for (int64_t i = 0; i < n; ++i) gate[i] = silu(gate[i]) * up[i];
}

float gelu_tanh(float x) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
}

namespace {
// GELU-tanh of every f16 value, rounded to f16, stored widened to floats.
const float* gelu_f16_table() {
  static const std::vector<float> table = [] {
    std::vector<float> values(65536);
    for (uint32_t bits = 0; bits < 65536; ++bits) {
      values[bits] = fp16_to_fp32(fp32_to_fp16(gelu_tanh(fp16_to_fp32(static_cast<uint16_t>(bits)))));
    }
    return values;
  }();
  return table.data();
}
}  // namespace

float gelu_tanh_f16(float x) {
  // Beyond +-10 the table is not used: GELU is x or 0 to f32 precision there.
  if (x <= -10.0f) return 0.0f;
  if (x >= 10.0f) return x;
  return gelu_f16_table()[fp32_to_fp16(x)];
}

#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC diagnostic push
#if !defined(__clang__)  // clang has no such warning and rejects the name under -Werror
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
namespace {
// gelu_tanh_f16 16 at a time: vcvtps2ph rounds as fp32_to_fp16 does (to nearest,
// ties to even), and the table is gathered, so the results are the same bits.
TILLER_TARGET_AVX512 void gelu_f16_times_avx512(float* gate, const float* up,
                                                                            int64_t n) {
  const float* table = gelu_f16_table();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 x = _mm512_loadu_ps(gate + i);
    const __m512i index =
        _mm512_cvtepu16_epi32(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m512 g = _mm512_i32gather_ps(index, table, 4);
    g = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(-10.0f), _CMP_LE_OQ), g, _mm512_setzero_ps());
    g = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(10.0f), _CMP_GE_OQ), g, x);
    _mm512_storeu_ps(gate + i, _mm512_mul_ps(g, _mm512_loadu_ps(up + i)));
  }
  for (; i < n; ++i) gate[i] = gelu_tanh_f16(gate[i]) * up[i];
}
}  // namespace
#pragma GCC diagnostic pop
#endif

void gelu_f16_times(float* gate, const float* up, int64_t n, KernelLevel level) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (level == KernelLevel::Avx512Vnni) {
    gelu_f16_times_avx512(gate, up, n);
    return;
  }
#else
  (void)level;
#endif
  for (int64_t i = 0; i < n; ++i) gate[i] = gelu_tanh_f16(gate[i]) * up[i];
}

void gelu_f16(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = gelu_tanh_f16(x[i]);
}

}  // namespace tiller::ops
