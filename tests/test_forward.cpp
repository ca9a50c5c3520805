// The forward pass on tiny synthetic models: the KV cache, batching and the
// architecture switches behave as they must.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>

#include <fmt/format.h>

#include "support/fixtures.h"
#include "support/run_process.h"
#include "support/test_files.h"
#include "support/tiny_model.h"
#include "common/fail.h"
#include "tiller/model.h"

namespace tiller {
namespace {

double max_difference(std::span<const float> a, std::span<const float> b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(double(a[i]) - b[i]));
  return worst;
}

TEST(Forward, PrefillThenDecodeEqualsOneLongPrefill) {
  testing::TinyModelSpec spec;
  spec.weight_type = TensorType::Q8_0;
  const auto model = testing::load_tiny_model(spec, "kv.gguf");
  const std::vector<TokenId> tokens = {1, 50, 60, 70, 80, 90, 100, 110};
  Session whole(model, 16, 2);
  const auto all = whole.decode(tokens, true);
  Session pieces(model, 16, 1);
  std::vector<float> stitched;
  for (size_t start : {0, 3, 4}) {
    const size_t end = start == 0 ? 3 : start == 3 ? 4 : tokens.size();
    const auto part = pieces.decode(std::span(tokens).subspan(start, end - start), true);
    stitched.insert(stitched.end(), part.begin(), part.end());
  }
  ASSERT_EQ(stitched.size(), all.size());
  EXPECT_LT(max_difference(stitched, all), 1e-4);
  // The last-row-only form is the last row of the full one.
  Session last(model, 16, 2);
  const auto tail = last.decode(tokens, false);
  EXPECT_LT(max_difference(tail, all.last(static_cast<size_t>(model->config().n_vocab))), 1e-4);
}

TEST(Forward, AttentionIsCausal) {
  const auto model = testing::load_tiny_model({}, "causal.gguf");
  Session a(model, 8, 1), b(model, 8, 1);
  const auto first = a.decode(std::vector<TokenId>{5, 6, 7}, true);
  const auto second = b.decode(std::vector<TokenId>{5, 6, 99}, true);
  const auto n_vocab = static_cast<size_t>(model->config().n_vocab);
  // Positions before the changed token see the same logits; the changed one differs.
  EXPECT_LT(max_difference(first.first(2 * n_vocab), second.first(2 * n_vocab)), 1e-6);
  EXPECT_GT(max_difference(first, second), 1e-3);
}

TEST(Forward, ContextOverflowAndBadTokensAreErrors) {
  const auto model = testing::load_tiny_model({}, "limits.gguf");
  Session session(model, 4, 1);
  EXPECT_THROW(session.decode(std::vector<TokenId>{1, 2, 3, 4, 5}, false), Error);
  EXPECT_THROW(session.decode(std::vector<TokenId>{static_cast<TokenId>(model->config().n_vocab)}, false), Error);
  EXPECT_THROW(session.decode(std::vector<TokenId>{}, false), Error);
  session.decode(std::vector<TokenId>{1, 2, 3, 4}, false);
  EXPECT_THROW(session.decode(std::vector<TokenId>{1}, false), Error);
}

TEST(Forward, UnsupportedArchitecturesAreNamed) {
  testing::TinyModelSpec spec;
  spec.architecture = "mamba";
  const std::string path = (testing::scratch_dir() / "mamba.gguf").string();
  testing::make_tiny_model(spec).write(path);
  try {
    Model::load(path);
    FAIL() << "loaded an unsupported architecture";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("architecture 'mamba' is not supported (supported: llama, qwen2, qwen3, phi3, gemma2, gemma3, gpt2)"),
              std::string::npos)
        << error.what();
  }
}

}  // namespace
}  // namespace tiller

namespace tiller {
namespace {

TEST(Forward, HookPointsSeeTheResidualStreamInOrder) {
  const auto model = testing::load_tiny_model({}, "hooks.gguf");
  Session session(model, 8, 1);
  std::map<std::string, std::vector<float>> seen;
  session.set_observer([&](int layer, HookPoint point, const float* rows, int64_t n_rows, int64_t width, int first) {
    EXPECT_EQ(first, 0);
    seen[fmt::format("{}.{}", layer, hook_point_name(point))].assign(rows, rows + n_rows * width);
  });
  session.decode(std::vector<TokenId>{3, 4, 5}, false);
  ASSERT_EQ(seen.size(), static_cast<size_t>(5 * model->config().n_layer));
  // resid_mid = resid_pre + attn_out; resid_post = resid_mid + mlp_out = next block's resid_pre.
  for (int layer = 0; layer < model->config().n_layer; ++layer) {
    const auto& pre = seen[fmt::format("{}.hook_resid_pre", layer)];
    const auto& attn = seen[fmt::format("{}.hook_attn_out", layer)];
    const auto& mid = seen[fmt::format("{}.hook_resid_mid", layer)];
    const auto& mlp = seen[fmt::format("{}.hook_mlp_out", layer)];
    const auto& post = seen[fmt::format("{}.hook_resid_post", layer)];
    for (size_t i = 0; i < pre.size(); ++i) {
      ASSERT_FLOAT_EQ(mid[i], pre[i] + attn[i]);
      ASSERT_FLOAT_EQ(post[i], mid[i] + mlp[i]);
    }
    if (layer + 1 < model->config().n_layer) {
      EXPECT_EQ(post, seen[fmt::format("{}.hook_resid_pre", layer + 1)]);
    }
  }
}

TEST(Forward, DumpWritesNpyFilesAndRejectsUnknownHooks) {
  testing::TinyModelSpec spec;
  const std::string path = (testing::scratch_dir() / "dump.gguf").string();
  testing::make_tiny_model(spec).write(path);
  const std::string out = (testing::scratch_dir() / "dump-out").string();
  const auto ok = testing::run_process(
      {TILLER_BINARY, "dump", "-m", path, "-p", "abc", "--hook", "blocks.*.hook_resid_post,blocks.0.hook_attn_out", "-o", out});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  for (const char* name : {"blocks.0.hook_resid_post.npy", "blocks.1.hook_resid_post.npy", "blocks.0.hook_attn_out.npy"}) {
    EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(out) / name)) << name;
  }
  for (const char* bad : {"blocks.9.hook_resid_post", "blocks.0.hook_nothing", "resid_post", "blocks.x.hook_attn_out"}) {
    const auto result = testing::run_process({TILLER_BINARY, "dump", "-m", path, "-p", "abc", "--hook", bad, "-o", out});
    EXPECT_EQ(result.exit_code, 1) << bad;
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
  }
}

}  // namespace
}  // namespace tiller
