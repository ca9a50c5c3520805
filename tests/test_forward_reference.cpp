// The forward pass against a plain double-precision implementation on tiny
// models of every supported family and shape: masking, sliding windows, grouped
// heads, rope pairing, scaling and factors, biases, fused tensors, q/k norms,
// soft-capping, learned positions. Each switch is also shown to matter, so a
// wrong choice in the engine could not pass.
#include <gtest/gtest.h>

#include <cmath>
#include <initializer_list>

#include <fmt/format.h>

#include "support/reference_forward.h"
#include "support/test_files.h"
#include "support/tiny_model.h"
#include "model/family.h"
#include "tiller/error.h"
#include "tiller/model.h"
#include "tiller/model_config.h"

namespace tiller {
namespace {

const std::vector<TokenId> kTokens = {1, 37, 90, 12, 255, 3, 77, 140, 8, 201, 64, 150};

struct ReferenceCase {
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

std::vector<float> engine_logits(const std::string& path, int n_batch, int n_ctx = 32) {
  Session session(Model::load(path), {.n_ctx = n_ctx, .n_threads = 2, .n_batch = n_batch});
  const auto logits = session.decode(kTokens, true);
  return {logits.begin(), logits.end()};
}

// The engine keeps its KV cache in f16 and rounds queries and attention weights
// to f16 as llama.cpp does, and takes GELU from an f16 table: agreement to about
// 1e-3 of the logit scale (measured 1e-4 to 3.4e-3 over every family). Each wrong
// variant must miss by ten times the real error and by more than the tolerance
// (measured: 0.026 to 1.7). The tests use F32 weights: random quantized ones are
// so large that quantizing the activations (as llama.cpp does) costs 1e-2 to 0.25.
constexpr double kReferenceTolerance = 5e-3;

void expect_detects(std::span<const float> ours, const std::vector<double>& wrong, double matched_error,
                    const std::string& what) {
  const double error = relative_difference(ours, wrong);
  EXPECT_GT(error, std::max(10 * matched_error, kReferenceTolerance)) << what << " would go unnoticed";
}

// A reference variant that leaves out (or gets wrong) what a family adds.
struct Wrong {
  testing::ReferenceVariant variant;
  const char* what;
};

testing::TinyModelSpec family(const char* architecture) {
  testing::TinyModelSpec spec;
  spec.architecture = architecture;
  spec.weight_type = TensorType::F32;
  return spec;
}

// The engine's logits for a tiny model of `spec` agree with the reference's, and
// each wrong variant misses them.
void expect_family_matches(const testing::TinyModelSpec& spec, const std::string& name,
                           std::initializer_list<Wrong> wrongs, int n_ctx = 32,
                           const testing::ReferenceVariant& right = {}) {
  const std::string path = write_model(spec, "ref-" + name);
  const auto ours = engine_logits(path, 512, n_ctx);
  const double error = relative_difference(ours, testing::reference_logits(path, kTokens, right));
  EXPECT_LT(error, kReferenceTolerance) << name;
  for (const Wrong& wrong : wrongs) {
    expect_detects(ours, testing::reference_logits(path, kTokens, wrong.variant), error, name + ": " + wrong.what);
  }
}

TEST(ForwardReference, LlamaShapesMatchThePlainImplementation) {
  testing::TinyModelSpec scaled = llama(2);
  scaled.rope_scaling_factor = 4.0f;
  scaled.rope_freq_base = 500.0f;
  testing::TinyModelSpec untied = llama(4);
  untied.tied_output = false;
  for (const auto& [name, spec] : {ReferenceCase{"mha", llama(4)}, ReferenceCase{"gqa", llama(2)}, ReferenceCase{"mqa", llama(1)},
                                   ReferenceCase{"linear-rope", scaled}, ReferenceCase{"untied", untied}}) {
    const std::string path = write_model(spec, std::string("ref-llama-") + name);
    const auto ours = engine_logits(path, 512);
    const double error = relative_difference(ours, testing::reference_logits(path, kTokens));
    EXPECT_LT(error, kReferenceTolerance) << name;
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
  EXPECT_LT(error, kReferenceTolerance);
  expect_detects(ours, testing::reference_logits(path, kTokens, {.ignore_window = true}), error,
                 "a missing sliding window");
  expect_detects(ours, testing::reference_logits(path, kTokens, {.swap_rope_pairing = true}), error,
                 "a wrong rope pairing");
  expect_detects(ours, testing::reference_logits(path, kTokens, {.interleave_kv_heads = true}), error,
                 "a wrong head grouping");
}

TEST(ForwardReference, LlamaRopeFreqsMatchThePlainImplementation) {
  testing::TinyModelSpec spec = family("llama");
  spec.rope_factors = true;  // Llama 3.1's rope_freqs.weight
  expect_family_matches(spec, "llama-rope-freqs", {{{.skip_rope_factors = true}, "ignoring rope_freqs"}});
}

TEST(ForwardReference, Qwen2MatchesThePlainImplementation) {
  expect_family_matches(family("qwen2"), "qwen2",
                        {{{.skip_biases = true}, "missing q/k/v biases"},
                         {{.swap_rope_pairing = true}, "a wrong rope pairing"},
                         {{.interleave_kv_heads = true}, "a wrong head grouping"}});
}

TEST(ForwardReference, Qwen3MatchesThePlainImplementation) {
  testing::TinyModelSpec spec = family("qwen3");
  spec.head_dim = 32;  // queries 4 x 32 = 128 wide in a 64-wide stream, as in Qwen 3
  expect_family_matches(spec, "qwen3",
                        {{{.skip_qk_norm = true}, "missing q/k norms"},
                         {{.swap_rope_pairing = true}, "a wrong rope pairing"}});
}

testing::TinyModelSpec phi3() {
  testing::TinyModelSpec spec = family("phi3");
  spec.n_head_kv = 4;  // Phi-3 has no grouped heads
  spec.rope_factors = true;
  spec.rope_original_context = 64;  // the tests' context of 32 is within it: short factors
  spec.rope_attn_factor = 1.19f;    // about Phi-3.5-mini's
  return spec;
}

TEST(ForwardReference, Phi3MatchesThePlainImplementation) {
  expect_family_matches(phi3(), "phi3",
                        {{{.skip_rope_factors = true}, "ignoring the rope factors"},
                         {{.long_rope_factors = true}, "the long rope factors within the original context"},
                         {{.skip_rope_attn_factor = true}, "ignoring rope.scaling.attn_factor"},
                         {{.swap_gate_up_halves = true}, "the fused gate and up halves swapped"},
                         {{.swap_rope_pairing = true}, "a wrong rope pairing"}});
}

TEST(ForwardReference, Phi3TakesTheLongRopeFactorsPastTheOriginalContext) {
  // A context of 128 exceeds the original 64: llama.cpp takes the long factors.
  expect_family_matches(phi3(), "phi3-long", {{{}, "the short rope factors"}}, 128, {.long_rope_factors = true});
}

TEST(ForwardReference, Gemma2MatchesThePlainImplementation) {
  testing::TinyModelSpec spec = family("gemma2");
  spec.n_layer = 4;             // blocks 0 and 2 slide, 1 and 3 are global
  spec.sliding_window = 3;      // fewer than the 12 tokens
  spec.attn_logit_softcap = 4;  // small enough to bend this tiny model's scores
  spec.final_logit_softcap = 2; // and its logits
  expect_family_matches(spec, "gemma2",
                        {{{.ignore_window = true}, "a missing sliding window"},
                         {{.skip_attn_softcap = true}, "uncapped attention scores"},
                         {{.skip_final_softcap = true}, "uncapped logits"},
                         {{.swap_rope_pairing = true}, "a wrong rope pairing"}});
}

TEST(ForwardReference, Gemma27BScalesQueriesByTheWidthPerHead) {
  // llama.cpp's rule: Gemma 2 27B (46 blocks) and Gemma 3 27B (62) scale scores by
  // 1 / sqrt(n_embd / n_head), every other size by 1 / sqrt(head_dim) (0 in the config).
  auto config_of = [](const char* architecture, int64_t n_layer) {
    testing::TinyModelSpec spec = family(architecture);
    spec.n_layer = n_layer;
    spec.head_dim = 32;
    const std::string path = (testing::scratch_dir() / fmt::format("{}-{}.gguf", architecture, n_layer)).string();
    testing::make_tiny_model(spec).write(path);
    return read_model_config(gguf::File::open(path));
  };
  for (const auto& [architecture, blocks_of_27b] : {std::pair{"gemma2", 46}, std::pair{"gemma3", 62}}) {
    const ModelConfig big = config_of(architecture, blocks_of_27b);
    EXPECT_EQ(big.attention_scale, 1.0 / std::sqrt(static_cast<double>(big.n_embd / big.n_head))) << architecture;
    EXPECT_EQ(config_of(architecture, 6).attention_scale, 0.0) << architecture;
  }
  // And the engine applies it: a tiny 46-block Gemma 2 whose n_embd / n_head (16)
  // is not its head_dim (32).
  testing::TinyModelSpec spec = family("gemma2");
  spec.n_layer = 46;
  spec.head_dim = 32;
  spec.sliding_window = 3;
  expect_family_matches(spec, "gemma2-27b-scale", {{{.head_dim_attention_scale = true}, "scaling by 1 / sqrt(head_dim)"}});
}

TEST(ForwardReference, Gpt2MatchesThePlainImplementation) {
  testing::TinyModelSpec spec = family("gpt2");
  spec.n_head_kv = 4;  // GPT-2 has no grouped heads
  expect_family_matches(spec, "gpt2",
                        {{{.skip_biases = true}, "missing biases"},
                         {{.skip_positions = true}, "missing learned positions"}});
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

namespace tiller {
namespace {

// A family's own tensors are checked like every other: absent or of the wrong
// shape, the load fails with one line naming the tensor.
TEST(FamilyTensors, MissingOrMisshapenTensorsAreNamed) {
  struct BadFile {
    const char* architecture;
    std::string tensor;
    bool widen;  // false: omit it
  };
  const BadFile cases[] = {{"llama", "blk.0.ffn_gate.weight", false},     {"qwen2", "blk.0.attn_q.bias", false},
                        {"qwen2", "blk.1.attn_v.bias", true},         {"qwen3", "blk.1.attn_k_norm.weight", false},
                        {"phi3", "blk.0.ffn_up.weight", true},        {"gemma2", "blk.1.post_ffw_norm.weight", false},
                        {"gemma3", "blk.0.attn_q_norm.weight", true}, {"gpt2", "position_embd.weight", false},
                        {"gpt2", "blk.0.attn_qkv.bias", true},        {"gpt2", "blk.1.ffn_norm.bias", false}};
  for (const BadFile& c : cases) {
    testing::TinyModelSpec spec = family(c.architecture);
    (c.widen ? spec.widen_tensor : spec.omit_tensor) = c.tensor;
    const std::string path = (testing::scratch_dir() / fmt::format("bad-{}.gguf", c.architecture)).string();
    testing::make_tiny_model(spec).write(path);
    const std::string expected = fmt::format("tensor '{}' {}", c.tensor, c.widen ? "has shape" : "is missing");
    try {
      Model::load(path);
      ADD_FAILURE() << c.architecture << " loaded without " << c.tensor;
    } catch (const Error& error) {
      const std::string message = error.what();
      EXPECT_NE(message.find(expected), std::string::npos) << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
  }
}

}  // namespace
}  // namespace tiller
