// The timing core of `tiller bench`: llama-bench's tests ("ppN": one batched
// prompt of N tokens in a fresh cache; "tgN": N single-token decodes) run on a
// Session the caller prepared, so that anything configured on the session (the
// thread count today, steering later) is part of what is measured.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "tiller/model.h"

namespace tiller::cli {

struct BenchTest {
  int n_prompt = 0;  // > 0 for a pp test
  int n_gen = 0;     // > 0 for a tg test
  int threads = 1;
  int n_seq = 1;     // tg: sequences decoding together, one token each per step (Session::decode_step)
  std::string name() const;  // "pp512", "tg128", "tg128x4" (4 sequences)
  int n_tokens() const { return n_prompt + n_gen; }  // per sequence
};

struct BenchResult {
  BenchTest test;
  std::vector<double> samples;  // tokens/s of each timed rep (all sequences together)
  double mean() const;
  double sd() const;  // sample standard deviation; 0 for a single rep
};

// `count` fixed token ids, pseudo-random among the ordinary (non-control) tokens,
// the same on every call so that runs compare.
std::vector<TokenId> bench_tokens(const Tokenizer& tokenizer, int count);

// One warm-up run (not counted), then `reps` timed runs, each from a reset session.
// The session must hold at least test.n_tokens() positions in test.n_seq sequences;
// `tokens` needs test.n_tokens() + test.n_seq - 1 ids (sequence s starts at id s).
BenchResult run_bench_test(Session& session, const BenchTest& test, int reps, std::span<const TokenId> tokens);

// What the model costs in memory and bandwidth.
struct ModelFootprint {
  int64_t n_params = 0;
  uint64_t tensor_bytes = 0;            // all tensors, as stored
  uint64_t file_bytes = 0;              // the mapped file
  uint64_t weight_bytes_per_token = 0;  // what one token's forward pass reads
};
ModelFootprint model_footprint(const Model& model);

// Bytes of the f16 K and V caches for n_ctx positions.
uint64_t kv_cache_bytes(const ModelConfig& config, int n_ctx);

// The process's peak resident set so far, in bytes (getrusage).
uint64_t peak_rss_bytes();

}  // namespace tiller::cli
