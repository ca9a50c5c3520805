// Picks the next token from a row of logits with llama.cpp's default sampler
// chain: repetition penalties, then top-k, top-p, min-p, temperature and a
// random draw. The same seed and inputs give the same tokens with any compiler
// and standard library (the random numbers and every ordering are Tiller's own;
// only std::exp and std::log may differ in the last bit between math libraries,
// which moves a cut-off or a draw with a chance of about 1e-16).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "tiller/tokenizer.h"

namespace tiller {

struct SamplerParams {
  float temperature = 0.8f;     // <= 0: greedy (argmax after penalties)
  int32_t top_k = 40;           // <= 0: off
  float top_p = 0.95f;          // in (0, 1]; 1: off
  float min_p = 0.05f;          // in [0, 1]; 0: off
  float repeat_penalty = 1.0f;  // > 0; 1: off
  int32_t penalty_last_n = 64;  // tokens the penalties look back over; 0: off, -1: whole history
  float frequency_penalty = 0.0f;  // subtracted once per occurrence
  float presence_penalty = 0.0f;   // subtracted once if the token occurs at all
  uint64_t seed = 0;
};

class Sampler {
 public:
  // Throws tiller::Error for parameters that mean nothing (NaN or inf, top_p outside
  // (0, 1], min_p outside [0, 1], repeat_penalty <= 0, penalty_last_n < -1,
  // n_vocab <= 0). A negative temperature is greedy, as in llama.cpp.
  Sampler(const SamplerParams& params, int32_t n_vocab);

  // The next token for one row of n_vocab logits. -inf bans a token; NaN, +inf,
  // or every token banned is an error. Does not record the token: call accept().
  TokenId sample(std::span<const float> logits);

  // Records tokens into the history the penalties look at: the prompt's, then
  // each one generated.
  void accept(TokenId token);
  void accept(std::span<const TokenId> tokens);

  // Forgets the history and restarts the random sequence from the seed.
  void reset();

  const SamplerParams& params() const { return params_; }
  int32_t n_vocab() const { return n_vocab_; }

 private:
  struct Candidate {
    TokenId id;
    float logit;
  };

  bool penalties_on() const;
  void apply_penalties();
  void keep_top_k();
  void keep_top_p();
  void keep_min_p();
  TokenId draw();
  double next_unit();

  SamplerParams params_;
  int32_t n_vocab_;
  std::mt19937_64 rng_;

  // Reused by every call, so sampling allocates nothing after construction.
  std::vector<Candidate> candidates_;
  size_t n_candidates_ = 0;
  bool sorted_ = false;  // candidates in descending order (else in id order)
  std::vector<double> weights_;

  // Penalty history: the last penalty_last_n accepted tokens as a ring, each
  // token's count in it, and the distinct tokens present (so a call touches only
  // those, not the whole vocabulary).
  std::vector<TokenId> window_;
  size_t window_head_ = 0;  // oldest entry once the ring is full
  std::vector<int32_t> counts_;
  std::vector<TokenId> present_;
  std::vector<int32_t> present_slot_;  // index into present_, -1 if absent
};

}  // namespace tiller
