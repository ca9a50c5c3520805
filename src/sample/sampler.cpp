// The sampler chain. Candidates are (id, logit) pairs in one reused buffer; each
// stage narrows them. Their order is always canonical (by id, or by logit
// descending with ties by id), never whatever a sort happened to leave, because
// the draw walks them in order: the same uniform number must pick the same token
// with any standard library.
#include "tiller/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/fail.h"

namespace tiller {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// A strict total order, so partial sorts give the same result everywhere.
struct HigherLogit {
  template <class C>
  bool operator()(const C& a, const C& b) const {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  }
};

void require_finite(float value, const char* name) {
  if (!std::isfinite(value)) fail("sampler: {} must be a finite number, not {}", name, value);
}

}  // namespace

Sampler::Sampler(const SamplerParams& params, int32_t n_vocab) : params_(params), n_vocab_(n_vocab) {
  if (n_vocab <= 0) fail("sampler: the vocabulary size must be positive, not {}", n_vocab);
  require_finite(params.temperature, "temperature");
  require_finite(params.top_p, "top_p");
  require_finite(params.min_p, "min_p");
  require_finite(params.repeat_penalty, "repeat_penalty");
  require_finite(params.frequency_penalty, "frequency_penalty");
  require_finite(params.presence_penalty, "presence_penalty");
  if (!(params.top_p > 0.0f && params.top_p <= 1.0f)) fail("sampler: top_p must be in (0, 1], not {}", params.top_p);
  if (!(params.min_p >= 0.0f && params.min_p <= 1.0f)) fail("sampler: min_p must be in [0, 1], not {}", params.min_p);
  if (!(params.repeat_penalty > 0.0f)) {
    fail("sampler: repeat_penalty must be positive (1 is off), not {}", params.repeat_penalty);
  }
  if (params.penalty_last_n < -1) {
    fail("sampler: penalty_last_n must be -1 (whole history), 0 (off) or a count, not {}", params.penalty_last_n);
  }

  const auto n = static_cast<size_t>(n_vocab);
  candidates_.resize(n);
  weights_.resize(n);
  if (penalties_on()) {
    counts_.assign(n, 0);
    present_slot_.assign(n, -1);
    if (params.penalty_last_n > 0) present_.reserve(std::min(n, static_cast<size_t>(params.penalty_last_n)));
  }
  rng_.seed(params.seed);
}

bool Sampler::penalties_on() const {
  return params_.penalty_last_n != 0 &&
         (params_.repeat_penalty != 1.0f || params_.frequency_penalty != 0.0f || params_.presence_penalty != 0.0f);
}

void Sampler::accept(TokenId token) {
  if (token < 0 || token >= n_vocab_) {
    fail("sampler: cannot accept token {}: the vocabulary has ids 0 to {}", token, n_vocab_ - 1);
  }
  if (!penalties_on()) return;
  const auto add = [this](TokenId t) {
    if (counts_[static_cast<size_t>(t)]++ == 0) {
      present_slot_[static_cast<size_t>(t)] = static_cast<int32_t>(present_.size());
      present_.push_back(t);
    }
  };
  const auto remove = [this](TokenId t) {
    if (--counts_[static_cast<size_t>(t)] > 0) return;
    const auto slot = static_cast<size_t>(present_slot_[static_cast<size_t>(t)]);
    const TokenId last = present_.back();
    present_[slot] = last;
    present_slot_[static_cast<size_t>(last)] = static_cast<int32_t>(slot);
    present_.pop_back();
    present_slot_[static_cast<size_t>(t)] = -1;
  };

  // With the whole history the counts are all that is needed.
  if (params_.penalty_last_n < 0) {
    add(token);
    return;
  }
  const auto last_n = static_cast<size_t>(params_.penalty_last_n);
  if (window_.size() < last_n) {
    window_.push_back(token);
  } else {
    remove(window_[window_head_]);
    window_[window_head_] = token;
    window_head_ = (window_head_ + 1) % last_n;
  }
  add(token);
}

void Sampler::accept(std::span<const TokenId> tokens) {
  for (const TokenId token : tokens) accept(token);
}

void Sampler::reset() {
  for (const TokenId t : present_) {
    counts_[static_cast<size_t>(t)] = 0;
    present_slot_[static_cast<size_t>(t)] = -1;
  }
  present_.clear();
  window_.clear();
  window_head_ = 0;
  rng_.seed(params_.seed);
}

TokenId Sampler::sample(std::span<const float> logits) {
  if (logits.size() != static_cast<size_t>(n_vocab_)) {
    fail("sampler: got {} logits for a vocabulary of {}", logits.size(), n_vocab_);
  }
  // One pass without branches: every candidate is written, and the count moves
  // past it unless it is banned. A banned token can never be drawn and never
  // changes another's probability, so dropping it here is the same as carrying
  // it through every stage.
  size_t kept = 0;
  bool bad = false;
  for (size_t i = 0; i < logits.size(); ++i) {
    const float logit = logits[i];
    candidates_[kept] = {static_cast<TokenId>(i), logit};
    kept += logit != -kInf ? 1 : 0;
    bad |= !(logit < kInf);  // NaN or +inf
  }
  if (bad) {
    for (size_t i = 0; i < logits.size(); ++i) {
      if (!(logits[i] < kInf)) fail("sampler: the logit of token {} is {}", i, logits[i]);
    }
  }
  if (kept == 0) fail("sampler: every token's logit is -inf");
  n_candidates_ = kept;
  apply_penalties();
  if (n_candidates_ == 0) fail("sampler: every token's logit is -inf after penalties");
  sorted_ = false;

  if (params_.temperature <= 0.0f) {
    // Every filter keeps the most likely token, so greedy is the argmax; in id
    // order, a strict comparison picks the lowest id among equals.
    size_t best = 0;
    for (size_t i = 1; i < n_candidates_; ++i) {
      if (candidates_[i].logit > candidates_[best].logit) best = i;
    }
    return candidates_[best].id;
  }
  keep_top_k();
  keep_top_p();
  keep_min_p();
  return draw();
}

void Sampler::apply_penalties() {
  // present_ is empty when the penalties are off. Candidates are in id order:
  // with nothing banned a token's place is its id, else a binary search finds it.
  const bool dense = n_candidates_ == static_cast<size_t>(n_vocab_);
  const auto first = candidates_.begin(), end = first + static_cast<std::ptrdiff_t>(n_candidates_);
  bool banned_some = false;
  for (const TokenId t : present_) {
    auto it = first + t;
    if (!dense) {
      it = std::lower_bound(first, end, t, [](const Candidate& c, TokenId id) { return c.id < id; });
      if (it == end || it->id != t) continue;  // banned already
    }
    float& logit = it->logit;
    const float before = logit;
    // Dividing a negative logit would raise it, so those are multiplied instead.
    if (params_.repeat_penalty != 1.0f) {
      logit = logit > 0.0f ? logit / params_.repeat_penalty : logit * params_.repeat_penalty;
    }
    logit -= static_cast<float>(counts_[static_cast<size_t>(t)]) * params_.frequency_penalty + params_.presence_penalty;
    if (!(logit < kInf)) fail("sampler: the penalties turn the logit {} of token {} into {}", before, t, logit);
    banned_some |= logit == -kInf;
  }
  // Penalties large enough to overflow ban a token too.
  if (banned_some) {
    n_candidates_ = static_cast<size_t>(
        std::remove_if(first, end, [](const Candidate& c) { return c.logit == -kInf; }) - first);
  }
}

void Sampler::keep_top_k() {
  if (params_.top_k <= 0 || static_cast<size_t>(params_.top_k) >= n_candidates_) return;
  const auto k = static_cast<size_t>(params_.top_k);
  const auto first = candidates_.begin();
  const auto end = first + static_cast<std::ptrdiff_t>(n_candidates_);
  const auto mid = first + static_cast<std::ptrdiff_t>(k);
  // A heap of k beats selection while k is small next to the candidates.
  if (k <= n_candidates_ / 64) {
    std::partial_sort(first, mid, end, HigherLogit{});
  } else {
    std::nth_element(first, mid, end, HigherLogit{});
    std::sort(first, mid, HigherLogit{});
  }
  n_candidates_ = k;
  sorted_ = true;
}

void Sampler::keep_top_p() {
  if (params_.top_p >= 1.0f) return;
  const auto at = [this](size_t i) { return candidates_.begin() + static_cast<std::ptrdiff_t>(i); };
  const size_t n = n_candidates_;
  double max = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < n; ++i) max = std::max(max, static_cast<double>(candidates_[i].logit));
  double total = 0.0;
  for (size_t i = 0; i < n; ++i) total += std::exp(static_cast<double>(candidates_[i].logit) - max);

  // The nucleus is usually a small head of a large vocabulary: sort a growing
  // head instead of everything, each round selecting the next block out of the rest.
  size_t n_sorted = sorted_ ? n : 0;
  double cumulative = 0.0;
  for (size_t i = 0; i < n; ++i) {
    if (i == n_sorted) {
      const size_t next = std::min(n, std::max<size_t>(256, 2 * n_sorted));
      if (next < n) std::nth_element(at(n_sorted), at(next), at(n), HigherLogit{});
      std::sort(at(n_sorted), at(next), HigherLogit{});
      n_sorted = next;
    }
    cumulative += std::exp(static_cast<double>(candidates_[i].logit) - max) / total;
    if (cumulative >= static_cast<double>(params_.top_p)) {
      n_candidates_ = i + 1;
      break;
    }
  }
  // If rounding kept the sum below top_p to the end, every candidate stays.
  sorted_ = true;
}

void Sampler::keep_min_p() {
  if (params_.min_p <= 0.0f) return;
  double max = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < n_candidates_; ++i) max = std::max(max, static_cast<double>(candidates_[i].logit));
  // p >= min_p * p_max, in logits: no softmax needed. The best token always passes.
  const double threshold = max + std::log(static_cast<double>(params_.min_p));
  size_t kept = 0;
  for (size_t i = 0; i < n_candidates_; ++i) {
    if (static_cast<double>(candidates_[i].logit) >= threshold) candidates_[kept++] = candidates_[i];
  }
  n_candidates_ = kept;
}

TokenId Sampler::draw() {
  const double temperature = params_.temperature;
  double max = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < n_candidates_; ++i) max = std::max(max, static_cast<double>(candidates_[i].logit));
  // Subtracting the maximum before dividing keeps a tiny temperature from
  // overflowing: every exponent is <= 0 and the best token's weight is 1.
  double total = 0.0;
  for (size_t i = 0; i < n_candidates_; ++i) {
    weights_[i] = std::exp((static_cast<double>(candidates_[i].logit) - max) / temperature);
    total += weights_[i];
  }
  const double target = next_unit() * total;
  double cumulative = 0.0;
  for (size_t i = 0; i < n_candidates_; ++i) {
    cumulative += weights_[i];
    if (target < cumulative) return candidates_[i].id;
  }
  // target rounded up to total: the last token that has any weight.
  for (size_t i = n_candidates_; i-- > 0;) {
    if (weights_[i] > 0.0) return candidates_[i].id;
  }
  return candidates_[0].id;
}

double Sampler::next_unit() {
  // The standard fixes mt19937_64's output but not uniform_real_distribution's,
  // so the top 53 bits become a double in [0, 1) here, exactly.
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

}  // namespace tiller
