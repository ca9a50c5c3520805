// The integer matmul kernels against the plain float reference (matmul_reference):
// every weight type, every instruction-set level this CPU runs, awkward activations.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "ops/block_layout.h"
#include "ops/k_scales.h"
#include "ops/interleaved_k_quants.h"
#include "ops/ops.h"
#include "ops/matmul.h"
#include "ops/tiled_matmul.h"
#include "support/base64.h"
#include "support/test_files.h"
#include "support/tiny_model.h"
#include "tiller/gguf.h"
#include "tiller/dequantize.h"
#include "common/fail.h"

namespace tiller {
namespace {

using ops::ActivationFormat;

const std::vector<TensorType> kQuantizedTypes = {TensorType::Q4_0,   TensorType::Q4_1,  TensorType::Q5_0,
                                                 TensorType::Q5_1,   TensorType::Q8_0,  TensorType::Q2_K,
                                                 TensorType::Q3_K,   TensorType::Q4_K,  TensorType::Q5_K,
                                                 TensorType::Q6_K,   TensorType::IQ4_NL, TensorType::IQ4_XS};

// Rows of activations that exercise the quantizers: ordinary values, a block of
// zeros, large outliers, an all-zero row, exact ties at half steps, and a negative
// extreme that appears twice.
std::vector<float> awkward_activations(int64_t n_rows, int64_t width, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n_rows * width));
  for (auto& v : x) v = normal(rng);
  auto row = [&](int64_t t) { return x.data() + t * width; };
  if (n_rows > 1) std::fill(row(1), row(1) + std::min<int64_t>(width, 64), 0.0f);  // zero blocks
  if (n_rows > 2) {
    row(2)[3] = 1000.0f;  // outliers
    row(2)[width - 5] = -2500.0f;
    row(2)[width / 2] = 3.0e4f;
  }
  if (n_rows > 3) std::fill(row(3), row(3) + width, 0.0f);
  if (n_rows > 4) {
    for (int64_t i = 0; i < width; ++i) row(4)[i] = static_cast<float>(i % 7) * 0.5f - 1.5f;  // half steps
    row(4)[10] = -4.0f;
    row(4)[20] = -4.0f;
    row(4)[30] = 4.0f;
  }
  return x;
}

ops::WeightMatrix matrix(TensorType type, int64_t n_in, int64_t n_out, const std::vector<uint8_t>& bytes) {
  ops::WeightMatrix w;
  w.type = type;
  w.n_in = n_in;
  w.n_out = n_out;
  w.data = bytes.data();
  w.row_bytes = *tensor_bytes(type, n_in);
  w.name = "test";
  return w;
}

// sum_i |w_i x'_i| per output: the size of the terms each product adds up, which
// float rounding errors scale with. x' is x as round_activations rounds it.
std::vector<double> term_magnitudes(const ops::WeightMatrix& w, const float* x, int64_t n_rows) {
  std::vector<float> row(static_cast<size_t>(w.n_in)), rounded(static_cast<size_t>(w.n_in));
  std::vector<double> out(static_cast<size_t>(n_rows * w.n_out));
  for (int64_t t = 0; t < n_rows; ++t) {
    ops::round_activations(w.type, x + t * w.n_in, w.n_in, rounded.data());
    for (int64_t r = 0; r < w.n_out; ++r) {
      ops::weight_row(w, r, row.data());
      double sum = 0;
      for (int64_t i = 0; i < w.n_in; ++i) sum += std::fabs(double(row[i]) * rounded[i]);
      out[static_cast<size_t>(t * w.n_out + r)] = sum;
    }
  }
  return out;
}

// The largest |a - b| / magnitude over all outputs.
double worst_relative(const std::vector<float>& a, const std::vector<float>& b, const std::vector<double>& scale) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double diff = std::fabs(double(a[i]) - b[i]);
    worst = std::max(worst, scale[i] > 0 ? diff / scale[i] : diff);
  }
  return worst;
}

TEST(QuantizedDot, HalfConversionMatchesTheReferenceForEveryPattern) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const float expected = fp16_to_fp32(static_cast<uint16_t>(bits));
    const float got = ops::half_to_float(static_cast<uint16_t>(bits));
    if (std::isnan(expected)) {
      EXPECT_TRUE(std::isnan(got)) << bits;
    } else {
      ASSERT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(expected)) << std::hex << bits;
    }
  }
}

// The word-wise unpacking of the K-quants' packed scales and mins gives the byte
// loop's values: every bit of each of the 12 bytes set alone, then random bytes.
TEST(QuantizedDot, KScalesUnpackedByWordsEqualTheByteLoop) {
  std::mt19937 rng(31);
  for (int trial = 0; trial < 96 + 20000; ++trial) {
    std::array<uint8_t, 12> packed{};
    if (trial < 96) {
      packed[size_t(trial / 8)] = static_cast<uint8_t>(1u << (trial % 8));
    } else {
      for (uint8_t& byte : packed) byte = static_cast<uint8_t>(rng());
    }
    uint8_t scale[8], min[8];
    ops::unpack_k_scales(packed.data(), scale, min);
    uint64_t scales = 0, mins = 0;
    ops::unpack_k_scales_words(packed.data(), scales, mins);
    for (int j = 0; j < 8; ++j) {
      ASSERT_EQ(static_cast<uint8_t>(scales >> (8 * j)), scale[j]) << "trial " << trial << " scale " << j;
      ASSERT_EQ(static_cast<uint8_t>(mins >> (8 * j)), min[j]) << "trial " << trial << " min " << j;
    }
  }
}

TEST(QuantizedDot, ActivationFormatsFollowTheWeightType) {
  EXPECT_EQ(ops::activation_format(TensorType::Q4_0), ActivationFormat::Q8_0);
  EXPECT_EQ(ops::activation_format(TensorType::Q5_0), ActivationFormat::Q8_0);
  EXPECT_EQ(ops::activation_format(TensorType::Q8_0), ActivationFormat::Q8_0);
  EXPECT_EQ(ops::activation_format(TensorType::Q4_1), ActivationFormat::Q8_1);
  EXPECT_EQ(ops::activation_format(TensorType::Q5_1), ActivationFormat::Q8_1);
  EXPECT_EQ(ops::activation_format(TensorType::Q4_K), ActivationFormat::Q8_K);
  EXPECT_EQ(ops::activation_format(TensorType::Q5_K), ActivationFormat::Q8_K);
  EXPECT_EQ(ops::activation_format(TensorType::Q6_K), ActivationFormat::Q8_K);
  EXPECT_EQ(ops::activation_format(TensorType::Q2_K), ActivationFormat::Q8_K);  // ggml-cpu's vec_dot_type
  EXPECT_EQ(ops::activation_format(TensorType::Q3_K), ActivationFormat::Q8_K);
  EXPECT_EQ(ops::activation_format(TensorType::IQ4_XS), ActivationFormat::Q8_K);
  EXPECT_EQ(ops::activation_format(TensorType::IQ4_NL), ActivationFormat::Q8_0);
  EXPECT_EQ(ops::activation_format(TensorType::F32), ActivationFormat::F32);
  EXPECT_EQ(ops::activation_format(TensorType::F16), ActivationFormat::F16);
  EXPECT_EQ(ops::activation_format(TensorType::BF16), ActivationFormat::BF16);
  EXPECT_EQ(ops::activation_row_bytes(ActivationFormat::F16, 3), 12u);  // rounded values kept as f32
  EXPECT_EQ(ops::activation_row_bytes(ActivationFormat::Q8_0, 64), 68u);
  EXPECT_EQ(ops::activation_row_bytes(ActivationFormat::Q8_1, 64), 72u);
  EXPECT_EQ(ops::activation_row_bytes(ActivationFormat::Q8_K, 512), 584u);
  EXPECT_THROW(ops::activation_row_bytes(ActivationFormat::Q8_K, 300), Error);
}

// The quantized activations, read back as q x d, are exactly round_activations'
// values; Q8_1's s and Q8_K's sums of 16 are what the formats define.
TEST(QuantizedDot, ActivationQuantizationIsBitExactWithRoundActivations) {
  std::mt19937 rng(7);
  const int64_t width = 768, n_rows = 5;
  const auto x = awkward_activations(n_rows, width, rng);
  for (TensorType type : {TensorType::Q4_0, TensorType::Q4_1, TensorType::Q6_K, TensorType::IQ4_NL,
                          TensorType::IQ4_XS, TensorType::F16, TensorType::BF16}) {
    const ActivationFormat format = ops::activation_format(type);
    const uint64_t row_bytes = ops::activation_row_bytes(format, width);
    for (int64_t t = 0; t < n_rows; ++t) {
      const float* in = x.data() + t * width;
      std::vector<uint8_t> q(row_bytes);
      ops::quantize_activations(format, in, width, q.data(), KernelLevel::Portable);
      for (const KernelLevel level : available_kernel_levels()) {  // the same bytes at every level
        std::vector<uint8_t> at_level(row_bytes);
        ops::quantize_activations(format, in, width, at_level.data(), level);
        ASSERT_EQ(at_level, q) << tensor_type_name(type) << " " << kernel_level_name(level) << " row " << t;
      }
      std::vector<float> back(static_cast<size_t>(width)), rounded(static_cast<size_t>(width));
      ops::dequantize_activations(format, q.data(), width, back.data());
      ops::round_activations(type, in, width, rounded.data());
      for (int64_t i = 0; i < width; ++i) {
        // Equal as numbers: round_activations may give -0 where a quant of 0 gives +0.
        ASSERT_EQ(back[i], rounded[i])
            << tensor_type_name(type) << " row " << t << " value " << i << ": " << back[i] << " vs " << rounded[i];
      }
      if (format == ActivationFormat::Q8_1) {
        for (int64_t b = 0; b < width / 32; ++b) {
          const uint8_t* block = q.data() + b * 36;
          float amax = 0;
          for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(in[b * 32 + i]));
          int sum = 0;
          for (int i = 0; i < 32; ++i) sum += static_cast<int8_t>(block[4 + i]);
          uint16_t s;
          std::memcpy(&s, block + 2, 2);
          EXPECT_EQ(s, fp32_to_fp16(amax / 127.0f * static_cast<float>(sum))) << "row " << t << " block " << b;
        }
      }
      if (format == ActivationFormat::Q8_K) {
        for (int64_t b = 0; b < width / 256; ++b) {
          const uint8_t* block = q.data() + b * 292;
          for (int j = 0; j < 16; ++j) {
            int sum = 0;
            for (int i = 0; i < 16; ++i) sum += static_cast<int8_t>(block[4 + 16 * j + i]);
            int16_t stored;
            std::memcpy(&stored, block + 260 + 2 * j, 2);
            EXPECT_EQ(stored, sum);
          }
          // The first value of largest magnitude becomes -127.
          const float* v = in + 256 * b;
          const auto extreme = std::max_element(v, v + 256, [](float a, float c) { return std::fabs(a) < std::fabs(c); });
          if (*extreme != 0.0f) {
            EXPECT_EQ(static_cast<int8_t>(block[4 + (extreme - v)]), -127);
          }
        }
      }
    }
  }
}

struct DotCase {
  int64_t n_in, n_out, n_rows;
};

// For every type and level: equal to the float reference within 2e-6 of the terms'
// size, and clearly away from a product that skips the activation rounding (so
// the comparison can fail).
TEST(QuantizedDot, MatmulEqualsTheReferenceForEveryTypeAndLevel) {
  std::mt19937 rng(11);
  ThreadPool pool(1);
  std::vector<std::array<double, 2>> worst(kQuantizedTypes.size(), {0.0, INFINITY});
  for (size_t type_index = 0; type_index < kQuantizedTypes.size(); ++type_index) {
    const TensorType type = kQuantizedTypes[type_index];
    const bool k_quant = tensor_type_info(type).block_size == 256;
    // Row counts below and above kTiledMinRows, and ones that leave partial
    // tiles of activation rows; output counts that leave partial panels.
    for (const DotCase c : {DotCase{k_quant ? 256 : 32, 3, 5}, DotCase{k_quant ? 768 : 96, 17, 5},
                         DotCase{k_quant ? 1536 : 1504, 9, 6}, DotCase{k_quant ? 512 : 160, 16, 8},
                         DotCase{k_quant ? 512 : 64, 33, 9}, DotCase{k_quant ? 256 : 96, 50, 11}}) {
      const auto bytes = testing::random_tensor_bytes(type, c.n_in * c.n_out, rng);
      const auto w = matrix(type, c.n_in, c.n_out, bytes);
      const auto x = awkward_activations(c.n_rows, c.n_in, rng);
      const size_t n_out = static_cast<size_t>(c.n_rows * c.n_out);
      std::vector<float> reference(n_out);
      ops::matmul_reference(w, x.data(), c.n_rows, reference.data(), pool, KernelLevel::Portable);
      const auto scale = term_magnitudes(w, x.data(), c.n_rows);

      // Without activation rounding: dequantized weights times x as it is.
      std::vector<float> unrounded(n_out), row(static_cast<size_t>(c.n_in));
      for (int64_t t = 0; t < c.n_rows; ++t) {
        for (int64_t r = 0; r < c.n_out; ++r) {
          ops::weight_row(w, r, row.data());
          double sum = 0;
          for (int64_t i = 0; i < c.n_in; ++i) sum += double(row[i]) * x[t * c.n_in + i];
          unrounded[t * c.n_out + r] = static_cast<float>(sum);
        }
      }

      for (KernelLevel level : available_kernel_levels()) {
        SCOPED_TRACE(::testing::Message() << tensor_type_name(type) << " " << kernel_level_name(level) << " "
                                        << c.n_in << "x" << c.n_out << " rows " << c.n_rows);
        std::vector<float> got(n_out, NAN);
        ops::quantized_matmul(w, x.data(), c.n_rows, got.data(), pool, level);
        const double error = worst_relative(got, reference, scale);
        const double without_rounding = worst_relative(got, unrounded, scale);
        EXPECT_LT(error, 2e-6);
        EXPECT_GT(without_rounding, 1e-4) << "matches a product without rounding";
        worst[type_index][0] = std::max(worst[type_index][0], error);
        worst[type_index][1] = std::min(worst[type_index][1], without_rounding);
        // All-zero activations give exactly zero.
        for (int64_t r = 0; r < c.n_out; ++r) EXPECT_EQ(got[3 * c.n_out + r], 0.0f);
      }
      std::vector<float> best(n_out);
      ops::matmul(w, x.data(), c.n_rows, best.data(), pool, best_kernel_level());
      std::vector<float> expected(n_out);
      ops::quantized_matmul(w, x.data(), c.n_rows, expected.data(), pool, best_kernel_level());
      EXPECT_EQ(best, expected);
    }
  }
  for (size_t i = 0; i < kQuantizedTypes.size(); ++i) {
    std::printf("%-5s worst relative difference: %.2e from the reference, at least %.2e from no rounding\n",
                std::string(tensor_type_name(kQuantizedTypes[i])).c_str(), worst[i][0], worst[i][1]);
  }
}

// Q2_K, Q3_K, IQ4_NL and IQ4_XS blocks at their extremes: scale fields at their
// largest and smallest values (all 6-bit scales 31 or -32, all 4-bit scales and
// mins 15 or 0, and mixed), f16 scales from a subnormal to +-65504, and quant bytes
// running through all 256 values (every 2-bit, 3-bit and 4-bit quant in every
// place). Against activations with quants of +-127 and the awkward rows: the
// reference within 2e-6 of the terms' size at every level.
TEST(QuantizedDot, NewTypesAtExtremeScalesAndEveryQuantValue) {
  std::mt19937 rng(37);
  ThreadPool pool(1);
  const std::array<uint16_t, 5> f16_extremes = {0x7bff, 0xfbff, 0x0001, 0x3c00, 0x8400};
  struct Layout {
    TensorType type;
    std::vector<std::pair<size_t, size_t>> scale_fields;  // packed sub-block scales: offset, bytes
    std::vector<size_t> f16_fields;
    std::pair<size_t, size_t> quants;  // offset, bytes
  };
  const std::vector<Layout> layouts = {
      {TensorType::Q2_K, {{0, 16}}, {80, 82}, {16, 64}},
      {TensorType::Q3_K, {{96, 12}}, {108}, {0, 96}},  // hmask and low bits
      {TensorType::IQ4_NL, {}, {0}, {2, 16}},
      {TensorType::IQ4_XS, {{2, 6}}, {0}, {8, 128}},
  };
  for (const Layout& layout : layouts) {
    const TensorTypeInfo& info = tensor_type_info(layout.type);
    const int64_t n_blocks = info.block_size == 32 ? 32 : 8, n_in = info.block_size * n_blocks, n_out = 5;
    auto bytes = testing::random_tensor_bytes(layout.type, n_in * n_out, rng);
    uint32_t counter = 0;
    for (int64_t block = 0; block < n_blocks * n_out; ++block) {
      uint8_t* b = bytes.data() + static_cast<size_t>(block) * info.block_bytes;
      for (size_t i = 0; i < layout.quants.second; ++i) b[layout.quants.first + i] = static_cast<uint8_t>(counter++);
      const uint8_t patterns[4] = {0xff, 0x00, static_cast<uint8_t>(block % 2 ? 0xf0 : 0x0f), static_cast<uint8_t>(rng())};
      for (const auto& [offset, size] : layout.scale_fields) {
        for (size_t i = 0; i < size; ++i) {
          b[offset + i] = block % 4 == 2 ? static_cast<uint8_t>(i % 2 ? 0xff : 0x00) : patterns[block % 4];
        }
      }
      for (size_t f = 0; f < layout.f16_fields.size(); ++f) {
        const uint16_t d = f16_extremes[(block + 2 * f) % f16_extremes.size()];
        std::memcpy(b + layout.f16_fields[f], &d, 2);
      }
    }
    const auto w = matrix(layout.type, n_in, n_out, bytes);
    auto x = awkward_activations(5, n_in, rng);
    for (int64_t i = 0; i < n_in; ++i) x.push_back(i % 3 ? 3.0f : -3.0f);  // every quant +-127
    const int64_t n_rows = 6;
    std::vector<float> reference(static_cast<size_t>(n_rows * n_out));
    ops::matmul_reference(w, x.data(), n_rows, reference.data(), pool, KernelLevel::Portable);
    const auto scale = term_magnitudes(w, x.data(), n_rows);
    for (const KernelLevel level : available_kernel_levels()) {
      std::vector<float> got(reference.size(), NAN);
      ops::quantized_matmul(w, x.data(), n_rows, got.data(), pool, level);
      EXPECT_LT(worst_relative(got, reference, scale), 2e-6)
          << tensor_type_name(layout.type) << " " << kernel_level_name(level);
    }
  }
}

// A change of one quant is seen: the kernels read every weight bit (the tiled
// ones too: the same activation row kTiledMinRows times takes them).
TEST(QuantizedDot, EveryWeightByteMatters) {
  std::mt19937 rng(5);
  ThreadPool pool(1);
  for (TensorType type : kQuantizedTypes) {
    const TensorTypeInfo& info = tensor_type_info(type);
    const int64_t n_in = info.block_size * 2;
    auto bytes = testing::random_tensor_bytes(type, n_in, rng);
    const auto x = awkward_activations(1, n_in, rng);
    std::vector<float> x_rows;
    for (int64_t copy = 0; copy < ops::kTiledMinRows; ++copy) x_rows.insert(x_rows.end(), x.begin(), x.end());
    for (KernelLevel level : available_kernel_levels()) {
      for (size_t i = 0; i < bytes.size(); ++i) {
        const uint8_t saved = bytes[i];
        bytes[i] = static_cast<uint8_t>(saved ^ 0x11);  // flips a bit in each nibble
        const auto w = matrix(type, n_in, 1, bytes);
        float got = NAN, reference = NAN;
        ops::quantized_matmul(w, x.data(), 1, &got, pool, level);
        ops::matmul_reference(w, x.data(), 1, &reference, pool, KernelLevel::Portable);
        const double scale = term_magnitudes(w, x.data(), 1)[0];
        ASSERT_LE(std::fabs(double(got) - reference), 2e-6 * scale)
            << tensor_type_name(type) << " " << kernel_level_name(level) << " byte " << i;
        std::vector<float> got_rows(static_cast<size_t>(ops::kTiledMinRows));
        ops::quantized_matmul(w, x_rows.data(), ops::kTiledMinRows, got_rows.data(), pool, level);
        for (const float value : got_rows) {
          ASSERT_LE(std::fabs(double(value) - reference), 2e-6 * scale)
              << tensor_type_name(type) << " " << kernel_level_name(level) << " byte " << i << " (many rows)";
        }
        bytes[i] = saved;
      }
    }
  }
}

// Rows computed together and on two threads equal rows computed one at a time,
// bit for bit with the row kernels; the tiled kernels (several rows at levels
// Avx2Tiled and Avx512Vnni) add the same integer sums in another float order, so they agree
// with single rows to float rounding, and bit for bit across thread counts.
TEST(QuantizedDot, RowsAndThreadsDoNotChangeResults) {
  std::mt19937 rng(3);
  ThreadPool one(1), two(2);
  for (TensorType type : kQuantizedTypes) {
    const int64_t n_in = tensor_type_info(type).block_size == 256 ? 512 : 160, n_out = 33;
    const int64_t n_rows = ops::kTiledMinRows + 5;
    const auto bytes = testing::random_tensor_bytes(type, n_in * n_out, rng);
    const auto w = matrix(type, n_in, n_out, bytes);
    const auto x = awkward_activations(n_rows, n_in, rng);
    for (KernelLevel level : available_kernel_levels()) {
      std::vector<float> together(static_cast<size_t>(n_rows * n_out)), threaded(together.size()),
          single(together.size());
      ops::quantized_matmul(w, x.data(), n_rows, together.data(), one, level);
      ops::quantized_matmul(w, x.data(), n_rows, threaded.data(), two, level);
      for (int64_t t = 0; t < n_rows; ++t) {
        ops::quantized_matmul(w, x.data() + t * n_in, 1, single.data() + t * n_out, one, level);
      }
      EXPECT_EQ(threaded, together) << tensor_type_name(type) << " " << kernel_level_name(level);
      if (level <= KernelLevel::Avx2) {
        EXPECT_EQ(together, single) << tensor_type_name(type) << " " << kernel_level_name(level);
      } else {
        EXPECT_LT(worst_relative(together, single, term_magnitudes(w, x.data(), n_rows)), 2e-6)
            << tensor_type_name(type) << " " << kernel_level_name(level);
      }
    }
  }
}

// The tiled kernels give each output the same bits wherever its weight row falls
// in a panel of 16 and whichever activation rows come with it: a matrix that
// starts 5 rows later, and the activation rows split into two calls.
TEST(QuantizedDot, TiledResultsDoNotDependOnPanelOrTile) {
  const auto levels = available_kernel_levels();
  if (levels.back() < KernelLevel::Avx2Tiled) GTEST_SKIP() << "no tiled kernels on this CPU (no AVX2)";
  std::mt19937 rng(23);
  ThreadPool one(1), two(2);
  for (const KernelLevel level : levels) {
    if (level < KernelLevel::Avx2Tiled) continue;
    for (TensorType type : kQuantizedTypes) {
      const int64_t n_in = tensor_type_info(type).block_size == 256 ? 512 : 160, n_out = 37, shift = 5;
      const int64_t first_rows = ops::kTiledMinRows, n_rows = first_rows + ops::kTiledMinRows + 3;
      const auto bytes = testing::random_tensor_bytes(type, n_in * n_out, rng);
      const auto w = matrix(type, n_in, n_out, bytes);
      auto shifted = w;
      shifted.data += shift * w.row_bytes;
      shifted.n_out = n_out - shift;
      const auto x = awkward_activations(n_rows, n_in, rng);
      std::vector<float> all(static_cast<size_t>(n_rows * n_out)), later(static_cast<size_t>(n_rows * shifted.n_out)),
          split(all.size());
      ops::quantized_matmul(w, x.data(), n_rows, all.data(), two, level);
      ops::quantized_matmul(shifted, x.data(), n_rows, later.data(), one, level);
      ops::quantized_matmul(w, x.data(), first_rows, split.data(), one, level);
      ops::quantized_matmul(w, x.data() + first_rows * n_in, n_rows - first_rows, split.data() + first_rows * n_out, two,
                            level);
      EXPECT_EQ(split, all) << tensor_type_name(type) << " " << kernel_level_name(level);
      for (int64_t t = 0; t < n_rows; ++t) {
        for (int64_t r = shift; r < n_out; ++r) {
          ASSERT_EQ(later[t * shifted.n_out + r - shift], all[t * n_out + r]) << tensor_type_name(type) << " " << t << " " << r;
        }
      }
    }
  }
}

// Generation's products (fewer activation rows than the tiled kernels take) give
// each weight row the same bits at every level, whether the row kernels take it
// among four rows or alone: here a row falls at every place of a group of four
// (the matrix starts 1, 2, 3 rows later) and at the odd end of the matrix. Block
// counts are odd and even (kernels that take 32-weight blocks in pairs must handle the odd one).
TEST(QuantizedDot, RowKernelsGiveTheSameBitsInGroupsAndAlone) {
  std::mt19937 rng(29);
  ThreadPool one(1), two(2);
  for (TensorType type : kQuantizedTypes) {
    const bool k_quant = tensor_type_info(type).block_size == 256;
    for (const int64_t n_in : {k_quant ? int64_t{256} : int64_t{96}, k_quant ? int64_t{768} : int64_t{128}}) {
      const int64_t n_out = 19, n_rows = ops::kTiledMinRows - 1;
      const auto bytes = testing::random_tensor_bytes(type, n_in * n_out, rng);
      const auto w = matrix(type, n_in, n_out, bytes);
      const auto x = awkward_activations(n_rows, n_in, rng);
      for (KernelLevel level : available_kernel_levels()) {
        std::vector<float> all(static_cast<size_t>(n_rows * n_out));
        ops::quantized_matmul(w, x.data(), n_rows, all.data(), two, level);
        for (int64_t shift = 1; shift < 4; ++shift) {
          auto shifted = w;
          shifted.data += shift * w.row_bytes;
          shifted.n_out = n_out - shift;
          std::vector<float> later(static_cast<size_t>(n_rows * shifted.n_out));
          ops::quantized_matmul(shifted, x.data(), n_rows, later.data(), one, level);
          for (int64_t t = 0; t < n_rows; ++t) {
            for (int64_t r = shift; r < n_out; ++r) {
              ASSERT_EQ(later[t * shifted.n_out + r - shift], all[t * n_out + r])
                  << tensor_type_name(type) << " " << kernel_level_name(level) << " n_in " << n_in << " shift "
                  << shift << " row " << t << " output " << r;
            }
          }
        }
        // The single-row dot product, as the session's per-row callers use it.
        const ops::ActivationFormat format = ops::activation_format(type);
        std::vector<uint8_t> quantized(ops::activation_row_bytes(format, n_in));
        ops::quantize_activations(format, x.data(), n_in, quantized.data(), level);
        const ops::QuantizedDot dot = ops::quantized_dot(type, level);
        for (int64_t r = 0; r < n_out; ++r) {
          ASSERT_EQ(dot(w.data + r * w.row_bytes, quantized.data(), n_in), all[r])
              << tensor_type_name(type) << " " << kernel_level_name(level) << " output " << r;
        }
      }
    }
  }
}

// Matrices sharing an input in one parallel region (mixed types, uneven output
// sizes) give exactly what separate calls give, at 1 and 2 threads.
TEST(QuantizedDot, SharedInputMatmulEqualsSeparateCalls) {
  std::mt19937 rng(5);
  ThreadPool one(1), two(2);
  const int64_t n_in = 512;
  const std::array<TensorType, 3> types{TensorType::Q8_0, TensorType::Q4_K, TensorType::Q4_1};
  const std::array<int64_t, 3> n_outs{37, 5, 64};
  std::vector<std::vector<uint8_t>> bytes;
  std::vector<ops::WeightMatrix> ws;
  for (size_t m = 0; m < types.size(); ++m) bytes.push_back(testing::random_tensor_bytes(types[m], n_in * n_outs[m], rng));
  for (size_t m = 0; m < types.size(); ++m) ws.push_back(matrix(types[m], n_in, n_outs[m], bytes[m]));
  for (const int64_t n_rows : {int64_t{3}, ops::kTiledMinRows + 1}) {  // the row kernels and the tiled ones
    const auto x = awkward_activations(n_rows, n_in, rng);
    for (KernelLevel level : available_kernel_levels()) {
      for (ThreadPool* pool : {&one, &two}) {
        std::array<std::vector<float>, 3> shared, separate;
        std::array<float*, 3> outs{};
        std::array<const ops::WeightMatrix*, 3> matrices{};
        for (size_t m = 0; m < 3; ++m) {
          shared[m].assign(static_cast<size_t>(n_rows * n_outs[m]), -1.0f);
          separate[m].assign(shared[m].size(), -2.0f);
          outs[m] = shared[m].data();
          matrices[m] = &ws[m];
          ops::quantized_matmul(ws[m], x.data(), n_rows, separate[m].data(), one, level);
        }
        ops::quantized_matmul_shared(matrices, x.data(), n_rows, outs, *pool, level);
        for (size_t m = 0; m < 3; ++m) {
          EXPECT_EQ(shared[m], separate[m]) << tensor_type_name(types[m]) << " " << kernel_level_name(level)
                                            << " threads " << pool->size() << " rows " << n_rows;
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Q4_K and Q6_K interleaved at load (ops/interleaved_k_quants.h).

constexpr std::array<TensorType, 2> kInterleavedTypes{TensorType::Q4_K, TensorType::Q6_K};

// A copy of GGUF bytes of an interleaved type in its interleaved layout, and its
// matrix.
std::vector<uint8_t> interleaved_copy(TensorType type, const std::vector<uint8_t>& gguf) {
  std::vector<uint8_t> bytes = gguf;
  ops::interleave_blocks(ops::interleaved_layout(type), bytes.data(), bytes.size() / tensor_type_info(type).block_bytes);
  return bytes;
}
ops::WeightMatrix interleaved_matrix(TensorType type, int64_t n_in, int64_t n_out, const std::vector<uint8_t>& bytes) {
  auto w = matrix(type, n_in, n_out, bytes);
  w.layout = ops::interleaved_layout(type);
  return w;
}

// Every byte pattern survives the trip (Q4_K's 12 scale bytes use all their bits,
// every quant bit lands somewhere), and each weight has exactly one place.
TEST(InterleavedKQuants, BlocksComeBackByteForByte) {
  std::array<int, 256> seen{};
  for (int v = 0; v < 4; ++v) {
    for (int p = 0; p < 64; ++p) ++seen[static_cast<size_t>(ops::interleaved_weight(v, p))];
  }
  EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int n) { return n == 1; }));
  std::mt19937 rng(41);
  std::uniform_int_distribution<int> byte(0, 255);
  for (const TensorType type : kInterleavedTypes) {
    const size_t n = tensor_type_info(type).block_bytes;
    const bool q4 = type == TensorType::Q4_K;
    for (int trial = 0; trial < 200; ++trial) {
      std::vector<uint8_t> gguf(n), interleaved(n), back(n);
      for (uint8_t& b : gguf) b = static_cast<uint8_t>(trial < 2 ? 255 * trial : byte(rng));
      (q4 ? ops::interleave_q4_k_block : ops::interleave_q6_k_block)(gguf.data(), interleaved.data());
      (q4 ? ops::deinterleave_q4_k_block : ops::deinterleave_q6_k_block)(interleaved.data(), back.data());
      ASSERT_EQ(gguf, back) << tensor_type_name(type) << " trial " << trial;
      std::vector<uint8_t> blocks = gguf;
      ops::interleave_blocks(ops::interleaved_layout(type), blocks.data(), 1);
      ASSERT_EQ(blocks, interleaved);
      if (trial >= 2) {
        EXPECT_NE(gguf, interleaved) << tensor_type_name(type) << " trial " << trial;
      }
    }
  }
  // The GGUF layout is no interleaved one, either way.
  std::vector<uint8_t> block(tensor_type_info(TensorType::Q4_K).block_bytes), out(block.size());
  EXPECT_THROW(ops::interleave_blocks(ops::WeightLayout::Gguf, block.data(), 1), Error);
  EXPECT_THROW(ops::deinterleave_blocks(ops::WeightLayout::Gguf, block.data(), 1, out.data()), Error);
}

// An interleaved matrix dequantizes to its GGUF rows, and every product of it
// matches the GGUF matrix's: the same bits where the same kernel runs on the
// unpacked values (levels below Avx512Vnni, and the tiled kernels), the same
// bounds against the reference where the interleaved row kernels run. Row counts
// from generation's one to a prompt's, alone and as independent rows (a server's
// batch, always on the row kernels).
TEST(InterleavedKQuants, ProductsMatchTheGgufLayoutAtEveryLevel) {
  std::mt19937 rng(43);
  ThreadPool one(1), two(2);
  for (const TensorType type : kInterleavedTypes) {
    for (const int64_t n_in : {256, 768, 1536}) {
      const int64_t n_out = 21;
      const auto gguf = testing::random_tensor_bytes(type, n_in * n_out, rng);
      const auto bytes = interleaved_copy(type, gguf);
      const auto w = matrix(type, n_in, n_out, gguf);
      const auto wi = interleaved_matrix(type, n_in, n_out, bytes);
      std::vector<float> row(static_cast<size_t>(n_in)), row_i(row.size());
      for (int64_t r = 0; r < n_out; ++r) {
        ops::weight_row(w, r, row.data());
        ops::weight_row(wi, r, row_i.data());
        ASSERT_EQ(row, row_i) << tensor_type_name(type) << " row " << r;
      }
      for (const int64_t n_rows : {int64_t{1}, int64_t{3}, int64_t{5}, ops::kTiledMinRows + 9}) {
        const auto x = awkward_activations(n_rows, n_in, rng);
        std::vector<float> reference(static_cast<size_t>(n_rows * n_out));
        ops::matmul_reference(w, x.data(), n_rows, reference.data(), one, KernelLevel::Portable);
        const auto scale = term_magnitudes(w, x.data(), n_rows);
        for (const KernelLevel level : available_kernel_levels()) {
          for (const bool independent : {false, true}) {
            SCOPED_TRACE(::testing::Message() << tensor_type_name(type) << " " << kernel_level_name(level) << " n_in "
                                            << n_in << " rows " << n_rows << (independent ? " independent" : ""));
            std::vector<float> expected(reference.size(), NAN), got(reference.size(), NAN);
            ops::quantized_matmul(w, x.data(), n_rows, expected.data(), one, level, independent);
            ops::quantized_matmul(wi, x.data(), n_rows, got.data(), two, level, independent);
            const bool tiled = !independent && n_rows >= ops::kTiledMinRows && level >= KernelLevel::Avx2Tiled;
            if (level < KernelLevel::Avx512Vnni || tiled) {
              EXPECT_EQ(got, expected);
            } else {
              EXPECT_LT(worst_relative(got, reference, scale), 2e-6);
            }
            for (int64_t r = 0; r < n_out && n_rows > 3; ++r) EXPECT_EQ(got[3 * n_out + r], 0.0f);  // the zero row
          }
        }
      }
    }
  }
}

// The interleaved row kernels give each output the same bits alone, among four
// weight rows, by several activation rows, and beside other matrices sharing the
// input, interleaved or not (a batched generation step must equal each sequence
// alone; a layer's Q4_K and Q6_K matrices share their activations).
TEST(InterleavedKQuants, RowKernelsGiveTheSameBitsInGroupsAndAlone) {
  std::mt19937 rng(47);
  ThreadPool one(1), two(2);
  const int64_t n_in = 768, n_out = 19, n_rows = ops::kTiledMinRows - 1;
  for (const TensorType type : kInterleavedTypes) {
    const TensorType other = type == TensorType::Q4_K ? TensorType::Q6_K : TensorType::Q4_K;
    const auto gguf = testing::random_tensor_bytes(type, n_in * n_out, rng);
    const auto bytes = interleaved_copy(type, gguf);
    const auto wi = interleaved_matrix(type, n_in, n_out, bytes);
    const auto other_gguf = testing::random_tensor_bytes(other, n_in * 7, rng);
    const auto other_bytes = interleaved_copy(other, other_gguf);
    const auto w_other = matrix(other, n_in, 7, other_gguf);
    const auto wi_other = interleaved_matrix(other, n_in, 7, other_bytes);
    const auto x = awkward_activations(n_rows, n_in, rng);
    for (const KernelLevel level : available_kernel_levels()) {
      SCOPED_TRACE(::testing::Message() << tensor_type_name(type) << " " << kernel_level_name(level));
      std::vector<float> all(static_cast<size_t>(n_rows * n_out));
      ops::quantized_matmul(wi, x.data(), n_rows, all.data(), two, level);
      for (int64_t t = 0; t < n_rows; ++t) {
        for (int64_t shift = 0; shift < 4; ++shift) {
          const auto part = ops::output_rows(wi, shift, n_out - shift);
          std::vector<float> alone(static_cast<size_t>(part.n_out));
          ops::quantized_matmul(part, x.data() + t * n_in, 1, alone.data(), one, level);
          for (int64_t r = shift; r < n_out; ++r) {
            ASSERT_EQ(alone[static_cast<size_t>(r - shift)], all[t * n_out + r]) << "row " << t << " output " << r;
          }
        }
      }
      std::vector<float> separate_gguf(static_cast<size_t>(n_rows * 7), -2.0f), separate_interleaved(separate_gguf);
      ops::quantized_matmul(w_other, x.data(), n_rows, separate_gguf.data(), one, level);
      ops::quantized_matmul(wi_other, x.data(), n_rows, separate_interleaved.data(), one, level);
      std::vector<float> shared(all.size(), -1.0f), shared_gguf(separate_gguf.size(), -1.0f),
          shared_interleaved(separate_gguf.size(), -1.0f);
      const std::array<const ops::WeightMatrix*, 3> matrices{&w_other, &wi, &wi_other};
      const std::array<float*, 3> outs{shared_gguf.data(), shared.data(), shared_interleaved.data()};
      ops::quantized_matmul_shared(matrices, x.data(), n_rows, outs, two, level);
      EXPECT_EQ(shared, all);
      EXPECT_EQ(shared_gguf, separate_gguf);
      EXPECT_EQ(shared_interleaved, separate_interleaved);
    }
  }
}

// Q8_K activations interleave as the weights do: lane i of vector v takes the
// four quants of weights interleaved_weight(v, 4i) on; d and the sums stay.
TEST(InterleavedKQuants, ActivationsMoveWithTheWeights) {
  const int64_t n_in = 512, n_rows = 2;
  std::mt19937 rng(53);
  const auto x = awkward_activations(n_rows, n_in, rng);
  const uint64_t row_bytes = ops::activation_row_bytes(ActivationFormat::Q8_K, n_in);
  std::vector<uint8_t> q(n_rows * row_bytes), interleaved(q.size());
  for (int64_t t = 0; t < n_rows; ++t) {
    ops::quantize_activations(ActivationFormat::Q8_K, x.data() + t * n_in, n_in, q.data() + t * row_bytes,
                              KernelLevel::Portable);
  }
  ops::interleave_q8_k_rows(q.data(), n_rows, n_in, row_bytes, interleaved.data());
  for (uint64_t block = 0; block < n_rows * n_in / 256; ++block) {
    const uint8_t* from = q.data() + block * ops::kQ8_KActBytes;
    const uint8_t* to = interleaved.data() + block * ops::kQ8_KActBytes;
    EXPECT_EQ(0, std::memcmp(from, to, 4));
    EXPECT_EQ(0, std::memcmp(from + ops::kQ8_KBsums, to + ops::kQ8_KBsums, ops::kQ8_KActBytes - ops::kQ8_KBsums));
    for (int v = 0; v < 4; ++v) {
      for (int p = 0; p < 64; ++p) ASSERT_EQ(to[4 + 64 * v + p], from[4 + ops::interleaved_weight(v, p)]) << v << " " << p;
    }
  }
}

// F32 weights keep the float path: no activation rounding at all.
TEST(QuantizedDot, FloatWeightsUseTheFloatPath) {
  std::mt19937 rng(9);
  ThreadPool pool(2);
  EXPECT_EQ(ops::quantized_dot(TensorType::F32, best_kernel_level()), nullptr);
  const int64_t n_in = 64, n_out = 5, n_rows = 3;
  const auto bytes = testing::random_tensor_bytes(TensorType::F32, n_in * n_out, rng);
  const auto w = matrix(TensorType::F32, n_in, n_out, bytes);
  const auto x = awkward_activations(n_rows, n_in, rng);
  std::vector<float> got(static_cast<size_t>(n_rows * n_out)), reference(got.size());
  for (const KernelLevel level : available_kernel_levels()) {
    ops::matmul(w, x.data(), n_rows, got.data(), pool, level);
    ops::matmul_reference(w, x.data(), n_rows, reference.data(), pool, level);
    EXPECT_EQ(got, reference) << kernel_level_name(level);
  }
}

// x rounded to the nearest f16 / bf16, ties to even, written here apart from the
// library's conversions: of the two neighbours of x in the format, the nearer.
float round_to_half_format(float x, TensorType type) {
  if (type == TensorType::F16) {
    const double v = std::fabs(double(x));
    if (v > 65504.0) return std::copysign(v >= 65520.0 ? INFINITY : 65504.0f, x);
    // The smallest finite magnitude at or above v (magnitudes grow with the bits).
    uint32_t lo = 0, hi = 0x7bff;
    while (lo < hi) {
      const uint32_t mid = (lo + hi) / 2;
      if (fp16_to_fp32(static_cast<uint16_t>(mid)) >= v) hi = mid; else lo = mid + 1;
    }
    const double up = fp16_to_fp32(static_cast<uint16_t>(lo));
    const double down = lo == 0 ? 0.0 : fp16_to_fp32(static_cast<uint16_t>(lo - 1));
    const double d_up = up - v, d_down = v - down;
    const double nearest = d_up < d_down || (d_up == d_down && (lo & 1) == 0) ? up : down;
    return static_cast<float>(std::copysign(nearest, double(x)));
  }
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const float down = std::bit_cast<float>(bits & 0xffff0000u), up = std::bit_cast<float>((bits & 0xffff0000u) + 0x10000u);
  const double d_down = std::fabs(double(x) - down), d_up = std::fabs(double(up) - x);
  if (d_down < d_up || (d_down == d_up && ((bits >> 16) & 1u) == 0)) return down;
  return up;
}

// F16 and BF16 weights: the activations rounded to the weights' format (each value
// checked against the rounding written out above), then products and sums in
// float: within 2e-6 of the terms' size of the double-precision product of the
// weights and the rounded activations at every level, and so the levels within
// that of each other. Weights include zeros, subnormals, the largest finite and
// values of every exponent; outputs counts leave partial groups of four rows,
// widths a tail shorter than a vector.
TEST(QuantizedDot, HalfWeightsEqualTheDoubleProductOfRoundedActivations) {
  std::mt19937 rng(31);
  ThreadPool pool(2);
  for (const TensorType type : {TensorType::F16, TensorType::BF16}) {
    for (const DotCase c : {DotCase{640, 9, 3}, DotCase{96, 5, 6}, DotCase{1000 + 7, 6, 5}, DotCase{8, 3, 1}}) {
      SCOPED_TRACE(::testing::Message() << tensor_type_name(type) << " " << c.n_in << "x" << c.n_out);
      auto bytes = testing::random_tensor_bytes(type, c.n_in * c.n_out, rng);
      // Edge values among the random ones (kept to where float sums cannot overflow).
      const std::array<uint16_t, 8> edges =
          type == TensorType::F16 ? std::array<uint16_t, 8>{0x0000, 0x8000, 0x0001, 0x83ff, 0x7bff, 0xfbff, 0x3c00, 0x0400}
                                  : std::array<uint16_t, 8>{0x0000, 0x8000, 0x0001, 0x807f, 0x5f80, 0xdf80, 0x3f80, 0x0080};
      for (size_t i = 0; i < bytes.size() / 2; i += 3) {
        const uint16_t bits = i % 2 == 0 ? edges[(i / 3) % edges.size()] : static_cast<uint16_t>(rng() & 0x7fffu);
        const bool finite = type == TensorType::F16 ? (bits & 0x7c00) != 0x7c00 : (bits & 0x7f80) != 0x7f80;
        // bf16 exponents up to 2^63 only: beyond, a product with a 3e4 activation
        // could pass float's range.
        if (finite && (type == TensorType::F16 || (bits & 0x7fff) < 0x5f80 + 1)) std::memcpy(&bytes[2 * i], &bits, 2);
      }
      const auto w = matrix(type, c.n_in, c.n_out, bytes);
      const auto x = awkward_activations(c.n_rows, c.n_in, rng);
      std::vector<float> weights(static_cast<size_t>(c.n_in)), rounded(static_cast<size_t>(c.n_in));
      std::vector<double> expected(static_cast<size_t>(c.n_rows * c.n_out)), scale(expected.size());
      for (int64_t t = 0; t < c.n_rows; ++t) {
        ops::round_activations(type, x.data() + t * c.n_in, c.n_in, rounded.data());
        for (int64_t i = 0; i < c.n_in; ++i) {
          ASSERT_EQ(rounded[i], round_to_half_format(x[t * c.n_in + i], type)) << x[t * c.n_in + i];
        }
        for (int64_t r = 0; r < c.n_out; ++r) {
          ops::weight_row(w, r, weights.data());
          double sum = 0, size = 0;
          for (int64_t i = 0; i < c.n_in; ++i) {
            sum += double(weights[i]) * rounded[i];
            size += std::fabs(double(weights[i]) * rounded[i]);
          }
          expected[t * c.n_out + r] = sum;
          scale[t * c.n_out + r] = size;
        }
      }
      std::vector<float> first;
      for (const KernelLevel level : available_kernel_levels()) {
        std::vector<float> got(expected.size(), NAN);
        ops::matmul(w, x.data(), c.n_rows, got.data(), pool, level);
        for (size_t i = 0; i < got.size(); ++i) {
          ASSERT_LE(std::fabs(got[i] - expected[i]), 2e-6 * scale[i]) << kernel_level_name(level) << " output " << i;
        }
        if (first.empty()) first = got;
        EXPECT_LT(worst_relative(got, first, scale), 4e-6) << kernel_level_name(level);
        // The single-row kernel gives what the matrix product gives.
        std::vector<uint8_t> activations(ops::activation_row_bytes(ops::activation_format(type), c.n_in));
        ops::quantize_activations(ops::activation_format(type), x.data(), c.n_in, activations.data(), level);
        const ops::QuantizedDot dot = ops::quantized_dot(type, level);
        ASSERT_NE(dot, nullptr);
        for (int64_t r = 0; r < c.n_out; ++r) {
          EXPECT_EQ(dot(w.data + r * w.row_bytes, activations.data(), c.n_in), got[r]) << kernel_level_name(level);
        }
      }
    }
  }
}

// Every finite f16 and bf16 weight is read as its value: 4096 rows of 16 weights
// hold all 65536 bit patterns (infinities and NaNs replaced by 0), against the 16
// unit activation rows, at every level.
TEST(QuantizedDot, HalfWeightsReadEveryBitPattern) {
  ThreadPool pool(2);
  const int64_t n_in = 16, n_out = 65536 / n_in;
  std::vector<float> x(static_cast<size_t>(n_in * n_in), 0.0f);
  for (int64_t t = 0; t < n_in; ++t) x[t * n_in + t] = 1.0f;
  for (const TensorType type : {TensorType::F16, TensorType::BF16}) {
    std::vector<uint8_t> bytes(2 * 65536);
    std::vector<float> values(65536);
    for (uint32_t bits = 0; bits < 65536; ++bits) {
      auto pattern = static_cast<uint16_t>(bits);
      float value = type == TensorType::F16 ? fp16_to_fp32(pattern) : bf16_to_fp32(pattern);
      if (!std::isfinite(value)) pattern = 0, value = 0.0f;
      std::memcpy(&bytes[2 * bits], &pattern, 2);
      values[bits] = value;
    }
    const auto w = matrix(type, n_in, n_out, bytes);
    for (const KernelLevel level : available_kernel_levels()) {
      std::vector<float> got(static_cast<size_t>(n_in * n_out));
      ops::matmul(w, x.data(), n_in, got.data(), pool, level);
      for (int64_t t = 0; t < n_in; ++t) {
        for (int64_t r = 0; r < n_out; ++r) {
          ASSERT_EQ(got[t * n_out + r], values[r * n_in + t])
              << tensor_type_name(type) << " " << kernel_level_name(level) << " pattern " << std::hex << r * n_in + t;
        }
      }
    }
  }
}

// The rounding is there: weights 1 against activations just off a representable
// value give the sum of the rounded values exactly (every sum is exact here), at
// every level.
TEST(QuantizedDot, HalfWeightsSeeActivationsRoundedToTheirFormat) {
  ThreadPool pool(1);
  const int64_t n = 64;
  struct Format {
    TensorType type;
    uint16_t one;
    float ulp;  // at 1.0
  };
  for (const Format f : {Format{TensorType::F16, 0x3c00, 0x1p-10f}, Format{TensorType::BF16, 0x3f80, 0x1p-7f}}) {
    std::vector<uint8_t> bytes(2 * n);
    for (int64_t i = 0; i < n; ++i) std::memcpy(&bytes[2 * i], &f.one, 2);
    const auto w = matrix(f.type, n, 1, bytes);
    // A quarter step up rounds down; half a step (a tie) to the even 1; three
    // halves of a step (a tie) up to the even 1 + 2 steps.
    std::vector<float> x(static_cast<size_t>(n));
    double expected = 0;
    for (int64_t i = 0; i < n; ++i) {
      const int kind = static_cast<int>(i % 3);
      x[i] = 1.0f + (kind == 0 ? 0.25f : kind == 1 ? 0.5f : 1.5f) * f.ulp;
      expected += kind == 2 ? 1.0 + 2 * f.ulp : 1.0;
    }
    for (const KernelLevel level : available_kernel_levels()) {
      float got = 0;
      ops::matmul(w, x.data(), 1, &got, pool, level);
      EXPECT_EQ(got, static_cast<float>(expected)) << tensor_type_name(f.type) << " " << kernel_level_name(level);
    }
  }
}

// Q4_1 / Q5_1 weights with scale 0 and minimum 1 leave only the minimum's terms:
// the sum over blocks of Q8_1's stored s = f16(unrounded d x sum q), which differs
// from f16(d) x sum q in the low bits.
TEST(QuantizedDot, TheMinimumMultipliesQ8_1sStoredSum) {
  std::mt19937 rng(13);
  ThreadPool pool(1);
  const int64_t n_in = 32 * 40;
  const auto x = awkward_activations(1, n_in, rng);
  double expected = 0, with_rounded_d = 0;
  for (int64_t b = 0; b < n_in / 32; ++b) {
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[b * 32 + i]));
    const float inverse = amax != 0 ? 127.0f / amax : 0.0f;
    float sum = 0;
    for (int i = 0; i < 32; ++i) sum += std::nearbyint(x[b * 32 + i] * inverse);
    expected += fp16_to_fp32(fp32_to_fp16(amax / 127.0f * sum));
    with_rounded_d += double(fp16_to_fp32(fp32_to_fp16(amax / 127.0f))) * sum;
  }
  ASSERT_GT(std::fabs(expected - with_rounded_d), 1e-4 * std::fabs(expected));  // 100 times the tolerance
  for (TensorType type : {TensorType::Q4_1, TensorType::Q5_1}) {
    auto bytes = testing::random_tensor_bytes(type, n_in, rng);
    const uint64_t block_bytes = tensor_type_info(type).block_bytes;
    for (uint64_t b = 0; b < bytes.size() / block_bytes; ++b) {
      const uint16_t zero = 0, one = 0x3c00;
      std::memcpy(bytes.data() + b * block_bytes, &zero, 2);
      std::memcpy(bytes.data() + b * block_bytes + 2, &one, 2);
    }
    const auto w = matrix(type, n_in, 1, bytes);
    float reference = 0;
    ops::matmul_reference(w, x.data(), 1, &reference, pool, KernelLevel::Portable);
    EXPECT_NEAR(reference, expected, 1e-6 * std::fabs(expected));
    for (KernelLevel level : available_kernel_levels()) {
      float got = 0;
      ops::quantized_matmul(w, x.data(), 1, &got, pool, level);
      EXPECT_NEAR(got, expected, 1e-6 * std::fabs(expected)) << tensor_type_name(type) << " "
                                                             << kernel_level_name(level);
    }
  }
}

// An infinity or a NaN in a block makes the products it enters NaN, as in the
// float path; other rows are unaffected.
TEST(QuantizedDot, NonFiniteActivationsGiveNaN) {
  std::mt19937 rng(17);
  ThreadPool pool(1);
  for (TensorType type : kQuantizedTypes) {
    const bool k_quant = tensor_type_info(type).block_size == 256;
    const int64_t n_in = tensor_type_info(type).block_size * 2, n_out = 3;
    const auto bytes = testing::random_tensor_bytes(type, n_in * n_out, rng);
    const auto w = matrix(type, n_in, n_out, bytes);
    for (float bad : {INFINITY, -INFINITY, NAN}) {
      auto x = awkward_activations(2, n_in, rng);
      x[5] = bad;  // row 0 only
      for (KernelLevel level : available_kernel_levels()) {
        std::vector<float> got(static_cast<size_t>(2 * n_out)), reference(got.size());
        ops::quantized_matmul(w, x.data(), 2, got.data(), pool, level);
        ops::matmul_reference(w, x.data(), 2, reference.data(), pool, KernelLevel::Portable);
        for (int64_t r = 0; r < n_out; ++r) {
          EXPECT_TRUE(std::isnan(got[r])) << tensor_type_name(type) << " " << bad;
          // (round_activations turns a NaN into 127 x d for the K-quants: min(127, NaN) is 127.)
          if (!(k_quant && std::isnan(bad))) {
            EXPECT_TRUE(std::isnan(reference[r])) << tensor_type_name(type) << " " << bad;
          }
          EXPECT_FALSE(std::isnan(got[n_out + r]));
        }
      }
    }
  }
}

// A hand-made Q8_0 block: weights 1..32 at scale 1 against activations whose
// largest magnitude is 127 (so d = 1 and the quants are the values).
TEST(QuantizedDot, HandMadeQ8_0Block) {
  std::vector<uint8_t> block(34);
  const uint16_t one = 0x3c00;
  std::memcpy(block.data(), &one, 2);
  std::vector<float> x(32);
  int64_t expected = 0;
  for (int i = 0; i < 32; ++i) {
    block[2 + i] = static_cast<uint8_t>(i + 1);
    x[i] = i == 0 ? 127.0f : static_cast<float>(i % 5 - 2);
    expected += (i + 1) * static_cast<int64_t>(x[i]);
  }
  const auto w = matrix(TensorType::Q8_0, 32, 1, block);
  ThreadPool pool(1);
  for (KernelLevel level : available_kernel_levels()) {
    float got = 0;
    ops::quantized_matmul(w, x.data(), 1, &got, pool, level);
    EXPECT_EQ(got, static_cast<float>(expected)) << kernel_level_name(level);
  }
}

// llama.cpp's own block-0 tensors (the -hidden golden: inputs and outputs of every
// product in block 0, computed by llama.cpp's CPU backend) fed through our
// kernels. With the AVX2 kernels the 32-weight formats come out bit for bit; the
// portable kernels, and the K-quants at every level (llama.cpp adds their terms
// in another order), agree to float rounding.
class LlamaCppProducts : public ::testing::TestWithParam<std::string> {};

TEST_P(LlamaCppProducts, Block0ProductsEqualLlamaCpps) {
  TILLER_REQUIRE_MODEL(path, GetParam());
  const auto file = gguf::File::open(path);
  std::ifstream in(std::string(TILLER_TEST_DATA) + "/forward/" + GetParam() + "-hidden.json");
  const auto golden = nlohmann::json::parse(in);
  std::map<std::string, std::vector<float>> tensors;  // the first tensor of each name: the product's result
  for (const auto& tensor : golden["tensors"]) {
    const std::string name = tensor["name"];
    if (!tensors.count(name)) tensors[name] = testing::base64_array<float>(tensor["data"].get<std::string>());
  }
  const auto n_rows = static_cast<int64_t>(golden["ids"].size());
  const bool gemma = GetParam().find("gemma") != std::string::npos;
  struct Product {
    std::string weight, input, output;
  };
  std::vector<Product> products = {{"attn_q", "attn_norm-0", "Qcur-0"},   {"attn_k", "attn_norm-0", "Kcur-0"},
                                   {"attn_v", "attn_norm-0", "Vcur-0"},   {"ffn_gate", "ffn_norm-0", "ffn_gate-0"},
                                   {"ffn_up", "ffn_norm-0", "ffn_up-0"},
                                   {"ffn_down", gemma ? "ffn_geglu-0" : "ffn_swiglu-0", "ffn_out-0"}};
  if (!gemma) products.push_back({"attn_output", "kqv_out-0", "attn_out-0"});  // gemma norms it first
  ThreadPool pool(2);
  int bit_exact = 0;
  for (const Product& product : products) {
    const auto* tensor = file.find_tensor("blk.0." + product.weight + ".weight");
    ASSERT_NE(tensor, nullptr) << product.weight;
    ops::WeightMatrix w;
    w.type = tensor->type;
    w.n_in = tensor->shape[0];
    w.n_out = tensor->shape[1];
    w.data = file.tensor_data(*tensor).data();
    w.row_bytes = file.row_data(*tensor, 0).size();
    const auto& x = tensors.at(product.input);
    const auto& expected = tensors.at(product.output);
    ASSERT_EQ(x.size(), static_cast<size_t>(n_rows * w.n_in));
    ASSERT_EQ(expected.size(), static_cast<size_t>(n_rows * w.n_out));
    const bool k_quant = tensor_type_info(w.type).block_size == 256;
    for (KernelLevel level : available_kernel_levels()) {
      SCOPED_TRACE(::testing::Message() << product.weight << " " << tensor_type_name(w.type) << " "
                                        << kernel_level_name(level));
      std::vector<float> got(expected.size());
      ops::quantized_matmul(w, x.data(), n_rows, got.data(), pool, level);
      if (!k_quant && level == KernelLevel::Avx2) {
        ASSERT_EQ(got, expected);
        continue;
      }
      for (int64_t t = 0; t < n_rows; ++t) {  // else to float rounding, relative to each row's size
        double diff = 0, norm = 0;
        for (int64_t r = t * w.n_out; r < (t + 1) * w.n_out; ++r) {
          diff += (double(got[r]) - expected[r]) * (double(got[r]) - expected[r]);
          norm += double(expected[r]) * expected[r];
        }
        EXPECT_LT(std::sqrt(diff / norm), 1e-6) << "row " << t;
      }
    }
    const auto levels = available_kernel_levels();
    if (!k_quant && std::find(levels.begin(), levels.end(), KernelLevel::Avx2) != levels.end()) ++bit_exact;
  }
  std::printf("[ figures ] %s: %d of %zu block-0 products equal llama.cpp's bit for bit\n", GetParam().c_str(),
              bit_exact, products.size());
}

INSTANTIATE_TEST_SUITE_P(RealModels, LlamaCppProducts, ::testing::Values("smollm2-135m-instruct", "gemma-3-270m"),
                         testing::model_test_name);

}  // namespace
}  // namespace tiller
