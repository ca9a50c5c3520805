// Steering on tiny synthetic models: hook registration, position selectors, the
// three interventions, control-vector files and ActAdd's tensor and rules.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <numeric>
#include <random>

#include "support/fixtures.h"
#include "support/test_files.h"
#include "support/tiny_model.h"
#include "tiller/actadd.h"
#include "tiller/control_vector.h"
#include "common/fail.h"
#include "tiller/model.h"
#include "tiller/steer.h"

namespace tiller {
namespace {

std::shared_ptr<const Model> steering_model() { return testing::load_three_block_model("steer.gguf"); }

using testing::random_vector;

const std::vector<TokenId> kSteeredTokens = {1, 40, 41, 42, 43, 44, 45, 46};

// Every hook point's rows, by (layer, point), over all decode calls.
using Capture = std::map<std::pair<int, HookPoint>, std::vector<float>>;
void capture_all(Session& session, Capture& capture) {
  session.set_observer([&](int layer, HookPoint point, const float* rows, int64_t n_rows, int64_t width, int) {
    auto& into = capture[{layer, point}];
    into.insert(into.end(), rows, rows + n_rows * width);
  });
}

// Decodes the prompt, then `generated` single tokens, returning every row's logits.
std::vector<float> run(Session& session, std::span<const TokenId> prompt, int generated = 0) {
  auto first = session.decode(prompt, true);
  std::vector<float> logits(first.begin(), first.end());
  for (int i = 0; i < generated; ++i) {
    const TokenId token = 50 + i;
    auto next = session.decode(std::span(&token, 1), true);
    logits.insert(logits.end(), next.begin(), next.end());
  }
  return logits;
}

Intervention add_at(int layer, HookPoint point, std::vector<float> v, PositionSelector where = {}, float c = 1) {
  Intervention i;
  i.layer = layer;
  i.point = point;
  i.vectors = std::move(v);
  i.where = where;
  i.coefficient = c;
  return i;
}

TEST(Steering, PositionSelectorsParseAndRefuseNonsense) {
  EXPECT_EQ(parse_position_selector("all"), PositionSelector::all());
  EXPECT_EQ(parse_position_selector("prompt"), PositionSelector::prompt());
  EXPECT_EQ(parse_position_selector("generated"), PositionSelector::generated());
  EXPECT_EQ(parse_position_selector("3:7"), PositionSelector::range(3, 7));
  EXPECT_EQ(parse_position_selector("front:4"), PositionSelector::front(4));
  EXPECT_EQ(describe(PositionSelector::range(3, 7)), "3:7");
  for (const char* bad : {"", "some", "7:3", "3:3", "-1:4", "a:b", "front:0", "front:x", "1:2:3"}) {
    EXPECT_THROW(parse_position_selector(bad), Error) << bad;
  }
}

TEST(Steering, HooksRunInOrderAndCanBeRemoved) {
  const auto model = steering_model();
  Session session(model, 32, 1);
  std::vector<int> calls;
  const HookHandle a = session.add_hook(1, HookPoint::ResidMid, [&](const HookRows& rows) {
    EXPECT_EQ(rows.layer, 1);
    EXPECT_EQ(rows.point, HookPoint::ResidMid);
    EXPECT_EQ(rows.width, 64);
    calls.push_back(1);
  });
  session.add_hook(1, HookPoint::ResidMid, [&](const HookRows&) { calls.push_back(2); });
  session.decode(kSteeredTokens, false);
  EXPECT_EQ(calls, (std::vector<int>{1, 2}));
  session.remove_hook(a);
  session.decode(std::vector<TokenId>{60}, false);
  EXPECT_EQ(calls, (std::vector<int>{1, 2, 2}));
  session.clear_hooks();
  session.decode(std::vector<TokenId>{61}, false);
  EXPECT_EQ(calls.size(), 3u);
  EXPECT_THROW(session.add_hook(3, HookPoint::ResidPre, [](const HookRows&) {}), Error);
  EXPECT_THROW(session.add_hook(-1, HookPoint::ResidPre, [](const HookRows&) {}), Error);
}

TEST(Steering, AHookThatChangesNothingChangesNothing) {
  const auto model = steering_model();
  Session plain(model, 32, 1), hooked(model, 32, 2);
  for (int layer = 0; layer < 3; ++layer) {
    for (const HookPoint point : kHookPoints) hooked.add_hook(layer, point, [](const HookRows&) {});
  }
  EXPECT_EQ(run(plain, kSteeredTokens, 3), run(hooked, kSteeredTokens, 3));
}

// resid_post of block L is resid_pre of block L+1: adding at either gives the same logits.
TEST(Steering, AddingAtResidPostEqualsAddingAtTheNextResidPre) {
  const auto model = steering_model();
  // The tiny model's stream is ~1e4 in size, and 8-bit activation rounding hides
  // changes much smaller than that.
  const auto v = random_vector(64, 3, 2000.0f);
  auto post = std::make_shared<Steering>(64), pre = std::make_shared<Steering>(64);
  post->add(add_at(0, HookPoint::ResidPost, v, {}, 2.0f));
  pre->add(add_at(1, HookPoint::ResidPre, v, {}, 2.0f));
  Session a(model, 32, 1), b(model, 32, 1), plain(model, 32, 1);
  SteeringBinding post_binding(post, a), pre_binding(pre, b);
  const auto steered = run(a, kSteeredTokens, 2);
  EXPECT_EQ(steered, run(b, kSteeredTokens, 2));
  const auto unsteered = run(plain, kSteeredTokens, 2);
  double difference = 0;
  for (size_t i = 0; i < steered.size(); ++i) difference = std::max(difference, double(std::fabs(steered[i] - unsteered[i])));
  EXPECT_GT(difference, 1e-3) << "the vector had no effect";
}

// A binding moved to a second session leaves the first one unsteered, and never
// removes hooks that another caller registered on the second (before bindings,
// Steering::attach detached the new session with the old session's handles).
TEST(Steering, AttachingToAnotherSessionLeavesTheFirstAndOthersHooksAlone) {
  const auto model = steering_model();
  const auto v = random_vector(64, 5, 2000.0f);
  auto steering = std::make_shared<Steering>(64);
  steering->add(add_at(1, HookPoint::ResidPost, v, {}, 2.0f));
  Session first(model, 32, 1), second(model, 32, 1), plain(model, 32, 1), reference(model, 32, 1);
  SteeringBinding on_reference(steering, reference);
  const auto steered = run(reference, kSteeredTokens);
  const auto unsteered = run(plain, kSteeredTokens);
  int others_calls = 0;
  second.add_hook(0, HookPoint::ResidPre, [&](const HookRows&) { ++others_calls; });
  SteeringBinding binding(steering);
  binding.attach(first);
  binding.attach(second);
  EXPECT_EQ(run(first, kSteeredTokens), unsteered) << "the first session kept the steering's hooks";
  EXPECT_EQ(run(second, kSteeredTokens), steered);
  EXPECT_EQ(others_calls, 1) << "another caller's hook on the second session was removed";
  binding.detach();
  second.reset();
  EXPECT_EQ(run(second, kSteeredTokens), unsteered) << "detach left a hook behind";
  EXPECT_EQ(others_calls, 2);
}

// One compiled steering shared by several sessions, each with its own prompt
// layout: each binding steers its own session only, at its own positions.
TEST(Steering, OneSteeringServesManySessionsWithTheirOwnLayouts) {
  const auto model = steering_model();
  auto steering = std::make_shared<Steering>(64);
  steering->add(add_at(2, HookPoint::ResidPost, random_vector(64, 9, 2000.0f), PositionSelector::front(2)));
  Session a(model, 32, 1), b(model, 32, 1), a_alone(model, 32, 1), b_alone(model, 32, 1);
  std::vector<float> alone[2];
  {
    SteeringBinding only_a(steering, a_alone, {0, 8, 1});
    alone[0] = run(a_alone, kSteeredTokens, 1);
  }
  {
    SteeringBinding only_b(steering, b_alone, {0, 8, 5});
    alone[1] = run(b_alone, kSteeredTokens, 1);
  }
  EXPECT_NE(alone[0], alone[1]);
  SteeringBinding on_a(steering, a, {0, 8, 1}), on_b(steering, b, {0, 8, 5});
  // Interleaved, token by token.
  auto first_a = a.decode(kSteeredTokens, true);
  std::vector<float> got_a(first_a.begin(), first_a.end());
  auto first_b = b.decode(kSteeredTokens, true);
  std::vector<float> got_b(first_b.begin(), first_b.end());
  const TokenId next = 50;
  auto next_a = a.decode(std::span(&next, 1), true);
  got_a.insert(got_a.end(), next_a.begin(), next_a.end());
  auto next_b = b.decode(std::span(&next, 1), true);
  got_b.insert(got_b.end(), next_b.begin(), next_b.end());
  EXPECT_EQ(got_a, alone[0]);
  EXPECT_EQ(got_b, alone[1]);
  EXPECT_THROW(on_b.set_prompt({0, 8, 7}), Error);  // 2 rows from position 7 of an 8-token prompt
}

TEST(Steering, AttnOutAndMlpOutWritesReachTheStream) {
  const auto model = steering_model();
  const auto v = random_vector(64, 4);
  for (const HookPoint point : {HookPoint::AttnOut, HookPoint::MlpOut}) {
    auto steering = std::make_shared<Steering>(64);
    steering->add(add_at(1, point, v));
    Session session(model, 32, 1);
    SteeringBinding binding(steering, session);
    Capture capture;
    capture_all(session, capture);
    session.decode(kSteeredTokens, false);
    // The stream after the sub-block is the one before it plus what it wrote, v included.
    const auto& before = capture[{1, point == HookPoint::AttnOut ? HookPoint::ResidPre : HookPoint::ResidMid}];
    const auto& written = capture[{1, point}];
    const auto& after = capture[{1, point == HookPoint::AttnOut ? HookPoint::ResidMid : HookPoint::ResidPost}];
    for (size_t i = 0; i < after.size(); ++i) ASSERT_FLOAT_EQ(after[i], before[i] + written[i]);
    Session plain(model, 32, 1);
    Capture unsteered;
    capture_all(plain, unsteered);
    plain.decode(kSteeredTokens, false);
    const auto& plain_written = unsteered[std::make_pair(1, point)];
    for (size_t i = 0; i < written.size(); ++i) ASSERT_NEAR(written[i], plain_written[i] + v[i % 64], 1e-5);
  }
}

// Which rows change under each selector: prompt of 8 tokens, then 3 generated.
TEST(Steering, PositionSelectorsTouchExactlyTheirPositions) {
  const auto model = steering_model();
  const auto v = random_vector(64, 5);
  Session plain(model, 32, 1);
  Capture unsteered;
  capture_all(plain, unsteered);
  run(plain, kSteeredTokens, 3);
  const auto& base = unsteered[{2, HookPoint::ResidPost}];

  struct Case {
    PositionSelector where;
    std::vector<int> expected;
  };
  const std::vector<Case> cases = {
      {PositionSelector::all(), {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
      {PositionSelector::prompt(), {0, 1, 2, 3, 4, 5, 6, 7}},
      {PositionSelector::generated(), {8, 9, 10}},
      {PositionSelector::range(6, 9), {6, 7, 8}},
      {PositionSelector::front(3), {2, 3, 4}},  // anchor 2
  };
  for (const Case& c : cases) {
    auto steering = std::make_shared<Steering>(64);
    steering->add(add_at(2, HookPoint::ResidPost, v, c.where));
    Session session(model, 32, 1);
    SteeringBinding binding(steering, session, {0, 8, 2});
    Capture capture;
    capture_all(session, capture);
    run(session, kSteeredTokens, 3);
    std::vector<int> changed;
    const auto& got = capture[{2, HookPoint::ResidPost}];
    for (int position = 0; position < 11; ++position) {
      for (int i = 0; i < 64; ++i) {
        if (got[size_t(position * 64 + i)] != base[size_t(position * 64 + i)]) {
          changed.push_back(position);
          break;
        }
      }
    }
    EXPECT_EQ(changed, c.expected) << describe(c.where);
  }
}

TEST(Steering, AblationLeavesNoComponentAndClampFixesIt) {
  const auto model = steering_model();
  const auto u = random_vector(64, 6);
  const double norm = std::sqrt(std::inner_product(u.begin(), u.end(), u.begin(), 0.0));
  // An addition along u first, so that there is a large component to remove.
  for (const auto& [kind, value] : std::vector<std::pair<InterventionKind, float>>{
           {InterventionKind::Ablate, 1.0f}, {InterventionKind::Clamp, 3.5f}}) {
    auto steering = std::make_shared<Steering>(64);
    steering->add(add_at(1, HookPoint::ResidMid, u, {}, 4.0f));
    Intervention projection = add_at(1, HookPoint::ResidMid, u, {}, value);
    projection.kind = kind;
    steering->add(projection);
    Session session(model, 32, 1);
    SteeringBinding binding(steering, session);
    Capture capture;
    capture_all(session, capture);
    run(session, kSteeredTokens, 2);
    const auto& rows = capture[{1, HookPoint::ResidMid}];
    ASSERT_EQ(rows.size(), 10u * 64);
    for (size_t r = 0; r < 10; ++r) {
      double along = 0, size = 0;
      for (size_t i = 0; i < 64; ++i) {
        along += rows[r * 64 + i] * u[i] / norm;
        size += rows[r * 64 + i] * rows[r * 64 + i];
      }
      const double expected = kind == InterventionKind::Ablate ? 0.0 : 3.5;
      EXPECT_NEAR(along, expected, 1e-5 * (1 + std::sqrt(size))) << intervention_kind_name(kind) << " row " << r;
    }
  }
}

TEST(Steering, BadVectorsAreClearErrors) {
  const auto model = steering_model();
  auto steering = std::make_shared<Steering>(64);
  EXPECT_THROW(steering->add(add_at(0, HookPoint::ResidPre, random_vector(63, 1))), Error);
  Intervention zero = add_at(0, HookPoint::ResidPre, std::vector<float>(64, 0.0f));
  zero.kind = InterventionKind::Ablate;
  EXPECT_THROW(steering->add(zero), Error);
  Intervention rows = add_at(0, HookPoint::ResidPre, random_vector(128, 2));
  rows.n_rows = 2;  // one row per position needs a front selector
  EXPECT_THROW(steering->add(rows), Error);
  EXPECT_THROW(steering->add(add_at(0, HookPoint::ResidPre, {64, NAN})), Error);
  steering->add(add_at(7, HookPoint::ResidPre, random_vector(64, 3)));
  Session session(model, 32, 1);
  EXPECT_THROW((SteeringBinding{steering, session}), Error);  // block 7 of 3
  EXPECT_THROW((SteeringBinding{std::make_shared<Steering>(65), session}), Error);
}

TEST(Steering, AFrontTensorLongerThanThePromptIsRefused) {
  Steering steering(64);
  Intervention tensor = add_at(0, HookPoint::ResidPre, random_vector(64 * 5, 7), PositionSelector::front());
  tensor.n_rows = 5;
  steering.add(tensor);
  EXPECT_NO_THROW(steering.check_prompt({0, 5, 0}));
  try {
    steering.check_prompt({0, 6, 2});
    FAIL() << "a 4-token stretch took a 5-row tensor";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("1 tokens longer"), std::string::npos) << error.what();
  }
}

TEST(ControlVectorFile, WritesAndReadsBack) {
  ControlVector vector;
  vector.model_hint = "llama";
  vector.n_embd = 64;
  vector.directions[1] = random_vector(64, 8);
  vector.directions[2] = random_vector(64, 9);
  const std::string path = (testing::scratch_dir() / "cv.gguf").string();
  write_control_vector(path, vector);
  const ControlVector back = read_control_vector(path);
  EXPECT_EQ(back.model_hint, "llama");
  EXPECT_EQ(back.n_embd, 64);
  EXPECT_EQ(back.directions, vector.directions);
  const gguf::File file = gguf::File::open(path);
  EXPECT_EQ(file.get_string("general.architecture"), "controlvector");
  EXPECT_EQ(file.get_uint("controlvector.layer_count"), 3u);
}

TEST(ControlVectorFile, CombineSumsAndTheRangeFollowsLlamaCpp) {
  ControlVector a, b;
  a.n_embd = b.n_embd = 2;
  a.directions = {{1, {1, 2}}, {2, {3, 4}}};
  b.directions = {{2, {10, 20}}, {3, {5, 5}}};
  const ControlVector sum = combine({{a, 1.0f}, {b, -0.5f}});
  EXPECT_EQ(sum.directions.at(1), (std::vector<float>{1, 2}));
  EXPECT_EQ(sum.directions.at(2), (std::vector<float>{-2, -6}));
  EXPECT_EQ(sum.directions.at(3), (std::vector<float>{-2.5f, -2.5f}));
  EXPECT_EQ(restrict_layers(sum, 2, 2, 4).directions.size(), 1u);
  EXPECT_EQ(restrict_layers(sum, 0, 0, 4).directions.size(), 3u);  // <= 0: first and last
  a.directions[0] = {9, 9};
  EXPECT_EQ(restrict_layers(a, -1, 0, 4).directions.count(0), 0u);  // llama.cpp starts at 1
  ControlVector c;
  c.n_embd = 3;
  c.directions = {{1, {1, 2, 3}}};
  EXPECT_THROW(combine({{a, 1.0f}, {c, 1.0f}}), Error);
  EXPECT_THROW(restrict_layers(a, 3, 2, 4), Error);
}

TEST(ControlVectorFile, ForeignAndBrokenFilesAreClearErrors) {
  const auto dir = testing::scratch_dir();
  testing::TinyModelSpec spec;
  testing::make_tiny_model(spec).write((dir / "model-as-cv.gguf").string());
  EXPECT_THROW(read_control_vector((dir / "model-as-cv.gguf").string()), Error);
  EXPECT_THROW(read_control_vector((dir / "missing.gguf").string()), Error);
  gguf::Writer empty;
  empty.set("general.architecture", std::string("controlvector"));
  empty.write((dir / "empty-cv.gguf").string());
  EXPECT_THROW(read_control_vector((dir / "empty-cv.gguf").string()), Error);
  gguf::Writer ragged;
  ragged.set("general.architecture", std::string("controlvector"));
  ragged.add_tensor("direction.1", {4}, std::vector<float>{1, 2, 3, 4});
  ragged.add_tensor("direction.2", {3}, std::vector<float>{1, 2, 3});
  ragged.write((dir / "ragged-cv.gguf").string());
  EXPECT_THROW(read_control_vector((dir / "ragged-cv.gguf").string()), Error);
  gguf::Writer named;
  named.set("general.architecture", std::string("controlvector"));
  named.add_tensor("direction.x", {2}, std::vector<float>{1, 2});
  named.write((dir / "named-cv.gguf").string());
  EXPECT_THROW(read_control_vector((dir / "named-cv.gguf").string()), Error);
  ControlVector none;
  EXPECT_THROW(write_control_vector((dir / "none.gguf").string(), none), Error);
}

std::vector<float> resid_pre_of_block_1(const std::shared_ptr<const Model>& model, std::span<const TokenId> tokens) {
  Session session(model, 32, 1);
  std::vector<float> rows;
  session.add_hook(1, HookPoint::ResidPre, [&](const HookRows& r) { rows.assign(r.data, r.data + r.n_rows * r.width); });
  session.decode(tokens, false);
  return rows;
}

TEST(ActAdd, TheTensorIsTheDifferenceOfResidPreWithSpacePadding) {
  const auto model = steering_model();
  const ActAddTensor tensor = make_actadd_tensor(model, {"ab", "abcd", 1}, 1);
  const auto& tokenizer = model->tokenizer();
  const auto positive = tokenizer.tokenize("ab"), negative = tokenizer.tokenize("abcd");
  ASSERT_EQ(tensor.n_rows, static_cast<int64_t>(std::max(positive.size(), negative.size())));
  ASSERT_EQ(tensor.width, 64);
  // By hand: the positive prompt padded with the space token, resid_pre of block 1.
  auto padded = positive;
  TokenId space = 0;
  while (tokenizer.token_to_piece(space) != " ") ++space;  // the byte token 0x20 here
  padded.resize(negative.size(), space);
  const auto plus = resid_pre_of_block_1(model, padded), minus = resid_pre_of_block_1(model, negative);
  for (size_t i = 0; i < plus.size(); ++i) ASSERT_EQ(tensor.rows[i], plus[i] - minus[i]);
  if (tokenizer.adds_bos()) {
    for (int i = 0; i < 64; ++i) EXPECT_EQ(tensor.rows[size_t(i)], 0.0f) << "the BOS row";
  }
  EXPECT_THROW(make_actadd_tensor(model, {"a", "b", 3}, 1), Error);  // block 3 of 3
}

TEST(ActAdd, AnEmptyPromptIsAllSpaces) {
  // The paper pairs prompts with "" ("Bush did 9/11 because" - ""): padding makes
  // the empty side the space token at every row (after BOS where there is one).
  const auto model = steering_model();
  const auto& tokenizer = model->tokenizer();
  const ActAddTensor against_empty = make_actadd_tensor(model, {"abc", "", 1}, 1);
  ASSERT_EQ(against_empty.n_rows, static_cast<int64_t>(tokenizer.tokenize("abc").size()));
  auto empty = tokenizer.tokenize("");
  TokenId space = 0;
  while (tokenizer.token_to_piece(space) != " ") ++space;
  empty.resize(static_cast<size_t>(against_empty.n_rows), space);
  const auto plus = resid_pre_of_block_1(model, tokenizer.tokenize("abc")), minus = resid_pre_of_block_1(model, empty);
  for (size_t i = 0; i < plus.size(); ++i) ASSERT_EQ(against_empty.rows[i], plus[i] - minus[i]);
  if (!tokenizer.adds_bos()) {
    EXPECT_THROW(make_actadd_tensor(model, {"", "", 1}, 1), Error);
  }
}

TEST(ActAdd, FilesRoundTripAndRefuseOtherKinds) {
  const auto model = steering_model();
  const ActAddTensor tensor = make_actadd_tensor(model, {"love", "hate", 1}, 1);
  const std::string path = (testing::scratch_dir() / "actadd.gguf").string();
  write_actadd_tensor(path, tensor, "llama");
  const ActAddTensor back = read_actadd_tensor(path);
  EXPECT_EQ(back.rows, tensor.rows);
  EXPECT_EQ(back.layer, 1);
  EXPECT_EQ(back.n_rows, tensor.n_rows);
  EXPECT_EQ(back.positive, "love");
  ControlVector cv;
  cv.n_embd = 2;
  cv.directions[1] = {1, 2};
  write_control_vector((testing::scratch_dir() / "cv2.gguf").string(), cv);
  EXPECT_THROW(read_actadd_tensor((testing::scratch_dir() / "cv2.gguf").string()), Error);
  EXPECT_THROW(read_control_vector(path), Error);
}

}  // namespace
}  // namespace tiller
