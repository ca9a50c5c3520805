// The steering flags of `tiller run`, `logits` and `dump`: what they do on a real
// model, and one-line errors for bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "support/cli_expect.h"
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
           {"run", "-p", "hello", "--clamp", narrow + ":1"},
           {"dump", "-p", "hello", "--hook", "all", "-o", (testing::scratch_dir() / "d").string(), "--ablate", deep},
       }) {
    std::vector<std::string> full = {TILLER_BINARY};
    full.insert(full.end(), argv.begin(), argv.end());
    full.insert(full.end(), {"-m", model});
    testing::expect_one_line_failure(full, argv);
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

// resid_pre of `layer` for the ActAdd pair, each padded on the right with the
// single-space token to the longer one's length, captured through the hook API:
// [n_rows x width] of pos - neg, the paper's steering tensor before its coefficient.
std::vector<float> actadd_by_hand(const std::shared_ptr<const Model>& model, const std::string& positive,
                                  const std::string& negative, int layer) {
  auto pos_tokens = model->tokenizer().tokenize(positive), neg_tokens = model->tokenizer().tokenize(negative);
  const size_t length = std::max(pos_tokens.size(), neg_tokens.size());
  const TokenId space = model->tokenizer().tokenize(" ", {false, false}).front();
  pos_tokens.resize(length, space);
  neg_tokens.resize(length, space);
  auto capture = [&](const std::vector<TokenId>& tokens) {
    Session session(model, 64, 2);
    std::vector<float> rows;
    session.add_hook(layer, HookPoint::ResidPre, [&](const HookRows& r) { rows.assign(r.data, r.data + r.n_rows * r.width); });
    session.decode(tokens, false);
    return rows;
  };
  const auto pos = capture(pos_tokens), neg = capture(neg_tokens);
  std::vector<float> difference(pos.size());
  for (size_t i = 0; i < pos.size(); ++i) difference[i] = pos[i] - neg[i];
  return difference;
}

// Adds coefficient x row i of `tensor` at position anchor + i of every pass.
HookHandle add_rows_from(Session& session, int layer, const std::vector<float>& tensor, float coefficient,
                         int64_t anchor) {
  return session.add_hook(layer, HookPoint::ResidPre, [&tensor, coefficient, anchor](const HookRows& r) {
    const auto n_tensor_rows = static_cast<int64_t>(tensor.size()) / r.width;
    for (int64_t t = 0; t < r.n_rows; ++t) {
      const int64_t row = r.first_position + t - anchor;
      if (row < 0 || row >= n_tensor_rows) continue;
      for (int64_t i = 0; i < r.width; ++i) r.data[t * r.width + i] += coefficient * tensor[size_t(row * r.width + i)];
    }
  });
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
  const auto by_hand = actadd_by_hand(model, "Love", "Hate", layer);
  Session session(model, 64, 2);
  add_rows_from(session, layer, by_hand, coefficient, 0);
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

// With --chat the context starts with the template's header. --actadd-align user
// (the default with --chat) puts row 0 on the user's first token, context on
// position 0: each equals the tensor added by hand from there, in greedy generation.
TEST(SteeringCommand, ActAddAlignmentOnAChatPrompt) {
  TILLER_REQUIRE_MODEL(path, "smollm2-135m-instruct");
  const auto model = Model::load(path);
  const int layer = 6, n_generate = 12;
  const float coefficient = 5.0f;
  const std::string text = "Tell me about your day at the market.";
  const auto chat = testing::run_process({TILLER_BINARY, "tokenize", "-m", path, "--chat", "--json", text});
  ASSERT_EQ(chat.exit_code, 0) << chat.err;
  const auto ids = json::parse(chat.out)["ids"].get<std::vector<TokenId>>();
  // Where the user's text starts, found independently of the CLI: its tokens inside the prompt's.
  const auto user = model->tokenizer().tokenize(text, {false, false});
  const auto found = std::search(ids.begin(), ids.end(), user.begin(), user.end());
  ASSERT_NE(found, ids.end()) << "the user's tokens are not in the chat prompt";
  const auto user_start = static_cast<int64_t>(found - ids.begin());
  ASSERT_GT(user_start, 2) << "the template should put a header before the user's text";

  const auto tensor = actadd_by_hand(model, "Love", "Hate", layer);
  auto greedy_by_hand = [&](int64_t anchor) {
    Session session(model, 128, 2);
    if (anchor >= 0) add_rows_from(session, layer, tensor, coefficient, anchor);
    const int64_t n_vocab = model->config().n_vocab;
    std::vector<TokenId> out;
    auto logits = session.decode(ids, false);
    for (int i = 0; i < n_generate; ++i) {
      out.push_back(TokenId(std::max_element(logits.begin(), logits.begin() + n_vocab) - logits.begin()));
      logits = session.decode(std::span(&out.back(), 1), false);
    }
    return out;
  };
  auto greedy_cli = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv{TILLER_BINARY, "run", "-m", path, "--chat", "-p", text, "-n",
                                  std::to_string(n_generate), "--temp", "0", "--ignore-eos", "--json"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    const auto result = testing::run_process(argv);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return result.exit_code == 0 ? json::parse(result.out)["tokens"].get<std::vector<TokenId>>()
                                 : std::vector<TokenId>{};
  };
  const std::vector<std::string> actadd{"--actadd", "Love", "Hate", "--actadd-layer", "6", "--actadd-coef", "5"};
  auto with = [&](std::vector<std::string> more) {
    more.insert(more.begin(), actadd.begin(), actadd.end());
    return more;
  };
  const auto at_user = greedy_by_hand(user_start), at_context = greedy_by_hand(0);
  EXPECT_EQ(greedy_cli(with({"--actadd-align", "user"})), at_user);
  EXPECT_EQ(greedy_cli(with({})), at_user) << "user alignment should be the default with --chat";
  EXPECT_EQ(greedy_cli(with({"--actadd-align", "context"})), at_context);
  EXPECT_NE(at_user, greedy_by_hand(-1)) << "the steering changed nothing";
}

}  // namespace
}  // namespace tiller
