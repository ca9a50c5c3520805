// `tiller bench`: the JSON it prints, the memory bar of the CPU speed issue (peak
// RSS at most the mapped model + KV cache + 64 MiB) and its errors. Timings are
// reported, never asserted: the machines that run this are shared and noisy.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/run_process.h"
#include "support/test_files.h"
#include "support/tiny_model.h"

namespace tiller {
namespace {

TEST(BenchCommand, JsonKeysAndTheMemoryBarOnTheDefaultModel) {
  TILLER_REQUIRE_MODEL(path, "smollm2-135m-instruct");
  const auto result = testing::run_process(
      {TILLER_BINARY, "bench", "-m", path, "--json", "-p", "64", "-n", "16", "-r", "1", "-t", "1"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto tests = nlohmann::json::parse(result.out);
  ASSERT_TRUE(tests.is_array());
  ASSERT_EQ(tests.size(), 2u);
  EXPECT_EQ(tests[0]["test"], "pp64");
  EXPECT_EQ(tests[1]["test"], "tg16");
  uint64_t kv_bytes = 0;
  for (const auto& test : tests) {
    for (const char* key : {"test", "threads", "tok_s", "tok_s_sd", "n_prompt", "n_gen", "reps", "model", "samples",
                            "model_file_bytes", "kv_cache_bytes", "peak_rss_bytes", "load_seconds",
                            "weight_bytes_per_token", "kernels"}) {
      EXPECT_TRUE(test.contains(key)) << key;
    }
    EXPECT_EQ(test["threads"], 1);
    EXPECT_GT(test["tok_s"].get<double>(), 0.0);
    EXPECT_EQ(test["samples"].size(), 1u);
    kv_bytes = std::max(kv_bytes, test["kv_cache_bytes"].get<uint64_t>());
  }
  EXPECT_GT(tests[1]["bandwidth_gb_s"].get<double>(), 0.0);
  const auto model_bytes = tests[0]["model_file_bytes"].get<uint64_t>();
  const auto peak_rss = tests[0]["peak_rss_bytes"].get<uint64_t>();
  const uint64_t bar = model_bytes + kv_bytes + (64ull << 20);
  const auto mib = [](uint64_t bytes) { return static_cast<double>(bytes) / 1048576.0; };
#ifndef TILLER_SANITIZED  // AddressSanitizer's shadow memory and quarantine add to the RSS
  EXPECT_LE(peak_rss, bar) << "peak RSS " << mib(peak_rss) << " MiB, bar " << mib(bar) << " MiB";
#endif
  std::printf("peak RSS %.1f MiB, bar %.1f MiB; pp64 %.1f tok/s, tg16 %.1f tok/s\n", mib(peak_rss), mib(bar),
              tests[0]["tok_s"].get<double>(), tests[1]["tok_s"].get<double>());
}

TEST(BenchCommand, ListsMakeOneTestPerCombination) {
  const std::string path = (testing::scratch_dir() / "bench-tiny.gguf").string();
  testing::make_tiny_model({}).write(path);
  const auto result = testing::run_process(
      {TILLER_BINARY, "bench", "-m", path, "--json", "-p", "8,16", "-n", "4", "-t", "1,2", "-r", "2"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto tests = nlohmann::json::parse(result.out);
  ASSERT_EQ(tests.size(), 6u);
  EXPECT_EQ(tests[0]["test"], "pp8");
  EXPECT_EQ(tests[1]["test"], "pp16");
  EXPECT_EQ(tests[2]["test"], "tg4");
  EXPECT_EQ(tests[3]["threads"], 2);
  EXPECT_EQ(tests[5]["samples"].size(), 2u);
}

// -s: a tg test per sequence count; tgNxS counts every sequence's tokens, its cache
// holds S sequences, and its bandwidth is per step (the sequences share each read).
TEST(BenchCommand, SequencesMakeBatchedGenerationTests) {
  const std::string path = (testing::scratch_dir() / "bench-sequences.gguf").string();
  testing::make_tiny_model({}).write(path);
  const auto result = testing::run_process(
      {TILLER_BINARY, "bench", "-m", path, "--json", "-p", "0", "-n", "6", "-s", "1,3", "-r", "1", "-t", "1"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto tests = nlohmann::json::parse(result.out);
  ASSERT_EQ(tests.size(), 2u);
  EXPECT_EQ(tests[0]["test"], "tg6");
  EXPECT_EQ(tests[0]["n_seq"], 1);
  EXPECT_EQ(tests[1]["test"], "tg6x3");
  EXPECT_EQ(tests[1]["n_seq"], 3);
  EXPECT_EQ(tests[1]["kv_cache_bytes"].get<uint64_t>(), 3 * tests[0]["kv_cache_bytes"].get<uint64_t>());
  const double per_step = tests[1]["tok_s"].get<double>() / 3;
  EXPECT_NEAR(tests[1]["bandwidth_gb_s"].get<double>(),
              static_cast<double>(tests[1]["weight_bytes_per_token"].get<uint64_t>()) * per_step / 1e9,
              1e-9 * tests[1]["bandwidth_gb_s"].get<double>());
  const auto bad = testing::run_process({TILLER_BINARY, "bench", "-m", path, "-s", "0"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("--sequences"), std::string::npos) << bad.err;
}

// A length of 0 leaves its kind out (as llama-bench's -p 0 / -n 0).
TEST(BenchCommand, ZeroLengthsLeaveTheirKindOut) {
  const std::string path = (testing::scratch_dir() / "bench-zero.gguf").string();
  testing::make_tiny_model({}).write(path);
  const auto only_tg = testing::run_process(
      {TILLER_BINARY, "bench", "-m", path, "--json", "-p", "0", "-n", "4", "-r", "1", "-t", "1"});
  ASSERT_EQ(only_tg.exit_code, 0) << only_tg.err;
  const auto tg = nlohmann::json::parse(only_tg.out);
  ASSERT_EQ(tg.size(), 1u);
  EXPECT_EQ(tg[0]["test"], "tg4");
  const auto only_pp = testing::run_process(
      {TILLER_BINARY, "bench", "-m", path, "--json", "-p", "8,0", "-n", "0", "-r", "1", "-t", "1"});
  ASSERT_EQ(only_pp.exit_code, 0) << only_pp.err;
  const auto pp = nlohmann::json::parse(only_pp.out);
  ASSERT_EQ(pp.size(), 1u);
  EXPECT_EQ(pp[0]["test"], "pp8");
}

// TILLER_KERNELS picks a lower kernel level (one kernel for any number of rows:
// batch-invariant activations); a name that is no level is a one-line error.
TEST(BenchCommand, TheEnvironmentChoosesTheKernels) {
  const std::string path = (testing::scratch_dir() / "bench-kernels.gguf").string();
  testing::make_tiny_model({}).write(path);
  const auto portable = testing::run_process({"/usr/bin/env", "TILLER_KERNELS=portable", TILLER_BINARY, "bench", "-m",
                                          path, "--json", "-p", "16", "-n", "2", "-r", "1", "-t", "1"});
  ASSERT_EQ(portable.exit_code, 0) << portable.err;
  EXPECT_EQ(nlohmann::json::parse(portable.out)[0]["kernels"], "portable");
  const auto bad = testing::run_process({"/usr/bin/env", "TILLER_KERNELS=sse9", TILLER_BINARY, "bench", "-m", path,
                                         "-p", "16", "-n", "2", "-r", "1", "-t", "1"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_EQ(bad.signal, 0);
  EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;
  EXPECT_NE(bad.err.find("TILLER_KERNELS='sse9'"), std::string::npos) << bad.err;
}

// --on-request: one load, then one warm-up and one timed run per line of standard
// input, in the order asked, answered as one JSON line each; a request for a test
// that -p/-n/-t did not plan, or a malformed one, is a one-line error.
TEST(BenchCommand, OnRequestRunsTheTestsAskedForWithOneLoad) {
  const std::string path = (testing::scratch_dir() / "bench-on-request.gguf").string();
  testing::make_tiny_model({}).write(path);
  const std::vector<std::string> argv = {TILLER_BINARY, "bench", "-m", path, "-p", "8", "-n", "4", "-t", "1,2",
                                         "--on-request"};
  const auto result = testing::run_process(argv, "tg4 2\npp8 1\ntg4 2\n");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  std::vector<nlohmann::json> answers;
  std::istringstream lines(result.out);
  for (std::string line; std::getline(lines, line);) answers.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(answers.size(), 3u) << result.out;
  const std::vector<std::pair<std::string, int>> asked = {{"tg4", 2}, {"pp8", 1}, {"tg4", 2}};
  for (size_t i = 0; i < answers.size(); ++i) {
    EXPECT_EQ(answers[i]["test"], asked[i].first);
    EXPECT_EQ(answers[i]["threads"], asked[i].second);
    EXPECT_EQ(answers[i]["samples"].size(), 1u);
    EXPECT_GT(answers[i]["tok_s"].get<double>(), 0.0);
    EXPECT_EQ(answers[i]["load_seconds"], answers[0]["load_seconds"]) << "the model was loaded again";
  }
  const auto ended = testing::run_process(argv, "tg4 1\n\ntg4 2\n");  // an empty line ends it
  ASSERT_EQ(ended.exit_code, 0) << ended.err;
  EXPECT_EQ(std::count(ended.out.begin(), ended.out.end(), '\n'), 1) << ended.out;
  for (const char* bad : {"tg5 1\n", "tg4\n", "tg4 3\n", "tg4 1 x\n"}) {
    const auto refused = testing::run_process(argv, std::string("pp8 2\n") + bad);
    EXPECT_NE(refused.exit_code, 0) << bad;
    EXPECT_EQ(refused.signal, 0);
    EXPECT_EQ(std::count(refused.out.begin(), refused.out.end(), '\n'), 1) << "the good request is answered first";
    EXPECT_EQ(std::count(refused.err.begin(), refused.err.end(), '\n'), 1) << refused.err;
  }
}

TEST(BenchCommand, BadFlagsGetOneLine) {
  const std::string path = (testing::scratch_dir() / "bench-bad.gguf").string();
  testing::make_tiny_model({}).write(path);
  for (const auto& argv : std::vector<std::vector<std::string>>{
           {"-m", path, "-p", "0", "-n", "0"},
           {"-m", path, "-p", "-1"},
           {"-m", path, "-r", "0"},
           {"-m", path, "-t", "1,x"},
           {"-m", path, "--json", "--on-request"},
           {"-m", "no-such-model"},
       }) {
    std::vector<std::string> full = {TILLER_BINARY, "bench"};
    full.insert(full.end(), argv.begin(), argv.end());
    const auto result = testing::run_process(full);
    EXPECT_NE(result.exit_code, 0) << argv[1] << " " << argv.back();
    EXPECT_EQ(result.signal, 0);
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
  }
}

}  // namespace
}  // namespace tiller
