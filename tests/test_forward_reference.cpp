// The forward pass against a plain double-precision implementation on tiny
// models of every supported shape: masking, sliding windows, grouped heads,
// rope pairing and scaling. Each switch is also shown to matter, so a wrong
// choice in the engine could not pass.
#include <gtest/gtest.h>

#include <cmath>

#include "support/reference_forward.h"
#include "support/test_files.h"
#include "support/tiny_model.h"
#include "tiller/model.h"

namespace tiller {
namespace {

const std::vector<TokenId> kTokens = {1, 37, 90, 12, 255, 3, 77, 140, 8, 201, 64, 150};

struct Case {
  const char* name;
  testing::TinyModelSpec spec;
};

testing::TinyModelSpec llama(int64_t n_head_kv) {
  testing::TinyModelSpec spec;
  spec.weight_type = TensorType::F32;
  spec.n_head_kv = n_head_kv;
  return spec;
}

testing::TinyModelSpec gemma() {
  testing::TinyModelSpec spec;
  spec.architecture = "gemma3";
  spec.weight_type = TensorType::F32;
  spec.n_layer = 6;      // five local blocks and one global
  spec.head_dim = 32;    // queries 4 x 32 = 128 wide in a 64-wide stream, as in Gemma 3
  spec.sliding_window = 3;
  spec.rope_freq_base = 1000000.0f;
  spec.rope_freq_base_swa = 10000.0f;
  return spec;
}

std::string write_model(const testing::TinyModelSpec& spec, const std::string& name) {
  const std::string path = (testing::scratch_dir() / (name + ".gguf")).string();
  testing::make_tiny_model(spec).write(path);
  return path;
}

// Largest difference relative to the largest reference logit.
double relative_difference(std::span<const float> ours, const std::vector<double>& reference) {
  double worst = 0, scale = 0;
  for (size_t i = 0; i < reference.size(); ++i) {
    worst = std::max(worst, std::fabs(ours[i] - reference[i]));
    scale = std::max(scale, std::fabs(reference[i]));
  }
  return worst / scale;
}

std::vector<float> engine_logits(const std::string& path, int n_batch) {
  Session session(Model::load(path), {.n_ctx = 32, .n_threads = 2, .n_batch = n_batch});
  const auto logits = session.decode(kTokens, true);
  return {logits.begin(), logits.end()};
}

// The engine keeps its KV cache in f16 and rounds queries and attention weights
// to f16 as llama.cpp does: agreement to about 1e-3 of the logit scale (measured
// 1e-4 to 3.4e-3). Each wrong variant must miss by ten times the real error and
// by more than the tolerance (measured: 0.026 to 1.7).
constexpr double kTolerance = 5e-3;

void expect_detects(std::span<const float> ours, const std::vector<double>& wrong, double matched_error,
                    const std::string& what) {
  const double error = relative_difference(ours, wrong);
  EXPECT_GT(error, std::max(10 * matched_error, kTolerance)) << what << " would go unnoticed";
}

TEST(ForwardReference, LlamaShapesMatchThePlainImplementation) {
  testing::TinyModelSpec scaled = llama(2);
  scaled.rope_scaling_factor = 4.0f;
  scaled.rope_freq_base = 500.0f;
  testing::TinyModelSpec untied = llama(4);
  untied.tied_output = false;
  for (const auto& [name, spec] : {Case{"mha", llama(4)}, Case{"gqa", llama(2)}, Case{"mqa", llama(1)},
                                   Case{"linear-rope", scaled}, Case{"untied", untied}}) {
    const std::string path = write_model(spec, std::string("ref-llama-") + name);
    const auto ours = engine_logits(path, 512);
    const double error = relative_difference(ours, testing::reference_logits(path, kTokens));
    EXPECT_LT(error, kTolerance) << name;
    if (spec.n_head_kv > 1 && spec.n_head_kv < spec.n_head) {
      expect_detects(ours, testing::reference_logits(path, kTokens, {.interleave_kv_heads = true}), error,
                     std::string(name) + ": a wrong head grouping");
    }
    expect_detects(ours, testing::reference_logits(path, kTokens, {.swap_rope_pairing = true}), error,
                   std::string(name) + ": a wrong rope pairing");
  }
}

TEST(ForwardReference, LinearRopeScalingIsApplied) {
  testing::TinyModelSpec plain = llama(2), scaled = llama(2);
  scaled.rope_scaling_factor = 4.0f;
  const auto ours_plain = engine_logits(write_model(plain, "rope-plain"), 512);
  const std::string scaled_path = write_model(scaled, "rope-scaled");
  // Same weights (same seed): only the positions' scale differs, and it shows.
  expect_detects(ours_plain, testing::reference_logits(scaled_path, kTokens), 0.0, "ignoring the scaling");
}

TEST(ForwardReference, Gemma3MatchesThePlainImplementation) {
  const std::string path = write_model(gemma(), "ref-gemma3");
  const auto ours = engine_logits(path, 512);
  const double error = relative_difference(ours, testing::reference_logits(path, kTokens));
  EXPECT_LT(error, kTolerance);
  expect_detects(ours, testing::reference_logits(path, kTokens, {.ignore_window = true}), error,
                 "a missing sliding window");
  expect_detects(ours, testing::reference_logits(path, kTokens, {.swap_rope_pairing = true}), error,
                 "a wrong rope pairing");
  expect_detects(ours, testing::reference_logits(path, kTokens, {.interleave_kv_heads = true}), error,
                 "a wrong head grouping");
}

TEST(ForwardReference, ChunksAndSingleTokensEqualOnePass) {
  // Chunks of 5 cross the window of 3 at every boundary: the cache must carry it.
  const std::string path = write_model(gemma(), "chunks-gemma3");
  const auto whole = engine_logits(path, 512);
  const auto chunked = engine_logits(path, 5);
  Session stepwise(Model::load(path), {.n_ctx = 32, .n_threads = 1, .n_batch = 512});
  std::vector<float> steps;
  for (const TokenId token : kTokens) {
    const auto row = stepwise.decode(std::span(&token, 1), true);
    steps.insert(steps.end(), row.begin(), row.end());
  }
  ASSERT_EQ(whole.size(), chunked.size());
  ASSERT_EQ(whole.size(), steps.size());
  for (size_t i = 0; i < whole.size(); ++i) {
    ASSERT_NEAR(chunked[i], whole[i], 1e-5 * (1 + std::fabs(whole[i])));
    ASSERT_NEAR(steps[i], whole[i], 1e-5 * (1 + std::fabs(whole[i])));
  }
}

}  // namespace
}  // namespace tiller
