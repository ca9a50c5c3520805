// `tiller vector distill` and distill_system_prompt: the mean difference and one
// cell's KL recomputed plainly (tiny model, each conversation decoded alone, the
// written file applied through a Steering), the chosen cell the grid's minimum,
// one-line errors, and the command on SmolLM2.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <optional>
#include <random>

#include <nlohmann/json.hpp>

#include "support/cli_expect.h"
#include "support/fixtures.h"
#include "support/run_process.h"
#include "support/test_files.h"
#include "support/tiny_model.h"
#include "tiller/control_vector.h"
#include "tiller/distill.h"
#include "tiller/error.h"
#include "tiller/model.h"
#include "tiller/steer.h"

namespace tiller {
namespace {

using json = nlohmann::json;

std::string write_text(const std::string& name, const std::string& text) {
  const std::string path = (testing::scratch_dir() / name).string();
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

double cosine(const std::vector<float>& a, const std::vector<double>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += a[i] * b[i];
    aa += double(a[i]) * a[i];
    bb += b[i] * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

double length(const std::vector<double>& a) {
  double sum = 0;
  for (const double x : a) sum += x * x;
  return std::sqrt(sum);
}

double length(const std::vector<float>& a) {
  double sum = 0;
  for (const float x : a) sum += double(x) * x;
  return std::sqrt(sum);
}

// The greedy answer as the definition says: argmax, stop at n tokens or an end of generation.
std::vector<TokenId> greedy(const std::shared_ptr<const Model>& model, const std::vector<TokenId>& prompt, int n) {
  Session session(model, 128, 1);
  std::vector<TokenId> answer;
  std::vector<TokenId> context = prompt;
  while (true) {
    session.reset();
    const auto logits = session.decode(context, false);
    const auto token = static_cast<TokenId>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    answer.push_back(token);
    if (static_cast<int>(answer.size()) >= n || model->tokenizer().is_end_of_generation(token)) return answer;
    context.push_back(token);
  }
}

// Every row's logits of one sequence decoded alone, optionally steered by a control vector file's contents.
std::vector<float> all_logits(const std::shared_ptr<const Model>& model, const std::vector<TokenId>& tokens,
                              const ControlVector* vector = nullptr) {
  Session session(model, 128, 1);
  std::optional<SteeringBinding> binding;
  if (vector != nullptr) {
    auto steering = std::make_shared<Steering>(model->config().n_embd);
    add_control_vector(*steering, *vector, InterventionKind::Add, 1.0f, PositionSelector::all(), "test");
    binding.emplace(steering, session);
  }
  const auto logits = session.decode(tokens, true);
  return {logits.begin(), logits.end()};
}

// KL(p || q) of two logit rows, written out in double.
double kl_by_hand(const float* p, const float* q, size_t n) {
  double p_max = p[0], q_max = q[0];
  for (size_t i = 0; i < n; ++i) {
    p_max = std::max<double>(p_max, p[i]);
    q_max = std::max<double>(q_max, q[i]);
  }
  double p_sum = 0, q_sum = 0;
  for (size_t i = 0; i < n; ++i) {
    p_sum += std::exp(p[i] - p_max);
    q_sum += std::exp(q[i] - q_max);
  }
  double kl = 0;
  for (size_t i = 0; i < n; ++i) {
    const double log_p = p[i] - p_max - std::log(p_sum);
    const double log_q = q[i] - q_max - std::log(q_sum);
    kl += std::exp(log_p) * (log_p - log_q);
  }
  return kl;
}

// The mean over answer positions of KL(prompted || other), other steered by `vector` if given.
double answer_kl_by_hand(const std::shared_ptr<const Model>& model, const DistillPrompt& prompt, int n_answer,
                         const ControlVector* vector) {
  const std::vector<TokenId> answer = greedy(model, prompt.prompted, n_answer);
  auto with = prompt.prompted, without = prompt.unprompted;
  with.insert(with.end(), answer.begin(), answer.end() - 1);
  without.insert(without.end(), answer.begin(), answer.end() - 1);
  const auto p = all_logits(model, with);
  const auto q = all_logits(model, without, vector);
  const auto n_vocab = static_cast<size_t>(model->config().n_vocab);
  double sum = 0;
  for (size_t t = 0; t < answer.size(); ++t) {
    sum += kl_by_hand(p.data() + (prompt.prompted.size() - 1 + t) * n_vocab,
                      q.data() + (prompt.unprompted.size() - 1 + t) * n_vocab, n_vocab);
  }
  return sum / static_cast<double>(answer.size());
}

// resid_post of every block for one prompt decoded alone: [layer][n_tokens x width].
std::vector<std::vector<float>> resid_post(const std::shared_ptr<const Model>& model,
                                           const std::vector<TokenId>& tokens) {
  Session session(model, 128, 1);
  std::vector<std::vector<float>> rows(static_cast<size_t>(model->config().n_layer));
  for (int layer = 0; layer < model->config().n_layer; ++layer) {
    session.add_hook(layer, HookPoint::ResidPost, [&rows](const HookRows& r) {
      rows[static_cast<size_t>(r.layer)].assign(r.data, r.data + r.n_rows * r.width);
    });
  }
  session.decode(tokens, false);
  return rows;
}

// Conversations of made-up tokens: a shared "system" part differs, then the user
// part and a two-token header.
std::vector<DistillPrompt> made_up_prompts(size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<TokenId> token(10, 250);
  const std::vector<TokenId> system{40, 41, 42, 43, 44}, default_system{50, 51};
  std::vector<DistillPrompt> prompts;
  for (size_t i = 0; i < count; ++i) {
    std::vector<TokenId> user(4 + i % 3);
    for (TokenId& t : user) t = token(rng);
    DistillPrompt p;
    p.header = 2;
    for (auto [into, sys] : {std::pair{&p.prompted, &system}, std::pair{&p.unprompted, &default_system}}) {
      into->push_back(1);
      into->insert(into->end(), sys->begin(), sys->end());
      into->insert(into->end(), user.begin(), user.end());
      into->insert(into->end(), {7, 8});
    }
    prompts.push_back(p);
  }
  return prompts;
}

DistillOptions small_grid() {
  DistillOptions options;
  options.scales = {0.5f, 1.0f, 2.0f};
  options.ranges = {{1, 1}, {1, 2}, {2, 2}};
  options.n_answer = 3;
  options.n_batch = 32;  // several passes, sequences split across them
  return options;
}

TEST(Distill, MeanDifferenceIsRecomputedByHand) {
  const auto model = testing::load_three_block_model("distill-mean.gguf");
  const auto train = made_up_prompts(4, 3);
  for (const DistillRead read : {DistillRead::Last, DistillRead::Header, DistillRead::Suffix}) {
    DistillOptions options = small_grid();
    options.read = read;
    const DistillResult result = distill_system_prompt(model, train, {}, options);
    const auto width = static_cast<size_t>(model->config().n_embd);
    for (int layer = 0; layer < model->config().n_layer; ++layer) {
      std::vector<double> expected(width, 0.0);
      for (const DistillPrompt& p : train) {
        int header = read == DistillRead::Header ? p.header : 1;
        if (read == DistillRead::Suffix) {
          // The user's tokens and the header: everything after the differing system parts.
          header = static_cast<int>(p.prompted.size()) - 6;
          ASSERT_EQ(p.unprompted.size() - 3, static_cast<size_t>(header));
        }
        for (auto [tokens, sign] : {std::pair{&p.prompted, 1.0}, std::pair{&p.unprompted, -1.0}}) {
          const auto rows = resid_post(model, *tokens)[static_cast<size_t>(layer)];
          for (size_t t = tokens->size() - static_cast<size_t>(header); t < tokens->size(); ++t) {
            for (size_t i = 0; i < width; ++i) {
              expected[i] += sign * rows[t * width + i] / header / static_cast<double>(train.size());
            }
          }
        }
      }
      const std::vector<float>& got = result.mean_difference.directions.at(layer);
      // Packed passes round differently from one sequence alone (other matmul
      // shapes), at float precision: the bounds leave that room and no more.
      EXPECT_GT(cosine(got, expected), 0.99999) << "block " << layer;
      EXPECT_NEAR(length(got) / length(expected), 1.0, 1e-4) << "block " << layer;
    }
  }
}

TEST(Distill, ChosenCellIsTheGridMinimumAndItsKlIsRecomputedByHand) {
  const auto model = testing::load_three_block_model("distill-grid.gguf");
  const auto train = made_up_prompts(3, 5);
  const auto eval = made_up_prompts(2, 9);
  const DistillOptions options = small_grid();
  const DistillResult result = distill_system_prompt(model, train, eval, options);
  ASSERT_EQ(result.grid.size(), options.scales.size() * options.ranges.size());
  for (const DistillCell& cell : result.grid) EXPECT_GE(cell.kl, result.grid[result.chosen].kl);
  const DistillCell& chosen = result.grid[result.chosen];

  // The written vector: the chosen blocks only, the scale baked in.
  ASSERT_EQ(result.vector.directions.size(), static_cast<size_t>(chosen.last - chosen.first + 1));
  for (const auto& [block, values] : result.vector.directions) {
    EXPECT_GE(block, chosen.first);
    EXPECT_LE(block, chosen.last);
    const auto& raw = result.mean_difference.directions.at(block);
    for (size_t i = 0; i < values.size(); ++i) EXPECT_EQ(values[i], chosen.scale * raw[i]);
  }

  // Each conversation alone, the file applied as --control-vector applies it. The
  // relative bound covers packed-vs-alone rounding of the logits (~1e-6 relative),
  // which the KL, a difference of log-probabilities, can magnify a hundredfold.
  double train_kl = 0, unsteered = 0, steered = 0;
  for (const DistillPrompt& p : train) {
    train_kl += answer_kl_by_hand(model, p, options.n_answer, &result.vector) / static_cast<double>(train.size());
  }
  for (const DistillPrompt& p : eval) {
    unsteered += answer_kl_by_hand(model, p, options.n_answer, nullptr) / static_cast<double>(eval.size());
    steered += answer_kl_by_hand(model, p, options.n_answer, &result.vector) / static_cast<double>(eval.size());
  }
  EXPECT_NEAR(chosen.kl, train_kl, 1e-3 * train_kl + 1e-7);
  EXPECT_NEAR(result.train.kl_steered, train_kl, 1e-3 * train_kl + 1e-7);
  EXPECT_NEAR(result.eval.kl_unsteered, unsteered, 1e-3 * unsteered + 1e-7);
  EXPECT_NEAR(result.eval.kl_steered, steered, 1e-3 * steered + 1e-7);
  EXPECT_GT(unsteered, 0);  // the made-up system parts do change the answer's distributions
  EXPECT_DOUBLE_EQ(result.eval.tokens_saved, 3.0);  // 5 system tokens against 2
  EXPECT_EQ(result.eval.prompts, 2u);
}

TEST(Distill, KlOfARowWithItselfIsZero) {
  const std::vector<float> p{1.0f, 2.0f, -3.0f}, q{0.0f, 0.0f, 0.0f};
  EXPECT_NEAR(kl_divergence(p, p), 0.0, 1e-12);
  EXPECT_NEAR(kl_divergence(p, q), kl_by_hand(p.data(), q.data(), 3), 1e-6);
  EXPECT_THROW(kl_divergence(p, std::vector<float>{1.0f}), Error);
}

TEST(Distill, LibraryRefusesBadInput) {
  const auto model = testing::load_three_block_model("distill-bad.gguf");
  const auto prompts = made_up_prompts(2, 1);
  const DistillOptions good = small_grid();
  EXPECT_THROW(distill_system_prompt(model, {}, prompts, good), Error);
  auto empty = prompts;
  empty[0].unprompted.clear();
  EXPECT_THROW(distill_system_prompt(model, empty, {}, good), Error);
  auto long_header = prompts;
  long_header[1].header = 100;
  EXPECT_THROW(distill_system_prompt(model, long_header, {}, good), Error);
  for (auto change : std::vector<std::function<void(DistillOptions&)>>{
           [](DistillOptions& o) { o.scales.clear(); },
           [](DistillOptions& o) { o.ranges = {{2, 3}}; },
           [](DistillOptions& o) { o.ranges = {{2, 1}}; },
           [](DistillOptions& o) { o.scales = {NAN}; },
           [](DistillOptions& o) { o.n_answer = 0; },
       }) {
    DistillOptions bad = good;
    change(bad);
    EXPECT_THROW(distill_system_prompt(model, prompts, {}, bad), Error);
  }
}

TEST(Distill, CommandGivesOneLineErrors) {
  testing::TinyModelSpec spec;
  const std::string model = (testing::scratch_dir() / "distill-cli.gguf").string();
  testing::make_tiny_model(spec).write(model);
  const std::string prompts = write_text("distill-prompts.txt", "hello there\nhow are you\n");
  const std::string blank = write_text("distill-blank.txt", "\n  \n");
  const std::string out = (testing::scratch_dir() / "distill-cli-out.gguf").string();
  const auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = {"--system", "be nice", "--prompts", prompts, "--eval-prompts", prompts};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  };
  for (const auto& argv : std::vector<std::vector<std::string>>{
           {"--system", "", "--prompts", prompts, "--eval-prompts", prompts},
           {"--system", "be nice", "--prompts", blank, "--eval-prompts", prompts},
           {"--system", "be nice", "--prompts", prompts, "--eval-prompts", blank},
           {"--system", "be nice", "--prompts", "/no/such/file.txt", "--eval-prompts", prompts},
           with({"--scales", "1,x"}),
           with({"--scales", ""}),
           with({"--ranges", "1-9"}),
           with({"--ranges", "2-1"}),
           with({"--read", "first"}),
           with({"--answer-tokens", "0"}),
       }) {
    std::vector<std::string> full = {TILLER_BINARY, "vector", "distill", "-m", model, "-o", out, "--chat-template",
                                     "chatml"};
    full.insert(full.end(), argv.begin(), argv.end());
    testing::expect_one_line_failure(full, argv);
  }
}

// The command on the real model: a few prompts, a small grid, within seconds.
TEST(Distill, CommandOnSmolLM2) {
  TILLER_REQUIRE_MODEL(path, "smollm2-135m-instruct");
  const std::string train = write_text(
      "distill-train.txt", "What is the capital of Italy?\nTell me about the moon.\nHow do plants grow?\n"
                           "Describe a cat.\n");
  const std::string eval = write_text("distill-eval.txt", "What is snow?\nTell me about trains.\n");
  const std::string out = (testing::scratch_dir() / "distill-smollm2.gguf").string();
  const auto result = testing::run_process({TILLER_BINARY, "vector", "distill", "-m", path, "--system",
                                            "You are a pirate. Always talk like a pirate.", "--prompts", train,
                                            "--eval-prompts", eval, "-o", out, "--scales", "0.25,0.5",
                                            "--ranges", "8-10,10-12", "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const json summary = json::parse(result.out);
  for (const char* key : {"kl_unsteered", "kl_steered", "scale", "layers", "tokens_saved", "system_turn_tokens",
                          "n_prompts", "train", "eval", "grid"}) {
    EXPECT_TRUE(summary.contains(key)) << key;
  }
  EXPECT_EQ(summary["n_prompts"].get<int>(), 2);
  EXPECT_EQ(summary["grid"].size(), 4u);
  EXPECT_LT(summary["train"]["kl_steered"].get<double>(), summary["train"]["kl_unsteered"].get<double>());
  EXPECT_GT(summary["kl_unsteered"].get<double>(), 0);
  const ControlVector vector = read_control_vector(out);
  const int first = summary["first_block"].get<int>(), last = summary["last_block"].get<int>();
  EXPECT_EQ(vector.directions.size(), static_cast<size_t>(last - first + 1));
  EXPECT_EQ(vector.directions.begin()->first, first);
  EXPECT_GT(length(vector.directions.begin()->second), 0);
  const auto run = testing::run_process(
      {TILLER_BINARY, "run", "-m", path, "--chat", "-p", "Hi", "-n", "2", "--temp", "0", "--control-vector", out});
  EXPECT_EQ(run.exit_code, 0) << run.err;
}

}  // namespace
}  // namespace tiller
