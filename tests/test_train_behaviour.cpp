// A happy/sad control vector trained by `tiller vector train` on SmolLM2 (repeng's
// persona recipe, in the chat template) steers held-out neutral prompts: the
// next-token probability of positive words against negative ones rises with +c
// and falls with -c.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iostream>

#include <fmt/format.h>

#include "support/run_process.h"
#include "support/test_files.h"
#include "tiller/chat.h"
#include "tiller/control_vector.h"
#include "tiller/model.h"
#include "tiller/steer.h"

namespace tiller {
namespace {

const char* const kPositiveWords[] = {"happy", "glad", "great", "wonderful", "joyful", "excited", "cheerful",
                                      "good", "fantastic", "delighted", "amazing", "grateful"};
const char* const kNegativeWords[] = {"sad", "unhappy", "terrible", "awful", "miserable", "depressed", "down",
                                      "bad", "upset", "lonely", "tired", "anxious"};
// Applied at every block it was read at (1-29), scaled by projection: one mean
// difference per block at c = 1 moves the log-odds below by some +12 / -9 and the
// text is then no longer fluent, so the test uses 0.15. Measured at 0.15 with 60
// pairs: +6.1 and -6.8 against the unsteered -0.66 (22 prompts); the bar is half.
const float kCoefficient = 0.15f;
const int kFirst = 1, kLast = 29;
const double kMargin = 3.0;
// The answer's start, so that the next token is how the assistant feels.
const char* const kAnswerStart = "Honestly, right now I feel";

double log_sum_exp(const std::vector<double>& values) {
  double max = -INFINITY, sum = 0;
  for (const double v : values) max = std::max(max, v);
  for (const double v : values) sum += std::exp(v - max);
  return max + std::log(sum);
}

// log P(positive words) - log P(negative words) for the next token, mean over prompts.
double sentiment(Session& session, const std::vector<std::vector<TokenId>>& prompts, const std::vector<TokenId>& good,
                 const std::vector<TokenId>& bad) {
  double total = 0;
  const auto n_vocab = static_cast<size_t>(session.model().config().n_vocab);
  for (const auto& prompt : prompts) {
    session.reset();
    const auto logits = session.decode(prompt, false);
    std::vector<double> row(logits.begin(), logits.begin() + static_cast<std::ptrdiff_t>(n_vocab));
    const double lse = log_sum_exp(row);
    std::vector<double> g, b;
    for (const TokenId t : good) g.push_back(row[static_cast<size_t>(t)] - lse);
    for (const TokenId t : bad) b.push_back(row[static_cast<size_t>(t)] - lse);
    total += log_sum_exp(g) - log_sum_exp(b);
  }
  return total / static_cast<double>(prompts.size());
}

TEST(TrainBehaviour, HappySadVectorMovesSentimentOnHeldOutPrompts) {
  TILLER_REQUIRE_MODEL(path, "smollm2-135m-instruct");
  const std::string data = std::string(TILLER_TEST_DATA) + "/train/";
  const std::string out = (testing::scratch_dir() / "happy.gguf").string();
  const auto trained = testing::run_process(
      {TILLER_BINARY, "vector", "train", "-m", path, "--chat", "--template", "Act as if you are extremely {persona}.",
       "--personas", "happy,sad", "--suffixes", data + "suffixes.txt", "--max-pairs", "60", "-t", "2", "-o", out});
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  std::cout << "[ figures ] " << trained.out;
  const ControlVector vector = read_control_vector(out);

  const auto model = Model::load(path);
  const Tokenizer& tokenizer = model->tokenizer();
  auto first_tokens = [&](const auto& words) {
    std::vector<TokenId> ids;
    for (const char* word : words) ids.push_back(tokenizer.tokenize(std::string(" ") + word, {false, false}).front());
    return ids;
  };
  const auto good = first_tokens(kPositiveWords), bad = first_tokens(kNegativeWords);
  const ChatFormat format = resolve_chat_format(model->file(), "");
  std::vector<std::vector<TokenId>> prompts;
  std::ifstream in(data + "neutral.txt");
  for (std::string line; std::getline(in, line);) {
    const std::string text = render_chat(format, {{"user", line}}, true) + kAnswerStart;
    prompts.push_back(tokenizer.tokenize(text, {.add_special = true, .parse_special = true}));
  }
  ASSERT_GE(prompts.size(), 20u);

  Session session(model, {.n_ctx = 128, .n_threads = 2});
  const double base = sentiment(session, prompts, good, bad);
  auto steered = [&](float c) {
    auto steering = std::make_shared<Steering>(model->config().n_embd);
    add_control_vector(*steering, restrict_layers(vector, kFirst, kLast, model->config().n_layer), InterventionKind::Add,
                       c, PositionSelector::all(), "trained");
    SteeringBinding binding(steering, session);
    const double value = sentiment(session, prompts, good, bad);
    return value;
  };
  const double up = steered(kCoefficient), down = steered(-kCoefficient);
  std::cout << fmt::format("[ figures ] {} prompts, log P(positive) - log P(negative): {:+.3f} at -{}, {:+.3f} "
                           "unsteered, {:+.3f} at +{} (blocks {}-{})\n", prompts.size(), down, kCoefficient, base, up,
                           kCoefficient, kFirst, kLast);
  EXPECT_GT(up - base, kMargin);
  EXPECT_GT(base - down, kMargin);
}

}  // namespace
}  // namespace tiller
