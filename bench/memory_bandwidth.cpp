// tiller-bench-stream [--mib N] [--reps N] [--threads 1,2] [--json]: this machine's
// memory bandwidth, to put the achieved bandwidth of generation (weight bytes read
// per token x tokens/s) next to the physical limit. Arrays are far larger than the
// caches so that every byte comes from DRAM. "read" sums an array (what a
// matrix-vector product over the weights does); "copy" copies one array to another
// (STREAM's Copy, counting bytes read plus bytes written). The sum loads the widest
// vectors the CPU has, as the generation kernels do: a core's read bandwidth grows
// with the width of its loads (a Xeon, one core: 6.6 GB/s in 8-byte loads, 13 in
// 32-byte, 15 in 64-byte), and a narrower loop would put the ceiling below what
// generation itself reads.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace {

struct Options {
  size_t mib = 1024;
  int reps = 7;
  std::vector<int> threads{1, 2};
  bool json = false;
};

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "tiller-bench-stream: error: %s\n", message.c_str());
  std::exit(2);
}

std::vector<int> parse_int_list(const std::string& text) {
  std::vector<int> values;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const int value = std::atoi(text.substr(start, comma - start).c_str());
    if (value <= 0) usage_error("bad thread list '" + text + "'");
    values.push_back(value);
    start = comma + 1;
  }
  return values;
}

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--json") {
      options.json = true;
    } else if (arg == "--mib") {
      const int mib = std::atoi(value().c_str());
      if (mib < 16) usage_error("--mib must be at least 16");
      options.mib = static_cast<size_t>(mib);
    } else if (arg == "--reps") {
      options.reps = std::atoi(value().c_str());
      if (options.reps <= 0) usage_error("--reps must be positive");
    } else if (arg == "--threads" || arg == "-t") {
      options.threads = parse_int_list(value());
    } else {
      usage_error("unknown argument '" + arg + "' (--mib N, --reps N, --threads 1,2, --json)");
    }
  }
  return options;
}

// The sum of words[0, n), in loads as wide as the CPU allows. Two or four
// accumulators, so that no add waits for the one before.
#if defined(__x86_64__)
__attribute__((target("avx512f"))) uint64_t sum_zmm(const uint64_t* words, size_t n) {
  __m512i a = _mm512_setzero_si512(), b = a;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a = _mm512_add_epi64(a, _mm512_loadu_si512(words + i));
    b = _mm512_add_epi64(b, _mm512_loadu_si512(words + i + 8));
  }
  uint64_t lanes[8];
  _mm512_storeu_si512(lanes, _mm512_add_epi64(a, b));
  uint64_t sum = 0;
  for (const uint64_t lane : lanes) sum += lane;
  for (; i < n; ++i) sum += words[i];
  return sum;
}

__attribute__((target("avx2"))) uint64_t sum_ymm(const uint64_t* words, size_t n) {
  __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int k = 0; k < 4; ++k) {
      acc[k] = _mm256_add_epi64(acc[k], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(words + i + 4 * k)));
    }
  }
  uint64_t lanes[4];
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(lanes),
                      _mm256_add_epi64(_mm256_add_epi64(acc[0], acc[1]), _mm256_add_epi64(acc[2], acc[3])));
  uint64_t sum = lanes[0] + lanes[1] + lanes[2] + lanes[3];
  for (; i < n; ++i) sum += words[i];
  return sum;
}
#endif

uint64_t sum_words(const uint64_t* words, size_t n) {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f")) return sum_zmm(words, n);
  if (__builtin_cpu_supports("avx2")) return sum_ymm(words, n);
#endif
  uint64_t acc[8] = {};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) acc[k] += words[i + k];
  }
  uint64_t sum = 0;
  for (const uint64_t a : acc) sum += a;
  for (; i < n; ++i) sum += words[i];
  return sum;
}

// Splits [0, n) into `parts` contiguous ranges and runs job(begin, end, part) on a thread each.
template <class Job>
void parallel_ranges(size_t n, int parts, Job job) {
  std::vector<std::thread> workers;
  for (int p = 0; p < parts; ++p) {
    const size_t begin = n * static_cast<size_t>(p) / static_cast<size_t>(parts);
    const size_t end = n * static_cast<size_t>(p + 1) / static_cast<size_t>(parts);
    workers.emplace_back(job, begin, end, p);
  }
  for (auto& worker : workers) worker.join();
}

double seconds_of(const auto& body) {
  const auto start = std::chrono::steady_clock::now();
  body();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

struct Measurement {
  std::string kind;
  int threads;
  double best_gb_s, median_gb_s;
};

Measurement summarize(std::string kind, int threads, double bytes, std::vector<double> seconds) {
  std::sort(seconds.begin(), seconds.end());
  return {std::move(kind), threads, bytes / seconds.front() / 1e9, bytes / seconds[seconds.size() / 2] / 1e9};
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);
  const size_t n = options.mib * 1024 * 1024 / sizeof(uint64_t);
  // Filled (so the pages are committed) before any timing.
  std::vector<uint64_t> source(n), destination(n);
  for (size_t i = 0; i < n; ++i) source[i] = i;
  std::memset(destination.data(), 1, n * sizeof(uint64_t));

  std::vector<Measurement> results;
  // Each thread's sum lands here, so that the compiler cannot drop the read loop.
  std::vector<uint64_t> sums(static_cast<size_t>(*std::max_element(options.threads.begin(), options.threads.end())));
  for (const int threads : options.threads) {
    std::vector<double> read_seconds, copy_seconds;
    for (int rep = 0; rep < options.reps; ++rep) {
      read_seconds.push_back(seconds_of([&] {
        parallel_ranges(n, threads, [&](size_t begin, size_t end, int part) {
          sums[static_cast<size_t>(part)] += sum_words(source.data() + begin, end - begin);
        });
      }));
      copy_seconds.push_back(seconds_of([&] {
        parallel_ranges(n, threads, [&](size_t begin, size_t end, int) {
          std::memcpy(destination.data() + begin, source.data() + begin, (end - begin) * sizeof(uint64_t));
        });
      }));
    }
    const double bytes = static_cast<double>(n * sizeof(uint64_t));
    results.push_back(summarize("read", threads, bytes, read_seconds));
    results.push_back(summarize("copy", threads, 2 * bytes, copy_seconds));
  }

  if (options.json) {
    std::printf("[\n");
    for (size_t i = 0; i < results.size(); ++i) {
      const Measurement& m = results[i];
      std::printf("  {\"kind\": \"%s\", \"threads\": %d, \"array_mib\": %zu, \"reps\": %d, \"best_gb_s\": %.3f, "
                  "\"median_gb_s\": %.3f}%s\n",
                  m.kind.c_str(), m.threads, options.mib, options.reps, m.best_gb_s, m.median_gb_s,
                  i + 1 < results.size() ? "," : "");
    }
    std::printf("]\n");
  } else {
    std::printf("memory bandwidth, %zu MiB arrays, %d reps (copy counts bytes read + written)\n", options.mib,
                options.reps);
    std::printf("| kind | threads | best GB/s | median GB/s |\n|---|---|---|---|\n");
    for (const Measurement& m : results) {
      std::printf("| %s | %d | %.2f | %.2f |\n", m.kind.c_str(), m.threads, m.best_gb_s, m.median_gb_s);
    }
  }
  // Every element was summed (threads x reps) times: checking that keeps the sums observable.
  uint64_t total = 0;
  for (const uint64_t sum : sums) total += sum;
  const uint64_t expected = static_cast<uint64_t>(options.reps) * static_cast<uint64_t>(options.threads.size()) *
                            (static_cast<uint64_t>(n) * (n - 1) / 2);
  if (total != expected) {
    std::fprintf(stderr, "tiller-bench-stream: error: the read pass summed wrongly\n");
    return 1;
  }
  return 0;
}
