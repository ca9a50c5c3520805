// The architecture families against llama.cpp, on small random-weight models in the
// shapes of real ones (scripts/make-family-models.py writes them into
// <models>/random/<family>-<type>.gguf; scripts/make-test-models.sh, once) and the
// goldens scripts/make-family-goldens.py made of them with llama.cpp
// (tests/data/families/<family>-<type>.json): next-token distributions on held-out
// texts, the residual stream after every block, and the logits with a control vector
// applied. One case per golden file present.
//
// The bars (the issue's): mean KL(llama.cpp || Tiller) <= max(0.005, llama.cpp's own
// KL between its F32 and F16 KV cache on the same model and texts), top-1 agreement
// at least llama.cpp's own minus 1 point (tests/support/self_agreement.h,
// family_bounds).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "support/base64.h"
#include "support/golden_checks.h"
#include "support/self_agreement.h"
#include "support/sha256.h"
#include "support/test_files.h"
#include "tiller/model.h"
#include "tiller/steer.h"

namespace tiller {
namespace {

using nlohmann::json;

const std::string kFamilies = std::string(TILLER_TEST_DATA) + "/families/";

// The golden files present, by name (<family>-<type>), sorted.
std::vector<std::string> family_goldens() {
  std::vector<std::string> names;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(kFamilies, error)) {
    if (entry.path().extension() == ".json") names.push_back(entry.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

class FamilyGolden : public ::testing::TestWithParam<std::string> {
 protected:
  // The golden, and the model when Tiller loads it; a load failure fails the test
  // with Tiller's message (the families Tiller does not support yet).
  std::shared_ptr<const Model> load(const std::string& path) {
    std::ifstream in(kFamilies + GetParam() + ".json");
    golden_ = json::parse(in);
    static std::map<std::string, std::string> digests;  // each file hashed once per process (3 tests use it)
    if (!digests.count(path)) digests[path] = testing::file_sha256(path);
    const std::string& digest = digests[path];
    if (digest != golden_["header"]["model_sha256"].get<std::string>()) {
      ADD_FAILURE() << path << " is not the model the golden was made from (sha256 " << digest
                    << "): run scripts/make-test-models.sh";
      return nullptr;
    }
    try {
      return Model::load(path);
    } catch (const std::exception& e) {
      std::cout << fmt::format("[ figures ] {}: Tiller cannot load it: {}\n", GetParam(), e.what());
      ADD_FAILURE() << "Tiller cannot load " << GetParam() << ": " << e.what();
      return nullptr;
    }
  }

  SessionOptions session_options() const {
    return {.n_ctx = golden_["header"]["context"]["n_ctx"].get<int>(), .n_threads = 2};
  }

  // Tiller's logits on every entry of `texts` against the goldens, held to the bars
  // from llama.cpp's self-agreement `self` on the same texts.
  void check_texts(const char* what, Session& session, const Model& model, const json& texts, const json& self) {
    testing::LogitAgreement agreement;
    const auto top_k = golden_["header"]["top_k"].get<size_t>();
#ifdef TILLER_SANITIZED
    const size_t n_texts = 1;  // some ten times slower: the release build checks them all
    std::cout << fmt::format("[ note ] sanitizer build: {} {}: 1 of {} texts\n", GetParam(), what, texts.size());
#else
    const size_t n_texts = texts.size();
#endif
    for (size_t i = 0; i < n_texts; ++i) {
      testing::add_golden_entry(session, texts[i]["ids"].get<std::vector<TokenId>>(), texts[i],
                                static_cast<size_t>(model.config().n_vocab), top_k, {&agreement});
    }
    const auto llama = testing::self_agreement_totals(self["texts"], n_texts);
    ASSERT_EQ(llama.positions, agreement.positions);
    const auto bounds = testing::family_bounds(llama);
    std::cout << fmt::format("[ figures ] {} {}: {} positions: mean KL {:.5f} (max {:.4f}, bound {:.5f}), top-1 "
                             "{:.2f}% (bound {:.2f}%); {}\n",
                             GetParam(), what, agreement.positions, agreement.mean_kl(), agreement.kl_worst,
                             bounds.max_mean_kl, 100 * agreement.top1(), 100 * bounds.min_top1, bounds.why);
    EXPECT_LE(agreement.mean_kl(), bounds.max_mean_kl) << what;
    if (n_texts == texts.size()) {
      EXPECT_GE(agreement.top1(), bounds.min_top1) << what;
    } else {
      // The top-1 bar is the over all the golden's positions (the release build
      // checks it there). On one text of some 200 positions a single disagreement moves
      // top-1 by half a point, and these random models flip a few near-ties more than
      // the whole set's average: measured 98.44% against 99% on one gemma3-F16 text whose
      // 4 texts give 99.20%. So a subset run holds the mean KL to the bar and prints top-1.
      std::cout << fmt::format("[ note ] {} {}: top-1 is held to its bar over all {} texts (release build)\n",
                               GetParam(), what, texts.size());
    }
  }

  json golden_;
};

// Hidden-state bounds, on |ours - theirs| / |theirs| per position. Block 0 agrees to
// float rounding: 1e-7 with F32 and quantized weights (both engines quantize the
// activations alike for Q8_0 and K-quant products) and some 7e-4 with F16 weights,
// whose products llama.cpp takes with the activations rounded to F16 (2^-12 relative
// per element); measured at most 1.3e-3 (a few positions' 8-bit rounding flips,
// gemma3-Q8_0). Later blocks drift as such flips accumulate: the mean over positions
// reached 8.6e-3 at gemma3-Q4_K's last block. A real mistake (a wrong norm, rope,
// scale or bias) moves every position by 1e-1 or more.
constexpr double kBlock0Median = 5e-3;
constexpr double kAnyBlockMean = 0.05;

#define TILLER_REQUIRE_RANDOM_MODEL(path_variable) \
  TILLER_REQUIRE_MODEL_FILE(path_variable, "random/" + GetParam(), "run scripts/make-test-models.sh")

TEST_P(FamilyGolden, NextTokenDistributionsMatchLlamaCpp) {
  TILLER_REQUIRE_RANDOM_MODEL(path);
  const auto model = load(path);
  if (!model) return;
  ASSERT_EQ(golden_["header"]["n_vocab"].get<int64_t>(), model->config().n_vocab);
  Session session(model, session_options());
  check_texts("texts", session, *model, golden_["texts"], golden_["self_agreement"]);
}

// The stream after every block against llama.cpp's l_out-<L>, for one short text.
// Relative to the stream's own size, row by row, as the real models' hidden-state
// test measures it.
TEST_P(FamilyGolden, HiddenStatesMatchLlamaCpp) {
  TILLER_REQUIRE_RANDOM_MODEL(path);
  const auto model = load(path);
  if (!model) return;
  const json& hidden = golden_["hidden"];
  const auto ids = hidden["ids"].get<std::vector<TokenId>>();
  std::map<int, std::vector<float>> ours;
  Session session(model, session_options());
  session.set_observer([&](int layer, HookPoint point, const float* rows, int64_t n_rows, int64_t width, int) {
    if (point == HookPoint::ResidPost) ours[layer].assign(rows, rows + n_rows * width);
  });
  session.decode(ids, false);
  const auto width = static_cast<size_t>(model->config().n_embd);
  ASSERT_EQ(hidden["tensors"].size(), static_cast<size_t>(model->config().n_layer));
  std::string figures;
  double worst_mean = 0, block0_median = 0;
  for (const auto& tensor : hidden["tensors"]) {
    const auto name = tensor["name"].get<std::string>();
    const int layer = std::stoi(name.substr(std::string("l_out-").size()));
    const auto theirs = testing::base64_array<float>(tensor["data"].get<std::string>());
    ASSERT_EQ(ours[layer].size(), theirs.size()) << name;
    const auto errors = testing::row_relative_errors(ours[layer], theirs, width);
    ASSERT_EQ(errors.size(), ids.size());
    worst_mean = std::max(worst_mean, testing::mean_of(errors));
    if (layer == 0) block0_median = testing::median_of(errors);
    figures += fmt::format(" {}:{:.1e}", layer, testing::mean_of(errors));
  }
  std::cout << fmt::format("[ figures ] {} hidden: {} tokens, mean relative error of resid_post per block{}; "
                           "largest {:.2e} (bound {}); block 0 median {:.2e} (bound {})\n",
                           GetParam(), ids.size(), figures, worst_mean, kAnyBlockMean, block0_median, kBlock0Median);
  EXPECT_LT(worst_mean, kAnyBlockMean);
  EXPECT_LT(block0_median, kBlock0Median);
}

// The family's control vector (tests/data/families/<family>-cvec.gguf, scale 1, blocks
// 1..n_layer-1) applied by Tiller as by llama.cpp's llama_set_adapter_cvec.
TEST_P(FamilyGolden, SteeredLogitsMatchLlamaCpp) {
  TILLER_REQUIRE_RANDOM_MODEL(path);
  const auto model = load(path);
  if (!model) return;
  const json& steering = golden_["steering"];
  // The golden is worth checking only if the vector changes llama.cpp's output.
  EXPECT_GT(steering["kl_vs_unsteered_mean"].get<double>(), 0.01);
  Session session(model, session_options());
  SteeringBinding binding(testing::golden_steering({{kFamilies + steering["file"].get<std::string>(),
                                                     steering["scale"].get<float>()}},
                                                   steering["layer_start"].get<int>(),
                                                   steering["layer_end"].get<int>(), model->config()),
                          session);
  check_texts("steered", session, *model, steering["texts"], steering["self_agreement"]);
}

INSTANTIATE_TEST_SUITE_P(RandomModels, FamilyGolden, ::testing::ValuesIn(family_goldens()),
                         testing::model_test_name);

}  // namespace
}  // namespace tiller
