// The writer's output read back: every key, every tensor, identical.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "support/bad_gguf_corpus.h"
#include "support/test_files.h"
#include "support/tiny_model.h"
#include "common/fail.h"
#include "tiller/gguf.h"
#include "tiller/model_config.h"

namespace tiller {
namespace {

using gguf::Array;
using gguf::Value;

gguf::Writer writer_with_every_value_type() {
  gguf::Writer writer;
  writer.set("general.architecture", "test");
  writer.set("v.u8", uint8_t{255});
  writer.set("v.i8", int8_t{-128});
  writer.set("v.u16", uint16_t{65535});
  writer.set("v.i16", int16_t{-32768});
  writer.set("v.u32", uint32_t{4294967295u});
  writer.set("v.i32", int32_t{-2147483647 - 1});
  writer.set("v.f32", -0.0f);
  writer.set("v.bool.true", true);
  writer.set("v.bool.false", false);
  writer.set("v.string", "héllo, 世界 \xf0\x9f\x98\x80");
  writer.set("v.string.empty", "");
  writer.set("v.u64", uint64_t{18446744073709551615ull});
  writer.set("v.i64", int64_t{-9223372036854775807ll - 1});
  writer.set("v.f64", 1e-300);
  writer.set("a.u8", Array{std::vector<uint8_t>{0, 1, 255}});
  writer.set("a.i8", Array{std::vector<int8_t>{-1, 0, 1}});
  writer.set("a.u16", Array{std::vector<uint16_t>{1, 2}});
  writer.set("a.i16", Array{std::vector<int16_t>{-1, -2}});
  writer.set("a.u32", Array{std::vector<uint32_t>{7}});
  writer.set("a.i32", Array{std::vector<int32_t>{-7, 7}});
  writer.set("a.f32", Array{std::vector<float>{1.5f, -2.5f}});
  writer.set("a.bool", Array{std::vector<bool>{true, false, true}});
  writer.set("a.string", Array{std::vector<std::string>{"a", "", "ccc"}});
  writer.set("a.u64", Array{std::vector<uint64_t>{1ull << 63}});
  writer.set("a.i64", Array{std::vector<int64_t>{-(1ll << 62)}});
  writer.set("a.f64", Array{std::vector<double>{3.25}});
  writer.set("a.empty", Array{std::vector<float>{}});
  writer.set("a.nested", Array{std::vector<Array>{Array{std::vector<int32_t>{1, 2}},
                                                  Array{std::vector<std::string>{"x"}},
                                                  Array{std::vector<Array>{Array{std::vector<uint8_t>{9}}}}}});
  return writer;
}

void expect_same_tensors(const gguf::File& file, const std::vector<std::vector<uint8_t>>& data) {
  ASSERT_EQ(file.tensors().size(), data.size());
  for (size_t i = 0; i < data.size(); ++i) {
    const auto& tensor = file.tensors()[i];
    EXPECT_EQ(tensor.offset % file.alignment(), 0u) << tensor.name;
    const auto bytes = file.tensor_data(tensor);
    ASSERT_EQ(bytes.size(), data[i].size()) << tensor.name;
    EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), data[i].begin())) << tensor.name;
  }
}

class RoundTrip : public ::testing::TestWithParam<uint32_t> {};

TEST_P(RoundTrip, EveryKeyAndTensorReadsBackIdentically) {
  gguf::Writer writer = writer_with_every_value_type();
  const uint32_t alignment = GetParam();
  if (alignment != 32) writer.set("general.alignment", alignment);

  std::mt19937 rng(7);
  std::vector<std::vector<uint8_t>> data;
  std::vector<std::pair<std::string, TensorType>> added;
  int index = 0;
  for (TensorType type : {TensorType::F32, TensorType::F16, TensorType::BF16, TensorType::Q4_0,
                          TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::Q8_0,
                          TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K}) {
    const int64_t row = tensor_type_info(type).block_size == 256 ? 256 : 64;
    const std::vector<int64_t> shape = index % 2 == 0 ? std::vector<int64_t>{row, 3}
                                                      : std::vector<int64_t>{row, 2, 2};
    auto bytes = testing::random_tensor_bytes(type, row * (index % 2 == 0 ? 3 : 4), rng);
    const std::string name = fmt::format("tensor.{}.{}", index++, tensor_type_name(type));
    writer.add_tensor(name, type, shape, bytes);
    data.push_back(std::move(bytes));
    added.emplace_back(name, type);
  }

  const std::string path = (testing::scratch_dir() / fmt::format("roundtrip-{}.gguf", alignment)).string();
  writer.write(path);
  const gguf::File file = gguf::File::open(path);
  EXPECT_EQ(file.version(), 3u);
  EXPECT_EQ(file.alignment(), alignment);
  EXPECT_EQ(file.data_offset() % alignment, 0u);

  // Metadata: same keys, same order, same typed values.
  const gguf::Writer expected = writer_with_every_value_type();
  const auto reference = gguf::File::parse(expected.to_bytes(), "reference");
  size_t compared = 0;
  for (const auto& [key, value] : reference.metadata()) {
    const Value* read = file.find(key);
    ASSERT_NE(read, nullptr) << key;
    EXPECT_EQ(*read, value) << key << ": " << describe(*read) << " vs " << describe(value);
    EXPECT_EQ(file.metadata()[compared].first, key);
    ++compared;
  }
  EXPECT_EQ(compared + (alignment != 32 ? 1 : 0), file.metadata().size());

  for (size_t i = 0; i < added.size(); ++i) {
    const gguf::TensorInfo* tensor = file.find_tensor(added[i].first);
    ASSERT_NE(tensor, nullptr);
    EXPECT_EQ(tensor->type, added[i].second);
  }
  expect_same_tensors(file, data);
}

INSTANTIATE_TEST_SUITE_P(Alignments, RoundTrip, ::testing::Values(32u, 1u, 64u, 4096u));

TEST(RoundTrip, MetadataValuesSurviveBitForBit) {
  const auto bytes = writer_with_every_value_type().to_bytes();
  const auto file = gguf::File::parse(bytes, "memory");
  EXPECT_TRUE(std::signbit(*file.find("v.f32")->as<float>()));
  EXPECT_EQ(*file.find("v.u64")->as<uint64_t>(), 18446744073709551615ull);
  EXPECT_EQ(*file.find("v.string")->as<std::string>(), "héllo, 世界 \xf0\x9f\x98\x80");
  const Array* nested = file.get_array("a.nested");
  ASSERT_NE(nested, nullptr);
  ASSERT_EQ(nested->element_type(), gguf::ValueType::ARRAY);
  const auto& inner = *nested->as<Array>();
  ASSERT_EQ(inner.size(), 3u);
  EXPECT_EQ(*inner[0].as<int32_t>(), (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(inner[2].as<Array>()->at(0).as<uint8_t>()->at(0), 9);
}

TEST(RoundTrip, WriterRejectsDataOfTheWrongSizeAndDuplicateNames) {
  gguf::Writer writer;
  std::vector<uint8_t> bytes(18);
  EXPECT_THROW(writer.add_tensor("q", TensorType::Q4_0, {33}, bytes), Error);
  EXPECT_THROW(writer.add_tensor("q", TensorType::Q4_0, {32, 2}, bytes), Error);
  writer.add_tensor("q", TensorType::Q4_0, {32}, bytes);
  EXPECT_THROW(writer.add_tensor("q", TensorType::Q4_0, {32}, bytes), Error);
  writer.set("general.alignment", uint32_t{24});
  EXPECT_THROW(writer.to_bytes(), Error);
}

TEST(RoundTrip, SetReplacesAKeyInPlace) {
  gguf::Writer writer;
  writer.set("a", uint32_t{1});
  writer.set("b", uint32_t{2});
  writer.set("a", "now a string");
  const auto bytes = writer.to_bytes();
  const auto file = gguf::File::parse(bytes, "memory");
  ASSERT_EQ(file.metadata().size(), 2u);
  EXPECT_EQ(file.metadata()[0].first, "a");
  EXPECT_EQ(file.get_string("a"), "now a string");
}

// The reader against bytes laid out by hand, not by our writer.
TEST(Reader, ReadsAHandBuiltFile) {
  const auto bytes = testing::valid_reference_gguf();
  const auto file = gguf::File::parse(bytes, "reference");
  EXPECT_EQ(file.get_string("general.architecture"), "llama");
  EXPECT_EQ(*file.find("test.u8")->as<uint8_t>(), 200);
  EXPECT_EQ(*file.find("test.i8")->as<int8_t>(), -100);
  EXPECT_EQ(*file.find("test.u16")->as<uint16_t>(), 60000);
  EXPECT_EQ(*file.find("test.i16")->as<int16_t>(), -30000);
  EXPECT_EQ(*file.find("test.u32")->as<uint32_t>(), 4000000000u);
  EXPECT_EQ(*file.find("test.i32")->as<int32_t>(), -2000000000);
  EXPECT_EQ(*file.find("test.f32")->as<float>(), 0.25f);
  EXPECT_EQ(*file.find("test.bool")->as<bool>(), true);
  EXPECT_EQ(*file.find("test.u64")->as<uint64_t>(), 1ull << 60);
  EXPECT_EQ(*file.find("test.i64")->as<int64_t>(), -(1ll << 60));
  EXPECT_EQ(*file.find("test.f64")->as<double>(), -1.5);
  EXPECT_EQ(*file.get_array("test.floats")->as<float>(), (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(file.get_array("test.strings")->as<std::string>()->at(1), "\xce\xb2\xce\xb5\xcf\x84\xce\xb1");
  const auto& nested = *file.get_array("test.nested")->as<Array>();
  EXPECT_EQ(*nested[1].as<int32_t>(), (std::vector<int32_t>{1, -1}));

  ASSERT_EQ(file.tensors().size(), 3u);
  const auto layout = testing::reference_layout();
  EXPECT_EQ(file.data_offset(), layout.data_start);
  const gguf::TensorInfo* matrix = file.find_tensor("matrix.weight");
  ASSERT_NE(matrix, nullptr);
  EXPECT_EQ(matrix->type, TensorType::Q8_0);
  EXPECT_EQ(matrix->shape, (std::vector<int64_t>{32, 2}));
  EXPECT_EQ(matrix->n_rows(), 2);
  EXPECT_EQ(matrix->row_bytes(), 34u);
  EXPECT_EQ(matrix->n_bytes, 68u);
  EXPECT_EQ(file.row_data(*matrix, 1).data() - bytes.data(),
            static_cast<std::ptrdiff_t>(layout.data_start + 32 + 34));
  EXPECT_THROW(file.row_data(*matrix, 2), Error);
}

TEST(Reader, TinyModelHyperParameters) {
  testing::TinyModelSpec spec;
  spec.n_layer = 3;
  spec.n_embd = 64;
  spec.n_head = 8;
  spec.n_head_kv = 2;
  spec.n_ff = 160;
  spec.n_vocab = 300;
  spec.tied_output = false;
  const auto bytes = testing::make_tiny_model(spec).to_bytes();
  const auto file = gguf::File::parse(bytes, "tiny");
  const ModelConfig config = read_model_config(file);
  EXPECT_EQ(config.architecture, "llama");
  EXPECT_EQ(config.n_layer, 3);
  EXPECT_EQ(config.n_embd, 64);
  EXPECT_EQ(config.n_head, 8);
  EXPECT_EQ(config.n_head_kv, 2);
  EXPECT_EQ(config.head_dim, 8);
  EXPECT_EQ(config.n_ff, 160);
  EXPECT_EQ(config.n_vocab, 300);
  EXPECT_TRUE(config.has_output_weight);
  EXPECT_EQ(file.tensors().size(), 3u + 9u * 3u);
}

// Read into memory, with two tensors left mapped from the file in place (their
// whole pages), a model's every tensor has the bytes of the plain mapping.
TEST(GgufResidence, ReadWithATensorLeftMappedGivesTheMappedBytes) {
  TILLER_REQUIRE_MODEL(path, "smollm2-135m-instruct");
  const gguf::File mapped = gguf::File::open(path);
  const gguf::File read = gguf::File::open(path, gguf::Residence::Read, [](const gguf::File&, const gguf::TensorInfo& t) {
    return t.name == "token_embd.weight" || t.name == "blk.3.ffn_up.weight";
  });
  EXPECT_EQ(mapped.residence(), gguf::Residence::Mapped);
  EXPECT_EQ(read.residence(), gguf::Residence::Read);
  ASSERT_EQ(mapped.tensors().size(), read.tensors().size());
  for (const gguf::TensorInfo& tensor : mapped.tensors()) {
    const auto a = mapped.tensor_data(tensor);
    const auto b = read.tensor_data(*read.find_tensor(tensor.name));
    ASSERT_EQ(a.size(), b.size()) << tensor.name;
    ASSERT_EQ(0, std::memcmp(a.data(), b.data(), a.size())) << tensor.name;
  }
  EXPECT_EQ(mapped.metadata(), read.metadata());
}

}  // namespace
}  // namespace tiller
