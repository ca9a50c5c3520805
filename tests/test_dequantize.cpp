// Dequantization against the gguf package's (goldens) and against hand-made blocks.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "support/dequant_goldens.h"
#include "support/tiny_model.h"
#include "tiller/dequantize.h"
#include "common/fail.h"

namespace tiller {
namespace {

// IEEE 754 binary16 by its definition, computed in double (exact for every f16).
double f16_by_definition(uint16_t bits) {
  const double sign = (bits & 0x8000) ? -1.0 : 1.0;
  const int exponent = (bits >> 10) & 0x1f;
  const int mantissa = bits & 0x3ff;
  if (exponent == 0x1f) return mantissa == 0 ? sign * INFINITY : NAN;
  if (exponent == 0) return sign * std::ldexp(mantissa, -24);
  return sign * std::ldexp(1024 + mantissa, exponent - 25);
}

TEST(HalfFloats, EveryF16BitPatternConvertsExactly) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const auto pattern = static_cast<uint16_t>(bits);
    const double expected = f16_by_definition(pattern);
    const float got = fp16_to_fp32(pattern);
    if (std::isnan(expected)) {
      EXPECT_TRUE(std::isnan(got)) << std::hex << bits;
    } else {
      ASSERT_EQ(static_cast<double>(got), expected) << "f16 bits 0x" << std::hex << bits;
      ASSERT_EQ(std::signbit(got), std::signbit(expected)) << "f16 bits 0x" << std::hex << bits;
    }
  }
}

TEST(HalfFloats, Bf16IsTheTopHalfOfAnF32) {
  EXPECT_EQ(bf16_to_fp32(0x3f80), 1.0f);
  EXPECT_EQ(bf16_to_fp32(0xc000), -2.0f);
  EXPECT_TRUE(std::isinf(bf16_to_fp32(0x7f80)));
}

std::vector<float> dequantize(TensorType type, const std::vector<uint8_t>& bytes, size_t n) {
  std::vector<float> out(n);
  dequantize_row(type, bytes, out);
  return out;
}

// Blocks built by hand from the format's definition, independent of any reference code.
TEST(Dequantize, Q4_0LowNibblesAreTheFirstHalf) {
  std::vector<uint8_t> block(18, 0);
  const uint16_t two = 0x4000;  // 2.0 in f16
  std::memcpy(block.data(), &two, 2);
  for (int j = 0; j < 16; ++j) block[2 + j] = static_cast<uint8_t>((15 - j) << 4 | j);
  const auto out = dequantize(TensorType::Q4_0, block, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], 2.0f * static_cast<float>(j - 8)) << j;
    EXPECT_EQ(out[16 + j], 2.0f * static_cast<float>(15 - j - 8)) << j;
  }
}

TEST(Dequantize, Q4_1AddsTheMin) {
  std::vector<uint8_t> block(20, 0);
  const uint16_t half = 0x3800, minus_one = 0xbc00;
  std::memcpy(block.data(), &half, 2);
  std::memcpy(block.data() + 2, &minus_one, 2);
  block[4] = 0xf3;  // weight 0 = 3, weight 16 = 15
  const auto out = dequantize(TensorType::Q4_1, block, 32);
  EXPECT_EQ(out[0], 0.5f * 3 - 1);
  EXPECT_EQ(out[16], 0.5f * 15 - 1);
  EXPECT_EQ(out[1], -1.0f);
}

TEST(Dequantize, Q5_0FifthBitComesFromQhBitJ) {
  std::vector<uint8_t> block(22, 0);
  const uint16_t one = 0x3c00;
  std::memcpy(block.data(), &one, 2);
  const uint32_t qh = (1u << 0) | (1u << 17);  // weights 0 and 17 get +16
  std::memcpy(block.data() + 2, &qh, 4);
  const auto out = dequantize(TensorType::Q5_0, block, 32);
  EXPECT_EQ(out[0], 0.0f);     // 16 - 16
  EXPECT_EQ(out[1], -16.0f);   // 0 - 16
  EXPECT_EQ(out[17], 0.0f);
  EXPECT_EQ(out[16], -16.0f);
}

TEST(Dequantize, Q8_0IsSignedBytesTimesScale) {
  std::vector<uint8_t> block(34, 0);
  const uint16_t quarter = 0x3400;
  std::memcpy(block.data(), &quarter, 2);
  block[2] = 0x80;  // -128
  block[3] = 0x7f;  // 127
  const auto out = dequantize(TensorType::Q8_0, block, 32);
  EXPECT_EQ(out[0], -32.0f);
  EXPECT_EQ(out[1], 31.75f);
}

TEST(Dequantize, Q4_KSubBlockScalesAndMins) {
  std::vector<uint8_t> block(144, 0);
  const uint16_t one = 0x3c00, two = 0x4000;
  std::memcpy(block.data(), &one, 2);       // d
  std::memcpy(block.data() + 2, &two, 2);   // dmin
  uint8_t* scales = block.data() + 4;
  scales[0] = 3;        // sub-block 0: scale 3
  scales[4] = 5;        // sub-block 0: min 5
  scales[1] = 1;        // sub-block 1: scale 1, min 0
  scales[8] = 0x72;     // sub-block 4: scale low 2, min low 7
  scales[0] |= 0x40;    // sub-block 4: scale high bits 01 -> scale 2 + 16
  block[16] = 0x94;     // weight 0 nibble 4, weight 32 nibble 9
  block[16 + 64] = 0x01;  // weight 128 (sub-block 4) nibble 1
  const auto out = dequantize(TensorType::Q4_K, block, 256);
  EXPECT_EQ(out[0], 3.0f * 4 - 2.0f * 5);
  EXPECT_EQ(out[32], 1.0f * 9);
  EXPECT_EQ(out[128], 18.0f * 1 - 2.0f * 7);
  EXPECT_EQ(out[129], -2.0f * 7);
}

TEST(Dequantize, Q2_KScaleAndMinNibblesPerSixteenWeights) {
  std::vector<uint8_t> block(84, 0);
  const uint16_t one = 0x3c00, half = 0x3800;
  std::memcpy(block.data() + 80, &one, 2);   // d
  std::memcpy(block.data() + 82, &half, 2);  // dmin
  block[0] = 0x23;   // sub-block 0 (weights 0..15): scale 3, min 2
  block[2] = 0x05;   // sub-block 2 (weights 32..47): scale 5, min 0
  block[8] = 0x71;   // sub-block 8 (weights 128..143): scale 1, min 7
  block[14] = 0x12;  // sub-block 14 (weights 224..239): scale 2, min 1
  block[16] = 0x0b;  // first half, byte 0: weight 0 bits 0-1 (3), weight 32 bits 2-3 (2)
  block[48] = 0xc0;  // second half, byte 0: weight 128 bits 0-1 (0), weight 224 bits 6-7 (3)
  const auto out = dequantize(TensorType::Q2_K, block, 256);
  EXPECT_EQ(out[0], 3.0f * 3 - 0.5f * 2);
  EXPECT_EQ(out[1], -0.5f * 2);
  EXPECT_EQ(out[32], 5.0f * 2);
  EXPECT_EQ(out[128], -0.5f * 7);
  EXPECT_EQ(out[224], 2.0f * 3 - 0.5f * 1);
}

TEST(Dequantize, Q3_KClearHmaskBitSubtractsFour) {
  std::vector<uint8_t> block(110, 0);
  const uint16_t one = 0x3c00;
  std::memcpy(block.data() + 108, &one, 2);  // d
  uint8_t* scales = block.data() + 96;
  for (int j = 8; j < 12; ++j) scales[j] = 0xaa;  // top bits 2 everywhere: scale = low 4 bits
  scales[0] = 0x03;  // sub-block 0: 3 (sub-block 8: 0)
  scales[1] = 0x70;  // sub-block 9: 7 (sub-block 1: 0)
  scales[9] = 0x2a;  // sub-block 13: top bits 0, low 0: -32
  block[0] = 0x01;        // hmask[0] bit 0 set: weight 0 loses nothing
  block[32] = 0x02;       // weight 0: low bits 2
  block[32 + 32 + 16] = 0x33;  // weight 144 (run 4) bits 0-1 and weight 208 (run 6) bits 4-5: 3
  const auto out = dequantize(TensorType::Q3_K, block, 256);
  EXPECT_EQ(out[0], 3.0f * 2);
  EXPECT_EQ(out[1], 3.0f * -4);     // low bits 0, hmask[1] bit 0 clear
  EXPECT_EQ(out[144], 7.0f * -1);   // 3 - 4, hmask[16] bit 4 clear
  EXPECT_EQ(out[208], -32.0f * -1);  // 3 - 4, hmask[16] bit 6 clear
}

TEST(Dequantize, IQ4NibblesIndexTheNonLinearLevels) {
  const int8_t levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
  std::vector<uint8_t> nl(18, 0);
  const uint16_t half = 0x3800;
  std::memcpy(nl.data(), &half, 2);
  for (int j = 0; j < 16; ++j) nl[2 + j] = static_cast<uint8_t>((15 - j) << 4 | j);
  const auto out_nl = dequantize(TensorType::IQ4_NL, nl, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out_nl[j], 0.5f * levels[j]) << j;
    EXPECT_EQ(out_nl[16 + j], 0.5f * levels[15 - j]) << j;
  }

  std::vector<uint8_t> xs(136, 0x88);  // every index 8 (level 1)
  const uint16_t two = 0x4000, scales_h = 0x8002;  // sub-block 0: top bits 10, sub-block 7: 10
  std::memcpy(xs.data(), &two, 2);
  std::memcpy(xs.data() + 2, &scales_h, 2);
  xs[4] = 0x53;  // sub-block 0 low bits 3 -> 35 - 32 = 3; sub-block 1 low bits 5 -> 5 - 32 = -27
  xs[5] = 0x00;
  xs[6] = 0x00;
  xs[7] = 0x10;  // sub-block 7 low bits 1 -> 33 - 32 = 1
  xs[8 + 16 * 7] = 0x0f;  // sub-block 7: weight 224 index 15, weight 240 index 0
  const auto out_xs = dequantize(TensorType::IQ4_XS, xs, 256);
  EXPECT_EQ(out_xs[0], 2.0f * 3 * 1);
  EXPECT_EQ(out_xs[31], 2.0f * 3 * 1);
  EXPECT_EQ(out_xs[32], 2.0f * -27 * 1);
  EXPECT_EQ(out_xs[64], 2.0f * -32 * 1);
  EXPECT_EQ(out_xs[224], 2.0f * 1 * 113);
  EXPECT_EQ(out_xs[240], 2.0f * 1 * -127);
}

TEST(Dequantize, RejectsWrongSizesAndUnsupportedTypes) {
  std::vector<float> out(32);
  std::vector<uint8_t> bytes(17);
  EXPECT_THROW(dequantize_row(TensorType::Q4_0, bytes, out), Error);
  std::vector<float> odd(33);
  EXPECT_THROW(dequantize_row(TensorType::Q4_0, std::vector<uint8_t>(36), odd), Error);

  std::mt19937 rng(3);
  gguf::Writer writer;
  std::vector<uint8_t> iq2_xxs(66);
  writer.add_tensor("blk.0.ffn_down.weight", TensorType::IQ2_XXS, {256}, iq2_xxs);
  const auto file_bytes = writer.to_bytes();
  const auto file = gguf::File::parse(file_bytes, "iq2_xxs.gguf");
  try {
    dequantize_tensor_row(file, file.tensors()[0], 0);
    FAIL() << "IQ2_XXS dequantized";
  } catch (const Error& error) {
    EXPECT_STREQ(error.what(),
                 "iq2_xxs.gguf: tensor 'blk.0.ffn_down.weight' has type IQ2_XXS, which Tiller cannot dequantize yet");
  }
}

TEST(Dequantize, SyntheticBlocksOfEveryTypeMatchTheGgufPackage) {
  const auto golden = testing::load_golden("synthetic.json");
  std::set<std::string> covered;
  double worst = 0;
  for (const auto& item : golden["cases"]) {
    const std::string type_name = item["type"];
    const auto type = tensor_type_from_name(type_name);
    ASSERT_TRUE(type) << type_name;
    const auto bytes = testing::from_hex(item["bytes_hex"]);
    const auto expected = item["values"].get<std::vector<float>>();
    const auto got = dequantize(*type, bytes, expected.size());
    const double error = testing::max_relative_error(got, expected);
    EXPECT_LE(error, 1e-6) << type_name;
    worst = std::max(worst, error);
    covered.insert(type_name);
  }
  std::set<std::string> supported;
  for (uint32_t id = 0; id < 64; ++id) {
    if (const auto* info = find_tensor_type(id); info && info->dequantizable) supported.emplace(info->name);
  }
  EXPECT_EQ(covered, supported) << "every dequantizable type needs a synthetic golden";
  std::printf("synthetic blocks: %zu types, max relative error %.3g\n", covered.size(), worst);
}

}  // namespace
}  // namespace tiller

namespace tiller {
namespace {

// Every half-precision value converts back to itself, and values between two
// halves round to the nearer one (ties to the even one).
TEST(HalfFloats, Fp32ToFp16RoundsToNearestEven) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const auto half = static_cast<uint16_t>(bits);
    const float value = fp16_to_fp32(half);
    if (std::isnan(value)) {
      EXPECT_TRUE(std::isnan(fp16_to_fp32(fp32_to_fp16(value))));
      continue;
    }
    ASSERT_EQ(fp32_to_fp16(value), half) << std::hex << bits;
    if ((bits & 0x7c00) == 0x7c00 || (bits & 0x7fff) == 0x7bff) continue;  // no next half above
    const float next = fp16_to_fp32(static_cast<uint16_t>(bits + 1));
    const float middle = static_cast<float>((static_cast<double>(value) + next) / 2);
    const uint16_t even = (bits & 1) ? static_cast<uint16_t>(bits + 1) : half;
    ASSERT_EQ(fp32_to_fp16(middle), even) << std::hex << bits;
    ASSERT_EQ(fp32_to_fp16(std::nextafter(middle, value)), half) << std::hex << bits;
    ASSERT_EQ(fp32_to_fp16(std::nextafter(middle, next)), static_cast<uint16_t>(bits + 1)) << std::hex << bits;
  }
  EXPECT_EQ(fp32_to_fp16(1e6f), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(-1e6f), 0xfc00);
}

// The same for bfloat16: every bf16 value converts to itself, values between two
// round to the nearer (ties to the even one), the largest finite bf16 rounds up to
// infinity only past the midpoint, and a NaN stays a NaN.
TEST(HalfFloats, Fp32ToBf16RoundsToNearestEven) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const auto half = static_cast<uint16_t>(bits);
    const float value = bf16_to_fp32(half);
    if (std::isnan(value)) {
      EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(value)))) << std::hex << bits;
      continue;
    }
    ASSERT_EQ(fp32_to_bf16(value), half) << std::hex << bits;
    if ((bits & 0x7f80) == 0x7f80) continue;  // infinities: no next value above
    const float next = bf16_to_fp32(static_cast<uint16_t>(bits + 1));
    const uint16_t even = (bits & 1) ? static_cast<uint16_t>(bits + 1) : half;
    if (std::isinf(next)) {  // the largest finite: the midpoint is 2^128 - 2^119, not a float
      const float below = std::bit_cast<float>((static_cast<uint32_t>(bits) << 16) | 0x7fffu);
      ASSERT_EQ(fp32_to_bf16(below), half) << std::hex << bits;
      continue;
    }
    const float middle = static_cast<float>((static_cast<double>(value) + next) / 2);
    ASSERT_EQ(fp32_to_bf16(middle), even) << std::hex << bits;
    ASSERT_EQ(fp32_to_bf16(std::nextafter(middle, value)), half) << std::hex << bits;
    ASSERT_EQ(fp32_to_bf16(std::nextafter(middle, next)), static_cast<uint16_t>(bits + 1)) << std::hex << bits;
  }
  EXPECT_EQ(fp32_to_bf16(1.0f + 0x1p-8f), 0x3f80);        // a tie: to the even 1.0
  EXPECT_EQ(fp32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);    // a tie: to the even 1 + 2^-6
  EXPECT_EQ(fp32_to_bf16(3.4e38f), 0x7f80);               // past the largest finite
  EXPECT_EQ(fp32_to_bf16(-INFINITY), 0xff80);
}

}  // namespace
}  // namespace tiller
