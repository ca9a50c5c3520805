// The steering flags of `tiller run`, `logits` and `dump`: what they do on a real
// model, and one-line errors for bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "support/run_process.h"
#include "support/test_files.h"
#include "support/tiny_model.h"
#include "tiller/actadd.h"
#include "tiller/control_vector.h"
#include "tiller/model.h"
#include "tiller/steer.h"

namespace tiller {
namespace {

using json = nlohmann::json;

std::string tiny_control_vector(const std::string& name, int64_t width, std::map<int, float> blocks) {
  ControlVector vector;
  vector.n_embd = width;
  for (const auto& [block, value] : blocks) vector.directions[block] = std::vector<float>(size_t(width), value);
  const std::string path = (testing::scratch_dir() / name).string();
  write_control_vector(path, vector);
  return path;
}

TEST(SteeringCommand, BadInputGetsOneLine) {
  const std::string model = (testing::scratch_dir() / "steer-cli.gguf").string();
  testing::make_tiny_model({}).write(model);  // width 64, 2 blocks
  const std::string good = tiny_control_vector("good.gguf", 64, {{1, 0.5f}});
  const std::string narrow = tiny_control_vector("narrow.gguf", 32, {{1, 0.5f}});
  const std::string deep = tiny_control_vector("deep.gguf", 64, {{1, 0.5f}, {5, 0.5f}});
  for (const auto& argv : std::vector<std::vector<std::string>>{
           {"run", "-p", "hello", "--control-vector", narrow},             // another model's width
           {"run", "-p", "hello", "--control-vector", deep},               // a block the model lacks
           {"run", "-p", "hello", "--control-vector", model},              // a model, not a vector
           {"run", "-p", "hello", "--control-vector", "/nonexistent.gguf"},
           {"run", "-p", "hello", "--control-vector-scaled", good + ":x"},
           {"run", "-p", "hello", "--control-vector-scaled", good},        // no scale
           {"run", "-p", "hello", "--control-vector-layer-range", "1", "1"},  // no vector
           {"run", "-p", "hello", "--control-vector", good, "--control-vector-layer-range", "2", "1"},
           {"run", "-p", "hi", "--actadd", "a long positive prompt", "b", "--actadd-layer", "1"},  // too short
           {"run", "-p", "hello there", "--actadd", "a", "b"},             // no layer
           {"run", "-p", "hello there", "--actadd", "a", "b", "--actadd-layer", "9"},
           {"run", "-p", "hello there", "--actadd-layer", "1"},            // no pair
           {"run", "-p", "hello there", "--actadd", "a", "b", "--actadd-layer", "1", "--actadd-layer", "0",
            "--actadd-layer", "1"},                                         // three layers for one pair
           {"run", "-p", "hello", "--actadd-file", good},                  // a control vector, not ActAdd
           {"run", "-p", "hello", "--ablate", narrow},
           {"run", "-p", "hello", "--clamp", good},                        // no value
           {"run", "-p", "hello", "--control-vector", good, "--steer-positions", "9:3"},
           {"run", "-p", "hello", "--compare"},                            // nothing to compare
           {"run", "-p", "hello", "--samples", "3"},
           {"logits", "-p", "hello", "--control-vector", narrow},
           {"dump", "-p", "hello", "--hook", "all", "-o", (testing::scratch_dir() / "d").string(), "--ablate", deep},
       }) {
    std::vector<std::string> full = {TILLER_BINARY};
    full.insert(full.end(), argv.begin(), argv.end());
    full.insert(full.end(), {"-m", model});
    const auto result = testing::run_process(full);
    std::string line;
    for (const auto& a : argv) line += a + " ";
    EXPECT_NE(result.exit_code, 0) << line;
    EXPECT_EQ(result.signal, 0) << line;
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << line << "\n" << result.err;
  }
  // And the same flags, well formed, run.
  const auto fine = testing::run_process({TILLER_BINARY, "run", "-m", model, "-p", "hello there", "-n", "4",
                                          "--control-vector-scaled", good + ":-2", "--ablate", good + ":0.5",
                                          "--actadd", "ab", "abc", "--actadd-layer", "1", "--actadd-coef", "3",
                                          "--compare", "--samples", "2", "--json"});
  ASSERT_EQ(fine.exit_code, 0) << fine.err;
  const json out = json::parse(fine.out);
  EXPECT_EQ(out["samples"].size(), 2u);
  EXPECT_EQ(out["steering"].size(), 3u);  // the control vector, the ablation, the ActAdd tensor
}

TEST(VectorCommand, CombineNormalizeInspect) {
  const std::string a = tiny_control_vector("va.gguf", 4, {{1, 1.0f}, {2, 2.0f}});
  const std::string b = tiny_control_vector("vb.gguf", 4, {{2, 1.0f}});
  const std::string narrow = tiny_control_vector("vn.gguf", 3, {{1, 1.0f}});
  const std::string out = (testing::scratch_dir() / "vc.gguf").string();
  const auto combined = testing::run_process({TILLER_BINARY, "vector", "combine", a + ":1", b + ":-0.5", "-o", out});
  ASSERT_EQ(combined.exit_code, 0) << combined.err;
  const ControlVector sum = read_control_vector(out);
  EXPECT_EQ(sum.directions.at(2), std::vector<float>(4, 1.5f));
  EXPECT_EQ(sum.directions.at(1), std::vector<float>(4, 1.0f));
  const std::string unit = (testing::scratch_dir() / "vu.gguf").string();
  ASSERT_EQ(testing::run_process({TILLER_BINARY, "vector", "normalize", out, "-o", unit}).exit_code, 0);
  EXPECT_EQ(read_control_vector(unit).directions.at(2), std::vector<float>(4, 0.5f));
  const auto inspect = testing::run_process({TILLER_BINARY, "vector", "inspect", a, b, "--json"});
  ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
  const json report = json::parse(inspect.out);
  EXPECT_NEAR(report["layers"][0]["norm"].get<double>(), 2.0, 1e-6);
  EXPECT_NEAR(report["layers"][1]["cosine"].get<double>(), 1.0, 1e-6);
  for (const auto& argv : std::vector<std::vector<std::string>>{
           {"vector", "combine", a, narrow, "-o", out},
           {"vector", "inspect", a, narrow},
           {"vector", "inspect", "/nonexistent.gguf"},
           {"vector", "actadd", "--pos", "a", "--neg", "b", "--layer", "1", "-o", out, "-m", "no-such-model"},
       }) {
    std::vector<std::string> full = {TILLER_BINARY};
    full.insert(full.end(), argv.begin(), argv.end());
    const auto result = testing::run_process(full);
    EXPECT_NE(result.exit_code, 0) << argv[1];
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
  }
}

// ActAdd as the paper defines it, on SmolLM2: the tensor built by hand from
// resid_pre captures through the hook API, added through a hook, gives the same
// logits as `tiller logits --actadd`.
TEST(SteeringCommand, ActAddEqualsTheTensorBuiltByHand) {
  TILLER_REQUIRE_MODEL(path, "smollm2-135m-instruct");
  const auto model = Model::load(path);
  const int layer = 6;
  const float coefficient = 5.0f;
  const std::string prompt = "I went up to my friend and said";
  auto love_tokens = model->tokenizer().tokenize("Love"), hate_tokens = model->tokenizer().tokenize("Hate");
  const size_t length = std::max(love_tokens.size(), hate_tokens.size());
  const TokenId space = model->tokenizer().tokenize(" ", {false, false}).front();
  love_tokens.resize(length, space);
  hate_tokens.resize(length, space);
  auto capture = [&](const std::vector<TokenId>& tokens) {
    Session session(model, 64, 2);
    std::vector<float> rows;
    session.add_hook(layer, HookPoint::ResidPre, [&](const HookRows& r) {
      rows.assign(r.data, r.data + r.n_rows * r.width);
    });
    session.decode(tokens, false);
    return rows;
  };
  const auto love = capture(love_tokens), hate = capture(hate_tokens);
  const size_t n_love = length;
  const int64_t width = model->config().n_embd;
  std::vector<float> by_hand(love.size());
  for (size_t i = 0; i < love.size(); ++i) by_hand[i] = love[i] - hate[i];

  Session session(model, 64, 2);
  session.add_hook(layer, HookPoint::ResidPre, [&](const HookRows& r) {
    for (int64_t t = 0; t < r.n_rows; ++t) {
      const int64_t position = r.first_position + t;
      if (position >= static_cast<int64_t>(n_love)) continue;
      for (int64_t i = 0; i < width; ++i) r.data[t * width + i] += coefficient * by_hand[size_t(position * width + i)];
    }
  });
  const auto ids = model->tokenizer().tokenize(prompt);
  const auto ours = session.decode(ids, true);

  const auto cli = testing::run_process({TILLER_BINARY, "logits", "-m", path, "-p", prompt, "--json", "--top", "5",
                                         "--actadd", "Love", "Hate", "--actadd-layer", "6", "--actadd-coef", "5"});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  const json out = json::parse(cli.out);
  ASSERT_EQ(out["positions"].size(), ids.size());
  const int64_t n_vocab = model->config().n_vocab;
  const auto plain = testing::run_process({TILLER_BINARY, "logits", "-m", path, "-p", prompt, "--json", "--top", "5"});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  double changed = 0;
  for (size_t t = 0; t < ids.size(); ++t) {
    for (const auto& entry : out["positions"][t]["top"]) {
      const int id = entry[0].get<int>();
      EXPECT_FLOAT_EQ(entry[1].get<float>(), ours[t * size_t(n_vocab) + size_t(id)]) << "position " << t;
    }
    changed += std::fabs(out["positions"][t]["top"][0][1].get<double>() -
                         json::parse(plain.out)["positions"][t]["top"][0][1].get<double>());
  }
  EXPECT_GT(changed, 0.1) << "the steering changed nothing";
}

}  // namespace
}  // namespace tiller
