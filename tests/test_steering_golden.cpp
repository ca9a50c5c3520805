// Control vectors against llama.cpp: the same files, scales and layer ranges give
// the same next-token distributions (tests/data/steering, made by
// scripts/make-steering-goldens.py with llama.cpp's control-vector API). Most
// vector files were written by the gguf package, so they also test our reader;
// one (<model>-tiller.gguf) was written by Tiller, and the test below checks that
// Tiller's writer still produces exactly that file: llama.cpp's logits with a file
// Tiller writes are then the golden's "tiller-written" case. <model>-trained.gguf
// was written by `tiller vector train` (its cases: "trained+0.15", "trained-0.3").
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <iostream>
#include <iterator>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "support/golden_checks.h"
#include "support/logit_agreement.h"
#include "support/self_agreement.h"
#include "support/test_files.h"
#include "tiller/control_vector.h"
#include "tiller/model.h"

namespace tiller {
namespace {

using nlohmann::json;

class ControlVectorGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(ControlVectorGolden, LogitsMatchLlamaCppWithTheSameFiles) {
  TILLER_REQUIRE_MODEL(path, GetParam());
  const std::string dir = std::string(TILLER_TEST_DATA) + "/steering/";
  std::ifstream in(dir + GetParam() + "-cvec.json");
  ASSERT_TRUE(in) << "missing golden";
  const json golden = json::parse(in);
  const auto model = Model::load(path);
  const auto n_vocab = static_cast<size_t>(model->config().n_vocab);
  const auto top_k = golden["header"]["top_k"].get<size_t>();
  Session session(model, {.n_ctx = 256, .n_threads = 2});

  // Under the sanitizers (some ten times slower) two cases and one text each; the
  // release build checks all.
#ifdef TILLER_SANITIZED
  const size_t n_cases = 2, n_texts = 1;
  std::cout << "[ note ] sanitizer build: 2 control-vector cases, 1 text each\n";
#else
  const size_t n_cases = golden["cases"].size(), n_texts = golden["texts"].size();
#endif
  testing::LogitAgreement all;
  for (size_t case_index = 0; case_index < n_cases; ++case_index) {
    const auto& c = golden["cases"][case_index];
    SCOPED_TRACE(c["name"].get<std::string>());
    // What --control-vector-scaled FILE:SCALE,.. --control-vector-layer-range START END does.
    std::vector<std::pair<std::string, float>> files;
    for (const auto& file : c["files"]) files.emplace_back(dir + file["file"].get<std::string>(), file["scale"].get<float>());
    SteeringBinding binding(testing::golden_steering(files, c["layer_start"].get<int>(), c["layer_end"].get<int>(),
                                                     model->config()),
                            session);

    testing::LogitAgreement agreement;
    // The golden is worth checking only if the vector changes llama.cpp's output.
    EXPECT_GT(c["kl_vs_unsteered_mean"].get<double>(), 0.01);
    for (size_t i = 0; i < n_texts; ++i) {
      testing::add_golden_entry(session, golden["texts"][i]["ids"].get<std::vector<TokenId>>(), c["texts"][i],
                                n_vocab, top_k, {&agreement, &all});
    }
    binding.detach();
    std::cout << fmt::format("[ figures ] {} {}: {} positions, mean KL {:.5f} (max {:.4f}), top-1 {:.2f}%\n",
                             GetParam(), c["name"].get<std::string>(), agreement.positions, agreement.mean_kl(),
                             agreement.kl_worst, 100 * agreement.top1());
    // Per case, a guard: the bars below hold over all cases together.
    EXPECT_LE(agreement.mean_kl(), 0.03);
  }
  // The bounds of the unsteered forward pass, from llama.cpp's own spread over every
  // forward-golden text (tests/support/self_agreement.h): steering adds no
  // disagreement of its own. These texts are other texts, and fewer (3,168 positions
  // over all cases, or 192 under the sanitizers), so the whole-set figure is the base.
  const auto self = testing::llama_self_agreement(GetParam(), SIZE_MAX, 0);
  const auto bounds = testing::bounds_from(self, self, all.positions, true);
  const double max_kl = bounds.max_mean_kl, min_top1 = bounds.min_top1;
  std::cout << fmt::format("[ figures ] {} all cases: {} positions, mean KL {:.5f} (bound {:.5f}), top-1 {:.2f}% "
                           "(bound {:.2f}%); {}\n",
                           GetParam(), all.positions, all.mean_kl(), max_kl, 100 * all.top1(), 100 * min_top1,
                           bounds.why);
  EXPECT_LE(all.mean_kl(), max_kl);
  EXPECT_GE(all.top1(), min_top1);
}

std::vector<char> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST_P(ControlVectorGolden, TillerWritesTheFileGivenToLlamaCpp) {
  // What `tiller vector combine meandiff:0.1 random:0.02` wrote for the golden.
  const std::string dir = std::string(TILLER_TEST_DATA) + "/steering/" + GetParam();
  const ControlVector sum = combine({{read_control_vector(dir + "-meandiff.gguf"), 0.1f},
                                     {read_control_vector(dir + "-random.gguf"), 0.02f}});
  const std::string written = (testing::scratch_dir() / (GetParam() + "-tiller.gguf")).string();
  write_control_vector(written, sum);
  const auto committed = file_bytes(dir + "-tiller.gguf");
  ASSERT_FALSE(committed.empty()) << "missing golden";
  EXPECT_TRUE(file_bytes(written) == committed) << "Tiller no longer writes the file llama.cpp was tested with";
}

INSTANTIATE_TEST_SUITE_P(RealModels, ControlVectorGolden, ::testing::Values("smollm2-135m-instruct", "gemma-3-270m"),
                         [](const auto& param_info) {
                           std::string name = param_info.param;
                           for (char& ch : name) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                           return name;
                         });

}  // namespace
}  // namespace tiller
