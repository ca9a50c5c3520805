// The library's front-end-facing pieces: the steering spec (JSON, flags, names),
// compiling it for a model, step-wise generation, prompt building, and the
// parsers of hook and block names.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <random>
#include <thread>

#include "support/fixtures.h"
#include "support/test_files.h"
#include "support/tiny_model.h"
#include "tiller/actadd.h"
#include "tiller/control_vector.h"
#include "tiller/error.h"
#include "tiller/generate.h"
#include "tiller/prompt.h"
#include "tiller/steering_spec.h"
#include "tiller/train.h"

namespace tiller {
namespace {

using testing::error_of;
using testing::random_vector;

const char* kIssueExample = R"({"control_vectors": [{"path": "happy.gguf", "scale": 0.8}], "layer_range": [5, 20],
  "actadd": [{"positive": "Love", "negative": "Hate", "layer": 6, "coef": 5, "align": "context"}],
  "ablate": [{"name": "refusal", "scale": 1.0}], "clamp": [{"path": "x.gguf", "value": 2.0}],
  "positions": "all"})";

TEST(SteeringSpec, ParsesTheDocumentedObjectAndWritesItBack) {
  const SteeringSpec spec = SteeringSpec::from_json(kIssueExample);
  ASSERT_EQ(spec.control_vectors.size(), 1u);
  EXPECT_EQ(spec.control_vectors[0].vector.path, "happy.gguf");
  EXPECT_FLOAT_EQ(spec.control_vectors[0].value, 0.8f);
  EXPECT_EQ(spec.layer_range, (std::array<int, 2>{5, 20}));
  ASSERT_EQ(spec.actadd.size(), 1u);
  EXPECT_EQ(spec.actadd[0].positive, "Love");
  EXPECT_EQ(spec.actadd[0].negative, "Hate");
  EXPECT_EQ(spec.actadd[0].layer, 6);
  EXPECT_FLOAT_EQ(spec.actadd[0].coef, 5.0f);
  EXPECT_EQ(spec.actadd[0].align, FrontAlign::Context);
  ASSERT_EQ(spec.ablate.size(), 1u);
  EXPECT_EQ(spec.ablate[0].vector.name, "refusal");
  ASSERT_EQ(spec.clamp.size(), 1u);
  EXPECT_FLOAT_EQ(spec.clamp[0].value, 2.0f);
  EXPECT_EQ(spec.positions, PositionSelector::all());
  EXPECT_EQ(SteeringSpec::from_json(spec.to_json()), spec);
  EXPECT_EQ(SteeringSpec::from_json(spec.to_json(2)), spec);

  SteeringSpec other;
  ActAddSpec from_file;
  from_file.file.path = "tensor.gguf";
  from_file.coef = -2;
  from_file.align = FrontAlign::User;
  from_file.every_step = true;
  other.actadd.push_back(from_file);
  other.positions = PositionSelector::front(3);
  EXPECT_EQ(SteeringSpec::from_json(other.to_json()), other);
  EXPECT_TRUE(SteeringSpec::from_json("{}").empty());
}

TEST(SteeringSpec, BadJsonIsAOneLineErrorNamingTheField) {
  const std::vector<std::pair<const char*, const char*>> cases = {
      {"{", "does not parse"},
      {"[]", "must be an object"},
      {R"({"control_vector": []})", "unknown field 'control_vector'"},
      {R"({"control_vectors": {}})", "'control_vectors' must be an array"},
      {R"({"control_vectors": [{"scale": 1}]})", "control_vectors[0]: needs 'path' or 'name'"},
      {R"({"control_vectors": [{"path": "a", "name": "b"}]})", "not both"},
      {R"({"control_vectors": [{"path": "a", "scale": "big"}]})", "'scale' must be a number"},
      {R"({"control_vectors": [{"path": "a"}], "layer_range": [1]})", "'layer_range' must be [start, end]"},
      {R"({"layer_range": [1, 2]})", "'layer_range' needs control_vectors"},
      {R"({"control_vectors": [{"path": "a", "layer_range": [1, "x"]}]})",
       "control_vectors[0]: 'layer_range' must be [start, end]"},
      {R"({"ablate": [{"path": "a", "layer_range": [1, 2]}]})", "unknown field 'layer_range'"},
      {R"({"actadd": [{"positive": "a", "negative": "b"}]})", "actadd[0]: needs 'positive', 'negative' and 'layer'"},
      {R"({"actadd": [{"positive": "a", "negative": "b", "layer": 1.5}]})", "'layer' must be an integer"},
      {R"({"actadd": [{"positive": "a", "negative": "b", "layer": -1}]})", "'layer' must be 0 or more"},
      {R"({"actadd": [{"path": "t.gguf", "layer": 2}]})", "a tensor file carries its prompts and block"},
      {R"({"actadd": [{"positive": "a", "negative": "b", "layer": 1, "align": "left"}]})", "none of auto, context"},
      {R"({"actadd": [{"positive": "a", "negative": "b", "layer": 1, "every_step": 1}]})", "must be true or false"},
      {R"({"clamp": [{"path": "x.gguf"}]})", "clamp[0]: needs 'value'"},
      {R"({"ablate": [{"path": "x.gguf", "value": 1}]})", "unknown field 'value'"},
      {R"({"positions": "middle"})", "'positions'"},
      {R"({"positions": 3})", "'positions' must be a string"},
  };
  for (const auto& [text_of_case, expected] : cases) {
    const char* text = text_of_case;  // a structured binding cannot be captured by clang 14
    const std::string message = error_of([&] { SteeringSpec::from_json(text); });
    EXPECT_NE(message.find(expected), std::string::npos) << text_of_case << " -> " << message;
  }
}

TEST(SteeringSpec, FlagsMeanWhatTheJsonSays) {
  SteeringFlags flags;
  flags.control_vectors = {"a.gguf"};
  flags.control_vectors_scaled = {"b.gguf:-0.5", "c:d.gguf:2"};
  flags.layer_range = {3, 9};
  flags.actadd = {"Love", "Hate", "Big", "Small"};
  flags.actadd_layers = {6};
  flags.actadd_coefs = {5, -1};
  flags.actadd_files = {"t.gguf:3", "plain.gguf"};
  flags.actadd_align = "user";
  flags.ablate = {"r.gguf"};
  flags.clamp = {"x.gguf:2.5"};
  flags.positions = "prompt";
  const SteeringSpec spec = spec_from_flags(flags);
  const SteeringSpec expected = SteeringSpec::from_json(R"({
    "control_vectors": [{"path": "a.gguf", "scale": 1}, {"path": "b.gguf", "scale": -0.5}, {"path": "c:d.gguf", "scale": 2}],
    "layer_range": [3, 9],
    "actadd": [{"positive": "Love", "negative": "Hate", "layer": 6, "coef": 5, "align": "user"},
               {"positive": "Big", "negative": "Small", "layer": 6, "coef": -1, "align": "user"},
               {"path": "t.gguf", "coef": 3, "align": "user"}, {"path": "plain.gguf", "coef": 1, "align": "user"}],
    "ablate": [{"path": "r.gguf", "scale": 1}], "clamp": [{"path": "x.gguf", "value": 2.5}],
    "positions": "prompt"})");
  EXPECT_EQ(spec, expected) << spec.to_json(2);

  const auto refused = [](const std::function<void(SteeringFlags&)>& set, const char* expected_text) {
    SteeringFlags f;
    set(f);
    const std::string message = error_of([&] { spec_from_flags(f); });
    EXPECT_NE(message.find(expected_text), std::string::npos) << message;
  };
  refused([](SteeringFlags& f) { f.actadd_layers = {1}; }, "need --actadd POS NEG");
  refused([](SteeringFlags& f) { f.layer_range = {1, 2}; }, "needs a control vector");
  refused([](SteeringFlags& f) { f.actadd = {"a", "b"}; }, "needs --actadd-layer");
  refused([](SteeringFlags& f) { f.actadd = {"a", "b", "c", "d"}, f.actadd_layers = {1, 2, 3}; },
          "given 3 times for 2 ActAdd pairs");
  refused([](SteeringFlags& f) { f.clamp = {"x.gguf"}; }, "needs FILE:VALUE");
  refused([](SteeringFlags& f) { f.clamp = {"x.gguf:big"}; }, "'big' is not a number");
  refused([](SteeringFlags& f) { f.positions = "sometimes"; }, "position selector");
  EXPECT_TRUE(spec_from_flags({}).empty());
}

TEST(SteeringSpec, NamesResolveOnlyInsideTheirFolder) {
  const auto dir = testing::scratch_dir() / "vector-folder";
  std::filesystem::create_directories(dir);
  ControlVector vector;
  vector.n_embd = 64;
  vector.directions[1] = random_vector(64, 1, 1.0f);
  write_control_vector((dir / "happy.gguf").string(), vector);
  const VectorResolver resolve = vector_folder(dir);
  EXPECT_EQ(resolve("happy"), (dir / "happy.gguf").string());
  for (const char* bad : {"../happy", "a/b", ".hidden", "", "..", "x\\y", "sp ace"}) {
    const std::string message = error_of([&] { resolve(bad); });
    EXPECT_NE(message.find("is not a name"), std::string::npos) << bad << " -> " << message;
  }
  EXPECT_NE(error_of([&] { resolve("sad"); }).find("no vector named 'sad'"), std::string::npos);
}

// A spec compiles into the steering the lower-level calls build, and its errors
// name the file and what does not fit.
TEST(SteeringSpec, CompilesToTheSameSteeringAsTheLowLevelCalls) {
  const auto model = testing::load_three_block_model("spec-compile.gguf");
  const auto dir = testing::scratch_dir() / "spec-compile";
  std::filesystem::create_directories(dir);
  ControlVector vector;
  vector.model_hint = "llama";
  vector.n_embd = 64;
  for (int layer = 0; layer < 3; ++layer) vector.directions[layer] = random_vector(64, 10 + layer, 2000.0f);
  const std::string file = (dir / "v.gguf").string();
  write_control_vector(file, vector);

  SteeringSpec spec;
  spec.control_vectors.push_back({{file, ""}, 0.5f, std::nullopt});
  spec.layer_range = std::array<int, 2>{1, 2};
  spec.ablate.push_back({{"", "v"}, 1.0f, std::nullopt});
  spec.positions = PositionSelector::range(2, 6);
  EXPECT_NE(error_of([&] { compile_steering(spec, model); }).find("needs a vector folder"), std::string::npos);
  CompileOptions options;
  options.resolve_name = vector_folder(dir);
  const auto compiled = compile_steering(spec, model, options);

  auto by_hand = std::make_shared<Steering>(64);
  add_control_vector(*by_hand, restrict_layers(combine({{vector, 0.5f}}), 1, 2, 3), InterventionKind::Add, 1.0f,
                     PositionSelector::range(2, 6), file);
  add_control_vector(*by_hand, vector, InterventionKind::Ablate, 1.0f, PositionSelector::range(2, 6), file);
  ASSERT_EQ(compiled->interventions().size(), by_hand->interventions().size());

  const std::vector<TokenId> tokens = {1, 40, 41, 42, 43, 44, 45, 46};
  auto logits_with = [&](const std::shared_ptr<const Steering>& steering) {
    Session session(model, 32, 1);
    SteeringBinding binding(steering, session, {0, 8, 0});
    const auto logits = session.decode(tokens, true);
    return std::vector<float>(logits.begin(), logits.end());
  };
  EXPECT_EQ(logits_with(compiled), logits_with(by_hand));

  ControlVector wide = vector;
  wide.n_embd = 65;
  for (auto& [layer, d] : wide.directions) d.push_back(1.0f);
  write_control_vector((dir / "wide.gguf").string(), wide);
  const std::string message =
      error_of([&] { compile_steering(SteeringSpec::from_json(R"({"control_vectors": [{"name": "wide"}]})"), model,
                                      options); });
  EXPECT_NE(message.find("wide.gguf: the vectors have width 65 but the model's stream has width 64"),
            std::string::npos)
      << message;
  EXPECT_NE(error_of([&] {
              compile_steering(SteeringSpec::from_json(R"({"actadd": [{"positive": "a", "negative": "b", "layer": 3}]})"),
                               model);
            }).find("block 3 does not exist"),
            std::string::npos);
  EXPECT_TRUE(compile_steering({}, model)->empty());
}

// A control vector's own layer_range keeps that vector to its blocks before the
// sum (and the top-level range then keeps the sum), and travels through JSON.
TEST(SteeringSpec, EachControlVectorMayHaveItsOwnBlocks) {
  const auto model = testing::load_three_block_model("spec-per-vector.gguf");
  const auto dir = testing::scratch_dir() / "spec-per-vector";
  std::filesystem::create_directories(dir);
  ControlVector a, b;
  a.n_embd = b.n_embd = 64;
  for (int layer = 0; layer < 3; ++layer) {
    a.directions[layer] = random_vector(64, 30 + layer, 2000.0f);
    b.directions[layer] = random_vector(64, 40 + layer, 2000.0f);
  }
  write_control_vector((dir / "a.gguf").string(), a);
  write_control_vector((dir / "b.gguf").string(), b);
  const SteeringSpec spec = SteeringSpec::from_json(R"({"control_vectors": [
      {"name": "a", "scale": 0.5, "layer_range": [1, 1]}, {"name": "b", "scale": 2, "layer_range": [2, 2]}],
      "layer_range": [1, 2]})");
  ASSERT_TRUE(spec.control_vectors[0].layer_range.has_value());
  EXPECT_EQ(*spec.control_vectors[0].layer_range, (std::array<int, 2>{1, 1}));
  EXPECT_EQ(SteeringSpec::from_json(spec.to_json()), spec);
  CompileOptions options;
  options.resolve_name = vector_folder(dir);
  const auto compiled = compile_steering(spec, model, options);

  auto by_hand = std::make_shared<Steering>(64);
  const ControlVector sum =
      combine({{restrict_layers(a, 1, 1, 3), 0.5f}, {restrict_layers(b, 2, 2, 3), 2.0f}});
  add_control_vector(*by_hand, restrict_layers(sum, 1, 2, 3), InterventionKind::Add, 1.0f, PositionSelector::all(),
                     "control vectors");
  ASSERT_EQ(compiled->interventions().size(), 2u);  // block 1 from a, block 2 from b
  const std::vector<TokenId> tokens = {1, 40, 41, 42, 43};
  auto logits_with = [&](const std::shared_ptr<const Steering>& steering) {
    Session session(model, 32, 1);
    SteeringBinding binding(steering, session, {0, 5, 0});
    const auto logits = session.decode(tokens, true);
    return std::vector<float>(logits.begin(), logits.end());
  };
  EXPECT_EQ(logits_with(compiled), logits_with(by_hand));
  // Without the per-vector ranges both vectors reach both blocks: another steering.
  const auto unranged = compile_steering(
      SteeringSpec::from_json(R"({"control_vectors": [{"name": "a", "scale": 0.5}, {"name": "b", "scale": 2}],
                                  "layer_range": [1, 2]})"),
      model, options);
  EXPECT_NE(logits_with(unranged), logits_with(compiled));
}

// Vectors held in memory by name (what the Python package and a server's registry
// give) compile as their files do; a name not held falls through to the folder, and
// a held vector of the wrong width is refused by its name.
TEST(SteeringSpec, HeldVectorsCompileLikeTheirFiles) {
  const auto model = testing::load_three_block_model("spec-held.gguf");
  const auto dir = testing::scratch_dir() / "spec-held";
  std::filesystem::create_directories(dir);
  auto vector = std::make_shared<ControlVector>();
  vector->model_hint = "llama";
  vector->n_embd = 64;
  for (int layer = 0; layer < 3; ++layer) vector->directions[layer] = random_vector(64, 30 + layer, 2000.0f);
  write_control_vector((dir / "on-disk.gguf").string(), *vector);
  auto wide = std::make_shared<ControlVector>(*vector);
  wide->n_embd = 65;
  for (auto& [layer, d] : wide->directions) d.push_back(1.0f);

  int lookups = 0;
  CompileOptions options;
  options.resolve_name = vector_folder(dir);
  options.lookup_name = [&](std::string_view name) -> std::shared_ptr<const ControlVector> {
    ++lookups;
    if (name == "held") return vector;
    if (name == "held-wide") return wide;
    return nullptr;
  };
  const std::vector<TokenId> tokens = {1, 40, 41, 42, 43, 44, 45, 46};
  auto logits_with = [&](const char* spec_text) {
    const auto steering = compile_steering(SteeringSpec::from_json(spec_text), model, options);
    Session session(model, 32, 1);
    SteeringBinding binding(steering, session, {0, 8, 0});
    const auto logits = session.decode(tokens, true);
    return std::vector<float>(logits.begin(), logits.end());
  };
  const auto held = logits_with(R"({"control_vectors": [{"name": "held", "scale": 0.7}], "clamp": [{"name": "held", "value": 1}]})");
  EXPECT_GT(lookups, 0);
  EXPECT_EQ(held, logits_with(R"({"control_vectors": [{"name": "on-disk", "scale": 0.7}], "clamp": [{"name": "on-disk", "value": 1}]})"));
  const std::string message = error_of([&] { logits_with(R"({"ablate": [{"name": "held-wide"}]})"); });
  EXPECT_NE(message.find("vector 'held-wide': the vectors have width 65"), std::string::npos) << message;
}

// ActAdd from JSON on the default model equals the tensor computed by hand, and
// with "align": "user" on a chat prompt it starts at the user's message.
TEST(SteeringSpec, ActAddFromJsonOnTheDefaultModel) {
  TILLER_REQUIRE_MODEL(path, "smollm2-135m-instruct");
  const auto model = Model::load(path);
  const auto compiled = compile_steering(
      SteeringSpec::from_json(R"({"actadd": [{"positive": "Love", "negative": "Hate", "layer": 6, "coef": 5}]})"),
      model);
  const ActAddTensor tensor = make_actadd_tensor(model, {"Love", "Hate", 6}, 1);
  ASSERT_EQ(compiled->interventions().size(), 1u);
  const Intervention& v = compiled->interventions()[0];
  EXPECT_EQ(v.vectors, tensor.rows);
  EXPECT_EQ(v.layer, 6);
  EXPECT_EQ(v.point, HookPoint::ResidPre);
  EXPECT_FLOAT_EQ(v.coefficient, 5.0f);

  const Prompt chat = build_prompt(*model, PromptFormat::chat_with(*model), {"I went up to my friend and said", ""});
  const Prompt plain = build_prompt(*model, PromptFormat::plain(), {"I went up to my friend and said", ""});
  // The chat prompt holds the plain text's tokens (BOS aside) from user_start on.
  ASSERT_GT(chat.user_start, 2);
  EXPECT_EQ(chat.anchor, chat.user_start - (model->tokenizer().adds_bos() ? 1 : 0));
  EXPECT_EQ(plain.anchor, 0);
  const int bos = model->tokenizer().adds_bos() ? 1 : 0;
  EXPECT_EQ(plain.user_start, bos);
  ASSERT_GE(chat.tokens.size(), static_cast<size_t>(chat.user_start) + plain.tokens.size() - bos);
  EXPECT_TRUE(std::equal(plain.tokens.begin() + bos, plain.tokens.end(), chat.tokens.begin() + chat.user_start));
  // Too short a prompt for the tensor is refused when the binding takes its layout.
  Session session(model, 64, 1);
  const Prompt tiny_prompt = build_prompt(*model, PromptFormat::plain(), {"Hi", ""});
  EXPECT_NE(error_of([&] { SteeringBinding binding(compiled, session, tiny_prompt.layout()); })
                .find("tokens longer"),
            std::string::npos);
}

// decode_into writes what decode(…, true) returns straight into the caller's
// memory (the Python package's NumPy arrays), chunk by chunk, and refuses a buffer
// of the wrong size.
TEST(Session, DecodeIntoWritesWhatDecodeReturns) {
  const auto model = testing::load_three_block_model("decode-into.gguf");
  const std::vector<TokenId> tokens = {1, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49};
  Session a(model, SessionOptions{.n_ctx = 32, .n_threads = 1, .n_batch = 4});
  Session b(model, SessionOptions{.n_ctx = 32, .n_threads = 1, .n_batch = 4});
  const auto returned = a.decode(tokens, true);
  std::vector<float> into(returned.size(), -1.0f);
  b.decode_into(tokens, into);
  EXPECT_EQ(std::vector<float>(returned.begin(), returned.end()), into);
  EXPECT_EQ(b.n_past(), static_cast<int>(tokens.size()));
  std::vector<float> small(into.size() - 1);
  b.reset();
  EXPECT_NE(error_of([&] { b.decode_into(tokens, small); }).find("need room for"), std::string::npos);
}

TEST(Generator, StepsGiveWhatGenerateGivesAndCanBeCancelled) {
  const auto model = testing::load_three_block_model("generator.gguf");
  const std::vector<TokenId> prompt = {1, 70, 80, 90};
  GenerationOptions options;
  options.n_predict = 12;
  options.ignore_eos = true;
  options.sampling.seed = 11;
  Session whole_session(model, 64, 1);
  const GenerationResult whole = generate(whole_session, prompt, options);

  Session session(model, 64, 1);
  Generator generator(session, prompt, options);
  std::vector<TokenId> tokens;
  std::string text;
  while (const auto step = generator.next()) {
    if (step->token >= 0) tokens.push_back(step->token);
    text += step->text;
  }
  EXPECT_TRUE(generator.done());
  EXPECT_FALSE(generator.next().has_value());
  EXPECT_EQ(tokens, whole.tokens);
  EXPECT_EQ(text, whole.text);
  EXPECT_EQ(generator.result().text, whole.text);
  EXPECT_EQ(generator.result().reason, StopReason::Length);
  EXPECT_EQ(session.n_past(), whole_session.n_past());

  // Cancelled from another thread after three tokens: nothing more is computed.
  Session cancelled_session(model, 64, 1);
  Generator cancelled(cancelled_session, prompt, options);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(cancelled.next().has_value());
  std::thread([&] { cancelled.cancel(); }).join();
  const auto last = cancelled.next();
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->token, -1);
  EXPECT_TRUE(cancelled.done());
  EXPECT_EQ(cancelled.result().reason, StopReason::Cancelled);
  EXPECT_EQ(cancelled.result().tokens, std::vector<TokenId>(whole.tokens.begin(), whole.tokens.begin() + 3));
  EXPECT_EQ(stop_reason_name(StopReason::Cancelled), "cancelled");
  // The prompt (4) and the two tokens whose successors were sampled: the third was only sampled.
  EXPECT_EQ(cancelled_session.n_past(), 6);

  Session small(model, 4, 1);
  EXPECT_NE(error_of([&] { Generator g(small, prompt, options); }).find("room for 3"), std::string::npos);
  EXPECT_NE(error_of([&] { Generator g(small, {}, options); }).find("no tokens"), std::string::npos);
}

// Two generators on two sessions interleaved token by token give what each gives alone.
TEST(Generator, InterleavedGeneratorsKeepTheirOwnSamplerState) {
  const auto model = testing::load_three_block_model("generator-interleaved.gguf");
  const std::vector<TokenId> prompt_a = {1, 70, 80}, prompt_b = {1, 33, 44, 55};
  GenerationOptions options;
  options.n_predict = 8;
  options.ignore_eos = true;
  options.sampling.seed = 3;
  Session alone_a(model, 64, 1), alone_b(model, 64, 1);
  const auto expected_a = generate(alone_a, prompt_a, options).tokens;
  const auto expected_b = generate(alone_b, prompt_b, options).tokens;
  Session a(model, 64, 1), b(model, 64, 1);
  Generator ga(a, prompt_a, options), gb(b, prompt_b, options);
  while (!ga.done() || !gb.done()) {
    ga.next();
    gb.next();
  }
  EXPECT_EQ(ga.result().tokens, expected_a);
  EXPECT_EQ(gb.result().tokens, expected_b);
}

TEST(Generator, ComparedRunsAreTheUnsteeredAndTheSteeredGeneration) {
  const auto model = testing::load_three_block_model("generator-compare.gguf");
  const std::vector<TokenId> prompt = {1, 70, 80, 90};
  GenerationOptions options;
  options.n_predict = 6;
  options.ignore_eos = true;
  options.sampling.temperature = 0;
  auto steering = std::make_shared<Steering>(64);
  Intervention v;
  v.layer = 1;
  v.vectors = random_vector(64, 4, 5000.0f);
  steering->add(v);
  Session plain(model, 64, 1), steered(model, 64, 1), session(model, 64, 1);
  const auto unsteered_alone = generate(plain, prompt, options);
  GenerationResult steered_alone;
  {
    SteeringBinding on(steering, steered);
    steered_alone = generate(steered, prompt, options);
  }
  SteeringBinding binding(steering);
  const ComparedGeneration pair = generate_compared(session, binding, prompt, options);
  EXPECT_EQ(pair.unsteered.tokens, unsteered_alone.tokens);
  EXPECT_EQ(pair.steered.tokens, steered_alone.tokens);
  EXPECT_NE(pair.steered.tokens, pair.unsteered.tokens) << "the vector should change a greedy continuation";
  EXPECT_FALSE(binding.attached());
}

TEST(HookNames, RequestsExpandAndBadOnesSayWhy) {
  EXPECT_EQ(parse_hook_request("blocks.2.hook_mlp_out", 4), (std::vector<HookLocation>{{2, HookPoint::MlpOut}}));
  EXPECT_EQ(parse_hook_request("blocks.*.hook_resid_pre", 3).size(), 3u);
  EXPECT_EQ(parse_hook_request("all", 3).size(), 15u);
  const std::vector<std::pair<const char*, const char*>> bad = {
      {"blocks.4.hook_mlp_out", "block 4 does not exist"}, {"blocks.01.hook_mlp_out", "block 01 does not exist"},
      {"blocks.x.hook_mlp_out", "does not exist"},         {"blocks.1.hook_mlp", "unknown point 'hook_mlp'"},
      {"block.1.hook_mlp_out", "is not blocks.L.hook_NAME"}, {"blocks.1", "is not blocks.L.hook_NAME"},
  };
  for (const auto& [request, expected] : bad) {
    const char* text = request;  // a structured binding cannot be captured by clang 14
    const std::string message = error_of([&] { parse_hook_request(text, 4); });
    EXPECT_NE(message.find(expected), std::string::npos) << request << " -> " << message;
  }
}

TEST(BlockRanges, ParseLikeTheLayersFlag) {
  EXPECT_EQ(parse_block_range("", 4), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(parse_block_range("2", 4), (std::vector<int>{2}));
  EXPECT_EQ(parse_block_range("0-2", 4), (std::vector<int>{0, 1, 2}));
  for (const char* bad : {"3-1", "1-4", "a", "-1", "1-", "2-x"}) {
    EXPECT_NE(error_of([&] { parse_block_range(bad, 4); }).find("--layers"), std::string::npos) << bad;
  }
}

}  // namespace
}  // namespace tiller
