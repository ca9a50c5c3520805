// Metadata values, typed getters and the tensor type table.
#include <gtest/gtest.h>

#include "common/fail.h"
#include "tiller/gguf.h"

namespace tiller {
namespace {

using gguf::Array;
using gguf::Value;
using gguf::ValueType;

TEST(GgufValue, AlternativeIndexIsTheGgufTypeId) {
  EXPECT_EQ(Value(uint8_t{1}).type(), ValueType::U8);
  EXPECT_EQ(Value(int8_t{1}).type(), ValueType::I8);
  EXPECT_EQ(Value(uint16_t{1}).type(), ValueType::U16);
  EXPECT_EQ(Value(int16_t{1}).type(), ValueType::I16);
  EXPECT_EQ(Value(uint32_t{1}).type(), ValueType::U32);
  EXPECT_EQ(Value(int32_t{1}).type(), ValueType::I32);
  EXPECT_EQ(Value(1.0f).type(), ValueType::F32);
  EXPECT_EQ(Value(true).type(), ValueType::BOOL);
  EXPECT_EQ(Value("text").type(), ValueType::STRING);
  EXPECT_EQ(Value(Array{std::vector<int32_t>{1}}).type(), ValueType::ARRAY);
  EXPECT_EQ(Value(uint64_t{1}).type(), ValueType::U64);
  EXPECT_EQ(Value(int64_t{1}).type(), ValueType::I64);
  EXPECT_EQ(Value(1.0).type(), ValueType::F64);
  EXPECT_EQ(Array{std::vector<std::string>{}}.element_type(), ValueType::STRING);
  EXPECT_EQ(Array{std::vector<Array>{}}.element_type(), ValueType::ARRAY);
  EXPECT_EQ(Array{std::vector<bool>{}}.element_type(), ValueType::BOOL);
}

TEST(GgufValue, DescribeAbridgesLongArraysAndEscapesText) {
  EXPECT_EQ(describe(Value(uint8_t{200})), "200");
  EXPECT_EQ(describe(Value(int8_t{-5})), "-5");
  EXPECT_EQ(describe(Value("a\nb")), "\"a\\nb\"");
  EXPECT_EQ(describe(Value(Array{std::vector<int32_t>{1, 2, 3}}), 2), "[3 x i32: 1 2 ...]");
  EXPECT_EQ(describe(Value(Array{std::vector<bool>{true, false}})), "[2 x bool: true false]");
}

gguf::File file_with(const std::vector<std::pair<std::string, Value>>& entries,
                     std::vector<uint8_t>& storage) {
  gguf::Writer writer;
  for (const auto& [key, value] : entries) writer.set(key, value);
  storage = writer.to_bytes();
  return gguf::File::parse(storage, "memory.gguf");
}

TEST(GgufFile, TypedGettersConvertCompatibleTypesAndRejectOthers) {
  std::vector<uint8_t> storage;
  const gguf::File file = file_with({{"u32", uint32_t{7}},
                                     {"i32", int32_t{9}},
                                     {"negative", int32_t{-1}},
                                     {"f32", 0.5f},
                                     {"text", "hello"},
                                     {"flag", true},
                                     {"list", Array{std::vector<float>{1.0f}}}},
                                    storage);
  EXPECT_EQ(file.get_uint("u32"), 7u);
  EXPECT_EQ(file.get_uint("i32"), 9u);  // llama.cpp writes some counts as i32
  EXPECT_EQ(file.get_float("f32"), 0.5);
  EXPECT_EQ(file.get_float("u32"), 7.0);
  EXPECT_EQ(file.get_string("text"), "hello");
  EXPECT_EQ(file.get_bool("flag"), true);
  ASSERT_NE(file.get_array("list"), nullptr);
  EXPECT_EQ(file.get_array("list")->size(), 1u);
  EXPECT_FALSE(file.get_uint("absent"));
  EXPECT_EQ(file.get_array("absent"), nullptr);

  EXPECT_THROW(file.get_uint("negative"), Error);
  EXPECT_THROW(file.get_uint("text"), Error);
  EXPECT_THROW(file.get_uint("flag"), Error);
  EXPECT_THROW(file.get_string("u32"), Error);
  EXPECT_THROW(file.get_array("text"), Error);
  try {
    file.get_string("u32");
    FAIL() << "a u32 read as a string";
  } catch (const Error& error) {
    EXPECT_STREQ(error.what(), "memory.gguf: metadata key 'u32' holds a u32, expected a string");
  }
}

TEST(TensorTypes, TableMatchesGgufIdsAndBlockGeometry) {
  struct Expected {
    uint32_t id;
    const char* name;
    int64_t block_size;
    uint64_t block_bytes;
  };
  // Ids and sizes from the GGUF specification and the gguf package's GGML_QUANT_SIZES.
  for (const Expected& e : {Expected{0, "F32", 1, 4}, Expected{1, "F16", 1, 2}, Expected{2, "Q4_0", 32, 18},
                            Expected{3, "Q4_1", 32, 20}, Expected{6, "Q5_0", 32, 22},
                            Expected{7, "Q5_1", 32, 24}, Expected{8, "Q8_0", 32, 34},
                            Expected{12, "Q4_K", 256, 144}, Expected{13, "Q5_K", 256, 176},
                            Expected{14, "Q6_K", 256, 210}, Expected{15, "Q8_K", 256, 292},
                            Expected{30, "BF16", 1, 2}}) {
    const TensorTypeInfo* info = find_tensor_type(e.id);
    ASSERT_NE(info, nullptr) << e.name;
    EXPECT_EQ(info->name, e.name);
    EXPECT_EQ(info->block_size, e.block_size) << e.name;
    EXPECT_EQ(info->block_bytes, e.block_bytes) << e.name;
    EXPECT_EQ(tensor_type_from_name(e.name), info->type);
  }
  for (uint32_t retired : {4u, 5u, 31u, 32u, 33u, 36u, 1000u}) EXPECT_EQ(find_tensor_type(retired), nullptr);
  EXPECT_EQ(tensor_bytes(TensorType::Q4_K, 512), 288u);
  EXPECT_FALSE(tensor_bytes(TensorType::Q4_K, 100));
  EXPECT_FALSE(tensor_bytes(TensorType::F32, int64_t{1} << 62));
}

}  // namespace
}  // namespace tiller
