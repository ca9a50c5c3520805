// `tiller vector train` and train_control_vector: the directions against a direct
// computation (tiny model) and against NumPy on dumped activations (real models,
// computed at test time by scripts/numpy-train-reference.py),
// and one-line errors for bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <random>
#include <cstdlib>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "support/base64.h"
#include "support/cli_expect.h"
#include "support/fixtures.h"
#include "support/run_process.h"
#include "support/test_files.h"
#include "support/tiny_model.h"
#include "tiller/control_vector.h"
#include "common/fail.h"
#include "tiller/engine.h"
#include "tiller/model.h"
#include "tiller/train.h"

namespace tiller {
namespace {

using json = nlohmann::json;

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += a[i] * b[i];
  return sum;
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

using testing::l2_norm;

// resid_post of every block for one prompt decoded alone: [layer][n_tokens x width].
std::vector<std::vector<float>> rows_alone(const std::shared_ptr<const Model>& model, const std::vector<TokenId>& tokens,
                                           HookPoint point = HookPoint::ResidPost) {
  Session session(model, 64, 1);
  std::vector<std::vector<float>> rows(static_cast<size_t>(model->config().n_layer));
  for (int layer = 0; layer < model->config().n_layer; ++layer) {
    session.add_hook(layer, point, [&rows](const HookRows& r) {
      rows[static_cast<size_t>(r.layer)].assign(r.data, r.data + r.n_rows * r.width);
    });
  }
  session.decode(tokens, false);
  return rows;
}

// The read row as the definition says it, in double.
std::vector<double> read_row(const std::vector<float>& rows, size_t n_tokens, size_t width, const ReadToken& read) {
  std::vector<double> out(width, 0.0);
  for (size_t t = 0; t < n_tokens; ++t) {
    const int k = read.index >= 0 ? read.index : static_cast<int>(n_tokens) + read.index;
    const bool take = read.kind == ReadToken::Kind::Mean || (read.kind == ReadToken::Kind::Last && t == n_tokens - 1) ||
                      (read.kind == ReadToken::Kind::Index && static_cast<int>(t) == k);
    if (!take) continue;
    const double weight = read.kind == ReadToken::Kind::Mean ? 1.0 / static_cast<double>(n_tokens) : 1.0;
    for (size_t i = 0; i < width; ++i) out[i] += weight * rows[t * width + i];
  }
  return out;
}

// The top eigenvector of a symmetric matrix by power iteration (many steps: small matrices).
std::vector<double> top_eigenvector(const std::vector<std::vector<double>>& m) {
  const size_t n = m.size();
  std::vector<double> v(n, 1.0), next(n);
  for (int step = 0; step < 3000; ++step) {
    for (size_t i = 0; i < n; ++i) next[i] = dot(m[i], v);
    const double length = std::sqrt(dot(next, next));
    for (size_t i = 0; i < n; ++i) v[i] = next[i] / length;
  }
  return v;
}

// The definition of each method, written out plainly (no packing, no Eigen).
std::vector<float> expected_direction(const std::vector<std::vector<double>>& d, TrainMethod method) {
  const size_t width = d.front().size();
  const auto n = static_cast<double>(d.size());
  std::vector<double> mean(width, 0.0);
  for (const auto& row : d) {
    for (size_t i = 0; i < width; ++i) mean[i] += row[i] / n;
  }
  std::vector<double> v = mean;
  if (method != TrainMethod::Mean) {
    std::vector<std::vector<double>> m(width, std::vector<double>(width, 0.0));
    for (const auto& row : d) {
      for (size_t i = 0; i < width; ++i) {
        for (size_t j = 0; j < width; ++j) {
          const double a = method == TrainMethod::PcaDiff ? row[i] - mean[i] : row[i];
          const double b = method == TrainMethod::PcaDiff ? row[j] - mean[j] : row[j];
          m[i][j] += a * b / n;
        }
      }
    }
    // The matrix is positive semi-definite: power iteration finds the largest eigenvalue's vector.
    v = top_eigenvector(m);
  }
  const double length = std::sqrt(dot(v, v));
  for (double& x : v) x /= length;
  double gap = dot(v, mean);
  if (gap < 0) {
    for (double& x : v) x = -x;
    gap = -gap;
  }
  std::vector<float> out(width);
  for (size_t i = 0; i < width; ++i) out[i] = static_cast<float>(v[i] * gap);
  return out;
}

TEST(Train, ParsersRefuseNonsense) {
  EXPECT_EQ(parse_train_method("pca-center"), TrainMethod::PcaCenter);
  EXPECT_EQ(parse_read_token("index:-2").index, -2);
  EXPECT_EQ(parse_read_token("mean").kind, ReadToken::Kind::Mean);
  EXPECT_THROW(parse_train_method("pca"), Error);
  EXPECT_THROW(parse_train_scale("big"), Error);
  for (const char* bad : {"", "first", "index:", "index:x", "index:1.5"}) EXPECT_THROW(parse_read_token(bad), Error);
}

// Packed passes of several pairs (n_batch 9 cuts some passes to one pair, and a
// longer pair runs alone) give the directions the definitions give on prompts
// decoded one by one.
TEST(Train, EqualsTheDefinitionsOnATinyModel) {
  const auto model = testing::load_three_block_model("train-tiny.gguf");
  std::mt19937 rng(7);
  std::uniform_int_distribution<TokenId> token(1, 255);
  std::uniform_int_distribution<int> length(3, 8);
  std::vector<TokenPair> pairs(12);
  for (TokenPair& p : pairs) {
    for (auto* prompt : {&p.positive, &p.negative}) {
      const int n = length(rng);
      for (int i = 0; i < n; ++i) prompt->push_back(token(rng));
    }
  }
  pairs[5].positive.resize(14, 9);  // longer than a batch with its partner
  const auto width = static_cast<size_t>(model->config().n_embd);
  for (const TrainMethod method : {TrainMethod::Mean, TrainMethod::PcaDiff, TrainMethod::PcaCenter}) {
    for (const char* read_text : {"last", "mean", "index:2", "index:-3"}) {
      SCOPED_TRACE(fmt::format("{} read {}", train_method_name(method), read_text));
      TrainOptions options;
      options.method = method;
      options.read = parse_read_token(read_text);
      options.layers = {1, 2};
      options.n_threads = 2;
      options.n_batch = 9;
      const TrainResult result = train_control_vector(model, pairs, options);
      EXPECT_EQ(result.pairs, pairs.size());
      EXPECT_GT(result.passes, 3u);
      for (const int layer : options.layers) {
        std::vector<std::vector<double>> d;
        for (const TokenPair& p : pairs) {
          const auto pos = rows_alone(model, p.positive)[size_t(layer)];
          const auto neg = rows_alone(model, p.negative)[size_t(layer)];
          const auto a = read_row(pos, p.positive.size(), width, options.read);
          const auto b = read_row(neg, p.negative.size(), width, options.read);
          auto& row = d.emplace_back(width);
          for (size_t i = 0; i < width; ++i) row[i] = a[i] - b[i];
        }
        const auto expected = expected_direction(d, method);
        const auto& got = result.vector.directions.at(layer);
        EXPECT_GT(cosine(got, expected), 0.99999) << "block " << layer;
        EXPECT_NEAR(l2_norm(got) / l2_norm(expected), 1.0, 1e-5) << "block " << layer;
      }
      EXPECT_EQ(result.vector.directions.count(0), 0u);
    }
  }
  // Another hook point: read there, stored as direction.L all the same.
  TrainOptions mid;
  mid.point = HookPoint::AttnOut;
  mid.layers = {0, 2};
  const TrainResult at_mid = train_control_vector(model, pairs, mid);
  for (const int layer : mid.layers) {
    std::vector<std::vector<double>> d;
    for (const TokenPair& p : pairs) {
      const auto a = read_row(rows_alone(model, p.positive, mid.point)[size_t(layer)], p.positive.size(), width, {});
      const auto b = read_row(rows_alone(model, p.negative, mid.point)[size_t(layer)], p.negative.size(), width, {});
      auto& row = d.emplace_back(width);
      for (size_t i = 0; i < width; ++i) row[i] = a[i] - b[i];
    }
    EXPECT_GT(cosine(at_mid.vector.directions.at(layer), expected_direction(d, TrainMethod::Mean)), 0.99999);
  }
  // Unit scale: the same directions, length 1.
  TrainOptions unit;
  unit.scale = TrainScale::Unit;
  unit.layers = {2};
  EXPECT_NEAR(l2_norm(train_control_vector(model, pairs, unit).vector.directions.at(2)), 1.0, 1e-6);
}

TEST(Train, RefusesWhatCannotBeTrained) {
  const auto model = testing::load_three_block_model("train-refuse.gguf");
  const std::vector<TokenPair> one = {{{1, 2, 3}, {1, 2, 4}}};
  TrainOptions options;
  options.layers = {1};
  options.method = TrainMethod::PcaDiff;
  EXPECT_THROW(train_control_vector(model, one, options), Error);  // PCA of one pair
  options.method = TrainMethod::Mean;
  options.read = parse_read_token("index:5");
  EXPECT_THROW(train_control_vector(model, one, options), Error);  // past the prompt's end
  options.read = {};
  options.layers = {3};
  EXPECT_THROW(train_control_vector(model, one, options), Error);  // no block 3
  options.layers = {1};
  EXPECT_THROW(train_control_vector(model, {{{1, 2}, {}}}, options), Error);
  EXPECT_THROW(train_control_vector(model, {{{1, 2}, {1, 2}}}, options), Error);  // no difference at all
  EXPECT_THROW(train_control_vector(model, {}, options), Error);
}

std::string write_file(const std::string& name, const std::string& text) {
  const std::string path = (testing::scratch_dir() / name).string();
  std::ofstream(path) << text;
  return path;
}

TEST(TrainCommand, BadInputGetsOneLine) {
  const std::string model = (testing::scratch_dir() / "train-cli.gguf").string();
  testing::make_tiny_model({}).write(model);  // width 64, 2 blocks
  testing::TinyModelSpec narrow_spec;
  narrow_spec.n_embd = 32;
  const std::string narrow = (testing::scratch_dir() / "train-cli-narrow.gguf").string();
  testing::make_tiny_model(narrow_spec).write(narrow);
  const std::string pos = write_file("pos.txt", "good day\nfine\\nday\nnice day\n");
  const std::string neg = write_file("neg.txt", "bad day\nawful day\nsad day\n");
  const std::string short_neg = write_file("neg2.txt", "bad day\nawful day\n");
  const std::string blank = write_file("blank.txt", "bad day\n\nsad day\n");
  const std::string jsonl = write_file("pairs.jsonl", "{\"positive\": \"good\", \"negative\": \"bad\"}\n"
                                                      "{\"positive\": \"fine\"}\n");
  const std::string suffixes = write_file("suffixes.txt", "I think that\nThe day was\n");
  const std::string out = (testing::scratch_dir() / "trained.gguf").string();
  const std::vector<std::string> files = {"--positive-file", pos, "--negative-file", neg};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = files;
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  };
  for (const auto& argv : std::vector<std::vector<std::string>>{
           {"--positive-file", pos, "--negative-file", short_neg},  // unequal counts
           {"--positive-file", pos, "--negative-file", blank},      // an empty line
           {"--positive-file", pos},                                 // half a pair of files
           {"--pairs", jsonl},                                       // a line without "negative"
           {"--pairs", "/nonexistent.jsonl"},
           {},                                                       // no pairs at all
           {"--pairs", jsonl, "--positive-file", pos, "--negative-file", neg},  // two sources
           {"--template", "be {persona}", "--personas", "happy", "--suffixes", suffixes},
           {"--template", "be happy", "--personas", "happy,sad", "--suffixes", suffixes},
           {"--template", "be {persona}", "--personas", "happy,sad"},
           with({"-c", "4"}),                                        // a prompt longer than the context
           with({"--method", "pca"}),
           with({"--scale", "huge"}),
           with({"--read", "first"}),
           with({"--read", "index:40"}),
           with({"--layers", "0-5"}),
           with({"--layers", "2-1"}),
           with({"--layers", "a"}),
           with({"--hook-point", "resid_side"}),
           with({"--system", "hi"}),                                 // needs --chat
       }) {
    std::vector<std::string> full = {TILLER_BINARY, "vector", "train", "-m", model, "-o", out};
    full.insert(full.end(), argv.begin(), argv.end());
    testing::expect_one_line_failure(full, argv);
  }
  // Well formed, it trains; the file then refuses a model of another width.
  const auto fine = testing::run_process({TILLER_BINARY, "vector", "train", "-m", model, "-o", out, "--positive-file",
                                          pos, "--negative-file", neg, "--method", "pca-diff", "--json"});
  ASSERT_EQ(fine.exit_code, 0) << fine.err;
  EXPECT_EQ(json::parse(fine.out)["pairs"].get<int>(), 3);
  const ControlVector trained = read_control_vector(out);
  EXPECT_EQ(trained.n_embd, 64);
  EXPECT_EQ(trained.directions.size(), 1u);  // block 1 of 2: all but the first
  EXPECT_EQ(trained.model_hint, "llama");
  const auto applied = testing::run_process({TILLER_BINARY, "run", "-m", narrow, "-p", "hello", "-n", "2",
                                             "--control-vector", out});
  EXPECT_NE(applied.exit_code, 0);
  EXPECT_EQ(std::count(applied.err.begin(), applied.err.end(), '\n'), 1) << applied.err;
  EXPECT_NE(applied.err.find("width 64"), std::string::npos) << applied.err;
  // Personas: every token prefix of every suffix is a pair.
  const auto persona = testing::run_process({TILLER_BINARY, "vector", "train", "-m", model, "-o", out, "--template",
                                             "Act {persona}.", "--personas", "happy,sad", "--suffixes", suffixes,
                                             "--json", "--max-pairs", "5"});
  ASSERT_EQ(persona.exit_code, 0) << persona.err;
  EXPECT_EQ(json::parse(persona.out)["pairs"].get<int>(), 5);
}

// NumPy on `tiller dump`'s activations against `tiller vector train` on the same
// pairs, every block, every case: scripts/numpy-train-reference.py computes the
// reference at test time, on this machine and with this build, so both sides read
// the same activations whatever the CPU (a committed reference made on another CPU
// would differ by that CPU's rounding, which PCA can magnify into a sign flip).
class TrainNumpyReference : public ::testing::TestWithParam<std::string> {};

// Debian's python3, where python3-numpy (scripts/setup.sh) installs NumPy; the
// environment variable TILLER_PYTHON names another.
std::string numpy_python() {
  const char* python = std::getenv("TILLER_PYTHON");
  return python != nullptr && *python != '\0' ? python : "/usr/bin/python3";
}

TEST_P(TrainNumpyReference, DirectionsEqualNumpy) {
  TILLER_REQUIRE_MODEL(path, GetParam());
  const std::string python = numpy_python();
  const auto probe = testing::run_process({python, "-c", "import numpy"});
  ASSERT_EQ(probe.exit_code, 0) << python << " cannot import numpy (install python3-numpy: scripts/setup.sh, or "
                                << "set TILLER_PYTHON to a python that has it): " << probe.err;
  // Both sides at the avx2 product kernels (portable on a CPU without AVX2): one
  // kernel for any number of rows, so that a prompt dumped alone by the reference
  // and packed with others by `vector train` gives the same bits.
  const auto levels = available_kernel_levels();
  const bool avx2 = std::any_of(levels.begin(), levels.end(), [](auto l) { return l == KernelLevel::Avx2; });
  const std::vector<std::string> env = {"/usr/bin/env", std::string("TILLER_KERNELS=") + (avx2 ? "avx2" : "portable")};
  const std::string dir = std::string(TILLER_TEST_DATA) + "/train/";
  const std::string reference_file = (testing::scratch_dir() / (GetParam() + "-numpy.json")).string();
  auto argv = env;
  argv.insert(argv.end(), {python, std::string(TILLER_TEST_DATA) + "/../../scripts/numpy-train-reference.py", "--tiller",
                           TILLER_BINARY, "--model", path, "--pairs", dir + "pairs.jsonl", "--out", reference_file});
  const auto made = testing::run_process(argv);
  ASSERT_EQ(made.exit_code, 0) << made.err;
  std::ifstream in(reference_file);
  const json reference = json::parse(in);
  const auto width = reference["n_embd"].get<size_t>();

  for (const auto& c : reference["cases"]) {
    const std::string method = c["method"], read = c["read"];
    SCOPED_TRACE(method + " read " + read);
    const std::string out = (testing::scratch_dir() / ("numpy-" + method + ".gguf")).string();
    argv = env;
    argv.insert(argv.end(), {TILLER_BINARY, "vector", "train", "-m", path, "--pairs", dir + "pairs.jsonl", "--method",
                             method, "--read", read, "--scale", "projection", "-t", "2", "-o", out});
    const auto run = testing::run_process(argv);
    ASSERT_EQ(run.exit_code, 0) << run.err;
    const ControlVector vector = read_control_vector(out);
    const auto blocks = c["blocks"].get<std::vector<int>>();
    ASSERT_EQ(vector.directions.size(), blocks.size());
    // Both read the same float32 activations and work in float64; they differ in
    // the route (NumPy: an SVD of the rows; Tiller: Lanczos on summed outer
    // products, stopped at |A v - l v| <= 1e-10 |l|, so its angle to the true
    // eigenvector is at most 1e-10 / the relative eigengap, printed below) and in
    // Tiller writing float32 (2^-24 relative per element). Together that is below
    // 1e-12 in 1 - cosine and 1e-6 in the norm; the bounds, 1e-9 and 1e-5, hold that
    // with room while a wrong method, read position or sign (cosine -1) fails.
    double worst_cosine = 1, worst_norm = 0, smallest_gap = 1, smallest_margin = 1;
    for (size_t b = 0; b < blocks.size(); ++b) {
      const auto want64 = c["directions"][b].get<std::vector<double>>();
      ASSERT_EQ(want64.size(), width);
      const std::vector<float> want(want64.begin(), want64.end());
      const auto& got = vector.directions.at(blocks[b]);
      const double cos = cosine(got, want);  // > 0: the sign agrees
      EXPECT_GE(cos, 1 - 1e-9) << "block " << blocks[b];
      worst_cosine = std::min(worst_cosine, cos);
      worst_norm = std::max(worst_norm, std::fabs(l2_norm(got) / l2_norm(want) - 1));
      if (!c["eigengap"][b].is_null()) smallest_gap = std::min(smallest_gap, c["eigengap"][b].get<double>());
      smallest_margin = std::min(smallest_margin, c["sign_margin"][b].get<double>());
    }
    EXPECT_LE(worst_norm, 1e-5);
    std::cout << fmt::format("[ figures ] {} {} read {}: {} blocks, lowest cosine with NumPy 1 - {:.1e} (bound "
                             "1e-9), worst |norm ratio - 1| {:.1e} (bound 1e-5); {}smallest sign margin {:.2g}\n",
                             GetParam(), method, read, blocks.size(), 1 - worst_cosine, worst_norm,
                             method == "mean" ? "" : fmt::format("smallest relative eigengap {:.2g}, ", smallest_gap),
                             smallest_margin);
  }
}

INSTANTIATE_TEST_SUITE_P(RealModels, TrainNumpyReference, ::testing::Values("smollm2-135m-instruct", "gemma-3-270m"),
                         testing::model_test_name);

}  // namespace
}  // namespace tiller
