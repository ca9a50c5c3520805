// tiller sweep's engine: a packed pass started at block L from the residual an
// unsteered pass captured there (Session::decode_packed_from), and packed copies
// of a text steered each with its own coefficient (eval/packed_steering.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <random>

#include <fmt/format.h>

#include "common/fail.h"
#include "eval/packed_steering.h"
#include "support/test_files.h"
#include "support/tiny_model.h"
#include "tiller/engine.h"
#include "tiller/model.h"
#include "tiller/steer.h"

namespace tiller {
namespace {

std::shared_ptr<const Model> tiny_model(const testing::TinyModelSpec& spec, const std::string& name) {
  const std::string path = (testing::scratch_dir() / name).string();
  testing::make_tiny_model(spec).write(path);
  return Model::load(path);
}

std::vector<testing::TinyModelSpec> tiny_specs() {
  testing::TinyModelSpec llama;
  llama.n_layer = 4;
  testing::TinyModelSpec gemma;
  gemma.architecture = "gemma3";
  gemma.n_layer = 6;  // blocks 0-4 slide over a window of 4, block 5 is global
  gemma.sliding_window = 4;
  return {llama, gemma};
}

// One steering: a two-row front-aligned addition (ActAdd's shape) at blocks.layer.hook_resid_pre.
std::shared_ptr<const Steering> front_addition(int64_t width, int layer, float coefficient, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Intervention v;
  v.layer = layer;
  v.point = HookPoint::ResidPre;
  v.where = PositionSelector::front();
  v.align = FrontAlign::Context;
  v.n_rows = 2;
  v.coefficient = coefficient;
  for (int64_t i = 0; i < 2 * width; ++i) v.vectors.push_back(normal(rng));
  auto steering = std::make_shared<Steering>(width);
  steering->add(std::move(v));
  return steering;
}

struct Packed {
  std::vector<TokenId> tokens;
  std::vector<int> lengths;
};

Packed random_packed(const std::vector<int>& lengths, int64_t n_vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<TokenId> token(0, static_cast<TokenId>(n_vocab - 1));
  Packed p{{}, lengths};
  for (const int length : lengths) {
    for (int i = 0; i < length; ++i) p.tokens.push_back(token(rng));
  }
  return p;
}

// The stream at blocks.layer.hook_resid_pre of every row of a packed pass.
std::vector<float> capture_resid_pre(Session& session, const Packed& p, int layer) {
  const int64_t width = session.model().config().n_embd;
  std::vector<float> rows(p.tokens.size() * static_cast<size_t>(width));
  session.set_observer([&](int l, HookPoint point, const float* data, int64_t n, int64_t w, int first) {
    if (l != layer || point != HookPoint::ResidPre) return;
    std::copy_n(data, n * w, rows.begin() + static_cast<std::ptrdiff_t>(first) * w);  // first: the row's slot
  });
  session.decode_packed(p.tokens, p.lengths, Session::PackedLogits::None);
  session.set_observer({});
  return rows;
}

TEST(Sweep, PackedPassFromACapturedBlockEqualsTheWholePass) {
  for (const auto& spec : tiny_specs()) {
    const auto model = tiny_model(spec, fmt::format("sweep-from-{}.gguf", spec.architecture));
    const auto engine = Engine::create({.n_threads = 2, .kernels = std::nullopt});
    const Packed p = random_packed({5, 1, 9, 3, 12}, spec.n_vocab, 7);
    for (const int batch : {512, 8}) {  // one chunk, and chunks that cut sequences
      Session session(model, engine, {.n_ctx = 64, .n_batch = batch});
      for (int layer = 0; layer < spec.n_layer; ++layer) {
        // No steering (-1), one at the start block, one at the last block: none changes the prefix.
        for (const int steered_block : {-1, layer, static_cast<int>(spec.n_layer) - 1}) {
          const bool steered = steered_block >= 0;
          SCOPED_TRACE(fmt::format("{} n_batch {} block {} steered at {}", spec.architecture, batch, layer, steered_block));
          const auto residual = capture_resid_pre(session, p, layer);
          std::optional<SteeringBinding> binding;
          if (steered) binding.emplace(front_addition(spec.n_embd, steered_block, 3.0f, 1), session);
          const auto whole_view = session.decode_packed(p.tokens, p.lengths, Session::PackedLogits::All);
          const std::vector<float> whole(whole_view.begin(), whole_view.end());
          const auto from = session.decode_packed_from(layer, residual, p.lengths, Session::PackedLogits::All);
          ASSERT_EQ(from.size(), whole.size());
          // The same kernels on the same rows in the same chunks: bit for bit.
          EXPECT_TRUE(std::equal(whole.begin(), whole.end(), from.begin()));
          if (steered) {  // and the steering did change something
            binding.reset();
            const auto plain = session.decode_packed(p.tokens, p.lengths, Session::PackedLogits::All);
            EXPECT_FALSE(std::equal(whole.begin(), whole.end(), plain.begin()));
          }
        }
      }
    }
  }
}

TEST(Sweep, PackedCopiesSteeredEachWithItsCoefficientMatchTheTextAlone) {
  for (const auto& spec : tiny_specs()) {
    const auto model = tiny_model(spec, fmt::format("sweep-copies-{}.gguf", spec.architecture));
    const auto engine = Engine::create({.n_threads = 2, .kernels = std::nullopt});
    const int64_t n_vocab = spec.n_vocab, width = spec.n_embd;
    const Packed text = random_packed({11}, n_vocab, 9);
    const int n = text.lengths[0];
    const std::vector<float> coefs{-4.0f, 0.0f, 1.0f, 8.0f};
    for (int layer = 0; layer < spec.n_layer; ++layer) {
      SCOPED_TRACE(fmt::format("{} block {}", spec.architecture, layer));
      Session session(model, engine, {.n_ctx = 64});
      const auto residual = capture_resid_pre(session, text, layer);
      std::vector<float> copies;
      std::vector<int> lengths;
      std::vector<std::shared_ptr<const Steering>> steerings;
      for (size_t k = 0; k < coefs.size(); ++k) {
        copies.insert(copies.end(), residual.begin(), residual.end());
        lengths.push_back(n);
        steerings.push_back(front_addition(width, layer, coefs[k], 1));
      }
      std::vector<float> packed;
      {
        PackedSteering steer(session, steerings, std::vector<PromptLayout>(coefs.size(), PromptLayout{0, n, 0}));
        const auto logits = session.decode_packed_from(layer, copies, lengths, Session::PackedLogits::All);
        packed.assign(logits.begin(), logits.end());
      }
      for (size_t k = 0; k < coefs.size(); ++k) {
        Session alone(model, engine, {.n_ctx = 64});
        SteeringBinding binding(steerings[k], alone, PromptLayout{0, n, 0});
        const auto logits = alone.decode(text.tokens, true);
        double worst = 0, scale = 0;
        for (size_t i = 0; i < logits.size(); ++i) {
          worst = std::max(worst, std::fabs(double(logits[i]) - packed[k * logits.size() + i]));
          scale = std::max(scale, std::fabs(double(logits[i])));
        }
        // Each copy is the text's rows with its own steering; only the number of
        // rows in the matmuls differs (4 x 11 against 11), which the tiled AVX-512
        // kernels may sum in another order: one part in 1e5 of the largest logit
        // bounds that rounding (measured here: 0 with row kernels). A copy that saw
        // another copy's rows or coefficient would be off by whole units.
        EXPECT_LE(worst, 1e-5 * scale) << "coefficient " << coefs[k] << ": " << worst << " of " << scale;
      }
    }
  }
}

TEST(Sweep, PackedPassFromRejectsBadInput) {
  const auto model = tiny_model(tiny_specs()[0], "sweep-bad.gguf");
  Session session(model, Engine::create({.n_threads = 1, .kernels = std::nullopt}), {.n_ctx = 16});
  const std::vector<float> rows(3 * 64, 0.0f);
  const std::vector<int> three{3}, four{4};
  EXPECT_THROW(session.decode_packed_from(9, rows, three, Session::PackedLogits::All), Error);
  EXPECT_THROW(session.decode_packed_from(0, std::span(rows).first(100), three, Session::PackedLogits::All), Error);
  EXPECT_THROW(session.decode_packed_from(0, rows, four, Session::PackedLogits::All), Error);
  EXPECT_EQ(session.decode_packed_from(1, rows, three, Session::PackedLogits::LastOfEach).size(), 260u);
}

}  // namespace
}  // namespace tiller
