// The Engine: kernel levels by name and by CPU, a level this CPU cannot run is
// refused, and sessions of one engine driven from two threads at once give the
// logits each gives alone.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/fixtures.h"
#include "support/run_process.h"
#include "support/test_files.h"
#include "support/tiny_model.h"
#include "tiller/engine.h"
#include "tiller/error.h"
#include "tiller/model.h"

namespace tiller {
namespace {

constexpr KernelLevel kAllLevels[] = {KernelLevel::Portable, KernelLevel::Avx2, KernelLevel::Avx2Tiled,
                                      KernelLevel::Avx512Vnni};

TEST(Engine, LevelsHaveNamesAndAnUnknownNameListsTheChoices) {
  for (const KernelLevel level : kAllLevels) EXPECT_EQ(parse_kernel_level(kernel_level_name(level)), level);
  EXPECT_EQ(kernel_level_name(KernelLevel::Avx2Tiled), "avx2tiled");
  try {
    parse_kernel_level("sse9");
    FAIL() << "sse9 parsed";
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()), "kernel level 'sse9' is none of portable, avx2, avx2tiled, avx512vnni");
  }
  EXPECT_THROW(parse_kernel_level(""), Error);
  EXPECT_THROW(parse_kernel_level("AVX2"), Error);
}

TEST(Engine, TheLevelsACpuRunsFollowItsFeatures) {
  const std::vector<KernelLevel> portable_only = {KernelLevel::Portable};
  EXPECT_EQ(available_kernel_levels(CpuFeatures{}), portable_only);
#if defined(__x86_64__) && defined(__GNUC__)
  CpuFeatures epyc;  // AVX2, FMA, F16C, no AVX-512: the CI machine
  epyc.avx2 = epyc.fma = epyc.f16c = true;
  const std::vector<KernelLevel> avx2 = {KernelLevel::Portable, KernelLevel::Avx2, KernelLevel::Avx2Tiled};
  EXPECT_EQ(available_kernel_levels(epyc), avx2);
  CpuFeatures no_vnni = epyc;  // AVX-512F alone (no BW, VL, VNNI) is not enough
  no_vnni.avx512f = true;
  EXPECT_EQ(available_kernel_levels(no_vnni), avx2);
  CpuFeatures zen5 = no_vnni;
  zen5.avx512bw = zen5.avx512vl = zen5.avx512vnni = true;
  EXPECT_EQ(available_kernel_levels(zen5),
            std::vector<KernelLevel>(std::begin(kAllLevels), std::end(kAllLevels)));
  CpuFeatures no_f16c = epyc;
  no_f16c.f16c = false;
  EXPECT_EQ(available_kernel_levels(no_f16c), portable_only);
#endif
  const auto here = available_kernel_levels();
  ASSERT_FALSE(here.empty());
  EXPECT_EQ(here.front(), KernelLevel::Portable);
  EXPECT_EQ(here.back(), best_kernel_level());
  EXPECT_TRUE(std::is_sorted(here.begin(), here.end()));
}

// Every level this CPU runs makes an engine; every other one is a tiller::Error
// that names it.
TEST(Engine, ALevelThisCpuCannotRunIsAnError) {
  const auto here = available_kernel_levels();
  int refused = 0;
  for (const KernelLevel level : kAllLevels) {
    SCOPED_TRACE(kernel_level_name(level));
    if (std::find(here.begin(), here.end(), level) != here.end()) {
      const Engine engine({.n_threads = 2, .kernels = level});
      EXPECT_EQ(engine.kernel_level(), level);
      EXPECT_EQ(engine.n_threads(), 2);
    } else {
      ++refused;
      try {
        const Engine engine({.n_threads = 1, .kernels = level});
        ADD_FAILURE() << "an engine at a level this CPU cannot run";
      } catch (const Error& error) {
        EXPECT_NE(std::string(error.what()).find(kernel_level_name(level)), std::string::npos) << error.what();
      }
    }
  }
  std::printf("[ figures ] this CPU runs %zu of the 4 levels; %d refused\n", here.size(), refused);
  const auto engine = Engine::create();
  EXPECT_EQ(engine->kernel_level(), best_kernel_level());
  EXPECT_EQ(engine->n_threads(), 1);
  EXPECT_EQ(engine->pool().size(), 1);
}

// Decodes a prompt, then `steps` tokens one at a time, and returns every logit.
std::vector<float> run_sequence(Session& session, const std::vector<TokenId>& prompt, int steps) {
  std::vector<float> all;
  auto logits = session.decode(prompt, true);
  all.assign(logits.begin(), logits.end());
  const auto n_vocab = static_cast<size_t>(session.model().config().n_vocab);
  for (int i = 0; i < steps; ++i) {
    const auto last = logits.last(n_vocab);
    const auto next = static_cast<TokenId>(std::max_element(last.begin(), last.end()) - last.begin());
    logits = session.decode(std::vector<TokenId>{next}, false);
    all.insert(all.end(), logits.begin(), logits.end());
  }
  return all;
}

// Two sessions of one engine (one pool of 2 threads), each driven by its own
// thread at the same time, get exactly the logits each gets alone.
void expect_concurrent_sessions_agree(const std::shared_ptr<const Model>& model, const std::vector<TokenId>& a,
                                      const std::vector<TokenId>& b, int steps) {
  for (const KernelLevel level : available_kernel_levels()) {
    SCOPED_TRACE(kernel_level_name(level));
    const auto engine = Engine::create({.n_threads = 2, .kernels = level});
    const SessionOptions options{.n_ctx = 128, .n_batch = 512};
    std::vector<float> alone_a, alone_b;
    {
      Session session(model, engine, options);
      alone_a = run_sequence(session, a, steps);
      session.reset();
      alone_b = run_sequence(session, b, steps);
    }
    for (int round = 0; round < 3; ++round) {
      Session first(model, engine, options), second(model, engine, options);
      std::vector<float> together_a, together_b;
      std::thread other([&] { together_b = run_sequence(second, b, steps); });
      together_a = run_sequence(first, a, steps);
      other.join();
      ASSERT_EQ(together_a, alone_a) << "round " << round;
      ASSERT_EQ(together_b, alone_b) << "round " << round;
    }
  }
}

using testing::random_tokens;

TEST(Engine, TwoThreadsOnTwoSessionsOfOneEngineGetTheLogitsOfEachAlone) {
  const std::string path = (testing::scratch_dir() / "engine-concurrent.gguf").string();
  testing::make_tiny_model({}).write(path);
  const auto model = Model::load(path);
  const int64_t n_vocab = model->config().n_vocab;
  // Prompts long enough for the tiled kernels and the pool's split, then generation.
  expect_concurrent_sessions_agree(model, random_tokens(40, n_vocab, 1), random_tokens(23, n_vocab, 2), 12);
}

class EngineRealModel : public ::testing::TestWithParam<std::string> {};

TEST_P(EngineRealModel, TwoThreadsOnTwoSessionsOfOneEngineGetTheLogitsOfEachAlone) {
  TILLER_REQUIRE_MODEL(path, GetParam());
  const auto model = Model::load(path);
  expect_concurrent_sessions_agree(model, model->tokenizer().tokenize("The weather today is sunny and the birds"),
                                   model->tokenizer().tokenize("Once upon a time, in a land far away"), 4);
}

INSTANTIATE_TEST_SUITE_P(RealModels, EngineRealModel, ::testing::Values("smollm2-135m-instruct"),
                         testing::model_test_name);

// The CLI maps TILLER_KERNELS onto the engine: avx2 and the default both run, each
// gives the same logits every time, and the bench reports the level it ran.
TEST(Engine, TheCliRunsAtAvx2AndAtTheDefault) {
  const auto here = available_kernel_levels();
  if (std::find(here.begin(), here.end(), KernelLevel::Avx2) == here.end()) GTEST_SKIP() << "no AVX2 on this CPU";
  const std::string path = (testing::scratch_dir() / "engine-cli.gguf").string();
  testing::make_tiny_model({}).write(path);
  auto logits = [&](const std::vector<std::string>& environment) {
    std::vector<std::string> argv = {"/usr/bin/env"};
    argv.insert(argv.end(), environment.begin(), environment.end());
    argv.insert(argv.end(), {TILLER_BINARY, "logits", "-m", path, "-p", "hello there, how are you", "--top", "3",
                             "--json", "-t", "2"});
    const auto run = testing::run_process(argv);
    EXPECT_EQ(run.exit_code, 0) << run.err;
    return run.out;
  };
  const std::string avx2 = logits({"TILLER_KERNELS=avx2"});
  const std::string best = logits({"-u", "TILLER_KERNELS"});
  EXPECT_FALSE(avx2.empty());
  EXPECT_FALSE(best.empty());
  EXPECT_EQ(logits({"TILLER_KERNELS=avx2"}), avx2);
  EXPECT_EQ(logits({"TILLER_KERNELS="}), best);  // empty: the default
  for (const auto& [environment, level] : {std::pair{std::string("TILLER_KERNELS=avx2"), KernelLevel::Avx2},
                                           std::pair{std::string("TILLER_KERNELS="), best_kernel_level()}}) {
    const auto bench = testing::run_process({"/usr/bin/env", environment, TILLER_BINARY, "bench", "-m", path,
                                             "--json", "-p", "16", "-n", "2", "-r", "1", "-t", "1"});
    ASSERT_EQ(bench.exit_code, 0) << bench.err;
    EXPECT_EQ(nlohmann::json::parse(bench.out)[0]["kernels"], std::string(kernel_level_name(level))) << bench.out;
  }
}

}  // namespace
}  // namespace tiller
