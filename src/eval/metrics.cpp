// The metric arithmetic of tiller/evaluate.h: log-softmax, KL, the A/B ratio and the
// topic-word count, in double with the maximum subtracted before exp (logits of a few
// hundred would overflow otherwise, and the double sums keep a 50k-token vocabulary exact
// to well below the figures' last printed digit).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>

#include "common/fail.h"
#include "tiller/evaluate.h"

namespace tiller::metrics {
namespace {

// log(sum(exp(logits))) as max + log_sum, kept apart so that x - max is taken first
// (exact for floats of like size) and a logit of 1000 keeps its small log-probability's digits.
struct LogSumExp {
  double max, log_sum;
  double log_softmax(float x) const { return (static_cast<double>(x) - max) - log_sum; }
};

LogSumExp log_sum_exp(std::span<const float> logits) {
  if (logits.empty()) fail("metrics: an empty row of logits");
  double max = -std::numeric_limits<double>::infinity();
  for (float x : logits) {
    if (std::isnan(x)) fail("metrics: a NaN logit");
    max = std::max(max, static_cast<double>(x));
  }
  if (!std::isfinite(max)) fail("metrics: a row of logits whose maximum is {}", max);
  double sum = 0;
  for (float x : logits) sum += std::exp(static_cast<double>(x) - max);
  return {max, std::log(sum)};
}

void check_token(std::span<const float> logits, TokenId token) {
  if (token < 0 || static_cast<size_t>(token) >= logits.size()) {
    fail("metrics: token {} outside a vocabulary of {}", token, logits.size());
  }
}

bool is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Letters, digits and every byte of a multi-byte UTF-8 character belong to a word.
bool is_word_byte(unsigned char c) { return c >= 0x80 || std::isalnum(c) != 0; }

unsigned char lower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? static_cast<unsigned char>(c - 'A' + 'a') : c; }

bool matches_at(std::string_view text, size_t at, std::string_view word) {
  if (word.empty() || text.size() - at < word.size()) return false;
  for (size_t i = 0; i < word.size(); ++i) {
    if (lower(static_cast<unsigned char>(text[at + i])) != lower(static_cast<unsigned char>(word[i]))) return false;
  }
  return true;
}

}  // namespace

double log_softmax_at(std::span<const float> logits, TokenId token) {
  check_token(logits, token);
  return log_sum_exp(logits).log_softmax(logits[static_cast<size_t>(token)]);
}

double kl_divergence(std::span<const float> p_logits, std::span<const float> q_logits) {
  if (p_logits.size() != q_logits.size()) {
    fail("metrics: KL between rows of {} and {} logits", p_logits.size(), q_logits.size());
  }
  const LogSumExp p_norm = log_sum_exp(p_logits), q_norm = log_sum_exp(q_logits);
  double kl = 0;
  for (size_t i = 0; i < p_logits.size(); ++i) {
    const double log_p = p_norm.log_softmax(p_logits[i]);
    const double p = std::exp(log_p);
    if (p == 0) continue;  // 0 * log(0 / q) is 0, also where q is 0
    kl += p * (log_p - q_norm.log_softmax(q_logits[i]));
  }
  // Rounding can leave a tiny negative figure for identical rows; KL is never below 0.
  return std::max(kl, 0.0);
}

double ab_probability(std::span<const float> logits, TokenId token_a, TokenId token_b, char matching) {
  check_token(logits, token_a);
  check_token(logits, token_b);
  if (matching != 'A' && matching != 'B') fail("metrics: the matching answer is '{}', not A or B", matching);
  const double a = logits[static_cast<size_t>(token_a)], b = logits[static_cast<size_t>(token_b)];
  if (std::isnan(a) || std::isnan(b)) fail("metrics: a NaN logit for an answer letter");
  // P(m) / (P(A) + P(B)) = 1 / (1 + exp(other - m)): the softmax's normalizer cancels.
  const double other_minus_matching = matching == 'A' ? b - a : a - b;
  return 1.0 / (1.0 + std::exp(other_minus_matching));
}

WordCount count_topic_words(std::string_view text, std::span<const std::string> words) {
  WordCount count;
  bool in_word = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (!is_space(c) && !in_word) ++count.words;
    in_word = !is_space(c);
    // A topic word starts where a word's letters start: after a space, a quote, a
    // hyphen... One hit per place, however many topic words match there.
    const bool starts_letters = is_word_byte(c) && (i == 0 || !is_word_byte(static_cast<unsigned char>(text[i - 1])));
    if (!starts_letters) continue;
    if (std::any_of(words.begin(), words.end(), [&](const std::string& w) { return matches_at(text, i, w); })) {
      ++count.hits;
    }
  }
  return count;
}

}  // namespace tiller::metrics
