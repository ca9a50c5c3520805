// Activation quantization. A block holding an infinity or a NaN gets quants 0 and
// a NaN scale, so that the products it enters are NaN, as the float path's are.
// The code is compiled once per level's instruction set; its bytes do not depend on
// it (no sum of floats is rounded along the way), which the tests check.
#include "ops/activation_quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "ops/block_layout.h"
#include "ops/ops.h"
#include "tiller/dequantize.h"
#include "common/fail.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include "ops/x86_simd.h"
#define TILLER_X86_KERNELS 1
#define TILLER_QUANTIZE_AVX2 __attribute__((target("avx2,fma,f16c")))
#define TILLER_QUANTIZE_AVX512 TILLER_TARGET_AVX512
#else
#define TILLER_X86_KERNELS 0
#endif

namespace tiller::ops {
namespace {

using blocks::as_int8;
using blocks::load_f32;

inline bool all_finite(const float* v, int n) {
  float zeros = 0.0f;  // x * 0 is 0 for finite x, NaN for infinities and NaNs
#pragma omp simd reduction(+ : zeros)
  for (int i = 0; i < n; ++i) zeros += v[i] * 0.0f;
  return zeros == 0.0f;
}

// Q8_0 and Q8_1 share the rounding; Q8_1 also stores f16(unrounded d x sum q).
inline __attribute__((always_inline)) void quantize_q8_0_or_1(const float* x, int64_t n, uint8_t* out,
                                                              bool with_sum) {
  const uint64_t block_bytes = with_sum ? kQ8_1ActBytes : kQ8_0ActBytes;
  const uint64_t quants = with_sum ? 4 : 2;
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* v = x + 32 * b;
    uint8_t* block = out + static_cast<uint64_t>(b) * block_bytes;
    float amax = 0.0f;
#pragma omp simd reduction(max : amax)
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(v[i]));
    const bool finite = all_finite(v, 32);
    const float d = finite ? amax / 127.0f : NAN;
    const float inverse = amax != 0.0f ? 127.0f / amax : 0.0f;
    int8_t q[32] = {};
    int32_t sum = 0;
    if (finite) {
      for (int i = 0; i < 32; ++i) {
        q[i] = static_cast<int8_t>(std::nearbyint(v[i] * inverse));
        sum += q[i];
      }
    }
    const uint16_t d_bits = fp32_to_fp16(d);
    std::memcpy(block, &d_bits, 2);
    if (with_sum) {
      const uint16_t s_bits = fp32_to_fp16(d * static_cast<float>(sum));
      std::memcpy(block + 2, &s_bits, 2);
    }
    std::memcpy(block + quants, q, 32);
  }
}

inline __attribute__((always_inline)) void quantize_q8_k(const float* x, int64_t n, uint8_t* out) {
  for (int64_t b = 0; b < n / 256; ++b) {
    const float* v = x + 256 * b;
    uint8_t* block = out + static_cast<uint64_t>(b) * kQ8_KActBytes;
    float amax = 0.0f;
#pragma omp simd reduction(max : amax)
    for (int i = 0; i < 256; ++i) amax = std::max(amax, std::fabs(v[i]));
    int8_t q[256] = {};
    float d = 0.0f;
    if (!all_finite(v, 256)) {
      d = NAN;
    } else if (amax != 0.0f) {
      int first = 0;  // the first value of largest magnitude, sign included
      while (first < 255 && std::fabs(v[first]) != amax) ++first;
      const float inverse = -127.0f / v[first];
      d = 1.0f / inverse;
      for (int i = 0; i < 256; ++i) q[i] = static_cast<int8_t>(std::min(127.0f, std::nearbyint(inverse * v[i])));
    }
    int16_t bsums[16];
    for (int j = 0; j < 16; ++j) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) sum += q[16 * j + i];
      bsums[j] = static_cast<int16_t>(sum);
    }
    std::memcpy(block, &d, 4);
    std::memcpy(block + 4, q, 256);
    std::memcpy(block + kQ8_KBsums, bsums, sizeof bsums);
  }
}

// Values rounded to f16 / bf16 and kept as f32. The scalar conversions are the
// library's one definition of each rounding (a call per value; a product then
// reads n_out weight rows per activation row, so this is a small part of it).
inline void round_row_to_half(const float* x, int64_t n, uint8_t* out, bool bf16) {
  for (int64_t i = 0; i < n; ++i) {
    const float rounded = bf16 ? bf16_to_fp32(fp32_to_bf16(x[i])) : fp16_to_fp32(fp32_to_fp16(x[i]));
    std::memcpy(out + 4 * i, &rounded, 4);
  }
}

inline __attribute__((always_inline)) void quantize_row(ActivationFormat format, const float* x, int64_t n,
                                                        uint8_t* out) {
  switch (format) {
    case ActivationFormat::Q8_0: quantize_q8_0_or_1(x, n, out, false); return;
    case ActivationFormat::Q8_1: quantize_q8_0_or_1(x, n, out, true); return;
    case ActivationFormat::Q8_K: quantize_q8_k(x, n, out); return;
    case ActivationFormat::F16: round_row_to_half(x, n, out, false); return;
    case ActivationFormat::BF16: round_row_to_half(x, n, out, true); return;
    case ActivationFormat::F32: std::memcpy(out, x, static_cast<size_t>(n) * sizeof(float)); return;
  }
}

void quantize_row_portable(ActivationFormat format, const float* x, int64_t n, uint8_t* out) {
  quantize_row(format, x, n, out);
}
#if TILLER_X86_KERNELS
TILLER_QUANTIZE_AVX2 void quantize_row_avx2(ActivationFormat format, const float* x, int64_t n, uint8_t* out) {
  quantize_row(format, x, n, out);
}
TILLER_QUANTIZE_AVX512 void quantize_row_avx512(ActivationFormat format, const float* x, int64_t n, uint8_t* out) {
  quantize_row(format, x, n, out);
}
#endif

void quantize_row_at(ActivationFormat format, const float* x, int64_t n, uint8_t* out, KernelLevel level) {
#if TILLER_X86_KERNELS
  switch (level) {
    case KernelLevel::Portable: break;
    case KernelLevel::Avx2: case KernelLevel::Avx2Tiled: quantize_row_avx2(format, x, n, out); return;
    case KernelLevel::Avx512Vnni: quantize_row_avx512(format, x, n, out); return;
  }
#else
  (void)level;
#endif
  quantize_row_portable(format, x, n, out);
}

}  // namespace

ActivationFormat activation_format(TensorType weight_type) {
  switch (weight_type) {
    case TensorType::Q4_0: case TensorType::Q5_0: case TensorType::Q8_0: case TensorType::IQ4_NL:
      return ActivationFormat::Q8_0;
    case TensorType::Q4_1: case TensorType::Q5_1: return ActivationFormat::Q8_1;
    case TensorType::Q2_K: case TensorType::Q3_K: case TensorType::Q4_K: case TensorType::Q5_K:
    case TensorType::Q6_K: case TensorType::IQ4_XS:
      return ActivationFormat::Q8_K;
    case TensorType::F16: return ActivationFormat::F16;
    case TensorType::BF16: return ActivationFormat::BF16;
    default: return ActivationFormat::F32;
  }
}

int64_t activation_block_size(ActivationFormat format) {
  switch (format) {
    case ActivationFormat::Q8_0: case ActivationFormat::Q8_1: return 32;
    case ActivationFormat::Q8_K: return 256;
    case ActivationFormat::F32: case ActivationFormat::F16: case ActivationFormat::BF16: break;
  }
  return 1;
}

uint64_t activation_block_bytes(ActivationFormat format) {
  switch (format) {
    case ActivationFormat::Q8_0: return kQ8_0ActBytes;
    case ActivationFormat::Q8_1: return kQ8_1ActBytes;
    case ActivationFormat::Q8_K: return kQ8_KActBytes;
    case ActivationFormat::F32: case ActivationFormat::F16: case ActivationFormat::BF16: break;
  }
  return 4;
}

uint64_t activation_row_bytes(ActivationFormat format, int64_t n) {
  const int64_t block = activation_block_size(format);
  if (n < 0 || n % block != 0) fail("quantized activations: {} values are not whole blocks of {}", n, block);
  return static_cast<uint64_t>(n / block) * activation_block_bytes(format);
}

void quantize_activations(ActivationFormat format, const float* x, int64_t n, uint8_t* out, KernelLevel level) {
  activation_row_bytes(format, n);  // checks n
  quantize_row_at(format, x, n, out, level);
}

void dequantize_activations(ActivationFormat format, const uint8_t* in, int64_t n, float* out) {
  const int64_t block = activation_block_size(format);
  const uint64_t bytes = activation_block_bytes(format);
  activation_row_bytes(format, n);
  for (int64_t b = 0; b < n / block; ++b) {
    const uint8_t* p = in + static_cast<uint64_t>(b) * bytes;
    switch (format) {
      case ActivationFormat::Q8_0: case ActivationFormat::Q8_1: {
        const float d = fp16_to_fp32(static_cast<uint16_t>(p[0] | p[1] << 8));
        const int8_t* q = as_int8(p + (format == ActivationFormat::Q8_1 ? 4 : 2));
        for (int i = 0; i < 32; ++i) out[32 * b + i] = d * static_cast<float>(q[i]);
        break;
      }
      case ActivationFormat::Q8_K: {
        const float d = load_f32(p);
        const int8_t* q = as_int8(p + 4);
        for (int i = 0; i < 256; ++i) out[256 * b + i] = d * static_cast<float>(q[i]);
        break;
      }
      case ActivationFormat::F32: case ActivationFormat::F16: case ActivationFormat::BF16:
        std::memcpy(out + b, p, 4);
        break;
    }
  }
}

void quantize_rows(ActivationFormat format, const float* x, int64_t n_rows, int64_t n_in, uint8_t* out,
                   uint64_t row_bytes, ThreadPool& pool, KernelLevel level) {
  auto rows = [&](int64_t begin, int64_t end, int) {
    for (int64_t t = begin; t < end; ++t) {
      quantize_row_at(format, x + t * n_in, n_in, out + static_cast<uint64_t>(t) * row_bytes, level);
    }
  };
  parallel_rows(pool, n_rows, rows);
}

}  // namespace tiller::ops
