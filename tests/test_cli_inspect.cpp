// `tiller inspect` output, text and JSON, on a tiny synthetic model and the real ones.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/run_process.h"
#include "support/test_files.h"
#include "support/tiny_model.h"

namespace tiller {
namespace {

std::string tiny_model_file() {
  testing::TinyModelSpec spec;
  spec.n_layer = 2;
  spec.n_embd = 64;
  spec.n_head = 4;
  spec.n_head_kv = 1;
  spec.n_ff = 128;
  spec.n_vocab = 270;
  spec.weight_type = TensorType::Q4_0;
  const std::string path = (testing::scratch_dir() / "tiny.gguf").string();
  testing::make_tiny_model(spec).write(path);
  return path;
}

TEST(CliInspect, JsonHasTheDocumentedKeys) {
  const auto result = testing::run_process({TILLER_BINARY, "inspect", tiny_model_file(), "--json", "--tensors"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto json = nlohmann::json::parse(result.out);
  EXPECT_EQ(json["architecture"], "llama");
  EXPECT_EQ(json["family"], "llama");
  EXPECT_NE(json["family_models"].get<std::string>().find("Mistral"), std::string::npos);
  EXPECT_EQ(json["n_layer"], 2);
  EXPECT_EQ(json["n_embd"], 64);
  EXPECT_EQ(json["n_head"], 4);
  EXPECT_EQ(json["n_head_kv"], 1);
  EXPECT_EQ(json["head_dim"], 16);
  EXPECT_EQ(json["n_ff"], 128);
  EXPECT_EQ(json["n_vocab"], 270);
  EXPECT_EQ(json["tensor_types"]["Q4_0"], 1 + 2 * 7);
  EXPECT_EQ(json["tensor_types"]["F32"], 1 + 2 * 2);
  EXPECT_EQ(json["tensor_count"], 20);
  ASSERT_EQ(json["tensors"].size(), 20u);
  EXPECT_EQ(json["tensors"][0]["name"], "token_embd.weight");
  EXPECT_EQ(json["tensors"][0]["shape"], nlohmann::json::array({64, 270}));
  EXPECT_EQ(json["tensors"][0]["bytes"], 64 / 32 * 18 * 270);
}

TEST(CliInspect, TextShowsHyperParametersAndTensorTable) {
  const auto result = testing::run_process({TILLER_BINARY, "inspect", tiny_model_file(), "--tensors", "--metadata"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  for (const char* fragment : {"architecture    llama", "family          llama (Llama", "n_layer         2", "n_head          4 (kv: 1)",
                               "blk.1.ffn_down.weight", "tokenizer.ggml.tokens", "Q4_0"}) {
    EXPECT_NE(result.out.find(fragment), std::string::npos) << fragment << " missing from:\n" << result.out;
  }
}

TEST(CliInspect, NonModelFilesStillInspect) {
  gguf::Writer writer;
  writer.set("general.architecture", "controlvector");
  writer.set("controlvector.layer_count", uint32_t{1});
  std::vector<float> direction(16, 0.5f);
  writer.add_tensor("direction.1", {16}, direction);
  const std::string path = (testing::scratch_dir() / "vector.gguf").string();
  writer.write(path);
  const auto result = testing::run_process({TILLER_BINARY, "inspect", path, "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto json = nlohmann::json::parse(result.out);
  EXPECT_EQ(json["architecture"], "controlvector");
  EXPECT_TRUE(json["family"].is_null());
  EXPECT_TRUE(json["n_layer"].is_null());
  EXPECT_EQ(json["tensor_types"]["F32"], 1);
}

TEST(CliInspect, RealModelByName) {
  TILLER_REQUIRE_MODEL(path, "smollm2-135m-instruct");
  const auto result = testing::run_process({TILLER_BINARY, "inspect", "smollm2-135m-instruct", "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto json = nlohmann::json::parse(result.out);
  EXPECT_EQ(json["n_layer"], 30);
  EXPECT_EQ(json["n_vocab"], 49152);
  EXPECT_EQ(json["tensor_types"]["Q4_1"], 210);
}

}  // namespace
}  // namespace tiller
