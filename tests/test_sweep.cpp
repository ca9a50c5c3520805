// tiller sweep's engine: a packed pass started at block L from the residual an
// unsteered pass captured there (Session::decode_packed_from), and packed copies
// of a text steered each with its own coefficient (eval/packed_steering.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <optional>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "common/fail.h"
#include "eval/packed_steering.h"
#include "support/run_process.h"
#include "support/fixtures.h"
#include "support/test_files.h"
#include "support/tiny_model.h"
#include "tiller/control_vector.h"
#include "tiller/engine.h"
#include "tiller/model.h"
#include "tiller/steer.h"
#include "tiller/steering_spec.h"
#include "tiller/sweep.h"

namespace tiller {
namespace {

std::vector<testing::TinyModelSpec> tiny_specs() {
  testing::TinyModelSpec llama;
  llama.n_layer = 4;
  testing::TinyModelSpec gemma;
  gemma.architecture = "gemma3";
  gemma.n_layer = 6;  // blocks 0-4 slide over a window of 4, block 5 is global
  gemma.sliding_window = 4;
  return {llama, gemma};
}

// Comparisons across packings run on testing::row_kernel_engine(): there a row's
// logits do not depend on what else is packed with it.
using testing::row_kernel_engine;

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
    const auto model = testing::load_tiny_model(spec, fmt::format("sweep-from-{}.gguf", spec.architecture));
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
          if (steered) {
            binding.emplace(front_addition(spec.n_embd, steered_block, 3000.0f, 1), session, PromptLayout{0, 64, 0});
          }
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
   for (const bool best : {false, true}) {
    if (best && best_kernel_level() <= KernelLevel::Avx2) continue;  // the same engine as the row kernels
    const auto model = testing::load_tiny_model(spec, fmt::format("sweep-copies-{}.gguf", spec.architecture));
    const auto engine = best ? Engine::create({.n_threads = 2, .kernels = best_kernel_level()}) : row_kernel_engine();
    const int64_t n_vocab = spec.n_vocab, width = spec.n_embd;
    const Packed text = random_packed({11}, n_vocab, 9);
    const int n = text.lengths[0];
    // The tiny models' stream is ~1e4 in size (tests/test_steering.cpp): coefficients to match.
    const std::vector<float> coefs{-4000.0f, 0.0f, 1000.0f, 8000.0f};
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
        // rows in the matmuls differs (4 x 11 against 11), which row kernels compute
        // row by row: measured 0 (bit for bit). The bound leaves one part in 1e5 of
        // the largest logit for a kernel that sums a row otherwise by its place in
        // the batch; a copy that saw another copy's rows or coefficient would be off
        // by whole units.
        if (!best) {
          EXPECT_LE(worst, 1e-5 * scale) << "coefficient " << coefs[k] << ": " << worst << " of " << scale;
        } else {
          // The tiled kernels round a 44-row matmul otherwise than an 11-row one, and
          // an activation's 8-bit quantization may then step: reported, and bounded
          // only loosely (a tenth of the largest logit: a copy steered with another
          // coefficient is off by about the whole of it).
          std::cout << fmt::format("[ figures ] {} block {} coef {} {} kernels: worst |logit diff| {:.3g} of {:.3g}\n",
                                   spec.architecture, layer, coefs[k], kernel_level_name(best_kernel_level()), worst,
                                   scale);
          EXPECT_LE(worst, 0.1 * scale);
        }
      }
    }
   }
  }
}

TEST(Sweep, PackedPassFromRejectsBadInput) {
  const auto model = testing::load_tiny_model(tiny_specs()[0], "sweep-bad.gguf");
  Session session(model, Engine::create({.n_threads = 1, .kernels = std::nullopt}), {.n_ctx = 16});
  const std::vector<float> rows(3 * 64, 0.0f);
  const std::vector<int> three{3}, four{4};
  EXPECT_THROW(session.decode_packed_from(9, rows, three, Session::PackedLogits::All), Error);
  EXPECT_THROW(session.decode_packed_from(0, std::span(rows).first(100), three, Session::PackedLogits::All), Error);
  EXPECT_THROW(session.decode_packed_from(0, rows, four, Session::PackedLogits::All), Error);
  EXPECT_EQ(session.decode_packed_from(1, rows, three, Session::PackedLogits::LastOfEach).size(), 260u);
}

// The texts of one half (even or odd indices), as the sweep splits them.
std::vector<std::string> half_of(const std::vector<std::string>& texts, int half) {
  std::vector<std::string> out;
  for (size_t i = static_cast<size_t>(half); i < texts.size(); i += 2) out.push_back(texts[i]);
  return out;
}

// Every cell's figures against evaluate() of the cell's steering on the same half,
// both on row kernels (row_kernel_engine). They pack otherwise (the sweep a text's
// coefficient copies from a captured residual, evaluate() several texts from the
// embeddings) but compute every row with the same arithmetic, so the logits are the
// same bits and the figures differ only by the order of their double sums (~1e-15;
// measured: 0). 1e-9 leaves room for that; a cell steered with another coefficient,
// block or text differs by orders of magnitude more.
void expect_cells_match_evaluate(const SweepSpec& spec, const std::vector<SweepCell>& cells,
                                 const std::shared_ptr<const Model>& model, const std::shared_ptr<Engine>& engine,
                                 size_t max_cells) {
  constexpr double kTolerance = 1e-9;
  double worst = 0;
  for (size_t i = 0; i < std::min(max_cells, cells.size()); ++i) {
    const SweepCell& cell = cells[i];
    const auto steering = compile_steering(cell.steering, model, {.engine = engine, .lookup_name = {}, .resolve_name = {}});
    for (int half = 0; half < 2; ++half) {
      SCOPED_TRACE(fmt::format("cell {} ({}, {}) half {}", i, cell.row, cell.column, half));
      EvalSpec part = spec.eval;
      part.on_topic = half_of(spec.eval.on_topic, half);
      part.off_topic = half_of(spec.eval.off_topic, half);
      part.neutral = half_of(spec.eval.neutral, half);
      if (part.topic) part.topic->prompts = half_of(spec.eval.topic->prompts, half);
      std::vector<AbQuestion> ab;
      for (size_t q = static_cast<size_t>(half); q < spec.eval.ab.size(); q += 2) ab.push_back(spec.eval.ab[q]);
      part.ab = ab;
      const EvalResult expected = evaluate(part, model, engine, steering);
      const EvalResult& got = cell.halves[static_cast<size_t>(half)];
      auto near = [&](double a, double b, const char* what) {
        worst = std::max(worst, std::fabs(a - b));
        EXPECT_NEAR(a, b, kTolerance) << what;
      };
      for (const auto& [e, g] : {std::pair{&expected.on_topic, &got.on_topic}, std::pair{&expected.off_topic, &got.off_topic}}) {
        ASSERT_EQ(e->has_value(), g->has_value());
        if (!e->has_value()) continue;
        near((*e)->logprob_unsteered, (*g)->logprob_unsteered, "logprob_unsteered");
        near((*e)->logprob_steered, (*g)->logprob_steered, "logprob_steered");
        near((*e)->delta, (*g)->delta, "delta");
        EXPECT_EQ((*e)->tokens, (*g)->tokens);
      }
      ASSERT_EQ(expected.damage_kl.has_value(), got.damage_kl.has_value());
      if (expected.damage_kl) near(*expected.damage_kl, *got.damage_kl, "damage_kl");
      ASSERT_EQ(expected.ab.has_value(), got.ab.has_value());
      if (expected.ab) near(expected.ab->p_steered, got.ab->p_steered, "ab");
      ASSERT_EQ(expected.topic.has_value(), got.topic.has_value());
      if (expected.topic) {
        EXPECT_EQ(expected.topic->samples_steered, got.topic->samples_steered);
      }
      ASSERT_EQ(expected.fluency.has_value(), got.fluency.has_value());
    }
  }
  std::cout << "sweep cells against evaluate(): worst difference " << worst << "\n";
}

std::vector<std::string> letters(int count, int length, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> letter('a', 'z');
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) {
    std::string text;
    for (int j = 0; j < length + i % 5; ++j) text += static_cast<char>(letter(rng));
    out.push_back(text);
  }
  return out;
}

SweepSpec tiny_sweep() {
  SweepSpec spec;
  spec.eval.on_topic = letters(5, 9, 1);
  spec.eval.off_topic = letters(4, 7, 2);
  spec.eval.neutral = letters(3, 8, 3);
  spec.actadd = SweepSpec::ActAddGrid{"ab", "abcd", {0, 1, 3}, {-2.0f, 1.0f, 4.0f}, FrontAlign::Context};
  return spec;
}

TEST(Sweep, EveryCellEqualsEvaluateOfItsSteeringOnTinyModels) {
  for (const auto& model_spec : tiny_specs()) {
    SCOPED_TRACE(model_spec.architecture);
    const auto model = testing::load_tiny_model(model_spec, fmt::format("sweep-eval-{}.gguf", model_spec.architecture));
    const auto engine = row_kernel_engine();
    const SweepSpec spec = tiny_sweep();
    std::vector<std::pair<size_t, size_t>> order;
    const auto cells = run_sweep(spec, model, engine, {.done = {}, .on_cell = [&](const SweepCell& c) {
                                                         order.emplace_back(c.row, c.column);
                                                       }, .progress = {}, .n_ctx = 0, .stop_after = 0});
    ASSERT_EQ(cells.size(), 9u);
    EXPECT_EQ(order.size(), 9u);
    for (size_t i = 0; i < cells.size(); ++i) {
      EXPECT_EQ(cells[i].row, i / 3);
      EXPECT_EQ(cells[i].column, i % 3);
      EXPECT_EQ(cells[i].steering, spec.cell_steering(i / 3, i % 3));
    }
    expect_cells_match_evaluate(spec, cells, model, engine, cells.size());
    // A resumed run keeps what it is given and measures the rest to the same figures.
    const auto first_four = run_sweep(spec, model, engine, {.done = {}, .on_cell = {}, .progress = {}, .n_ctx = 0, .stop_after = 4});
    ASSERT_EQ(first_four.size(), 4u);
    const auto resumed = run_sweep(spec, model, engine, {.done = first_four, .on_cell = {}, .progress = {}, .n_ctx = 0, .stop_after = 0});
    ASSERT_EQ(resumed.size(), 9u);
    for (size_t i = 0; i < 9; ++i) EXPECT_EQ(sweep_cell_to_json(resumed[i]), sweep_cell_to_json(cells[i])) << i;
    // And a cell survives its JSON line.
    EXPECT_EQ(sweep_cell_to_json(sweep_cell_from_json(sweep_cell_to_json(cells[4]))), sweep_cell_to_json(cells[4]));
  }
}

TEST(Sweep, ControlVectorGridCellsEqualEvaluate) {
  // Control vectors add at hook_resid_post of every block of their range: a row
  // starts at the range's first block. Random directions at the stream's scale (~1e4).
  for (const auto& model_spec : tiny_specs()) {
    SCOPED_TRACE(model_spec.architecture);
    const auto model = testing::load_tiny_model(model_spec, fmt::format("sweep-cv-{}.gguf", model_spec.architecture));
    ControlVector vector;
    vector.model_hint = model_spec.architecture;
    vector.n_embd = model_spec.n_embd;
    std::mt19937 rng(5);
    std::normal_distribution<float> normal(0.0f, 300.0f);
    for (int block = 0; block < model_spec.n_layer; ++block) {
      auto& d = vector.directions[block];
      for (int64_t i = 0; i < model_spec.n_embd; ++i) d.push_back(normal(rng));
    }
    const auto vector_path = testing::scratch_dir() / fmt::format("sweep-cv-{}-vector.gguf", model_spec.architecture);
    write_control_vector(vector_path.string(), vector);
    SweepSpec spec = tiny_sweep();
    spec.actadd.reset();
    spec.control_vector = SweepSpec::ControlVectorGrid{vector_path.string(), {-1.0f, 2.0f}, {{0, 0}, {1, 2}, {3, 3}}};
    const auto engine = row_kernel_engine();
    const auto cells = run_sweep(spec, model, engine);
    ASSERT_EQ(cells.size(), 6u);
    EXPECT_EQ(spec.row_label(1), "blocks 1-2");
    EXPECT_NE(cells[2].halves[0].damage_kl, cells[3].halves[0].damage_kl);
    EXPECT_GT(*cells[1].halves[0].damage_kl, 0.0);
    expect_cells_match_evaluate(spec, cells, model, engine, cells.size());
  }
}

TEST(Sweep, OnSmolLM2OneCellEqualsEvaluate) {
  TILLER_REQUIRE_MODEL(path, "smollm2-135m-instruct");
  const auto model = Model::load(path);
  const auto engine = row_kernel_engine();
  SweepSpec spec;
  spec.eval.on_topic = {"The wedding was held in June, and the bride wore her mother's dress.",
                        "Guests threw rice as the newlyweds left the chapel.",
                        "They planned the wedding reception for two hundred guests."};
  spec.eval.off_topic = {"The stock market fell sharply on Tuesday.", "Photosynthesis turns light into sugar."};
  spec.eval.neutral = {"The train left the station at noon.", "She opened the window and looked outside."};
  // The metrics that go through evaluate() per cell and half, small.
  spec.eval.ab = {{"Do you like weddings?", "Yes", "No", 'A'}, {"Is a wedding boring?", "Yes", "No", 'B'}};
  spec.eval.topic = EvalSpec::Topic{};
  spec.eval.topic->prompts = {"I went up to my friend and said", "Yesterday"};
  spec.eval.topic->words = {"wed", "bride"};
  spec.eval.topic->samples = 1;
  spec.eval.topic->max_tokens = 6;
  spec.eval.fluency = true;  spec.actadd = SweepSpec::ActAddGrid{" weddings", "", {6}, {4.0f, 8.0f}, FrontAlign::Context};
  const auto cells = run_sweep(spec, model, engine);
  ASSERT_EQ(cells.size(), 2u);
  expect_cells_match_evaluate(spec, cells, model, engine, 1);
  EXPECT_NE(cells[0].halves[0].on_topic->delta, cells[1].halves[0].on_topic->delta) << "the coefficient matters";
}

TEST(Sweep, SpecFromJsonAndTheSelectionRule) {
  const std::string spec_text = R"({"likelihood": {"on_topic": ["abcdefg", "hijklmn"], "off_topic": ["opqrstu"]},
    "damage": {"texts": ["vwxyzab"]},
    "sweep": {"actadd": {"positive": "ab", "negative": "", "blocks": [0, 1], "coefs": [1, 2.5]}},
    "select": {"max_damage_kl": 0.25, "min_fluency_delta": null}})";
  const SweepSpec spec = SweepSpec::from_json(spec_text);
  EXPECT_EQ(spec.rows(), 2u);
  EXPECT_EQ(spec.columns(), 2u);
  EXPECT_EQ(spec.select.objective, SweepSpec::Objective::Likelihood);
  EXPECT_EQ(spec.select.max_damage_kl, 0.25);
  EXPECT_FALSE(spec.select.min_fluency_delta.has_value());
  EXPECT_EQ(spec.cell_steering(1, 1).actadd.at(0).layer, 1);
  EXPECT_EQ(spec.cell_steering(1, 1).actadd.at(0).coef, 2.5f);
  EXPECT_EQ(spec.cell_steering(1, 1).actadd.at(0).align, FrontAlign::Context);
  EXPECT_EQ(spec.row_label(1), "block 1");
  EXPECT_EQ(spec.column_label(1), "coef 2.5");
  for (const char* bad : {R"({"likelihood": {"on_topic": ["ab"]}})",
                          R"({"likelihood": {"on_topic": ["ab"]}, "sweep": {"actadd": {"positive": "a", "negative": "", "blocks": [], "coefs": [1]}}})",
                          R"({"likelihood": {"on_topic": ["ab"]}, "sweep": {"actadd": {"positive": "a", "negative": "", "blocks": [1], "coefs": [1], "colour": 1}}})",
                          R"({"likelihood": {"on_topic": ["ab"]}, "sweep": {"control_vector": {"path": "v.gguf", "scales": [1]}}, "select": {"objective": "ab"}})",
                          R"({"likelihood": {"on_topic": ["ab"]}, "steering": {}, "sweep": {"control_vector": {"path": "v.gguf", "scales": [1]}}})"}) {
    EXPECT_THROW(SweepSpec::from_json(bad), Error) << bad;
  }
  // The rule: the largest half-0 effect among admissible cells; damage over the bound excludes.
  auto cell = [](double on, double off, double kl) {
    SweepCell c;
    for (auto& h : c.halves) {
      h.on_topic = EvalResult::Likelihood{0, on, on, std::exp(-on), 10};
      h.off_topic = EvalResult::Likelihood{0, off, off, std::exp(-off), 10};
      h.damage_kl = kl;
    }
    return c;
  };
  // The effect is the on-topic gain less any off-topic loss (an off-topic gain is not credited).
  const std::vector<SweepCell> cells{cell(0.5, 0.0, 0.1), cell(2.0, 0.1, 0.9), cell(1.0, -0.2, 0.2),
                                     cell(1.1, 0.3, 0.25), cell(0.4, -1.0, 0.1)};
  EXPECT_NEAR(*sweep_effect(spec, cells[2].halves[0]), 0.8, 1e-12);
  EXPECT_NEAR(*sweep_effect(spec, cells[3].halves[0]), 1.1, 1e-12);
  EXPECT_NEAR(*sweep_effect(spec, cells[4].halves[0]), -0.6, 1e-12);  // not on - off = 1.4
  const auto choice = choose_cell(spec, cells);
  ASSERT_TRUE(choice.has_value());
  EXPECT_EQ(choice->cell, 3u);  // effect 1.1; cell 1's 2.0 has damage 0.9 > 0.25
  EXPECT_NEAR(choice->effect, 1.1, 1e-12);
}

TEST(Sweep, CommandResumesAnInterruptedSweepToTheSameResult) {
  const auto model_path = testing::scratch_dir() / "sweep-cli.gguf";
  testing::make_tiny_model(tiny_specs()[0]).write(model_path.string());
  const auto spec_path = testing::scratch_dir() / "sweep-cli.json";
  std::ofstream(spec_path) << R"({"likelihood": {"on_topic": ["abcdefghij", "klmnopqrs", "tuvwxyzab"],
    "off_topic": ["qwertyuiop", "asdfghjkl"]}, "damage": {"texts": ["zxcvbnmasd", "poiuytrewq"]},
    "sweep": {"actadd": {"positive": "ab", "negative": "abcd", "blocks": [0, 2, 3], "coefs": [-1, 2, 6]}}})";
  const auto whole = testing::scratch_dir() / "sweep-whole", cut = testing::scratch_dir() / "sweep-cut";
  auto sweep = [&](const std::filesystem::path& out, std::vector<std::string> extra) {
    std::vector<std::string> argv{TILLER_BINARY, "sweep", spec_path.string(), "-m", model_path.string(), "-t", "2",
                                  "--out", out.string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return testing::run_process(argv);
  };
  const auto full = sweep(whole, {"--json"});
  ASSERT_EQ(full.exit_code, 0) << full.err;
  const auto stopped = sweep(cut, {"--stop-after", "4"});
  ASSERT_EQ(stopped.exit_code, 0) << stopped.err;
  EXPECT_FALSE(std::filesystem::exists(cut / "sweep.json"));
  const auto resumed = sweep(cut, {"--json"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("(4 resumed)"), std::string::npos) << resumed.err;
  auto read = [](const std::filesystem::path& p) {
    std::ifstream in(p);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  EXPECT_EQ(read(cut / "sweep.json"), read(whole / "sweep.json"));
  EXPECT_EQ(read(cut / "sweep.csv"), read(whole / "sweep.csv"));
  EXPECT_EQ(nlohmann::json::parse(full.out)["cells"].size(), 9u);
  // A folder made for another spec is refused with one line.
  std::ofstream(spec_path) << R"({"likelihood": {"on_topic": ["abcdefghij"]},
    "sweep": {"actadd": {"positive": "ab", "negative": "", "blocks": [0], "coefs": [1]}}})";
  const auto other = sweep(whole, {});
  EXPECT_NE(other.exit_code, 0);
  EXPECT_NE(other.err.find("made for another spec or model"), std::string::npos) << other.err;
  EXPECT_EQ(std::count(other.err.begin(), other.err.end(), '\n'), 1) << other.err;
}

}  // namespace
}  // namespace tiller
