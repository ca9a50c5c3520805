// Sessions of several sequences (continuous batching): every sequence's logits in
// a decode_step equal, bit for bit, those of decoding it alone in a session of its
// own, whatever other sequences share the step, in what order, at every kernel
// level; hooks of one sequence see only its rows, at its own positions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <iostream>
#include <random>

#include <fmt/format.h>

#include "support/fixtures.h"
#include "support/test_files.h"
#include "support/tiny_model.h"
#include "tiller/engine.h"
#include "tiller/error.h"
#include "tiller/model.h"
#include "tiller/steer.h"

namespace tiller {
namespace {

using testing::random_tokens;

// A sequence: its prompt, then one token per step.
struct Script {
  std::vector<TokenId> prompt, steps;
};

using Rows = std::vector<std::vector<float>>;  // the prompt's last row, then one row per step

Rows alone(const std::shared_ptr<const Model>& model, const std::shared_ptr<Engine>& engine, const Script& script,
           int n_ctx, std::shared_ptr<const Steering> steering = nullptr) {
  Session session(model, engine, {.n_ctx = n_ctx});
  std::optional<SteeringBinding> binding;
  if (steering) binding.emplace(steering, session);
  Rows rows;
  const auto first = session.decode(script.prompt, false);
  rows.emplace_back(first.begin(), first.end());
  for (const TokenId token : script.steps) {
    const auto next = session.decode(std::span(&token, 1), false);
    rows.emplace_back(next.begin(), next.end());
  }
  return rows;
}

// Every script in its own sequence of one session: the prompts one by one, then
// steps in which every sequence that still has tokens takes one, in an order that
// changes from step to step; sequences whose script is shorter sit out the later steps.
std::vector<Rows> batched(const std::shared_ptr<const Model>& model, const std::shared_ptr<Engine>& engine,
                          const std::vector<Script>& scripts, int n_ctx, int steered_seq = -1,
                          std::shared_ptr<const Steering> steering = nullptr) {
  const int n_seq = static_cast<int>(scripts.size());
  Session session(model, engine, {.n_ctx = n_ctx, .n_seq = n_seq});
  std::optional<SteeringBinding> binding;
  if (steering) binding.emplace(steering, session, PromptLayout{}, steered_seq);
  std::vector<Rows> rows(scripts.size());
  // Prompts in reverse order, so that sequence s is not filled s-th.
  for (int s = n_seq - 1; s >= 0; --s) {
    const auto first = session.decode(s, scripts[size_t(s)].prompt, false);
    rows[size_t(s)].emplace_back(first.begin(), first.end());
  }
  const auto n_vocab = static_cast<size_t>(model->config().n_vocab);
  std::mt19937 rng(7);
  for (size_t step = 0;; ++step) {
    std::vector<int> seqs;
    for (int s = 0; s < n_seq; ++s) {
      if (step < scripts[size_t(s)].steps.size()) seqs.push_back(s);
    }
    if (seqs.empty()) break;
    std::shuffle(seqs.begin(), seqs.end(), rng);
    std::vector<TokenId> tokens;
    for (const int s : seqs) tokens.push_back(scripts[size_t(s)].steps[step]);
    const auto logits = session.decode_step(seqs, tokens);
    for (size_t i = 0; i < seqs.size(); ++i) {
      rows[size_t(seqs[i])].emplace_back(logits.begin() + std::ptrdiff_t(i * n_vocab),
                                          logits.begin() + std::ptrdiff_t((i + 1) * n_vocab));
    }
  }
  for (int s = 0; s < n_seq; ++s) {
    EXPECT_EQ(session.n_past(s), int(scripts[size_t(s)].prompt.size() + scripts[size_t(s)].steps.size()));
  }
  return rows;
}

// Bit for bit; the first differing row and its largest difference otherwise.
void expect_identical(const Rows& got, const Rows& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t r = 0; r < got.size(); ++r) {
    ASSERT_EQ(got[r].size(), want[r].size()) << what;
    if (std::memcmp(got[r].data(), want[r].data(), got[r].size() * sizeof(float)) == 0) continue;
    float worst = 0;
    for (size_t i = 0; i < got[r].size(); ++i) worst = std::max(worst, std::abs(got[r][i] - want[r][i]));
    FAIL() << what << ": row " << r << " differs from decoding alone (largest |difference| " << worst << ")";
  }
}

std::vector<Script> scripts_for(const Model& model, int n_seq, uint32_t seed) {
  std::vector<Script> scripts;
  for (int s = 0; s < n_seq; ++s) {
    // Prompts of 1 to 19 tokens (past the tiny gemma's window of 4), 3 to 10 steps.
    scripts.push_back({random_tokens(1 + (s * 7) % 19, model.config().n_vocab, seed + uint32_t(s)),
                       random_tokens(3 + (s * 5) % 8, model.config().n_vocab, seed + 100 + uint32_t(s))});
  }
  return scripts;
}

TEST(Sequences, EachStepRowEqualsDecodingAloneAtEveryLevel) {
  testing::TinyModelSpec gemma;
  gemma.architecture = "gemma3";
  gemma.n_layer = 6;  // five local blocks and a global one
  for (const auto& [spec, name] : {std::pair{testing::TinyModelSpec{}, std::string("seq-llama.gguf")},
                                   std::pair{gemma, std::string("seq-gemma3.gguf")}}) {
    const auto model = testing::load_tiny_model(spec, name);
    const std::vector<Script> scripts = scripts_for(*model, 8, 11);
    for (const KernelLevel level : available_kernel_levels()) {
      const auto engine = Engine::create({.n_threads = 2, .kernels = level});
      const std::vector<Rows> together = batched(model, engine, scripts, 40);
      for (size_t s = 0; s < scripts.size(); ++s) {
        expect_identical(together[s], alone(model, engine, scripts[s], 40),
                         fmt::format("{} at {}, sequence {}", name, kernel_level_name(level), s));
      }
    }
  }
}

// A binding on one sequence steers its rows only, at its own positions (a range
// selector picks the same rows as alone), and the others are computed exactly as
// unsteered.
TEST(Sequences, SteeringOfOneSequenceTouchesOnlyItsRows) {
  const auto model = testing::load_tiny_model({}, "seq-steer.gguf");
  auto steering = std::make_shared<Steering>(model->config().n_embd);
  for (const auto& [layer, where] : {std::pair{0, PositionSelector::range(1, 3)}, std::pair{1, PositionSelector::all()}}) {
    Intervention v;
    v.layer = layer;
    v.point = HookPoint::ResidPre;
    v.where = where;
    v.vectors.assign(static_cast<size_t>(model->config().n_embd), 0.5f);
    steering->add(v);
  }
  const std::vector<Script> scripts = scripts_for(*model, 4, 21);
  const auto engine = Engine::create({.n_threads = 2, .kernels = std::nullopt});
  const std::vector<Rows> together = batched(model, engine, scripts, 40, 2, steering);
  for (size_t s = 0; s < scripts.size(); ++s) {
    expect_identical(together[s], alone(model, engine, scripts[s], 40, s == 2 ? steering : nullptr),
                     fmt::format("sequence {}", s));
  }
  // And the steering does change sequence 2.
  EXPECT_NE(together[2].back(), alone(model, engine, scripts[2], 40).back());
}

TEST(Sequences, RefusesWhatDoesNotFit) {
  const auto model = testing::load_tiny_model({}, "seq-bad.gguf");
  const auto engine = Engine::create({.n_threads = 1, .kernels = std::nullopt});
  EXPECT_THROW(Session(model, engine, {.n_ctx = 16, .n_seq = 0}), Error);
  Session session(model, engine, {.n_ctx = 4, .n_seq = 3});
  const std::vector<TokenId> three = {1, 2, 3};
  session.decode(1, three, false);
  const std::vector<int> twice = {0, 0}, out_of_range = {3}, one = {1};
  const std::vector<TokenId> two_tokens = {5, 6}, one_token = {5};
  EXPECT_THROW(session.decode_step(twice, two_tokens), Error);         // a sequence twice
  EXPECT_THROW(session.decode_step(out_of_range, one_token), Error);   // no sequence 3
  EXPECT_THROW(session.decode_step(one, two_tokens), Error);           // sizes differ
  EXPECT_THROW(session.decode_step({}, {}), Error);                    // nothing
  session.decode_step(one, one_token);                                 // position 3: the last
  EXPECT_THROW(session.decode_step(one, one_token), Error);            // full
  EXPECT_THROW(session.decode(3, three, false), Error);
  EXPECT_THROW(session.n_past(-1), Error);
  EXPECT_EQ(session.n_past(0), 0);
  EXPECT_EQ(session.n_past(1), 4);
  session.rewind(1, 1);
  EXPECT_EQ(session.n_past(1), 1);
}

// The real models at the best level this CPU has, where a step of 8 rows would
// take the tiled kernels if decode_step did not keep every row on the row kernels.
class SequencesRealModel : public ::testing::TestWithParam<std::string> {};

TEST_P(SequencesRealModel, EightSequencesStepTogetherAsEachAlone) {
  TILLER_REQUIRE_MODEL(path, GetParam());
  const auto model = Model::load(path);
  std::vector<Script> scripts;
  uint32_t seed = 31;
  for (const char* text : {"The weather today is", "I feel so happy because my friends came to visit me", "Hi",
                           "Once upon a time, in a land far away, there lived a dragon who", "Water boils at",
                           "List three colours:", "The capital of France is", "def fibonacci(n):"}) {
    scripts.push_back({model->tokenizer().tokenize(text), random_tokens(6, model->config().n_vocab, seed++)});
  }
  const auto engine = Engine::create({.n_threads = 2, .kernels = std::nullopt});
  const std::vector<Rows> together = batched(model, engine, scripts, 64);
  for (size_t s = 0; s < scripts.size(); ++s) {
    expect_identical(together[s], alone(model, engine, scripts[s], 64),
                     fmt::format("{} at {}, sequence {}", GetParam(), kernel_level_name(engine->kernel_level()), s));
  }
}

INSTANTIATE_TEST_SUITE_P(RealModels, SequencesRealModel, ::testing::Values("smollm2-135m-instruct", "gemma-3-270m"),
                         testing::model_test_name);

}  // namespace
}  // namespace tiller
