// The evaluation library (tiller/evaluate.h): the metric arithmetic by hand, the
// spec's JSON, evaluate() on a tiny model against figures recomputed here from the
// session's logits, and `tiller eval` on SmolLM2.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "tiller/error.h"
#include "tiller/evaluate.h"

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

}  // namespace
}  // namespace tiller
