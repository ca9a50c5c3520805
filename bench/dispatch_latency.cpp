// tiller-bench-pool [Google Benchmark flags]: what one ThreadPool::parallel_for
// costs when the work is tiny, as in token generation (some 200 calls per token,
// each tens of microseconds). "empty" splits n = threads items over the threads
// and does nothing with them: the time is the dispatch and the join alone.
// "tiny_sum" adds up 4096 ints split over the threads, about a microsecond of work
// on one thread. Wall-clock time per call (the caller's CPU time would miss the
// time it spends blocked).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <numeric>
#include <vector>

#include "tiller/thread_pool.h"

namespace {

void empty(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  tiller::ThreadPool pool(threads);
  for (auto _ : state) {
    pool.parallel_for(threads, [](int64_t begin, int64_t end, int thread) {
      benchmark::DoNotOptimize(begin + end + thread);
    });
  }
}

void tiny_sum(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  tiller::ThreadPool pool(threads);
  std::vector<int32_t> values(4096);
  std::iota(values.begin(), values.end(), 0);
  // One slot per cache line so that the threads' sums do not share a line.
  std::vector<int64_t> sums(static_cast<size_t>(threads) * 8);
  for (auto _ : state) {
    pool.parallel_for(static_cast<int64_t>(values.size()), [&](int64_t begin, int64_t end, int thread) {
      int64_t sum = 0;
      for (int64_t i = begin; i < end; ++i) sum += values[static_cast<size_t>(i)];
      sums[static_cast<size_t>(thread) * 8] = sum;
    });
    benchmark::DoNotOptimize(sums.data());
    benchmark::ClobberMemory();
  }
}

}  // namespace

BENCHMARK(empty)->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kNanosecond)->UseRealTime();
BENCHMARK(tiny_sum)->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kNanosecond)->UseRealTime();

BENCHMARK_MAIN();
