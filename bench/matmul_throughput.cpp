// tiller-bench-matmul [Google Benchmark flags]: ops::matmul's integer kernels, at
// each instruction-set level this CPU runs, against ops::matmul_reference (the
// dequantize-and-float-dot path), on a 576x1536 matrix (1536x576 for the K-quants,
// whose rows must be whole 256-blocks) with 1 activation row (generation), 4, 64
// and 256 (prompt processing: the tiled kernels of level avx512vnni from 8 rows),
// on 1 and 2 threads. GFLOP/s counts 2 x n_in x n_out x rows per call. F16 and
// BF16 (576x1536) take the float kernels of half_row_kernels.h.
// The `big` cases multiply one activation row by a 1536x65536 matrix (33 to 201 MB,
// well beyond the caches), as generation does with Gemma's output matrix: GB/s
// there is weight bytes read per second, to set beside tiller-bench-stream's.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "ops/ops.h"
#include "ops/matmul.h"
#include "tiller/dequantize.h"
#include "tiller/tensor_type.h"
#include "tiller/thread_pool.h"

namespace {

using tiller::TensorType;

// Random quant bits with finite f16 scales (between 2^-10 and 2^-1, either sign);
// F16 and BF16: normally distributed values.
std::vector<uint8_t> random_weights(TensorType type, int64_t n, std::mt19937& rng) {
  const tiller::TensorTypeInfo& info = tiller::tensor_type_info(type);
  std::vector<uint8_t> bytes(*tiller::tensor_bytes(type, n));
  if (type == TensorType::F16 || type == TensorType::BF16) {
    std::normal_distribution<float> normal(0.0f, 0.5f);
    for (int64_t i = 0; i < n; ++i) {
      const float value = normal(rng);
      const uint16_t bits = type == TensorType::F16 ? tiller::fp32_to_fp16(value) : tiller::fp32_to_bf16(value);
      std::memcpy(bytes.data() + 2 * i, &bits, 2);
    }
    return bytes;
  }
  for (auto& byte : bytes) byte = static_cast<uint8_t>(rng());
  std::vector<size_t> fields = {0};  // also IQ4_NL's and IQ4_XS's d
  if (type == TensorType::Q4_1 || type == TensorType::Q5_1 || type == TensorType::Q4_K || type == TensorType::Q5_K) {
    fields = {0, 2};
  } else if (type == TensorType::Q6_K) {
    fields = {208};
  } else if (type == TensorType::Q2_K) {
    fields = {80, 82};
  } else if (type == TensorType::Q3_K) {
    fields = {108};
  }
  for (size_t block = 0; block < bytes.size() / info.block_bytes; ++block) {
    for (const size_t field : fields) {
      const auto scale = static_cast<uint16_t>((rng() & 1u ? 0x8000u : 0u) | ((5u + rng() % 10u) << 10) | (rng() & 0x3ffu));
      std::memcpy(bytes.data() + block * info.block_bytes + field, &scale, 2);
    }
  }
  return bytes;
}

struct Setup {
  std::vector<uint8_t> bytes;
  tiller::ops::WeightMatrix w;
  std::vector<float> x, out;
};

Setup make_setup(TensorType type, int64_t rows, bool big, bool interleaved) {
  const bool k_quant = tiller::tensor_type_info(type).block_size == 256;
  Setup s;
  s.w.type = type;
  s.w.n_in = k_quant || big ? 1536 : 576;
  s.w.n_out = big ? 65536 : k_quant ? 576 : 1536;
  std::mt19937 rng(42);
  s.bytes = random_weights(type, s.w.n_in * s.w.n_out, rng);
  if (interleaved) {  // as the model does at load (ops/interleaved_k_quants.h)
    s.w.layout = tiller::ops::interleaved_layout(type);
    tiller::ops::interleave_blocks(s.w.layout, s.bytes.data(), s.bytes.size() / tiller::tensor_type_info(type).block_bytes);
  }
  s.w.data = s.bytes.data();
  s.w.row_bytes = *tiller::tensor_bytes(type, s.w.n_in);
  s.w.name = "bench";
  std::normal_distribution<float> normal(0.0f, 1.0f);
  s.x.resize(static_cast<size_t>(rows * s.w.n_in));
  for (auto& v : s.x) v = normal(rng);
  s.out.resize(static_cast<size_t>(rows * s.w.n_out));
  return s;
}

// level < 0: matmul_reference.
void run(benchmark::State& state, TensorType type, int level, bool big, bool interleaved = false) {
  const int64_t rows = state.range(0);
  tiller::ThreadPool pool(static_cast<int>(state.range(1)));
  Setup s = make_setup(type, rows, big, interleaved);
  for (auto _ : state) {
    if (level < 0) {
      tiller::ops::matmul_reference(s.w, s.x.data(), rows, s.out.data(), pool, tiller::best_kernel_level());
    } else {
      tiller::ops::quantized_matmul(s.w, s.x.data(), rows, s.out.data(), pool,
                                    static_cast<tiller::KernelLevel>(level));
    }
    benchmark::DoNotOptimize(s.out.data());
    benchmark::ClobberMemory();
  }
  const double flops = 2.0 * static_cast<double>(s.w.n_in * s.w.n_out * rows);
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  if (big) {
    state.counters["GB/s"] = benchmark::Counter(static_cast<double>(s.bytes.size()) * 1e-9,
                                                benchmark::Counter::kIsIterationInvariantRate);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const TensorType types[] = {TensorType::Q4_1, TensorType::Q8_0, TensorType::Q5_0,   TensorType::Q4_K,
                              TensorType::Q6_K, TensorType::Q2_K, TensorType::Q3_K,   TensorType::IQ4_NL,
                              TensorType::IQ4_XS, TensorType::F16, TensorType::BF16};
  for (const TensorType type : types) {
    const std::string name(tiller::tensor_type_name(type));
    std::vector<std::pair<std::string, int>> impls = {{"reference", -1}};
    for (const auto level : tiller::available_kernel_levels()) {
      impls.emplace_back(std::string(tiller::kernel_level_name(level)), static_cast<int>(level));
    }
    for (const auto& [impl, level] : impls) {
      auto* bench = benchmark::RegisterBenchmark(fmt::format("{}/{}", name, impl).c_str(),
                                                 [type, level = level](benchmark::State& state) { run(state, type, level, false); })
                        ->ArgNames({"rows", "threads"})
                        ->Args({1, 1})
                        ->Args({4, 1})
                        ->Args({64, 1})
                        ->Args({1, 2})
                        ->Args({64, 2})
                        ->Unit(benchmark::kMicrosecond)
                        ->UseRealTime();
      if (level < 0) continue;
      bench->Args({256, 1})->Args({256, 2});  // the reference is too slow for these
      benchmark::RegisterBenchmark(fmt::format("{}/{}/big", name, impl).c_str(),
                                   [type, level = level](benchmark::State& state) { run(state, type, level, true); })
          ->ArgNames({"rows", "threads"})
          ->Args({1, 1})
          ->Args({1, 2})
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
    }
  }
  // Q4_K and Q6_K as the model holds them where Avx512Vnni runs: interleaved at load.
  for (const auto level : tiller::available_kernel_levels()) {
    if (level != tiller::KernelLevel::Avx512Vnni) continue;
    for (const TensorType type : {TensorType::Q4_K, TensorType::Q6_K}) {
      for (const bool big : {false, true}) {
        const std::string name =
            fmt::format("{}-interleaved/avx512vnni{}", tiller::tensor_type_name(type), big ? "/big" : "");
        auto* bench = benchmark::RegisterBenchmark(name.c_str(), [type, level, big](benchmark::State& state) {
          run(state, type, static_cast<int>(level), big, true);
        });
        bench->ArgNames({"rows", "threads"})->Args({1, 1})->Args({1, 2})->Unit(benchmark::kMicrosecond)->UseRealTime();
        if (!big) bench->Args({4, 1})->Args({64, 1})->Args({256, 1});
      }
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
