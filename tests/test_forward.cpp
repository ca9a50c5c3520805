// The forward pass on tiny synthetic models: the KV cache, batching and the
// architecture switches behave as they must.
#include <gtest/gtest.h>

#include <cmath>

#include "support/test_files.h"
#include "support/tiny_model.h"
#include "tiller/error.h"
#include "tiller/model.h"

namespace tiller {
namespace {

std::shared_ptr<const Model> tiny_model(const testing::TinyModelSpec& spec, const std::string& name) {
  const std::string path = (testing::scratch_dir() / name).string();
  testing::make_tiny_model(spec).write(path);
  return Model::load(path);
}

double max_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(double(a[i]) - b[i]));
  return worst;
}

TEST(Forward, PrefillThenDecodeEqualsOneLongPrefill) {
  testing::TinyModelSpec spec;
  spec.weight_type = TensorType::Q8_0;
  const auto model = tiny_model(spec, "kv.gguf");
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
  EXPECT_LT(max_difference(tail, std::vector<float>(all.end() - model->config().n_vocab, all.end())), 1e-4);
}

TEST(Forward, AttentionIsCausal) {
  const auto model = tiny_model({}, "causal.gguf");
  Session a(model, 8, 1), b(model, 8, 1);
  const auto first = a.decode(std::vector<TokenId>{5, 6, 7}, true);
  const auto second = b.decode(std::vector<TokenId>{5, 6, 99}, true);
  const auto n_vocab = static_cast<size_t>(model->config().n_vocab);
  // Positions before the changed token see the same logits; the changed one differs.
  EXPECT_LT(max_difference(std::vector<float>(first.begin(), first.begin() + 2 * n_vocab),
                           std::vector<float>(second.begin(), second.begin() + 2 * n_vocab)),
            1e-6);
  EXPECT_GT(max_difference(first, second), 1e-3);
}

TEST(Forward, ContextOverflowAndBadTokensAreErrors) {
  const auto model = tiny_model({}, "limits.gguf");
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
    EXPECT_NE(std::string(error.what()).find("architecture 'mamba' is not supported (supported: llama, gemma3)"),
              std::string::npos)
        << error.what();
  }
}

}  // namespace
}  // namespace tiller
