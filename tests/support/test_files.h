// Paths and scratch files for tests.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "cli/models_dir.h"

namespace tiller::testing {

// A folder of its own for each test process, removed at exit. The exit handler is
// registered after `dir` is built, so it runs before `dir` is destroyed (handlers
// and static destructors run in the reverse order of their registration).
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    auto path = std::filesystem::temp_directory_path() / ("tiller-tests-" + std::to_string(::getpid()));
    std::filesystem::create_directories(path);
    return path;
  }();
  static const bool removed_at_exit = [] {
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(dir, ignored);
    });
    return true;
  }();
  (void)removed_at_exit;
  return dir;
}

inline std::string write_scratch(const std::string& name, const std::vector<uint8_t>& bytes) {
  const auto path = scratch_dir() / name;
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return path.string();
}

// The fetched model's path, or empty when it is not there.
inline std::string real_model_path(const std::string& name) {
  const std::string path = (default_models_dir() / (name + ".gguf")).string();
  return std::filesystem::exists(path) ? path : std::string();
}

// Test names for suites parameterized by model name ("gemma-3-270m" -> gemma_3_270m).
inline std::string model_test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

// CI sets TILLER_REQUIRE_MODELS=1 so that a missing model fails instead of skipping.
inline bool models_required() {
  const char* flag = std::getenv("TILLER_REQUIRE_MODELS");
  return flag != nullptr && std::string(flag) == "1";
}

}  // namespace tiller::testing

// Skips (with the reason printed) or fails when a model file is absent; `how` says
// how to get it.
#define TILLER_REQUIRE_MODEL_FILE(path_variable, name, how)                                   \
  const std::string path_variable = ::tiller::testing::real_model_path(name);                 \
  if (path_variable.empty()) {                                                                 \
    if (::tiller::testing::models_required()) FAIL() << "model " << name << " is missing; " << how; \
    GTEST_SKIP() << "model " << name << " is not there; " << how;                            \
  }

// A real model, fetched by scripts/fetch-models.sh.
#define TILLER_REQUIRE_MODEL(path_variable, name) \
  TILLER_REQUIRE_MODEL_FILE(path_variable, name, "run scripts/fetch-models.sh " << name)
