// `tiller bench [-m MODEL] [-p 512] [-n 128] [-t N] [-r REPS] [--json | --on-request]`: prompt
// processing and generation speed, llama-bench style. -p, -n and -t take
// comma-separated lists; every value of -p and of -n is a test at every thread count.
// `--on-request` keeps the model loaded and runs one test per line of standard
// input, for a driver that interleaves Tiller with another engine rep by rep.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/bench_runner.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "cli/steering_options.h"
#include "common/fail.h"
#include "tiller/model.h"
#include "cli/models_dir.h"
#include "tiller/model_paths.h"

namespace tiller::cli {
namespace {

struct BenchOptions {
  std::string model{kDefaultModel};
  std::vector<int> n_prompt{512};
  std::vector<int> n_gen{128};
  std::vector<int> threads;
  std::vector<int> sequences{1};
  int reps = 5;
  int batch = 512;
  bool json = false;
  bool on_request = false;
  SteeringFlags steering;
};

struct BenchRun {
  std::string model_name;
  ModelFootprint footprint;
  double load_seconds = 0.0;
  std::vector<BenchResult> results;
  std::vector<uint64_t> kv_bytes;  // per result: the cache its session held
  KernelLevel kernels = KernelLevel::Portable;
};

std::vector<BenchTest> planned_tests(const BenchOptions& options) {
  std::vector<BenchTest> tests;
  // A length of 0 asks for no test of its kind (-n 0: prompts only), as in llama-bench.
  for (const int threads : options.threads) {
    for (const int n : options.n_prompt) {
      if (n > 0) tests.push_back({.n_prompt = n, .n_gen = 0, .threads = threads});
    }
    for (const int n : options.n_gen) {
      for (const int n_seq : options.sequences) {
        if (n > 0) tests.push_back({.n_prompt = 0, .n_gen = n, .threads = threads, .n_seq = n_seq});
      }
    }
  }
  if (tests.empty()) fail("bench: nothing to measure: every -p and -n length is 0");
  return tests;
}

// The model and what every test shares: loaded once per process.
struct LoadedBench {
  std::shared_ptr<const Model> model;
  std::vector<TokenId> tokens;
  std::shared_ptr<const Steering> steering;
};

LoadedBench load_bench(const BenchOptions& options, const std::vector<BenchTest>& tests, BenchRun& run) {
  LoadedBench loaded;
  const std::string path = resolve_model(options.model);
  run.model_name = std::filesystem::path(path).stem().string();
  const auto start = std::chrono::steady_clock::now();
  loaded.model = load_model(path);
  run.load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  run.footprint = model_footprint(*loaded.model);

  int longest = 0;
  for (const BenchTest& test : tests) longest = std::max(longest, test.n_tokens() + test.n_seq - 1);
  loaded.tokens = bench_tokens(loaded.model->tokenizer(), longest);
  // Steering flags measure the cost of steering: the same interventions in every
  // test, the bench's tokens standing for the prompt.
  int most_threads = 1;
  for (const BenchTest& test : tests) most_threads = std::max(most_threads, test.threads);
  loaded.steering = build_steering(options.steering, loaded.model, make_engine(most_threads));
  return loaded;
}

// One test: its own engine and a session sized to it, as llama-bench sizes its
// context; a warm-up run, then `reps` timed ones.
void run_test(const BenchOptions& options, const LoadedBench& loaded, const BenchTest& test, int reps, BenchRun& run) {
  const auto engine = make_engine(test.threads);
  run.kernels = engine->kernel_level();
  Session session(loaded.model, engine,
                  {.n_ctx = test.n_tokens(), .n_batch = std::max(options.batch, test.n_seq), .n_seq = test.n_seq});
  std::optional<SteeringBinding> binding;
  if (loaded.steering) binding.emplace(loaded.steering, session, PromptLayout{0, test.n_tokens(), 0});
  run.results.push_back(run_bench_test(session, test, reps, loaded.tokens));
  run.kv_bytes.push_back(kv_cache_bytes(loaded.model->config(), session.n_ctx() * session.n_seq()));
}

BenchRun run_benchmarks(const BenchOptions& options) {
  const std::vector<BenchTest> tests = planned_tests(options);  // before the load: a bad list fails at once
  BenchRun run;
  const LoadedBench loaded = load_bench(options, tests, run);
  for (const BenchTest& test : tests) {
    if (!options.json) fmt::print(stderr, "bench: {} at {} threads...\n", test.name(), test.threads);
    run_test(options, loaded, test, options.reps, run);
  }
  return run;
}

double gigabytes_per_second(uint64_t bytes_per_token, double tokens_per_second) {
  return static_cast<double>(bytes_per_token) * tokens_per_second / 1e9;
}

void print_table(const BenchRun& run) {
  const double mib = static_cast<double>(run.footprint.tensor_bytes) / (1024.0 * 1024.0);
  const double params_m = static_cast<double>(run.footprint.n_params) / 1e6;
  fmt::print("| {:<24} | {:>10} | {:>9} | {:>7} | {:>6} | {:>18} |\n", "model", "size", "params", "threads",
             "test", "t/s");
  fmt::print("| {:-<24} | {:->10} | {:->9} | {:->7} | {:->6} | {:->18} |\n", "", "", "", "", "", "");
  for (const BenchResult& r : run.results) {
    fmt::print("| {:<24} | {:>6.2f} MiB | {:>7.2f} M | {:>7} | {:>6} | {:>18} |\n", run.model_name, mib, params_m,
               r.test.threads, r.test.name(), fmt::format("{:.2f} ± {:.2f}", r.mean(), r.sd()));
  }
  uint64_t kv_max = 0;
  for (const uint64_t kv : run.kv_bytes) kv_max = std::max(kv_max, kv);
  fmt::print(stderr,
             "kernels: {} | load: {:.3f} s | peak RSS: {:.1f} MiB | model file: {:.1f} MiB | KV cache (largest): "
             "{:.1f} MiB\n",
             kernel_level_name(run.kernels), run.load_seconds, static_cast<double>(peak_rss_bytes()) / 1048576.0,
             static_cast<double>(run.footprint.file_bytes) / 1048576.0, static_cast<double>(kv_max) / 1048576.0);
  for (const BenchResult& r : run.results) {
    if (r.test.n_gen == 0) continue;
    // Sequences decoding together share each step's read of the weights.
    const double steps_per_second = r.mean() / r.test.n_seq;
    fmt::print(stderr, "{} at {} threads: {:.1f} MB of weights per step x {:.2f} steps/s = {:.2f} GB/s\n",
               r.test.name(), r.test.threads, static_cast<double>(run.footprint.weight_bytes_per_token) / 1e6,
               steps_per_second, gigabytes_per_second(run.footprint.weight_bytes_per_token, steps_per_second));
  }
}

nlohmann::json json_entry(const BenchRun& run, size_t i) {
  const BenchResult& r = run.results[i];
  nlohmann::json entry = {
      {"model", run.model_name},
      {"test", r.test.name()},
      {"n_prompt", r.test.n_prompt},
      {"n_gen", r.test.n_gen},
      {"threads", r.test.threads},
      {"n_seq", r.test.n_seq},
      {"reps", r.samples.size()},
      {"tok_s", r.mean()},
      {"tok_s_sd", r.sd()},
      {"samples", r.samples},
      {"model_params", run.footprint.n_params},
      {"model_tensor_bytes", run.footprint.tensor_bytes},
      {"model_file_bytes", run.footprint.file_bytes},
      {"kv_cache_bytes", run.kv_bytes[i]},
      {"load_seconds", run.load_seconds},
      {"peak_rss_bytes", peak_rss_bytes()},
      {"weight_bytes_per_token", run.footprint.weight_bytes_per_token},
      {"kernels", kernel_level_name(run.kernels)},
  };
  entry["bandwidth_gb_s"] =
      r.test.n_gen > 0
          ? nlohmann::json(gigabytes_per_second(run.footprint.weight_bytes_per_token, r.mean() / r.test.n_seq))
          : nlohmann::json(nullptr);
  return entry;
}

void print_json(const BenchRun& run) {
  nlohmann::json tests = nlohmann::json::array();
  for (size_t i = 0; i < run.results.size(); ++i) tests.push_back(json_entry(run, i));
  fmt::print("{}\n", tests.dump(2));
}

// --on-request: the model stays loaded; each line of standard input names one
// planned test and a thread count ("tg128 2"), and gets one warm-up and one timed
// run of it, answered as one line of JSON (the --json object). The end of input, or
// an empty line, ends the command. A driver that alternates this process with
// another engine, rep by rep, so measures both with their weights loaded once.
void serve_requests(const BenchOptions& options) {
  const std::vector<BenchTest> tests = planned_tests(options);
  BenchRun run;
  const LoadedBench loaded = load_bench(options, tests, run);
  std::string line;
  while (std::getline(std::cin, line) && !line.empty()) {
    std::istringstream words(line);
    std::string name, rest;
    int threads = 0;
    if (!(words >> name >> threads) || (words >> rest)) {
      fail("bench: bad request '{}': expected a test name and a thread count, such as 'tg128 2'", line);
    }
    const auto test = std::find_if(tests.begin(), tests.end(), [&](const BenchTest& t) {
      return t.name() == name && t.threads == threads;
    });
    if (test == tests.end()) fail("bench: request '{}': no such test among -p, -n, -s and -t", line);
    run.results.clear();
    run.kv_bytes.clear();
    run_test(options, loaded, *test, 1, run);
    fmt::print("{}\n", json_entry(run, 0).dump());
    std::fflush(stdout);
  }
}

}  // namespace

void register_bench(CLI::App& app) {
  auto options = std::make_shared<BenchOptions>();
  auto* command = app.add_subcommand("bench", "Measure prompt processing and generation speed (tokens/s)");
  add_model_option(command, options->model);
  const auto lengths = CLI::Range(0, 1 << 20);
  command->add_option("-p,--n-prompt", options->n_prompt, "Prompt lengths to test, comma-separated (0: none)")
      ->delimiter(',')->capture_default_str()->check(lengths);
  command->add_option("-n,--n-gen", options->n_gen, "Generation lengths to test, comma-separated (0: none)")
      ->delimiter(',')->capture_default_str()->check(lengths);
  options->threads = {default_thread_count()};
  command->add_option("-t,--threads", options->threads, "Thread counts to test, comma-separated")
      ->delimiter(',')->capture_default_str()->check(CLI::Range(1, 256));
  command->add_option("-s,--sequences", options->sequences,
                      "Sequences decoding together in each tg test (tgNxS: S tokens per step, one per "
                      "sequence; tok/s counts them all), comma-separated")
      ->delimiter(',')->capture_default_str()->check(CLI::Range(1, 256));
  command->add_option("-r,--repetitions", options->reps, "Timed runs per test (after one warm-up run)")
      ->capture_default_str()->check(CLI::Range(1, 1000));
  command->add_option("-b,--batch-size", options->batch, "Prompt tokens per forward pass")
      ->capture_default_str()->check(CLI::Range(1, 1 << 16));
  auto* json = command->add_flag("--json", options->json, "Print a JSON array, one object per test");
  command->add_flag("--on-request", options->on_request,
                    "Keep the model loaded and read requests from standard input, one per line: a test "
                    "and a thread count ('tg128 2'); answer each with one warm-up and one timed run (-r "
                    "does not apply), as one line of JSON. For drivers that interleave Tiller with another "
                    "engine")
      ->excludes(json);
  add_steering_options(command, options->steering);
  command->callback([options] {
    if (options->on_request) return serve_requests(*options);
    const BenchRun run = run_benchmarks(*options);
    if (options->json) {
      print_json(run);
    } else {
      print_table(run);
    }
  });
}

}  // namespace tiller::cli
