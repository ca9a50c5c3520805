// What many test files need and each used to define for itself: a tiny model
// written and loaded in one call, seeded random vectors and token ids, a row-kernel
// engine, and the message of an expected error. One definition each also keeps
// the test files free of clashing names, which the unity build of the test
// executable (tests/CMakeLists.txt) requires.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "support/test_files.h"
#include "support/tiny_model.h"
#include "tiller/engine.h"
#include "tiller/error.h"
#include "tiller/model.h"

namespace tiller::testing {

// Writes the spec's model into the scratch folder as `file_name` and loads it.
inline std::shared_ptr<const Model> load_tiny_model(const TinyModelSpec& spec, const std::string& file_name) {
  const std::string path = (scratch_dir() / file_name).string();
  make_tiny_model(spec).write(path);
  return Model::load(path);
}

// The steering tests' model: three blocks, so that an intervention at block 1 has
// a block before it and one after it.
inline std::shared_ptr<const Model> load_three_block_model(const std::string& file_name, int64_t n_embd = 64) {
  TinyModelSpec spec;
  spec.n_layer = 3;
  spec.n_embd = n_embd;
  return load_tiny_model(spec, file_name);
}

// n draws of N(0, scale^2) from a generator seeded with `seed`.
inline std::vector<float> random_vector(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = normal(rng);
  return v;
}

// n token ids drawn uniformly from [0, n_vocab).
inline std::vector<TokenId> random_tokens(int n, int64_t n_vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<TokenId> token(0, static_cast<TokenId>(n_vocab - 1));
  std::vector<TokenId> tokens(static_cast<size_t>(n));
  for (auto& t : tokens) t = token(rng);
  return tokens;
}

inline double l2_norm(const std::vector<float>& v) {
  double sum = 0;
  for (const float x : v) sum += double(x) * x;
  return std::sqrt(sum);
}

// At AVX2 level and below one kernel serves any number of rows, so a packed pass
// gives each text the logits it gets alone bit for bit (tests/test_packing.cpp).
// AVX-512's tiled kernels round a matmul of another row count otherwise, and a
// rounding step can move an activation's 8-bit quantization, which later blocks
// magnify (measured on SmolLM2: 0.03 nats in one text's mean log-probability):
// comparisons across packings use this engine.
inline std::shared_ptr<Engine> row_kernel_engine() {
  return Engine::create({.n_threads = 2, .kernels = std::min(best_kernel_level(), KernelLevel::Avx2)});
}

// The message of the Error `f` throws, which must be one line; a failure when it
// throws none.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    return message;
  }
  ADD_FAILURE() << "no error";
  return {};
}

}  // namespace tiller::testing
