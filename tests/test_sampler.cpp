// The sampler chain on small vocabularies whose answers are worked out by hand:
// which tokens each filter lets through, penalized logits, and the draw's
// frequencies against the softmax they should follow.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/fail.h"
#include "tiller/sampler.h"

namespace tiller {
namespace {

constexpr float kBanned = -std::numeric_limits<float>::infinity();

// Every filter off: only the temperature and the draw act.
SamplerParams plain(float temperature, uint64_t seed = 0) {
  SamplerParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = seed;
  return p;
}

int32_t size_of(const std::vector<float>& logits) { return static_cast<int32_t>(logits.size()); }

// The tokens drawn from `logits` over many seeds and many draws per seed.
std::set<TokenId> tokens_drawn(const SamplerParams& params, const std::vector<float>& logits, int seeds = 40,
                               int draws = 100) {
  std::set<TokenId> seen;
  for (int s = 0; s < seeds; ++s) {
    SamplerParams p = params;
    p.seed = static_cast<uint64_t>(s) * 7919 + 1;
    Sampler sampler(p, size_of(logits));
    for (int i = 0; i < draws; ++i) seen.insert(sampler.sample(logits));
  }
  return seen;
}

// Known probabilities on shuffled ids, and a banned token:
//   id 3: 0.50, id 0: 0.25, id 4: 0.15, id 1: 0.07, id 2: 0.03, id 5: banned.
std::vector<float> five_token_logits() {
  return {std::log(0.25f), std::log(0.07f), std::log(0.03f), std::log(0.50f), std::log(0.15f), kBanned};
}

// A high temperature makes the draw nearly uniform over whatever the filters
// kept, so every kept token shows up; it runs after them, so it cannot widen the set.
constexpr float kFlat = 50.0f;

std::vector<float> random_logits(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<float> logits(static_cast<size_t>(n));
  for (float& l : logits) l = static_cast<float>(rng() % 20000) / 1000.0f - 10.0f;
  return logits;
}

TokenId argmax(const std::vector<float>& logits) {
  size_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return static_cast<TokenId>(best);
}

TEST(SamplerGreedy, ReturnsTheArgmaxAndTheLowestIdAmongEquals) {
  for (uint32_t seed = 0; seed < 20; ++seed) {
    const auto logits = random_logits(1000, seed);
    Sampler zero(plain(0.0f), 1000), negative(plain(-1.0f), 1000);
    EXPECT_EQ(zero.sample(logits), argmax(logits));
    EXPECT_EQ(negative.sample(logits), argmax(logits));
  }
  // The filters never remove the best token, so their settings do not matter.
  SamplerParams p;
  p.temperature = 0.0f;
  Sampler sampler(p, 5);
  EXPECT_EQ(sampler.sample(std::vector<float>{1, 5, 2, 5, kBanned}), 1);
  EXPECT_EQ(sampler.sample(std::vector<float>{kBanned, kBanned, -3, kBanned, -4}), 2);
}

// The greedy choice between token 0, penalized by `history`, and token 1 at
// `rival` (never in the history).
TokenId greedy_pick(SamplerParams p, float logit0, float rival, const std::vector<TokenId>& history) {
  p.temperature = 0.0f;
  Sampler sampler(p, 3);
  sampler.accept(history);
  return sampler.sample(std::vector<float>{logit0, rival, -100.0f});
}

// Token 0's penalized logit is `expected`: it beats a rival just below and loses
// to one just above.
void expect_penalized(const SamplerParams& p, float logit0, const std::vector<TokenId>& history, float expected) {
  EXPECT_EQ(greedy_pick(p, logit0, expected - 0.01f, history), 0) << "penalized logit below " << expected;
  EXPECT_EQ(greedy_pick(p, logit0, expected + 0.01f, history), 1) << "penalized logit above " << expected;
}

TEST(SamplerPenalties, RepeatPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  SamplerParams p = plain(0.0f);
  p.repeat_penalty = 1.5f;
  // 2.0 beats 1.5 until token 0 is repeated: 2.0 / 1.5 = 1.33 loses.
  Sampler sampler(p, 3);
  const std::vector<float> logits = {2.0f, 1.5f, -0.5f};
  EXPECT_EQ(sampler.sample(logits), 0);
  sampler.accept(0);
  EXPECT_EQ(sampler.sample(logits), 1);
  // Negative: -1.0 * 1.5 = -1.5 loses to -1.2.
  Sampler negative(p, 3);
  negative.accept(0);
  EXPECT_EQ(negative.sample(std::vector<float>{-1.0f, -1.2f, -5.0f}), 1);
  // The repeat penalty ignores how often a token occurs.
  expect_penalized(p, 3.0f, {0}, 2.0f);
  expect_penalized(p, 3.0f, {0, 0, 0}, 2.0f);
  expect_penalized(p, -1.0f, {0, 0}, -1.5f);
}

TEST(SamplerPenalties, FrequencyAndPresenceSubtractPerOccurrenceAndOnce) {
  SamplerParams p = plain(0.0f);
  p.frequency_penalty = 0.5f;
  p.presence_penalty = 0.25f;
  expect_penalized(p, 3.0f, {0}, 2.25f);        // 3 - 0.5 - 0.25
  expect_penalized(p, 3.0f, {0, 0}, 1.75f);     // 3 - 2 * 0.5 - 0.25
  expect_penalized(p, 3.0f, {0, 2, 0, 0}, 1.25f);  // other tokens do not count
  expect_penalized(p, -1.0f, {0, 0}, -2.25f);
  // After the repeat penalty: 3 / 1.5 - 1.25 and -1 * 1.5 - 1.25.
  p.repeat_penalty = 1.5f;
  expect_penalized(p, 3.0f, {0, 0}, 0.75f);
  expect_penalized(p, -1.0f, {0, 0}, -2.75f);
  // A negative frequency penalty rewards repeats.
  SamplerParams bonus = plain(0.0f);
  bonus.frequency_penalty = -0.5f;
  expect_penalized(bonus, 3.0f, {0, 0}, 4.0f);
  // Unpenalized, token 0 keeps its logit.
  expect_penalized(p, 3.0f, {2}, 3.0f);
}

TEST(SamplerPenalties, LookOnlyAtTheLastNTokens) {
  SamplerParams p = plain(0.0f);
  p.frequency_penalty = 0.5f;
  p.penalty_last_n = 3;
  expect_penalized(p, 3.0f, {0, 2, 2, 2}, 3.0f);   // token 0 has left the window
  expect_penalized(p, 3.0f, {0, 0, 2, 0}, 2.0f);   // window {0, 2, 0}: count 2
  expect_penalized(p, 3.0f, {0, 0, 0, 0, 0, 2}, 2.0f);
  p.penalty_last_n = 0;  // off
  expect_penalized(p, 3.0f, {0, 0}, 3.0f);
  p.penalty_last_n = -1;  // the whole history
  std::vector<TokenId> long_history(500, 2);
  long_history.insert(long_history.begin(), {0, 0, 0});
  expect_penalized(p, 3.0f, long_history, 1.5f);
}

TEST(SamplerPenalties, WindowMatchesCountingTheLastNByHand) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 300; ++trial) {
    SamplerParams p = plain(0.0f);
    p.frequency_penalty = 0.5f;
    p.presence_penalty = 0.25f;
    p.penalty_last_n = static_cast<int32_t>(rng() % 9) - 1;  // -1 to 7
    std::vector<TokenId> history(rng() % 13);
    for (TokenId& t : history) t = (rng() % 2 == 0) ? 0 : 2;
    const size_t window = p.penalty_last_n < 0 ? history.size()
                                               : std::min(history.size(), static_cast<size_t>(p.penalty_last_n));
    const auto count = std::count(history.end() - static_cast<std::ptrdiff_t>(window), history.end(), 0);
    const float expected = 3.0f - 0.5f * static_cast<float>(count) - (count > 0 ? 0.25f : 0.0f);
    SCOPED_TRACE(::testing::Message() << "last_n " << p.penalty_last_n << ", " << history.size() << " tokens");
    expect_penalized(p, 3.0f, history, expected);
  }
}

TEST(SamplerPenalties, GreedyMatchesAReferenceWithBannedTokens) {
  // Banned tokens move the others' places in the candidate list; penalties must
  // still land on the right ids.
  std::mt19937 rng(5);
  for (int trial = 0; trial < 200; ++trial) {
    SamplerParams p = plain(0.0f);
    p.repeat_penalty = 1.0f + static_cast<float>(rng() % 20) / 10.0f;
    p.frequency_penalty = static_cast<float>(rng() % 10) / 10.0f - 0.3f;
    p.presence_penalty = static_cast<float>(rng() % 10) / 10.0f;
    p.penalty_last_n = -1;
    const int n = 50;
    auto logits = random_logits(n, static_cast<uint32_t>(trial));
    for (float& l : logits) {
      if (rng() % 3 == 0) l = kBanned;
    }
    std::vector<TokenId> history(rng() % 40);
    for (TokenId& t : history) t = static_cast<TokenId>(rng() % 12);  // a few tokens, many repeats
    Sampler sampler(p, n);
    sampler.accept(history);

    std::vector<float> expected = logits;
    for (TokenId t = 0; t < n; ++t) {
      const auto c = std::count(history.begin(), history.end(), t);
      float& l = expected[static_cast<size_t>(t)];
      if (c == 0 || l == kBanned) continue;
      l = l > 0 ? l / p.repeat_penalty : l * p.repeat_penalty;
      l -= static_cast<float>(c) * p.frequency_penalty + p.presence_penalty;
    }
    if (argmax(expected) == 0 && expected[0] == kBanned) continue;  // everything banned
    ASSERT_EQ(sampler.sample(logits), argmax(expected)) << "trial " << trial;
  }
}

TEST(SamplerPenalties, ResetForgetsTheHistory) {
  SamplerParams p = plain(0.0f);
  p.repeat_penalty = 2.0f;
  p.penalty_last_n = 2;
  Sampler sampler(p, 3);
  const std::vector<float> logits = {2.0f, 1.5f, 0.0f};
  sampler.accept(std::vector<TokenId>{1, 0, 0, 2, 0});
  EXPECT_EQ(sampler.sample(logits), 1);
  sampler.reset();
  EXPECT_EQ(sampler.sample(logits), 0);
  sampler.accept(0);
  EXPECT_EQ(sampler.sample(logits), 1);
}

TEST(SamplerTopK, OneIsGreedyAtAnyTemperature) {
  for (const float temperature : {0.01f, 0.7f, 1.0f, 5.0f, 1000.0f}) {
    for (uint32_t seed = 0; seed < 10; ++seed) {
      SamplerParams p = plain(temperature, seed);
      p.top_k = 1;
      p.repeat_penalty = 1.3f;
      SamplerParams greedy = p;
      greedy.temperature = 0.0f;
      Sampler sampler(p, 3000), reference(greedy, 3000);
      for (int step = 0; step < 20; ++step) {
        const auto logits = random_logits(3000, seed * 100 + static_cast<uint32_t>(step));
        const TokenId token = sampler.sample(logits);
        ASSERT_EQ(token, reference.sample(logits)) << "temperature " << temperature;
        // The penalty must be applied first: the winner changes from step to step.
        sampler.accept(token);
        reference.accept(token);
      }
    }
  }
}

TEST(SamplerTopK, KeepsTheKLargestWithTiesToTheLowestId) {
  SamplerParams p = plain(kFlat);
  p.top_k = 2;
  EXPECT_EQ(tokens_drawn(p, five_token_logits()), (std::set<TokenId>{3, 0}));
  p.top_k = 4;
  EXPECT_EQ(tokens_drawn(p, five_token_logits()), (std::set<TokenId>{3, 0, 4, 1}));
  // More than the tokens that are not banned: all of those, never the banned one.
  p.top_k = 6;
  EXPECT_EQ(tokens_drawn(p, five_token_logits()), (std::set<TokenId>{0, 1, 2, 3, 4}));
  p.top_k = 2;
  EXPECT_EQ(tokens_drawn(p, {1.0f, 2.0f, 2.0f, 2.0f, 0.0f}), (std::set<TokenId>{1, 2}));
  // Large vocabulary, both selection paths (a heap for small k, selection otherwise).
  const auto logits = random_logits(5000, 5);
  std::vector<TokenId> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](TokenId a, TokenId b) {
    return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)];
  });
  for (const int k : {3, 1000}) {
    p.top_k = k;
    const std::set<TokenId> allowed(order.begin(), order.begin() + k);
    SamplerParams q = p;
    q.temperature = 1e6f;
    const auto seen = tokens_drawn(q, logits, 4, k == 3 ? 100 : 1500);
    EXPECT_TRUE(std::includes(allowed.begin(), allowed.end(), seen.begin(), seen.end())) << "k = " << k;
    if (k == 3) {
      EXPECT_EQ(seen, allowed);
    } else {
      EXPECT_GT(seen.size(), 980u);  // about 997 of 1,000 show up in 6,000 draws
    }
  }
}

TEST(SamplerTopP, KeepsTheSmallestHeadReachingP) {
  SamplerParams p = plain(kFlat);
  const auto logits = five_token_logits();
  const std::vector<std::pair<float, std::set<TokenId>>> cases = {
      {0.3f, {3}},                // 0.50
      {0.7f, {3, 0}},             // 0.75
      {0.8f, {3, 0, 4}},          // 0.90
      {0.95f, {3, 0, 4, 1}},      // 0.97
      {0.99f, {3, 0, 4, 1, 2}},   // 1.00
  };
  for (const auto& [top_p, expected] : cases) {
    p.top_p = top_p;
    EXPECT_EQ(tokens_drawn(p, logits), expected) << "top_p " << top_p;
  }
}

TEST(SamplerTopP, FindsALargeNucleusInALargeVocabulary) {
  // 600 likely tokens with distinct logits on scattered ids, and 3,496 unlikely
  // ones: the nucleus is larger than the first block the sampler sorts.
  const int n = 4096, head = 600;
  std::vector<float> logits(n, -40.0f);
  std::vector<TokenId> by_rank(head);
  for (int r = 0; r < head; ++r) {
    by_rank[static_cast<size_t>(r)] = static_cast<TokenId>((r * 2654435761u) % n);
    logits[static_cast<size_t>(by_rank[static_cast<size_t>(r)])] = -0.002f * static_cast<float>(r);
  }
  ASSERT_EQ(std::set<TokenId>(by_rank.begin(), by_rank.end()).size(), static_cast<size_t>(head));
  double total = 0;
  for (const float l : logits) total += std::exp(static_cast<double>(l));
  const float top_p = 0.7f;
  size_t keep = 0;
  double cumulative = 0;
  const auto probability = [&](size_t rank) {
    return std::exp(static_cast<double>(logits[static_cast<size_t>(by_rank[rank])])) / total;
  };
  while (cumulative < top_p) cumulative += probability(keep++);
  // The boundary is far from rounding: the answer does not hinge on the last bits.
  ASSERT_GT(cumulative - top_p, 1e-5);
  ASSERT_LT(cumulative - probability(keep - 1) - top_p, -1e-5);
  ASSERT_GT(keep, 300u);
  const std::set<TokenId> expected(by_rank.begin(), by_rank.begin() + static_cast<std::ptrdiff_t>(keep));

  SamplerParams p = plain(1e4f);
  p.top_p = top_p;
  EXPECT_EQ(tokens_drawn(p, logits, 4, 1500), expected);  // each about 18 times
}

TEST(SamplerMinP, KeepsTokensAtLeastMinPTimesTheBest) {
  SamplerParams p = plain(kFlat);
  const auto logits = five_token_logits();
  const std::vector<std::pair<float, std::set<TokenId>>> cases = {
      {1.0f, {3}},                 // >= 0.5
      {0.4f, {3, 0}},              // >= 0.2
      {0.2f, {3, 0, 4}},           // >= 0.1
      {0.1f, {3, 0, 4, 1}},        // >= 0.05
      {0.01f, {3, 0, 4, 1, 2}},    // >= 0.005
  };
  for (const auto& [min_p, expected] : cases) {
    p.min_p = min_p;
    EXPECT_EQ(tokens_drawn(p, logits), expected) << "min_p " << min_p;
  }
}

TEST(SamplerChain, RunsTopKThenTopPThenMinPThenTemperature) {
  const auto logits = five_token_logits();
  SamplerParams p = plain(kFlat);
  p.top_p = 0.6f;
  EXPECT_EQ(tokens_drawn(p, logits), (std::set<TokenId>{3, 0}));
  // top_k first: top_p then sees 2/3 and 1/3, and 2/3 already reaches 0.6.
  p.top_k = 2;
  EXPECT_EQ(tokens_drawn(p, logits), (std::set<TokenId>{3}));
  // min_p after top_p: top_p keeps four, min_p drops the 0.07 one.
  p = plain(kFlat);
  p.top_p = 0.95f;
  p.min_p = 0.2f;
  EXPECT_EQ(tokens_drawn(p, logits), (std::set<TokenId>{3, 0, 4}));
  // top_p before min_p: min_p first would leave 2/3 and 1/3, and 2/3 reaches 0.6.
  p.top_p = 0.6f;
  p.min_p = 0.4f;
  EXPECT_EQ(tokens_drawn(p, logits), (std::set<TokenId>{3, 0}));
  // The temperature comes last. Before min_p, T = 3 would flatten the
  // probabilities to p^(1/3) and let 0.15 and 0.07 pass 0.4 of the best.
  p = plain(3.0f);
  p.min_p = 0.4f;
  EXPECT_EQ(tokens_drawn(p, logits), (std::set<TokenId>{3, 0}));
}

// Chi-square of observed counts against probabilities.
double chi_square(const std::vector<int>& counts, const std::vector<double>& probabilities, int n) {
  double chi2 = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    const double expected = probabilities[i] * n;
    chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
  }
  return chi2;
}

std::vector<double> softmax(const std::vector<float>& logits, double temperature) {
  std::vector<double> p(logits.size());
  double total = 0;
  for (size_t i = 0; i < logits.size(); ++i) total += p[i] = std::exp(logits[i] / temperature);
  for (double& v : p) v /= total;
  return p;
}

TEST(SamplerTemperature, FrequenciesFollowTheSoftmaxOfLogitsOverT) {
  const std::vector<float> logits = {0.0f, 1.0f, 2.0f, 3.0f};
  const int draws = 20000;
  for (const double temperature : {0.5, 2.0}) {
    Sampler sampler(plain(static_cast<float>(temperature), 1234), 4);
    std::vector<int> counts(4, 0);
    for (int i = 0; i < draws; ++i) ++counts[static_cast<size_t>(sampler.sample(logits))];
    // Three degrees of freedom: a chi-square above 20 happens by chance with
    // probability 2e-4. A temperature 20% off, or the other temperature, gives
    // far more (about 60 and thousands), so the check tells them apart.
    EXPECT_LT(chi_square(counts, softmax(logits, temperature), draws), 20.0) << "T = " << temperature;
    EXPECT_GT(chi_square(counts, softmax(logits, temperature * 1.2), draws), 40.0) << "T = " << temperature;
    EXPECT_GT(chi_square(counts, softmax(logits, temperature / 1.2), draws), 40.0) << "T = " << temperature;
    EXPECT_GT(chi_square(counts, softmax(logits, 2.5 - temperature), draws), 1000.0) << "T = " << temperature;
    EXPECT_GT(chi_square(counts, softmax(logits, 1.0), draws), 300.0) << "T = " << temperature;
  }
}

TEST(SamplerTemperature, BannedTokensAreNeverDrawn) {
  const std::vector<float> logits = {kBanned, 0.0f, kBanned, 0.5f, kBanned};
  EXPECT_EQ(tokens_drawn(plain(1.0f), logits), (std::set<TokenId>{1, 3}));
  SamplerParams p = plain(100.0f);
  p.top_k = 4;
  p.top_p = 0.999f;
  EXPECT_EQ(tokens_drawn(p, logits), (std::set<TokenId>{1, 3}));
}

std::vector<TokenId> sequence(Sampler& sampler, const std::vector<float>& logits, int n) {
  std::vector<TokenId> out;
  for (int i = 0; i < n; ++i) out.push_back(sampler.sample(logits));
  return out;
}

TEST(SamplerSeed, SameSeedSameTokensOtherSeedOtherTokens) {
  const auto logits = random_logits(500, 3);
  SamplerParams p;  // the defaults: every filter on
  p.temperature = 1.5f;
  p.seed = 42;
  Sampler a(p, 500), b(p, 500);
  const auto first = sequence(a, logits, 300);
  EXPECT_EQ(first, sequence(b, logits, 300));
  p.seed = 43;
  Sampler c(p, 500);
  const auto other = sequence(c, logits, 300);
  EXPECT_NE(first, other);
  EXPECT_GT(std::set<TokenId>(first.begin(), first.end()).size(), 5u);  // the test is not trivial
  a.reset();
  EXPECT_EQ(sequence(a, logits, 300), first);
}

TEST(SamplerSeed, PinnedSequence) {
  // mt19937_64's output is fixed by the C++ standard and the conversion to [0, 1)
  // is Tiller's own, so these draws are the same with any compiler and library.
  // The expected tokens were worked out apart from Tiller, with MT19937-64 written
  // out in Python: u = (next() >> 11) * 2^-53, first token whose cumulative
  // weight exp(l - 3) exceeds u * total. A change here breaks every recorded
  // run: make it only on purpose.
  Sampler sampler(plain(1.0f, 2024), 4);
  const std::vector<float> logits = {0.0f, 1.0f, 2.0f, 3.0f};
  EXPECT_EQ(sequence(sampler, logits, 16), (std::vector<TokenId>{3, 3, 2, 2, 0, 2, 3, 3, 2, 3, 3, 3, 3, 3, 1, 2}));
}

TEST(SamplerReuse, BuffersCarryNothingFromOneCallToTheNext) {
  SamplerParams p = plain(1.0f);
  p.top_k = 1;
  Sampler sampler(p, 2000);
  for (uint32_t seed = 0; seed < 30; ++seed) {
    auto logits = random_logits(2000, seed);
    if (seed % 3 == 0) {
      for (size_t i = 0; i < logits.size(); i += 2) logits[i] = kBanned;
    }
    ASSERT_EQ(sampler.sample(logits), argmax(logits));
  }
}

template <class F>
void expect_error(F&& f, const std::string& mentions) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one mentioning '" << mentions << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(mentions), std::string::npos) << e.what();
  }
}

TEST(SamplerErrors, NonsenseParametersAreRefused) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const auto with = [](auto change) {
    SamplerParams p;
    change(p);
    return p;
  };
  const std::vector<std::pair<SamplerParams, std::string>> bad = {
      {with([&](SamplerParams& p) { p.temperature = nan; }), "temperature"},
      {with([&](SamplerParams& p) { p.temperature = inf; }), "temperature"},
      {with([&](SamplerParams& p) { p.top_p = 0.0f; }), "top_p"},
      {with([&](SamplerParams& p) { p.top_p = -0.5f; }), "top_p"},
      {with([&](SamplerParams& p) { p.top_p = 1.5f; }), "top_p"},
      {with([&](SamplerParams& p) { p.top_p = nan; }), "top_p"},
      {with([&](SamplerParams& p) { p.min_p = -0.1f; }), "min_p"},
      {with([&](SamplerParams& p) { p.min_p = 1.01f; }), "min_p"},
      {with([&](SamplerParams& p) { p.min_p = nan; }), "min_p"},
      {with([&](SamplerParams& p) { p.repeat_penalty = 0.0f; }), "repeat_penalty"},
      {with([&](SamplerParams& p) { p.repeat_penalty = -1.0f; }), "repeat_penalty"},
      {with([&](SamplerParams& p) { p.repeat_penalty = nan; }), "repeat_penalty"},
      {with([&](SamplerParams& p) { p.frequency_penalty = nan; }), "frequency_penalty"},
      {with([&](SamplerParams& p) { p.presence_penalty = inf; }), "presence_penalty"},
      {with([&](SamplerParams& p) { p.penalty_last_n = -2; }), "penalty_last_n"},
  };
  for (const auto& item : bad) {  // not a structured binding: clang 14 cannot capture one
    expect_error([&] { Sampler sampler(item.first, 10); }, item.second);
  }
  expect_error([] { Sampler sampler(SamplerParams{}, 0); }, "vocabulary");

  // Edge values that mean something are accepted.
  const std::vector<SamplerParams> good = {
      with([](SamplerParams& p) { p.temperature = -1.0f; }),
      with([](SamplerParams& p) { p.top_p = 1.0f; }),
      with([](SamplerParams& p) { p.min_p = 0.0f; }),
      with([](SamplerParams& p) { p.min_p = 1.0f; }),
      with([](SamplerParams& p) { p.top_k = -5; }),
      with([](SamplerParams& p) { p.penalty_last_n = -1; }),
      with([](SamplerParams& p) { p.repeat_penalty = 0.5f; }),
      with([](SamplerParams& p) { p.frequency_penalty = -2.0f; }),
  };
  for (const auto& params : good) EXPECT_NO_THROW(Sampler(params, 10));
}

TEST(SamplerErrors, BadLogitsAndTokensAreRefused) {
  Sampler sampler(SamplerParams{}, 4);
  expect_error([&] { sampler.sample(std::vector<float>{1, 2, 3}); }, "3 logits");
  expect_error([&] { sampler.sample(std::vector<float>{1, 2, 3, 4, 5}); }, "5 logits");
  const float nan = std::numeric_limits<float>::quiet_NaN();
  expect_error([&] { sampler.sample(std::vector<float>{1, nan, 3, 4}); }, "token 1");
  expect_error([&] { sampler.sample(std::vector<float>{1, 2, -kBanned, 4}); }, "token 2");
  expect_error([&] { sampler.sample(std::vector<float>(4, kBanned)); }, "-inf");
  SamplerParams greedy = plain(0.0f);
  Sampler greedy_sampler(greedy, 4);
  expect_error([&] { greedy_sampler.sample(std::vector<float>(4, kBanned)); }, "-inf");
  expect_error([&] { sampler.accept(-1); }, "token -1");
  expect_error([&] { sampler.accept(4); }, "token 4");

  // Penalties that overflow: +inf is refused, -inf bans, and banning everything is an error.
  SamplerParams up = plain(1.0f);
  up.repeat_penalty = 0.5f;
  Sampler overflow(up, 2);
  overflow.accept(0);
  expect_error([&] { overflow.sample(std::vector<float>{3e38f, 0.0f}); }, "penalties");
  SamplerParams down = plain(1.0f);
  down.frequency_penalty = 3e38f;
  Sampler banned(down, 2);
  banned.accept(std::vector<TokenId>{0, 0});
  EXPECT_EQ(banned.sample(std::vector<float>{5.0f, -5.0f}), 1);
  banned.accept(std::vector<TokenId>{1, 1});
  expect_error([&] { banned.sample(std::vector<float>{5.0f, -5.0f}); }, "after penalties");
}

}  // namespace
}  // namespace tiller
