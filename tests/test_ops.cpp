// The numerical building blocks on hand-checked values.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "ops/ops.h"
#include "tiller/dequantize.h"
#include "tiller/engine.h"

namespace tiller {
namespace {

// SiLU-times-up at every level this CPU runs: below Avx512Vnni exactly the scalar
// formula's bits (one plain loop, the same on any CPU); at Avx512Vnni, vectorized
// with exp_avx512, within a float step or two. Over a range that covers both tails,
// with a tail shorter than a vector.
TEST(Ops, SiluTimesMatchesTheScalarFormulaAtEveryLevel) {
  const int64_t n = 1000 * 16 + 7;
  std::vector<float> input(static_cast<size_t>(n)), up(input.size()), expected(input.size());
  for (int64_t i = 0; i < n; ++i) {
    input[static_cast<size_t>(i)] = -60.0f + 120.0f * static_cast<float>(i) / static_cast<float>(n);
    up[static_cast<size_t>(i)] = 1.0f + 0.001f * static_cast<float>(i % 13);
    expected[static_cast<size_t>(i)] = ops::silu(input[static_cast<size_t>(i)]) * up[static_cast<size_t>(i)];
  }
  for (const KernelLevel level : available_kernel_levels()) {
    SCOPED_TRACE(kernel_level_name(level));
    std::vector<float> gate = input;
    ops::silu_times(gate.data(), up.data(), n, level);
    if (level < KernelLevel::Avx512Vnni) {
      ASSERT_EQ(gate, expected);
      continue;
    }
    for (int64_t i = 0; i < n; ++i) {
      const float e = expected[static_cast<size_t>(i)], got = gate[static_cast<size_t>(i)];
      ASSERT_LE(std::fabs(got - e), 4e-7f * std::fabs(e) + 1e-30f) << "at x = " << -60.0 + 120.0 * double(i) / double(n);
    }
  }
}

// GELU-times-up gives exactly the scalar function's bits at every level, over
// every f16 value (each as it is, and the float next to it towards zero) and both tails.
TEST(Ops, GeluTimesEqualsTheScalarFunctionBitForBitAtEveryLevel) {
  std::vector<float> input, up;
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    const float x = fp16_to_fp32(static_cast<uint16_t>(bits));
    if (std::isnan(x)) continue;
    input.push_back(x);
    input.push_back(std::nextafter(x, 0.0f));
  }
  for (float x : {-10.0f, 10.0f, -10.5f, 9.999f, INFINITY, -INFINITY}) input.push_back(x);
  for (size_t i = 0; i < input.size(); ++i) up.push_back(1.0f + 0.25f * static_cast<float>(i % 5));
  std::vector<float> expected(input.size());
  for (size_t i = 0; i < input.size(); ++i) expected[i] = ops::gelu_tanh_f16(input[i]) * up[i];
  for (const KernelLevel level : available_kernel_levels()) {
    SCOPED_TRACE(kernel_level_name(level));
    std::vector<float> gate = input;
    ops::gelu_f16_times(gate.data(), up.data(), static_cast<int64_t>(gate.size()), level);
    for (size_t i = 0; i < gate.size(); ++i) {
      if (std::isnan(expected[i])) {
        EXPECT_TRUE(std::isnan(gate[i])) << i;
      } else {
        ASSERT_EQ(gate[i], expected[i]) << i;
      }
    }
  }
}

// The float dot product at every level: the portable loop's value to float rounding
// (each level adds in its own order), and exact on integers.
TEST(Ops, DotAtEveryLevel) {
  std::vector<float> a(1001), b(a.size()), ones(a.size(), 1.0f);
  double exact = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = std::sin(static_cast<float>(i));
    b[i] = std::cos(0.5f * static_cast<float>(i));
    exact += double(a[i]) * double(b[i]);
  }
  for (const KernelLevel level : available_kernel_levels()) {
    SCOPED_TRACE(kernel_level_name(level));
    EXPECT_NEAR(ops::dot(a.data(), b.data(), static_cast<int64_t>(a.size()), level), exact, 1e-4);
    EXPECT_EQ(ops::dot(ones.data(), ones.data(), static_cast<int64_t>(ones.size()), level), 1001.0f);
  }
}

TEST(Ops, RopePairsAdjacentOrHalvesApart) {
  const std::vector<int32_t> position = {1};
  std::vector<float> normal = {1, 0, 0, 0}, neox = {1, 0, 0, 0};
  ops::rope(normal.data(), 1, 1, 4, position, {.freq_base = 10000.0f});
  ops::rope(neox.data(), 1, 1, 4, position, {.freq_base = 10000.0f, .neox = true});
  // The first frequency is 1 radian per position: (x0, x1) turns in "normal",
  // (x0, x2) in "neox".
  EXPECT_NEAR(normal[0], std::cos(1.0f), 1e-6);
  EXPECT_NEAR(normal[1], std::sin(1.0f), 1e-6);
  EXPECT_EQ(normal[2], 0.0f);
  EXPECT_NEAR(neox[0], std::cos(1.0f), 1e-6);
  EXPECT_EQ(neox[1], 0.0f);
  EXPECT_NEAR(neox[2], std::sin(1.0f), 1e-6);
  // The second pair turns by 1/sqrt(10000) = 0.01 radian at position 1.
  std::vector<float> second = {0, 0, 1, 0};
  ops::rope(second.data(), 1, 1, 4, position, {.freq_base = 10000.0f});
  EXPECT_NEAR(second[2], std::cos(0.01f), 1e-6);
  EXPECT_NEAR(second[3], std::sin(0.01f), 1e-6);
  // Linear scaling by 4 and a frequency factor of 2 on pair 0: a quarter, then half of that.
  const std::vector<float> factors = {2.0f, 1.0f};
  std::vector<float> scaled = {1, 0, 0, 0};
  ops::rope(scaled.data(), 1, 1, 4, std::vector<int32_t>{8}, {.freq_base = 10000.0f, .freq_scale = 0.25f,
                                                             .freq_factors = factors.data()});
  EXPECT_NEAR(scaled[0], std::cos(1.0f), 1e-6);
  EXPECT_NEAR(scaled[1], std::sin(1.0f), 1e-6);
}

TEST(Ops, GeluThroughTheHalfTableStaysCloseAndSaturates) {
  for (float x = -12.0f; x <= 12.0f; x += 0.01f) {
    const float exact = ops::gelu_tanh(x), table = ops::gelu_tanh_f16(x);
    EXPECT_NEAR(table, exact, 2e-3f * std::max(1.0f, std::fabs(x))) << x;
  }
  EXPECT_EQ(ops::gelu_tanh_f16(-11.0f), 0.0f);
  EXPECT_EQ(ops::gelu_tanh_f16(11.0f), 11.0f);
  // The table is indexed by the half nearest x: values within half an f16 step agree.
  EXPECT_EQ(ops::gelu_tanh_f16(1.0f), ops::gelu_tanh_f16(1.0002f));
}

TEST(Ops, RmsNormAndSoftmax) {
  const std::vector<float> x = {3, 4}, weight = {1, 2};
  std::vector<float> out(2);
  ops::rms_norm(x.data(), weight.data(), 1, 2, 0.0f, out.data());
  const float rms = std::sqrt(12.5f);
  EXPECT_FLOAT_EQ(out[0], 3 / rms);
  EXPECT_FLOAT_EQ(out[1], 8 / rms);
  std::vector<float> logits = {0, std::log(3.0f)};
  ops::softmax(logits.data(), 2);
  EXPECT_FLOAT_EQ(logits[0], 0.25f);
  EXPECT_FLOAT_EQ(logits[1], 0.75f);
}

TEST(Ops, ActivationsRoundToEightBitsPerBlock) {
  // A block whose largest magnitude is 127 keeps integers as they are (scale 1).
  std::vector<float> block(32);
  for (int i = 0; i < 32; ++i) block[i] = static_cast<float>(i * 4 - 64) + (i == 31 ? 127 - 60.0f : 0.0f);
  block[0] = 127.0f;
  std::vector<float> out(32);
  ops::round_activations(TensorType::Q4_1, block.data(), 32, out.data());
  EXPECT_EQ(out, block);
  // Halving the block makes odd values fall between steps of 0.5: they round to even.
  std::vector<float> halves = {127.0f / 2, 0.25f, 0.75f};
  halves.resize(32, 0.0f);
  ops::round_activations(TensorType::Q8_0, halves.data(), 32, out.data());
  EXPECT_FLOAT_EQ(out[0], 63.5f);
  EXPECT_FLOAT_EQ(out[1], 0.0f);   // 0.5 steps of 0.5: nearest even is 0
  EXPECT_FLOAT_EQ(out[2], 1.0f);   // 1.5 steps: nearest even is 2
  // K-quants round per 256 with the extreme value mapped to -127 exactly.
  std::vector<float> wide(256, 0.1f);
  wide[7] = -2.54f;
  std::vector<float> wide_out(256);
  ops::round_activations(TensorType::Q6_K, wide.data(), 256, wide_out.data());
  EXPECT_FLOAT_EQ(wide_out[7], -2.54f);
  EXPECT_NEAR(wide_out[0], 0.1f, 0.02f / 2);
  // F32 weights take activations as they are; F16 and BF16 weights take them
  // rounded to their format, to nearest, ties to even.
  ops::round_activations(TensorType::F32, halves.data(), 32, out.data());
  EXPECT_EQ(out, halves);
  const std::vector<float> near_one = {1.0f + 0x1p-12f, 1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f, 1.0f + 0x1p-9f,
                                       70000.0f};
  std::vector<float> rounded(near_one.size());
  ops::round_activations(TensorType::F16, near_one.data(), 5, rounded.data());
  EXPECT_EQ(rounded, (std::vector<float>{1.0f, 1.0f, 1.0f + 0x1p-9f, 1.0f + 0x1p-9f, INFINITY}));
  ops::round_activations(TensorType::BF16, near_one.data(), 5, rounded.data());
  EXPECT_EQ(rounded, (std::vector<float>{1.0f, 1.0f, 1.0f, 1.0f, 70144.0f}));
}

}  // namespace
}  // namespace tiller
