// Log-probabilities of generated tokens, for the API's `logprobs`: the chosen
// token's and the most likely alternatives', from the model's raw logits row at
// that step (before penalties, temperature and the top-k/p cut-offs: vLLM's
// default, so that the numbers describe the model rather than the sampler).
#pragma once

#include <span>
#include <string>
#include <vector>

#include "tiller/tokenizer.h"

namespace tiller::server {

struct TokenLogprob {
  struct Alternative {
    TokenId id = kNoToken;
    std::string piece;  // the token's bytes (special tokens as their text); may be part of a UTF-8 character
    float logprob = 0.0f;
  };
  TokenId id = kNoToken;
  std::string piece;
  float logprob = 0.0f;
  std::vector<Alternative> top;  // the top_n most likely tokens, most likely first (ties: lower id first)
};

// log_softmax(logits)[chosen] and the top_n largest entries (top_n <= 0: none).
// The sum is taken in double, so a row of 50k logits loses nothing to rounding.
TokenLogprob token_logprob(std::span<const float> logits, TokenId chosen, int top_n, const Tokenizer& tokenizer);

}  // namespace tiller::server
