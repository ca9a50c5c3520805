// Generation: stop strings, lengths, a full context, seeds, and `tiller run`.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "support/fixtures.h"
#include "support/run_process.h"
#include "support/test_files.h"
#include "support/tiny_model.h"
#include "common/fail.h"
#include "tiller/generate.h"
#include "tiller/stop_strings.h"

namespace tiller {
namespace {

std::string feed(StopStringFilter& filter, const std::vector<std::string>& pieces) {
  std::string shown;
  for (const auto& piece : pieces) shown += filter.push(piece);
  return shown + filter.finish();
}

TEST(StopStrings, CutsAtTheFirstMatchAcrossPieces) {
  StopStringFilter filter({"END", "\n\n"});
  EXPECT_EQ(feed(filter, {"one E", "N", "D two"}), "one ");
  EXPECT_TRUE(filter.stopped());
  EXPECT_EQ(filter.matched(), "END");
  StopStringFilter earliest({"cd", "b"});
  EXPECT_EQ(feed(earliest, {"abcd"}), "a");
  EXPECT_EQ(earliest.matched(), "b");
}

TEST(StopStrings, HoldsBackOnlyWhatCouldStartAStop) {
  StopStringFilter filter({"STOP"});
  EXPECT_EQ(filter.push("abc ST"), "abc ");  // "ST" might begin STOP
  EXPECT_EQ(filter.push("AR"), "STAR");       // it did not
  EXPECT_EQ(filter.push("S"), "");
  EXPECT_EQ(filter.finish(), "S");  // the stream ended: what was held is shown
  EXPECT_FALSE(filter.stopped());
  StopStringFilter none({});
  EXPECT_EQ(none.push("anything"), "anything");
  EXPECT_THROW(StopStringFilter({""}), Error);
}

TEST(Generate, LengthContextAndSeeds) {
  const auto model = testing::load_tiny_model({}, "generate.gguf");
  const std::vector<TokenId> prompt = {1, 70, 80, 90};
  GenerationOptions options;
  options.n_predict = 5;
  options.ignore_eos = true;  // random weights may well pick </s>
  options.sampling.seed = 7;
  Session session(model, 32, 1);
  const auto first = generate(session, prompt, options);
  EXPECT_EQ(first.tokens.size(), 5u);
  EXPECT_EQ(first.reason, StopReason::Length);
  EXPECT_EQ(session.n_past(), 4 + 4);  // the last token is sampled, not run

  Session again(model, 32, 2);
  EXPECT_EQ(generate(again, prompt, options).tokens, first.tokens) << "same seed, same tokens";
  bool some_seed_differs = false;
  for (uint64_t seed = 8; seed < 16 && !some_seed_differs; ++seed) {
    Session other(model, 32, 1);
    options.sampling.seed = seed;
    some_seed_differs = generate(other, prompt, options).tokens != first.tokens;
  }
  EXPECT_TRUE(some_seed_differs);

  // -n beyond the context: generation stops cleanly when the cache is full.
  Session small(model, 10, 1);
  options.n_predict = 100;
  const auto full = generate(small, prompt, options);
  EXPECT_EQ(full.reason, StopReason::ContextFull);
  EXPECT_EQ(full.tokens.size(), 7u);  // 4 prompt positions + 6 run + 1 sampled last
  // A prompt that leaves no room is an error, not a truncation.
  Session tight(model, 4, 1);
  EXPECT_THROW(generate(tight, prompt, options), Error);
}

TEST(Generate, GreedyIsTheArgmaxOfTheLogits) {
  const auto model = testing::load_tiny_model({}, "greedy.gguf");
  const std::vector<TokenId> prompt = {1, 33, 44};
  GenerationOptions options;
  options.n_predict = 4;
  options.ignore_eos = true;
  options.sampling.temperature = 0.0f;
  Session session(model, 32, 1);
  const auto result = generate(session, prompt, options);
  Session check(model, 32, 1);
  std::vector<TokenId> context = prompt;
  for (const TokenId token : result.tokens) {
    check.reset();
    const auto logits = check.decode(context, false);
    EXPECT_EQ(std::max_element(logits.begin(), logits.end()) - logits.begin(), token);
    context.push_back(token);
  }
}

class RunCommand : public ::testing::Test {};

TEST(RunCommand, GreedyAnswerOnTheDefaultModel) {
  TILLER_REQUIRE_MODEL(path, "smollm2-135m-instruct");
  const auto result = testing::run_process(
      {TILLER_BINARY, "run", "-m", path, "-p", "The capital of France is", "-n", "8", "--temp", "0"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("Paris"), std::string::npos) << result.out;
  EXPECT_NE(result.err.find("tok/s"), std::string::npos) << result.err;
  const auto chat = testing::run_process({TILLER_BINARY, "run", "-m", path, "--chat", "-p",
                                          "What is the capital of France? One word.", "-n", "16", "--temp", "0"});
  ASSERT_EQ(chat.exit_code, 0) << chat.err;
  EXPECT_NE(chat.out.find("Paris"), std::string::npos) << chat.out;
  EXPECT_NE(chat.err.find("stop: eog"), std::string::npos) << chat.err;
}

TEST(RunCommand, SeedsRepeatAndStopStringsCut) {
  TILLER_REQUIRE_MODEL(path, "smollm2-135m-instruct");
  auto run = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {TILLER_BINARY, "run", "-m", path, "-p", "Once upon a time", "-n", "24"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    const auto result = testing::run_process(argv);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return result.out;
  };
  const std::string a = run({"-s", "123"}), b = run({"-s", "123"});
  EXPECT_EQ(a, b);
  const std::string greedy = run({"--temp", "0"});
  ASSERT_GT(greedy.size(), 12u);
  const std::string stop = greedy.substr(greedy.size() / 2, 3);  // a piece of the text it will produce
  const std::string cut = run({"--temp", "0", "--stop", stop});
  EXPECT_EQ(cut, greedy.substr(0, greedy.find(stop)) + "\n");
}

TEST(RunCommand, BadInputGetsOneLine) {
  const std::string path = (testing::scratch_dir() / "run-bad.gguf").string();
  testing::make_tiny_model({}).write(path);
  const std::string long_prompt(300, 'a');
  for (const auto& argv : std::vector<std::vector<std::string>>{
           {"-p", long_prompt, "-c", "64"},       // the prompt does not fit
           {"-p", "hi", "--system", "be brief"},  // --system without --chat
           {"-p", "hi", "--chat"},                // the tiny model has no chat template
           {"-p", "hi", "--top-p", "0"},          // a sampling value that means nothing
           {"-p", "hi", "-c", "-5"},
           {"-f", "/nonexistent/prompt.txt"},
       }) {
    std::vector<std::string> full = {TILLER_BINARY, "run", "-m", path};
    full.insert(full.end(), argv.begin(), argv.end());
    const auto result = testing::run_process(full);
    EXPECT_NE(result.exit_code, 0) << argv[1];
    EXPECT_EQ(result.signal, 0);
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
  }
  const auto missing = testing::run_process({TILLER_BINARY, "run", "-m", "no-such-model", "-p", "hi"});
  EXPECT_NE(missing.exit_code, 0);
  // -n beyond the context ends cleanly, saying why.
  const auto full = testing::run_process({TILLER_BINARY, "run", "-m", path, "-p", "hi", "-c", "8", "-n", "100",
                                          "--ignore-eos"});
  EXPECT_EQ(full.exit_code, 0) << full.err;
  EXPECT_NE(full.err.find("stop: context"), std::string::npos) << full.err;
}

}  // namespace
}  // namespace tiller
