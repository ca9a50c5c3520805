#include "tiller/engine.h"

#include <algorithm>
#include <array>
#include <string>

#include "tiller/printable.h"
#include "common/fail.h"

namespace tiller {

namespace {

constexpr std::array<KernelLevel, 4> kAllLevels = {KernelLevel::Portable, KernelLevel::Avx2, KernelLevel::Avx2Tiled,
                                                   KernelLevel::Avx512Vnni};

std::string level_names(const std::vector<KernelLevel>& levels) {
  std::string out;
  for (const KernelLevel level : levels) {
    if (!out.empty()) out += ", ";
    out += kernel_level_name(level);
  }
  return out;
}

}  // namespace

std::string_view kernel_level_name(KernelLevel level) {
  switch (level) {
    case KernelLevel::Portable: return "portable";
    case KernelLevel::Avx2: return "avx2";
    case KernelLevel::Avx2Tiled: return "avx2tiled";
    case KernelLevel::Avx512Vnni: return "avx512vnni";
  }
  return "?";
}

KernelLevel parse_kernel_level(std::string_view name) {
  for (const KernelLevel level : kAllLevels) {
    if (kernel_level_name(level) == name) return level;
  }
  fail("kernel level '{}' is none of {}", printable(name),
       level_names(std::vector<KernelLevel>(kAllLevels.begin(), kAllLevels.end())));
}

std::vector<KernelLevel> available_kernel_levels(const CpuFeatures& cpu) {
  std::vector<KernelLevel> levels = {KernelLevel::Portable};
#if defined(__x86_64__) && defined(__GNUC__)  // the only target with SIMD kernels so far
  if (cpu.avx2 && cpu.fma && cpu.f16c) {
    levels.push_back(KernelLevel::Avx2);
    levels.push_back(KernelLevel::Avx2Tiled);
    if (cpu.avx512f && cpu.avx512bw && cpu.avx512vl && cpu.avx512vnni) levels.push_back(KernelLevel::Avx512Vnni);
  }
#else
  (void)cpu;
#endif
  return levels;
}

std::vector<KernelLevel> available_kernel_levels() { return available_kernel_levels(cpu_features()); }

KernelLevel best_kernel_level() { return available_kernel_levels().back(); }

Engine::Engine(const EngineOptions& options) : level_(options.kernels.value_or(best_kernel_level())) {
  const auto levels = available_kernel_levels();
  if (std::find(levels.begin(), levels.end(), level_) == levels.end()) {
    fail("this CPU cannot run the {} kernels (it runs {})", kernel_level_name(level_), level_names(levels));
  }
  pool_ = std::make_unique<ThreadPool>(options.n_threads);  // below 1: 1, as ThreadPool takes it
}

std::shared_ptr<Engine> Engine::create(const EngineOptions& options) { return std::make_shared<Engine>(options); }

}  // namespace tiller
