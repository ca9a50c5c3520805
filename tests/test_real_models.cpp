// The two real models: hyper-parameters, tensor types, and dequantized rows
// against the gguf package (goldens from scripts/make-dequant-goldens.py).
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "support/dequant_goldens.h"
#include "support/test_files.h"
#include "tiller/dequantize.h"
#include "tiller/gguf.h"
#include "tiller/model_config.h"

namespace tiller {
namespace {

std::map<std::string, int> type_counts(const gguf::File& file) {
  std::map<std::string, int> counts;
  for (const auto& tensor : file.tensors()) ++counts[std::string(tensor_type_name(tensor.type))];
  return counts;
}

TEST(RealModels, SmolLM2HyperParameters) {
  TILLER_REQUIRE_MODEL(path, "smollm2-135m-instruct");
  const auto file = gguf::File::open(path);
  const ModelConfig c = read_model_config(file);
  EXPECT_EQ(c.architecture, "llama");
  EXPECT_EQ(c.n_layer, 30);
  EXPECT_EQ(c.n_embd, 576);
  EXPECT_EQ(c.n_head, 9);
  EXPECT_EQ(c.n_head_kv, 3);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.n_ff, 1536);
  EXPECT_EQ(c.n_vocab, 49152);
  EXPECT_EQ(c.n_ctx_train, 8192);
  EXPECT_EQ(c.rope_freq_base, 100000.0);
  EXPECT_FLOAT_EQ(static_cast<float>(c.norm_eps), 1e-5f);
  EXPECT_EQ(c.tokenizer_model, "gpt2");
  EXPECT_EQ(c.tokenizer_pre, "smollm");
  EXPECT_TRUE(c.has_chat_template);
  EXPECT_FALSE(c.has_output_weight);
  EXPECT_EQ(type_counts(file), (std::map<std::string, int>{{"F32", 61}, {"Q4_1", 210}, {"Q8_0", 1}}));
}

TEST(RealModels, Gemma3HyperParameters) {
  TILLER_REQUIRE_MODEL(path, "gemma-3-270m");
  const auto file = gguf::File::open(path);
  const ModelConfig c = read_model_config(file);
  EXPECT_EQ(c.architecture, "gemma3");
  EXPECT_EQ(c.n_layer, 18);
  EXPECT_EQ(c.n_embd, 640);
  EXPECT_EQ(c.n_head, 4);
  EXPECT_EQ(c.n_head_kv, 1);
  EXPECT_EQ(c.head_dim, 256);
  EXPECT_EQ(c.n_ff, 2048);
  EXPECT_EQ(c.n_vocab, 262144);
  EXPECT_EQ(c.n_ctx_train, 32768);
  EXPECT_EQ(c.rope_freq_base, 1e6);
  EXPECT_EQ(c.rope_freq_base_sliding, 10000.0);
  EXPECT_EQ(c.sliding_window, 512);
  EXPECT_EQ(c.tokenizer_model, "llama");
  EXPECT_FALSE(c.has_output_weight);
  EXPECT_EQ(type_counts(file), (std::map<std::string, int>{
                                   {"F32", 109}, {"Q4_K", 27}, {"Q5_0", 81}, {"Q6_K", 9}, {"Q8_0", 10}}));
}

class RealModelDequantization : public ::testing::TestWithParam<std::string> {};

TEST_P(RealModelDequantization, SampledRowsMatchTheGgufPackage) {
  TILLER_REQUIRE_MODEL(path, GetParam());
  const auto file = gguf::File::open(path);
  const auto golden = testing::load_golden(GetParam() + ".json");
  std::map<std::string, double> worst_by_type;
  size_t rows = 0;
  for (const auto& item : golden["rows"]) {
    const std::string name = item["tensor"];
    const gguf::TensorInfo* tensor = file.find_tensor(name);
    ASSERT_NE(tensor, nullptr) << name;
    EXPECT_EQ(tensor_type_name(tensor->type), item["type"].get<std::string>());
    const auto got = dequantize_tensor_row(file, *tensor, item["row"].get<int64_t>());
    const auto expected = item["values"].get<std::vector<float>>();
    const double error = testing::max_relative_error(got, expected);
    EXPECT_LE(error, 1e-6) << name << " row " << item["row"];
    auto& worst = worst_by_type[item["type"]];
    worst = std::max(worst, error);
    ++rows;
  }
  EXPECT_GT(rows, 0u);
  for (const auto& [type, worst] : worst_by_type) {
    std::printf("%s %s: max relative error %.3g\n", GetParam().c_str(), type.c_str(), worst);
  }
  // Every type the model holds is covered by the golden.
  for (const auto& tensor : file.tensors()) {
    EXPECT_TRUE(worst_by_type.count(std::string(tensor_type_name(tensor.type))))
        << tensor_type_name(tensor.type) << " has no golden rows";
  }
}

TEST_P(RealModelDequantization, EveryTensorsFirstAndLastRowsAreFinite) {
  TILLER_REQUIRE_MODEL(path, GetParam());
  const auto file = gguf::File::open(path);
  for (const auto& tensor : file.tensors()) {
    for (int64_t row : {int64_t{0}, tensor.n_rows() - 1}) {
      for (float value : dequantize_tensor_row(file, tensor, row)) {
        ASSERT_TRUE(std::isfinite(value)) << tensor.name << " row " << row;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, RealModelDequantization,
                         ::testing::Values("smollm2-135m-instruct", "gemma-3-270m"),
                         testing::model_test_name);

}  // namespace
}  // namespace tiller
