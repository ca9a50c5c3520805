#include "cli/bench_runner.h"

#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "common/fail.h"

namespace tiller::cli {

std::string BenchTest::name() const {
  if (n_prompt > 0) return fmt::format("pp{}", n_prompt);
  return n_seq > 1 ? fmt::format("tg{}x{}", n_gen, n_seq) : fmt::format("tg{}", n_gen);
}

double BenchResult::mean() const {
  if (samples.empty()) return 0.0;
  return std::accumulate(samples.begin(), samples.end(), 0.0) / static_cast<double>(samples.size());
}

double BenchResult::sd() const {
  if (samples.size() < 2) return 0.0;
  const double m = mean();
  double sum = 0.0;
  for (const double s : samples) sum += (s - m) * (s - m);
  return std::sqrt(sum / static_cast<double>(samples.size() - 1));
}

std::vector<TokenId> bench_tokens(const Tokenizer& tokenizer, int count) {
  // A fixed linear congruential sequence: any ordinary ids do, as long as every
  // run (and the llama.cpp comparison) sees the same ones.
  std::vector<TokenId> tokens;
  tokens.reserve(static_cast<size_t>(count));
  uint64_t state = 0x2545f4914f6cdd1dULL;
  const auto n_vocab = static_cast<uint64_t>(tokenizer.n_vocab());
  constexpr uint32_t kNotText = kAttrControl | kAttrUnknown | kAttrUnused;
  // A vocabulary with no ordinary ids at all (a test model) takes any id after a while.
  for (uint64_t attempt = 0; static_cast<int>(tokens.size()) < count; ++attempt) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    const auto id = static_cast<TokenId>((state >> 33) % n_vocab);
    if ((tokenizer.token_attr(id) & kNotText) == 0 || attempt > 1000u * static_cast<uint64_t>(count)) {
      tokens.push_back(id);
    }
  }
  return tokens;
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Tokens per second of one run from a reset session.
double time_one_run(Session& session, const BenchTest& test, std::span<const TokenId> tokens) {
  for (int seq = 0; seq < session.n_seq(); ++seq) session.rewind(seq, 0);
  std::vector<int> seqs(static_cast<size_t>(test.n_seq));
  std::iota(seqs.begin(), seqs.end(), 0);
  std::vector<TokenId> step(seqs.size());
  const auto start = std::chrono::steady_clock::now();
  if (test.n_seq > 1) {
    // Every sequence one token per step, all in one forward pass, as a server batches them.
    for (int i = 0; i < test.n_gen; ++i) {
      for (size_t s = 0; s < seqs.size(); ++s) step[s] = tokens[static_cast<size_t>(i) + s];
      session.decode_step(seqs, step);
    }
  } else if (test.n_prompt > 0) {
    session.decode(tokens.first(static_cast<size_t>(test.n_prompt)), false);
  } else {
    // One token at a time, each producing its logits, as generation does.
    for (int i = 0; i < test.n_gen; ++i) session.decode(tokens.subspan(static_cast<size_t>(i), 1), false);
  }
  const double seconds = seconds_since(start);
  return seconds > 0 ? static_cast<double>(test.n_tokens()) * test.n_seq / seconds : 0.0;
}

}  // namespace

BenchResult run_bench_test(Session& session, const BenchTest& test, int reps, std::span<const TokenId> tokens) {
  const int needed = test.n_tokens() + test.n_seq - 1;
  if (static_cast<int>(tokens.size()) < needed) fail("bench: {} needs {} tokens", test.name(), needed);
  if (session.n_ctx() < test.n_tokens()) fail("bench: {} needs a context of {} positions", test.name(), test.n_tokens());
  if (session.n_seq() < test.n_seq) fail("bench: {} needs {} sequences", test.name(), test.n_seq);
  if (test.n_seq > 1 && test.n_prompt > 0) fail("bench: {}: only generation runs several sequences", test.name());
  BenchResult result{test, {}};
  time_one_run(session, test, tokens);  // warm-up: caches, page faults, thread start-up
  for (int rep = 0; rep < reps; ++rep) result.samples.push_back(time_one_run(session, test, tokens));
  return result;
}

ModelFootprint model_footprint(const Model& model) {
  ModelFootprint footprint;
  footprint.file_bytes = model.file().size();
  const gguf::TensorInfo* embedding = nullptr;
  for (const gguf::TensorInfo& tensor : model.file().tensors()) {
    footprint.n_params += tensor.n_elements();
    footprint.tensor_bytes += tensor.n_bytes;
    if (tensor.name == "token_embd.weight") embedding = &tensor;
  }
  footprint.weight_bytes_per_token = footprint.tensor_bytes;
  // A token reads one row of the embedding table, unless the table is also the
  // output matrix (tied), when all of it is read for the logits.
  if (embedding != nullptr && model.config().has_output_weight) {
    footprint.weight_bytes_per_token -= embedding->n_bytes;
    footprint.weight_bytes_per_token += embedding->row_bytes();
  }
  return footprint;
}

uint64_t kv_cache_bytes(const ModelConfig& config, int n_ctx) {
  const auto per_position = static_cast<uint64_t>(config.n_layer * config.n_head_kv * config.head_dim);
  return 2 /* K and V */ * sizeof(uint16_t) * per_position * static_cast<uint64_t>(n_ctx);
}

uint64_t peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<uint64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

}  // namespace tiller::cli
