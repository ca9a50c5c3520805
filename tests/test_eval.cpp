// The evaluation library (tiller/evaluate.h): the metric arithmetic by hand, the
// spec's JSON, evaluate() on a tiny model against figures recomputed here from the
// session's logits, and `tiller eval` on SmolLM2.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "support/run_process.h"
#include "support/fixtures.h"
#include "support/test_files.h"
#include "support/tiny_model.h"
#include "tiller/error.h"
#include "tiller/evaluate.h"
#include "tiller/generate.h"
#include "tiller/prompt.h"

namespace tiller {
namespace {

// Logits are floats: log(3) stored as one is off by up to 6e-8 relative, hence the
// tolerances below where a logit is not a small integer.
const double kLog3Float = 1e-7;

TEST(EvalMetrics, LogSoftmaxAtByHand) {
  const std::vector<float> even = {0, 0};
  EXPECT_DOUBLE_EQ(metrics::log_softmax_at(even, 0), -std::log(2.0));
  // 3 - log(e^1 + e^2 + e^3) = -log(1 + e^-1 + e^-2) = -0.40760596444438...
  const std::vector<float> three = {1, 2, 3};
  EXPECT_NEAR(metrics::log_softmax_at(three, 2), -0.4076059644443806, 1e-15);
  EXPECT_NEAR(metrics::log_softmax_at(three, 0), -2.4076059644443806, 1e-15);
  // Large logits would overflow exp without the maximum taken out.
  const std::vector<float> large = {1000, 1000, 1000, 1000};
  EXPECT_DOUBLE_EQ(metrics::log_softmax_at(large, 3), -std::log(4.0));
  const std::vector<float> very_negative = {-1000, -1000};
  EXPECT_DOUBLE_EQ(metrics::log_softmax_at(very_negative, 1), -std::log(2.0));
  EXPECT_THROW(metrics::log_softmax_at(three, 3), Error);
  EXPECT_THROW(metrics::log_softmax_at(three, -1), Error);
  EXPECT_THROW(metrics::log_softmax_at(std::vector<float>{}, 0), Error);
  EXPECT_THROW(metrics::log_softmax_at(std::vector<float>{NAN, 0}, 1), Error);
}

TEST(EvalMetrics, KlDivergenceByHand) {
  // P = (1/2, 1/2), Q = (1/4, 3/4): KL = 1/2 log 2 + 1/2 log(2/3) = 1/2 log(4/3).
  const std::vector<float> p = {0, 0};
  const std::vector<float> q = {0, static_cast<float>(std::log(3.0))};
  EXPECT_NEAR(metrics::kl_divergence(p, q), 0.5 * std::log(4.0 / 3.0), kLog3Float);
  // KL(Q || P) = 1/4 log(1/2) + 3/4 log(3/2).
  EXPECT_NEAR(metrics::kl_divergence(q, p), 0.25 * std::log(0.5) + 0.75 * std::log(1.5), kLog3Float);
  // Shifting every logit changes nothing, even by a thousand.
  const std::vector<float> p_shifted = {1000, 1000};
  const std::vector<float> q_shifted = {-500, static_cast<float>(-500 + std::log(3.0))};
  // log(3) stored as float near -500 loses more digits (float spacing 3e-5 there).
  EXPECT_NEAR(metrics::kl_divergence(p_shifted, q_shifted), 0.5 * std::log(4.0 / 3.0), 1e-4);
  const std::vector<float> same = {0.5f, -2, 7, 3};
  EXPECT_EQ(metrics::kl_divergence(same, same), 0.0);
  // A token P cannot produce adds nothing, whatever Q says of it.
  const std::vector<float> p_banned = {0, 0, -INFINITY};
  const std::vector<float> q_three = {0, 0, 5};
  const double q_norm = std::log(2 + std::exp(5.0));
  EXPECT_NEAR(metrics::kl_divergence(p_banned, q_three), std::log(0.5) + q_norm, 1e-12);
  EXPECT_THROW(metrics::kl_divergence(p, q_three), Error);
}

TEST(EvalMetrics, AbProbabilityByHand) {
  // P(A) : P(B) = 1 : 3, whatever the other tokens hold.
  const std::vector<float> logits = {5, 0, static_cast<float>(std::log(3.0)), -2};
  EXPECT_NEAR(metrics::ab_probability(logits, 1, 2, 'A'), 0.25, kLog3Float);
  EXPECT_NEAR(metrics::ab_probability(logits, 1, 2, 'B'), 0.75, kLog3Float);
  const std::vector<float> far_apart = {0, 1000};
  EXPECT_EQ(metrics::ab_probability(far_apart, 0, 1, 'B'), 1.0);
  EXPECT_EQ(metrics::ab_probability(far_apart, 0, 1, 'A'), 0.0);
  EXPECT_THROW(metrics::ab_probability(logits, 1, 4, 'A'), Error);
  EXPECT_THROW(metrics::ab_probability(logits, 1, 2, 'C'), Error);
}

TEST(EvalMetrics, CountTopicWordsAtWordStartsIgnoringCase) {
  const std::vector<std::string> wed = {"wed"};
  // Six words; "Wedding" and "wedded" start with "wed", "Bedwed" only contains it.
  auto count = metrics::count_topic_words("Wedding bells; the wedded pair.  Bedwed", wed);
  EXPECT_EQ(count.words, 6);
  EXPECT_EQ(count.hits, 2);
  // After punctuation or a hyphen a word starts too; one hit per place.
  const std::vector<std::string> two = {"wed", "wedding", "BRIDE"};
  count = metrics::count_topic_words("(Wedding) pre-wedding \"brides\"\n\tbridegroom", two);
  EXPECT_EQ(count.words, 4);
  EXPECT_EQ(count.hits, 4);
  count = metrics::count_topic_words("", two);
  EXPECT_EQ(count.words, 0);
  EXPECT_EQ(count.hits, 0);
  count = metrics::count_topic_words("   ", two);
  EXPECT_EQ(count.words, 0);
  // A UTF-8 letter before the word keeps it inside a word.
  count = metrics::count_topic_words("éwedding wed", wed);
  EXPECT_EQ(count.words, 2);
  EXPECT_EQ(count.hits, 1);
  // An empty topic word matches nothing.
  const std::vector<std::string> empty = {""};
  EXPECT_EQ(metrics::count_topic_words("anything at all", empty).hits, 0);
}

// ---- EvalSpec from JSON

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

TEST(EvalSpec, ReadsEveryBlockWithDefaults) {
  const EvalSpec spec = EvalSpec::from_json(R"({
    "steering": {"actadd": [{"positive": " weddings", "negative": "", "layer": 6, "coef": 4}]},
    "likelihood": {"on_topic": ["a wedding", "the bride"], "off_topic": ["stocks fell"]},
    "topic_words": {"prompts": ["I said"], "words": ["wed", "bride"]},
    "damage": {"texts": ["The weather is mild."]},
    "ab": {"questions": [{"question": "Q?", "a": "yes", "b": "no", "matching": "B"}], "chat": true},
    "fluency": true
  })");
  ASSERT_TRUE(spec.steering.has_value());
  ASSERT_EQ(spec.steering->actadd.size(), 1u);
  EXPECT_EQ(spec.steering->actadd[0].positive, " weddings");
  EXPECT_EQ(spec.steering->actadd[0].layer, 6);
  EXPECT_EQ(spec.on_topic, (std::vector<std::string>{"a wedding", "the bride"}));
  EXPECT_EQ(spec.off_topic, (std::vector<std::string>{"stocks fell"}));
  ASSERT_TRUE(spec.topic.has_value());
  EXPECT_EQ(spec.topic->prompts, (std::vector<std::string>{"I said"}));
  EXPECT_EQ(spec.topic->words, (std::vector<std::string>{"wed", "bride"}));
  // The defaults the header promises: ActAdd's sampling, 4 samples of 40 tokens.
  EXPECT_EQ(spec.topic->samples, 4);
  EXPECT_EQ(spec.topic->max_tokens, 40);
  EXPECT_EQ(spec.topic->sampling.temperature, 1.0f);
  EXPECT_EQ(spec.topic->sampling.top_p, 0.3f);
  EXPECT_EQ(spec.topic->sampling.top_k, 0);
  EXPECT_EQ(spec.topic->sampling.min_p, 0.0f);
  EXPECT_EQ(spec.topic->sampling.frequency_penalty, 1.0f);
  EXPECT_EQ(spec.topic->sampling.presence_penalty, 0.0f);
  EXPECT_EQ(spec.topic->sampling.penalty_last_n, -1);
  EXPECT_EQ(spec.topic->sampling.seed, 0u);
  EXPECT_EQ(spec.neutral, (std::vector<std::string>{"The weather is mild."}));
  EXPECT_EQ(spec.ab, (std::vector<AbQuestion>{{"Q?", "yes", "no", 'B'}}));
  EXPECT_TRUE(spec.ab_chat);
  EXPECT_EQ(spec.ab_chat_template, "");
  EXPECT_TRUE(spec.fluency);

  const EvalSpec sampling = EvalSpec::from_json(R"({"topic_words": {"prompts": ["p"], "words": ["w"],
    "samples": 2, "max_tokens": 7, "temperature": 0.5, "top_k": 3, "top_p": 0.9, "min_p": 0.1,
    "frequency_penalty": 0, "presence_penalty": 0.5, "seed": 11}})");
  EXPECT_EQ(sampling.topic->samples, 2);
  EXPECT_EQ(sampling.topic->max_tokens, 7);
  EXPECT_EQ(sampling.topic->sampling.temperature, 0.5f);
  EXPECT_EQ(sampling.topic->sampling.top_k, 3);
  EXPECT_EQ(sampling.topic->sampling.top_p, 0.9f);
  EXPECT_EQ(sampling.topic->sampling.min_p, 0.1f);
  EXPECT_EQ(sampling.topic->sampling.frequency_penalty, 0.0f);
  EXPECT_EQ(sampling.topic->sampling.presence_penalty, 0.5f);
  EXPECT_EQ(sampling.topic->sampling.seed, 11u);
  EXPECT_FALSE(sampling.steering.has_value());
  EXPECT_FALSE(sampling.fluency);
  EXPECT_TRUE(sampling.on_topic.empty());
}

TEST(EvalSpec, ReadsFilesRelativeToTheSpec) {
  const auto dir = testing::scratch_dir() / "spec-files";
  write_file(dir / "texts" / "on.txt", "first text\r\n\n   \nsecond text\n");
  write_file(dir / "prompts.txt", "a prompt");
  write_file(dir / "ab.jsonl",
             "{\"question\": \"Q1\", \"a\": \"x\", \"b\": \"y\", \"matching\": \"A\"}\n\n"
             "{\"question\": \"Q2\", \"a\": \"u\", \"b\": \"v\", \"matching\": \"B\"}\n");
  write_file(dir / "spec.json", R"({
    "steering": {"control_vectors": [{"path": "vectors/happy.gguf", "scale": 2}],
                 "ablate": [{"path": "/abs/sad.gguf"}]},
    "likelihood": {"on_topic": {"file": "texts/on.txt"}},
    "topic_words": {"prompts": {"file": "prompts.txt"}, "words": ["w"]},
    "ab": {"file": "ab.jsonl", "chat": true, "chat_template": "template.jinja"}
  })");
  write_file(dir / "template.jinja", "{{ messages }}");
  const EvalSpec spec = EvalSpec::load(dir / "spec.json");
  EXPECT_EQ(spec.on_topic, (std::vector<std::string>{"first text", "second text"}));
  EXPECT_EQ(spec.topic->prompts, (std::vector<std::string>{"a prompt"}));
  EXPECT_EQ(spec.ab, (std::vector<AbQuestion>{{"Q1", "x", "y", 'A'}, {"Q2", "u", "v", 'B'}}));
  EXPECT_TRUE(spec.ab_chat);
  EXPECT_EQ(spec.ab_chat_template, (dir / "template.jinja").string());
  EXPECT_EQ(EvalSpec::from_json(R"({"ab": {"questions": [{"question": "q", "a": "x", "b": "y", "matching": "A"}],
    "chat": true, "chat_template": "chatml"}})", dir).ab_chat_template, "chatml");
  EXPECT_EQ(spec.steering->control_vectors.at(0).vector.path, (dir / "vectors/happy.gguf").string());
  EXPECT_EQ(spec.steering->ablate.at(0).vector.path, "/abs/sad.gguf");
  // Without a folder (from_json alone), relative paths stay as they are.
  const EvalSpec here = EvalSpec::from_json(R"({"damage": {"texts": ["t"]},
    "steering": {"control_vectors": [{"path": "v.gguf"}]}})");
  EXPECT_EQ(here.steering->control_vectors.at(0).vector.path, "v.gguf");
}

TEST(EvalSpec, RefusesBadInputNamingTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"damage": {"texts": ["t"]}, "damgae": 1})", "'damgae'"},
      {R"({"topic_words": {"prompts": ["p"], "words": ["w"], "temprature": 1}})", "topic_words.temprature"},
      {R"({"likelihood": {"on_topic": ["t"], "of_topic": ["t"]}})", "likelihood.of_topic"},
      {R"({"ab": {"questions": [{"question": "q", "a": "x", "b": "y", "matching": "A", "why": 1}]}})",
       "ab.questions[0].why"},
      {R"({"ab": {"questions": [{"question": "q", "a": "x", "b": "y", "matching": "C"}]}})", "ab.questions[0].matching"},
      {R"({"ab": {"questions": [{"question": "q", "a": "x", "matching": "A"}]}})", "'b'"},
      {R"({"ab": {"questions": [], "file": "x.jsonl"}})", "'questions' or 'file'"},
      {R"({"ab": {"questions": []}})", "no questions"},
      {R"({"ab": {"questions": [{"question": "q", "a": "x", "b": "y", "matching": "A"}], "chat_template": "chatml"}})",
       "ab.chat_template"},
      {R"({"damage": {"texts": []}})", "damage.texts"},
      {R"({"damage": {"texts": "one text"}})", "damage.texts"},
      {R"({"damage": {"texts": [1]}})", "damage.texts[0]"},
      {R"({"damage": {"texts": {"fiel": "x"}}})", "damage.texts.fiel"},
      {R"({"damage": {"texts": {"file": "/nonexistent/texts.txt"}}})", "/nonexistent/texts.txt"},
      {R"({"topic_words": {"prompts": ["p"], "words": ["w"], "samples": 0}})", "topic_words.samples"},
      {R"({"topic_words": {"prompts": ["p"], "words": ["w"], "top_p": 0}})", "topic_words.top_p"},
      {R"({"topic_words": {"prompts": ["p"], "words": ["w"], "seed": -1}})", "topic_words.seed"},
      {R"({"topic_words": {"prompts": ["p"], "words": ["w"], "temperature": "hot"}})", "topic_words.temperature"},
      {R"({"topic_words": {"prompts": ["p"]}})", "'words'"},
      {R"({"topic_words": {"prompts": ["p"], "words": [""]}})", "topic_words.words[0]"},
      {R"({"damage": {"texts": ["t"]}, "fluency": true})", "topic_words"},
      {R"({"damage": {"texts": ["t"]}, "fluency": 1})", "fluency"},
      {R"({"damage": {"texts": ["t"]}, "steering": {"actadd": [{"positive": "a"}]}})", "actadd"},
      {R"({"damage": {"texts": ["t"]}, "steering": {"control_vector": []}})", "control_vector"},
      {R"({"steering": {}})", "measures nothing"},
      {R"({})", "measures nothing"},
      {R"([1, 2])", "object"},
      {R"({"damage": )", "does not parse"},
  };
  for (const auto& [spec_text, expected] : cases) {
    const std::string message = testing::error_of([&] { EvalSpec::from_json(spec_text); });
    EXPECT_NE(message.find(expected), std::string::npos) << spec_text << "\n  said: " << message;
  }
  const auto missing = testing::scratch_dir() / "no-such-spec.json";
  EXPECT_NE(testing::error_of([&] { EvalSpec::load(missing); }).find("no-such-spec.json"), std::string::npos);
  const auto dir = testing::scratch_dir() / "bad-spec";
  write_file(dir / "spec.json", R"({"ab": {"file": "ab.jsonl"}})");
  write_file(dir / "ab.jsonl", "{\"question\": \"q\", \"a\": \"x\", \"b\": \"y\", \"matching\": \"A\"}\nnot spec_text\n");
  EXPECT_NE(testing::error_of([&] { EvalSpec::load(dir / "spec.json"); }).find("line 2"), std::string::npos);
}

// ---- evaluate() on a tiny model, against figures computed here from Session::decode

// The figures below are computed on row kernels (testing::row_kernel_engine), where
// a packed pass gives each text the logits it gets alone bit for bit: they agree
// to the last bits of the double sums' order.
std::shared_ptr<const Model> eval_model() { return testing::load_three_block_model("eval-tiny.gguf"); }

// An addition at every position of block 1 and an ActAdd-like tensor of 8 rows at
// the front of block 2: both kinds of selector that packing must keep per text.
// The tiny model's stream is ~1e4 in size (test_steering.cpp), hence the scale.
std::shared_ptr<const Steering> tiny_steering(int64_t width) {
  auto steering = std::make_shared<Steering>(width);
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 2000.0f);
  auto random = [&](int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = normal(rng);
    return v;
  };
  Intervention all;
  all.layer = 1;
  all.point = HookPoint::ResidPre;
  all.vectors = random(width);
  all.coefficient = 0.5f;
  steering->add(all);
  Intervention front;
  front.layer = 2;
  front.point = HookPoint::ResidPre;
  front.where = PositionSelector::front();
  front.vectors = random(8 * width);
  front.n_rows = 8;
  front.align = FrontAlign::Context;
  steering->add(front);
  return steering;
}

constexpr int kEvalContext = 160;

// Every row's logits of `tokens` decoded alone in a fresh session, steered as a plain prompt or not.
std::vector<float> logits_alone(const std::shared_ptr<const Model>& model, const std::shared_ptr<Engine>& engine,
                                const std::vector<TokenId>& tokens, const std::shared_ptr<const Steering>& steering) {
  Session session(model, engine, {.n_ctx = kEvalContext});
  std::optional<SteeringBinding> binding;
  if (steering) binding.emplace(steering, session, PromptLayout{0, static_cast<int>(tokens.size()), 0});
  const auto logits = session.decode(tokens, true);
  return {logits.begin(), logits.end()};
}

std::span<const float> row(const std::vector<float>& logits, size_t r, size_t n_vocab) {
  return std::span(logits).subspan(r * n_vocab, n_vocab);
}

std::vector<TokenId> plain_tokens(const Model& model, const std::string& text) {
  return model.tokenizer().tokenize(text, {.add_special = true, .parse_special = false});
}

// The mean log-probability of tokens[from..] (from >= 1), token-weighted over texts.
struct Mean {
  double sum = 0;
  int64_t count = 0;
  double value() const { return count > 0 ? sum / static_cast<double>(count) : 0.0; }
};
void add_logprobs(Mean& mean, const std::vector<float>& logits, const std::vector<TokenId>& tokens, size_t from,
                  size_t n_vocab) {
  for (size_t t = from; t < tokens.size(); ++t) {
    mean.sum += metrics::log_softmax_at(row(logits, t - 1, n_vocab), tokens[t]);
    mean.count += 1;
  }
}

void expect_close(double got, double want, const char* what) {
  EXPECT_LE(std::fabs(got - want), 1e-9 * std::max(1.0, std::fabs(want))) << what << ": " << got << " vs " << want;
}

EvalSpec tiny_spec() {
  EvalSpec spec;
  spec.on_topic = {"the bride and groom", "a wedding in June, with cake", "vows"};
  spec.off_topic = {"stocks fell on Tuesday", "rain"};
  spec.neutral = {"The weather is mild today.", "A cat sat on the mat by the door.", "okay"};
  spec.ab = {{"Do you like cake?", "yes", "no", 'A'}, {"Is it raining?", "it is", "it is not", 'B'},
             {"Pick one", "left", "right", 'B'}};
  EvalSpec::Topic topic;
  topic.prompts = {"Once upon", "The day"};
  topic.words = {"a", "t"};
  topic.samples = 2;
  topic.max_tokens = 6;
  topic.sampling.seed = 5;
  // The tiny model's logits are hundreds apart, so a sample is its argmax at
  // temperature 1; at 100 the draws depend on the seed and on the steering.
  topic.sampling.temperature = 100.0f;
  topic.sampling.top_p = 1.0f;
  spec.topic = topic;
  spec.fluency = true;
  return spec;
}

TEST(Evaluate, EachMetricEqualsItsComputationByHand) {
  const auto model = eval_model();
  const auto engine = testing::row_kernel_engine();
  const auto steering = tiny_steering(model->config().n_embd);
  const EvalSpec spec = tiny_spec();
  const auto n_vocab = static_cast<size_t>(model->config().n_vocab);
  // Small packs: several groups, texts of several lengths in one pass.
  EvalOptions options;
  options.n_ctx = kEvalContext;
  options.pack_tokens = 40;
  size_t last_done = 0, last_total = 0, calls = 0;
  const EvalResult result = evaluate(spec, model, engine, steering, [&](size_t done, size_t total) {
    EXPECT_GE(done, last_done);
    EXPECT_LE(done, total);
    last_done = done;
    last_total = total;
    ++calls;
  }, options);
  EXPECT_EQ(last_done, last_total);
  EXPECT_GT(calls, 4u);

  // Likelihood: every token after the first, unsteered and steered alone.
  for (const auto& [texts, figure] : {std::pair{&spec.on_topic, &result.on_topic}, std::pair{&spec.off_topic, &result.off_topic}}) {
    ASSERT_TRUE(figure->has_value());
    Mean unsteered, steered;
    for (const auto& text : *texts) {
      const auto tokens = plain_tokens(*model, text);
      add_logprobs(unsteered, logits_alone(model, engine, tokens, nullptr), tokens, 1, n_vocab);
      add_logprobs(steered, logits_alone(model, engine, tokens, steering), tokens, 1, n_vocab);
    }
    const auto& l = **figure;
    EXPECT_EQ(l.tokens, unsteered.count);
    expect_close(l.logprob_unsteered, unsteered.value(), "likelihood unsteered");
    expect_close(l.logprob_steered, steered.value(), "likelihood steered");
    expect_close(l.delta, steered.value() - unsteered.value(), "likelihood delta");
    expect_close(l.perplexity_ratio, std::exp(unsteered.value() - steered.value()), "perplexity ratio");
    EXPECT_GT(std::fabs(l.delta), 1e-3) << "the steering had no effect";
  }

  // Damage: KL(unsteered || steered) at every position of every neutral text.
  Mean kl;
  for (const auto& text : spec.neutral) {
    const auto tokens = plain_tokens(*model, text);
    const auto p = logits_alone(model, engine, tokens, nullptr), q = logits_alone(model, engine, tokens, steering);
    for (size_t t = 0; t < tokens.size(); ++t) {
      kl.sum += metrics::kl_divergence(row(p, t, n_vocab), row(q, t, n_vocab));
      kl.count += 1;
    }
  }
  ASSERT_TRUE(result.damage_kl.has_value());
  expect_close(*result.damage_kl, kl.value(), "damage");
  EXPECT_GT(*result.damage_kl, 1e-3);

  // A/B: the last position of the plain prompt, the letters' single tokens.
  // The tiny vocabulary has one token per byte after three specials; its tokenizer
  // spells "A" alone as "▁A", so the letter is the byte's token.
  const auto letter = [&](const char* s) {
    const TokenId id = 3 + static_cast<unsigned char>(s[0]);
    EXPECT_EQ(model->tokenizer().token_to_piece(id), s);
    return id;
  };
  Mean ab_unsteered, ab_steered;
  for (const AbQuestion& q : spec.ab) {
    const auto tokens =
        plain_tokens(*model, q.question + "\n\nChoices:\n(A) " + q.a + "\n(B) " + q.b + "\nAnswer: (");
    const auto p = logits_alone(model, engine, tokens, nullptr), s = logits_alone(model, engine, tokens, steering);
    ab_unsteered.sum += metrics::ab_probability(row(p, tokens.size() - 1, n_vocab), letter("A"), letter("B"), q.matching);
    ab_steered.sum += metrics::ab_probability(row(s, tokens.size() - 1, n_vocab), letter("A"), letter("B"), q.matching);
    ab_unsteered.count += 1;
    ab_steered.count += 1;
  }
  ASSERT_TRUE(result.ab.has_value());
  expect_close(result.ab->p_unsteered, ab_unsteered.value(), "ab unsteered");
  expect_close(result.ab->p_steered, ab_steered.value(), "ab steered");

  // Topic words and fluency: the same generations, seeds seed + i, redone here.
  ASSERT_TRUE(result.topic.has_value());
  ASSERT_TRUE(result.fluency.has_value());
  std::vector<std::string> texts_unsteered, texts_steered;
  Mean fluent_unsteered, fluent_steered;
  metrics::WordCount count_unsteered, count_steered;
  for (const auto& text : spec.topic->prompts) {
    const auto prompt = plain_tokens(*model, text);
    for (int i = 0; i < spec.topic->samples; ++i) {
      GenerationOptions g;
      g.n_predict = spec.topic->max_tokens;
      g.sampling = spec.topic->sampling;
      g.sampling.seed = spec.topic->sampling.seed + static_cast<uint64_t>(i);
      Session session(model, engine, {.n_ctx = kEvalContext});
      SteeringBinding binding(steering, PromptLayout{0, static_cast<int>(prompt.size()), 0});
      const auto both = generate_compared(session, binding, prompt, g);
      for (const auto& [r, texts, mean, count] :
           {std::tuple{&both.unsteered, &texts_unsteered, &fluent_unsteered, &count_unsteered},
            std::tuple{&both.steered, &texts_steered, &fluent_steered, &count_steered}}) {
        texts->push_back(r->text);
        auto whole = prompt;
        whole.insert(whole.end(), r->tokens.begin(), r->tokens.end());
        add_logprobs(*mean, logits_alone(model, engine, whole, nullptr), whole, prompt.size(), n_vocab);
        const auto c = metrics::count_topic_words(r->text, spec.topic->words);
        count->words += c.words;
        count->hits += c.hits;
      }
    }
  }
  EXPECT_EQ(result.topic->samples_unsteered, texts_unsteered);
  EXPECT_EQ(result.topic->samples_steered, texts_steered);
  EXPECT_NE(texts_unsteered, texts_steered) << "the steering changed no sample";
  auto per100 = [](const metrics::WordCount& c) { return c.words > 0 ? 100.0 * double(c.hits) / double(c.words) : 0.0; };
  expect_close(result.topic->per100_unsteered, per100(count_unsteered), "topic unsteered");
  expect_close(result.topic->per100_steered, per100(count_steered), "topic steered");
  EXPECT_EQ(result.fluency->tokens_unsteered, fluent_unsteered.count);
  EXPECT_EQ(result.fluency->tokens_steered, fluent_steered.count);
  EXPECT_GT(fluent_steered.count, 0);
  expect_close(result.fluency->logprob_unsteered_samples, fluent_unsteered.value(), "fluency unsteered");
  expect_close(result.fluency->logprob_steered_samples, fluent_steered.value(), "fluency steered");

  // The two forms carry the same figures.
  const auto parsed = nlohmann::json::parse(result.to_json());
  EXPECT_EQ(parsed["on_topic"]["delta"].get<double>(), result.on_topic->delta);
  EXPECT_EQ(parsed["damage"]["kl"].get<double>(), *result.damage_kl);
  EXPECT_EQ(parsed["topic_words"]["samples_steered"].size(), texts_steered.size());
  const std::string csv = result.to_csv();
  EXPECT_EQ(csv.rfind("metric,field,value\n", 0), 0u);
  EXPECT_NE(csv.find(fmt::format("damage,kl,{}\n", *result.damage_kl)), std::string::npos) << csv;
  EXPECT_NE(csv.find("fluency,tokens_steered,"), std::string::npos);
  EXPECT_EQ(csv.find("samples_steered"), std::string::npos) << "the samples are for the JSON only";
}

// An empty steering runs every steered pass with no hook: the same arithmetic, so
// exactly the same figures. No steering at all skips them and gives the same.
TEST(Evaluate, AnEmptySteeringChangesNothingExactly) {
  const auto model = eval_model();
  const auto engine = testing::row_kernel_engine();
  const EvalSpec spec = tiny_spec();
  EvalOptions options;
  options.pack_tokens = 40;
  const EvalResult empty = evaluate(spec, model, engine, std::make_shared<Steering>(model->config().n_embd), {}, options);
  const EvalResult none = evaluate(spec, model, engine, nullptr, {}, options);
  for (const EvalResult* r : {&empty, &none}) {
    EXPECT_EQ(r->on_topic->delta, 0.0);
    EXPECT_EQ(r->on_topic->perplexity_ratio, 1.0);
    EXPECT_EQ(r->off_topic->delta, 0.0);
    EXPECT_EQ(*r->damage_kl, 0.0);
    EXPECT_EQ(r->ab->p_steered, r->ab->p_unsteered);
    EXPECT_EQ(r->topic->samples_steered, r->topic->samples_unsteered);
    EXPECT_EQ(r->topic->per100_steered, r->topic->per100_unsteered);
    EXPECT_EQ(r->fluency->logprob_steered_samples, r->fluency->logprob_unsteered_samples);
  }
  EXPECT_EQ(empty.to_json(), none.to_json());
}

// With "chat", the question is a user turn and "(" starts the answer; the steering's
// layout is the chat prompt's, so a user-aligned tensor starts at the message.
TEST(Evaluate, AbInAChatTemplate) {
  const auto model = eval_model();
  const auto engine = testing::row_kernel_engine();
  auto steering = std::make_shared<Steering>(model->config().n_embd);
  {
    std::mt19937 rng(3);
    std::normal_distribution<float> normal(0.0f, 40000.0f);
    Intervention front;
    front.layer = 0;
    front.point = HookPoint::ResidPre;
    front.where = PositionSelector::front();
    front.n_rows = 4;
    front.align = FrontAlign::User;
    for (int64_t i = 0; i < 4 * model->config().n_embd; ++i) front.vectors.push_back(normal(rng));
    steering->add(front);
  }
  EvalSpec spec;
  spec.ab = {{"Do you like cake?", "yes", "no", 'A'}, {"Is it raining?", "it is", "it is not", 'B'}};
  spec.ab_chat = true;
  spec.ab_chat_template = "chatml";  // the tiny model has no template of its own
  EvalOptions options;
  options.n_ctx = kEvalContext;
  const EvalResult result = evaluate(spec, model, engine, steering, {}, options);
  const PromptFormat format = PromptFormat::chat_with(*model, "chatml");
  double unsteered = 0, steered = 0;
  for (const AbQuestion& q : spec.ab) {
    const Prompt prompt =
        build_prompt(*model, format, {q.question + "\n\nChoices:\n(A) " + q.a + "\n(B) " + q.b, "("});
    ASSERT_GT(prompt.anchor, 0) << "the user's message comes after the template's start";
    for (const bool steer : {false, true}) {
      Session session(model, engine, {.n_ctx = kEvalContext});
      std::optional<SteeringBinding> binding;
      if (steer) binding.emplace(steering, session, prompt.layout());
      const auto last = session.decode(prompt.tokens, false);
      (steer ? steered : unsteered) += metrics::ab_probability(last, 3 + 'A', 3 + 'B', q.matching);
    }
  }
  expect_close(result.ab->p_unsteered, unsteered / 2, "chat ab unsteered");
  expect_close(result.ab->p_steered, steered / 2, "chat ab steered");
  // The tiny model's answers are near certain: a tensor this large at block 0 is
  // what it takes to move them, and so to see the layout matter.
  EXPECT_NE(result.ab->p_steered, result.ab->p_unsteered) << "the steering moved no answer";
}

TEST(Evaluate, RefusesTextsShorterThanAnActAddTensor) {
  const auto model = eval_model();
  const auto steering = tiny_steering(model->config().n_embd);  // a front tensor of 8 rows
  EvalSpec spec;
  spec.neutral = {"long enough", "ok"};
  const size_t short_length = plain_tokens(*model, "ok").size();
  ASSERT_LT(short_length, 8u);
  const std::string message = testing::error_of([&] { evaluate(spec, model, testing::row_kernel_engine(), steering); });
  EXPECT_NE(message.find("damage text 2"), std::string::npos) << message;
  // Likelihood needs a token after the first.
  EvalSpec one;
  one.on_topic = {std::string(1, 'x')};
  if (plain_tokens(*model, "x").size() < 2) {
    EXPECT_NE(testing::error_of([&] { evaluate(one, model, testing::row_kernel_engine(), nullptr); }).find("likelihood.on_topic text 1"),
              std::string::npos);
  }
  // A context too small for the longest text.
  EvalOptions small;
  small.n_ctx = 4;
  EXPECT_NE(testing::error_of([&] { evaluate(spec, model, testing::row_kernel_engine(), nullptr, {}, small); }).find("raise -c"),
            std::string::npos);
}

// ---- tiller eval

std::vector<std::string> eval_command(std::vector<std::string> args) {
  args.insert(args.begin(), {TILLER_BINARY, "eval"});
  return args;
}

TEST(EvalCommand, BadInputGetsOneLine) {
  const std::string model = (testing::scratch_dir() / "eval-cli.gguf").string();
  testing::make_tiny_model({}).write(model);
  const auto dir = testing::scratch_dir() / "eval-cli";
  write_file(dir / "bad.json", "{\"damage\": ");
  write_file(dir / "unknown.json", R"({"damage": {"texts": ["t"]}, "likelyhood": {}})");
  write_file(dir / "good.json", R"({"damage": {"texts": ["some neutral text"]}})");
  for (const auto& args : std::vector<std::vector<std::string>>{
           {(dir / "missing.json").string()},
           {(dir / "bad.json").string()},
           {(dir / "unknown.json").string()},
           {(dir / "good.json").string(), "--steering", (dir / "missing-steering.json").string()},
           {(dir / "good.json").string(), "--steering", (dir / "bad.json").string()},
           {(dir / "good.json").string(), "--actadd", "a", "b"},  // no layer
       }) {
    auto argv = eval_command(args);
    argv.insert(argv.end(), {"-m", model});
    const auto result = testing::run_process(argv);
    EXPECT_NE(result.exit_code, 0) << args[0];
    EXPECT_EQ(result.signal, 0);
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
  }
  const auto fine = testing::run_process(eval_command({(dir / "good.json").string(), "-m", model, "--json",
                                                       "--control-vector-scaled", model + ":1"}));
  EXPECT_NE(fine.exit_code, 0) << "a model is no control vector";
  const auto plain = testing::run_process(eval_command({(dir / "good.json").string(), "-m", model, "--json"}));
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(nlohmann::json::parse(plain.out)["damage"]["kl"].get<double>(), 0.0);
}

// The ActAdd paper's example on SmolLM2: " weddings" - "" at block 6, coefficient 4,
// makes text about weddings likelier.
TEST(EvalCommand, WeddingsActAddRaisesTheLikelihoodOfWeddingText) {
  TILLER_REQUIRE_MODEL(model, "smollm2-135m-instruct");
  const auto dir = testing::scratch_dir() / "eval-weddings";
  write_file(dir / "on.txt",
             "The bride and groom exchanged vows at the wedding ceremony.\n"
             "Wedding guests threw rice as the couple left the church.\n");
  write_file(dir / "spec.json", R"({"likelihood": {"on_topic": {"file": "on.txt"}},
    "damage": {"texts": ["The weather is mild today, with light winds."]}})");
  const std::string csv = (dir / "out.csv").string();
  const auto result = testing::run_process(eval_command({(dir / "spec.json").string(), "-m", model, "-t", "2",
                                                         "--json", "--csv", csv, "--actadd", " weddings", "",
                                                         "--actadd-layer", "6", "--actadd-coef", "4"}));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto parsed = nlohmann::json::parse(result.out);
  // Measured: +0.22 nats per token on these two texts (the steered side is higher on
  // both); a tenth of that is far above any rounding between CPUs.
  EXPECT_GT(parsed["on_topic"]["delta"].get<double>(), 0.02) << result.out;
  EXPECT_EQ(parsed["on_topic"]["tokens"].get<int64_t>(), 21);
  EXPECT_GT(parsed["damage"]["kl"].get<double>(), 0.0);
  std::ifstream in(csv);
  const std::string rows((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(rows.find("on_topic,delta,"), std::string::npos) << rows;
}

}  // namespace
}  // namespace tiller
