// An Engine: the kernel level and the thread pool that sessions run on. One
// process may hold several (a server at two levels, a test at each level); a
// model is shared between engines and sessions alike.
#pragma once

#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "tiller/cpu_features.h"
#include "tiller/thread_pool.h"

namespace tiller {

// The instruction sets the kernels come in; a level decides every SIMD choice of
// the forward pass (the matrix products, attention, softmax, SiLU and GELU, the
// activations' quantization), so a level pins the numerics:
//   Portable    plain C++ built for baseline x86-64 (any CPU);
//   Avx2        AVX2, FMA and F16C: integer row kernels for every product, whatever
//               its number of rows, AVX2 attention, the portable element-wise code;
//   Avx2Tiled   Avx2 plus register-tiled AVX2 kernels for products of 8 rows or more;
//   Avx512Vnni  AVX-512 (F, BW, VL, VNNI): tiled and row kernels, attention,
//               softmax, SiLU and GELU with 512-bit vectors.
// Portable and Avx2 give the same bits on every CPU that runs them: no code at
// those levels depends on more than the level's instruction set. At Avx2 and
// below a prompt's results do not depend on how it is batched or packed.
enum class KernelLevel { Portable, Avx2, Avx2Tiled, Avx512Vnni };

std::string_view kernel_level_name(KernelLevel level);  // "portable", "avx2", "avx2tiled", "avx512vnni"
// The level of that name; tiller::Error naming the four choices otherwise.
KernelLevel parse_kernel_level(std::string_view name);
// The levels this CPU runs, lowest first (Portable always).
std::vector<KernelLevel> available_kernel_levels();
// The levels a CPU with `cpu` runs, lowest first: what available_kernel_levels()
// says for cpu_features() (exposed so that tests can ask about other CPUs).
std::vector<KernelLevel> available_kernel_levels(const CpuFeatures& cpu);
KernelLevel best_kernel_level();

struct EngineOptions {
  int n_threads = 1;
  std::optional<KernelLevel> kernels;  // nullopt: best_kernel_level(); one this CPU cannot run: tiller::Error
};

// Owns the kernel choice and one thread pool that its sessions share. No global
// state, no environment reads: the caller (the CLI reads TILLER_KERNELS and -t)
// decides. Sessions of one engine may run on different threads at once; their
// parallel regions then take the pool in turn (ThreadPool::parallel_for
// serializes its callers), and each session's results are those it gets alone.
class Engine {
 public:
  explicit Engine(const EngineOptions& options = {});
  static std::shared_ptr<Engine> create(const EngineOptions& options = {});
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  KernelLevel kernel_level() const { return level_; }
  int n_threads() const { return pool_->size(); }
  ThreadPool& pool() { return *pool_; }

 private:
  KernelLevel level_;
  std::unique_ptr<ThreadPool> pool_;
};

}  // namespace tiller
