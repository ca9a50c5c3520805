#include "server/logprobs.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace tiller::server {

TokenLogprob token_logprob(std::span<const float> logits, TokenId chosen, int top_n, const Tokenizer& tokenizer) {
  // log_softmax(x)_i = x_i - (max + log sum exp(x - max)); -inf logits (banned
  // tokens) add nothing to the sum and get -inf.
  double max = -INFINITY;
  for (const float x : logits) max = std::max(max, double(x));
  double sum = 0.0;
  for (const float x : logits) sum += std::exp(double(x) - max);
  const double log_z = max + std::log(sum);
  const auto logprob = [&](TokenId id) { return static_cast<float>(double(logits[size_t(id)]) - log_z); };

  TokenLogprob out;
  out.id = chosen;
  out.piece = tokenizer.token_to_piece(chosen, true);
  out.logprob = logprob(chosen);
  const size_t n = std::min(size_t(std::max(top_n, 0)), logits.size());
  if (n == 0) return out;
  // Only the n best are ordered: a partial sort of ids is O(vocab log n).
  std::vector<TokenId> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::partial_sort(ids.begin(), ids.begin() + std::ptrdiff_t(n), ids.end(), [&](TokenId a, TokenId b) {
    const float x = logits[size_t(a)], y = logits[size_t(b)];
    return x > y || (x == y && a < b);
  });
  out.top.reserve(n);
  for (size_t i = 0; i < n; ++i) out.top.push_back({ids[i], tokenizer.token_to_piece(ids[i], true), logprob(ids[i])});
  return out;
}

}  // namespace tiller::server
