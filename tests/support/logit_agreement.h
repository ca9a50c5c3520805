// Agreement of Tiller's logits with a compact llama.cpp golden (its top-k logits
// and log-sum-exp per position): mean KL divergence and top-1 agreement.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>

namespace tiller::testing {

struct LogitAgreement {
  double kl_sum = 0, kl_worst = 0;
  size_t positions = 0, agree = 0;

  double mean_kl() const { return positions ? kl_sum / static_cast<double>(positions) : 0.0; }
  double top1() const { return positions ? static_cast<double>(agree) / static_cast<double>(positions) : 0.0; }

  // Adds the positions of one text: `logits` [n x n_vocab] ours; `top_ids` and
  // `top_logits` [n x top_k] and `lse` [n] theirs. KL(llama.cpp || Tiller) is taken
  // over llama.cpp's top_k tokens, which carry nearly all of its probability mass.
  void add(std::span<const float> logits, size_t n_vocab, std::span<const int32_t> top_ids,
           std::span<const float> top_logits, std::span<const double> lse, size_t top_k) {
    const size_t n = lse.size();
    for (size_t t = 0; t < n; ++t) {
      const float* row = logits.data() + t * n_vocab;
      double max = -INFINITY, sum = 0;
      size_t best = 0;
      for (size_t i = 0; i < n_vocab; ++i) {
        if (row[i] > max) max = row[i], best = i;
      }
      for (size_t i = 0; i < n_vocab; ++i) sum += std::exp(row[i] - max);
      const double our_lse = max + std::log(sum);
      double kl = 0;
      for (size_t j = 0; j < top_k; ++j) {
        const size_t k = t * top_k + j;
        const double log_p = top_logits[k] - lse[t];
        const double log_q = row[top_ids[k]] - our_lse;
        kl += std::exp(log_p) * (log_p - log_q);
      }
      kl_sum += kl;
      kl_worst = std::max(kl_worst, kl);
      agree += static_cast<int32_t>(best) == top_ids[t * top_k] ? 1 : 0;
      ++positions;
    }
  }
};

}  // namespace tiller::testing
