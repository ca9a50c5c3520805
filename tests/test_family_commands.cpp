// Every architecture family through the command line, as a user would try it: run,
// logits, dump at every hook point, ActAdd, and a control vector trained by
// `tiller vector train` on the family steering the next run. Numbers against
// llama.cpp are test_family_golden.cpp's; here each command must work end to end
// on the family's random-weight model (scripts/make-test-models.sh).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "support/run_process.h"
#include "support/test_files.h"
#include "tiller/model_config.h"

namespace tiller {
namespace {

std::string write_lines(const std::string& name, const std::string& text) {
  const auto path = testing::scratch_dir() / name;
  std::ofstream(path) << text;
  return path.string();
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

class FamilyCommands : public ::testing::TestWithParam<std::string> {};

TEST_P(FamilyCommands, RunLogitsDumpTrainAndSteer) {
  const std::string family = GetParam();
  TILLER_REQUIRE_MODEL_FILE(path, "random/" + family + "-Q8_0", "run scripts/make-test-models.sh");
  const std::string tiller = TILLER_BINARY;
  const std::string dir = (testing::scratch_dir() / family).string();
  std::filesystem::create_directories(dir);

  const auto inspect = testing::run_process({tiller, "inspect", path, "--json"});
  ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
  const auto info = nlohmann::json::parse(inspect.out);
  EXPECT_EQ(info["family"], family);
  const int n_layer = info["n_layer"].get<int>();

  const auto run = testing::run_process({tiller, "run", "-m", path, "-p", "The weather today", "-n", "6", "--temp", "0", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto plain = nlohmann::json::parse(run.out);
  EXPECT_EQ(plain["tokens"].size(), 6u) << run.out;

  const std::string text = "A short text to score, token by token.";
  const auto logits = testing::run_process({tiller, "logits", "-m", path, "-p", text, "--npy", dir + "/plain.npy"});
  ASSERT_EQ(logits.exit_code, 0) << logits.err;

  const auto dump = testing::run_process({tiller, "dump", "-m", path, "-p", text, "--hook", "all", "-o", dir + "/dump"});
  ASSERT_EQ(dump.exit_code, 0) << dump.err;
  size_t files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir + "/dump")) ++files;
  EXPECT_EQ(files, static_cast<size_t>(5 * n_layer)) << "one .npy per block and hook point";

  const auto actadd = testing::run_process({tiller, "run", "-m", path, "-p", "The weather today", "-n", "6", "--temp",
                                            "0", "--json", "--actadd", "Love", "Hate", "--actadd-layer", "1"});
  ASSERT_EQ(actadd.exit_code, 0) << actadd.err;

  const std::string positive = write_lines(family + "-pos.txt", "I love this\nWhat a wonderful day\nHappy times\n");
  const std::string negative = write_lines(family + "-neg.txt", "I hate this\nWhat a terrible day\nSad times\n");
  const std::string vector = dir + "/trained.gguf";
  const auto train = testing::run_process({tiller, "vector", "train", "-m", path, "--positive-file", positive,
                                           "--negative-file", negative, "-o", vector});
  ASSERT_EQ(train.exit_code, 0) << train.err;
  const auto steered = testing::run_process({tiller, "logits", "-m", path, "-p", text, "--npy", dir + "/steered.npy",
                                             "--control-vector-scaled", vector + ":4"});
  ASSERT_EQ(steered.exit_code, 0) << steered.err;
  const std::string plain_bytes = read_bytes(dir + "/plain.npy"), steered_bytes = read_bytes(dir + "/steered.npy");
  EXPECT_EQ(plain_bytes.size(), steered_bytes.size());
  EXPECT_NE(plain_bytes, steered_bytes) << "the trained vector changed nothing";
}

INSTANTIATE_TEST_SUITE_P(RandomModels, FamilyCommands, ::testing::ValuesIn(supported_families()),
                         [](const ::testing::TestParamInfo<std::string>& param_info) { return param_info.param; });

}  // namespace
}  // namespace tiller
