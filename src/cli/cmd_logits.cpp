// `tiller logits [-m MODEL] -p TEXT | -f FILE [--top K] [--json] [--npy OUT] [-t N] [-c CTX]`:
// the next-token logits at every position of a text, for checking Tiller against
// other engines.
#include <fmt/format.h>

#include <optional>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <numeric>

#include "cli/commands.h"
#include "cli/npy.h"
#include "cli/options.h"
#include "cli/steering_options.h"
#include "common/fail.h"
#include "tiller/model.h"
#include "cli/models_dir.h"
#include "tiller/model_paths.h"

namespace tiller::cli {
namespace {

struct LogitsOptions {
  std::string model{kDefaultModel};
  TextInput input;
  std::string npy;
  int top = 5;
  bool json = false;
  int threads = 2;
  int n_ctx = 0;
  int batch = 64;
  SteeringFlags steering;
};

void run(const LogitsOptions& options) {
  const std::string text = options.input.read();
  const auto model = load_model(resolve_model(options.model));
  const auto ids = model->tokenizer().tokenize(text, {true, false});
  if (ids.empty()) fail("the text has no tokens");
  const int n_ctx = options.n_ctx > 0 ? options.n_ctx : static_cast<int>(ids.size());
  if (static_cast<int>(ids.size()) > n_ctx) {
    fail("the text has {} tokens but the context holds {}; raise -c", ids.size(), n_ctx);
  }
  const auto engine = make_engine(options.threads);
  Session session(model, engine, {.n_ctx = n_ctx});
  const auto steering = build_steering(options.steering, model, engine);
  // A plain text: the user's message starts the context.
  std::optional<SteeringBinding> binding;
  if (steering) binding.emplace(steering, session, PromptLayout{0, static_cast<int>(ids.size()), 0});
  const int64_t n_vocab = model->config().n_vocab;

  std::FILE* npy = nullptr;
  if (!options.npy.empty()) {
    npy = std::fopen(options.npy.c_str(), "wb");
    if (npy == nullptr) fail("{}: cannot create", options.npy);
    write_npy_header(npy, {static_cast<int64_t>(ids.size()), n_vocab});
  }
  nlohmann::json positions = nlohmann::json::array();
  std::vector<int32_t> order(static_cast<size_t>(n_vocab));
  double forward_seconds = 0;  // the forward passes alone, not printing or writing
  for (size_t start = 0; start < ids.size(); start += static_cast<size_t>(options.batch)) {
    const size_t count = std::min(ids.size() - start, static_cast<size_t>(options.batch));
    const auto pass_start = std::chrono::steady_clock::now();
    const auto logits = session.decode(std::span(ids).subspan(start, count), true);
    forward_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - pass_start).count();
    if (npy != nullptr && std::fwrite(logits.data(), sizeof(float), logits.size(), npy) != logits.size()) {
      std::fclose(npy);
      fail("{}: write failed", options.npy);
    }
    for (size_t r = 0; r < count; ++r) {
      const float* row = logits.data() + static_cast<int64_t>(r) * n_vocab;
      std::iota(order.begin(), order.end(), 0);
      const auto k = static_cast<size_t>(std::min<int64_t>(options.top, n_vocab));
      std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                        [&](int32_t x, int32_t y) { return row[x] > row[y]; });
      nlohmann::json top = nlohmann::json::array();
      for (size_t i = 0; i < k; ++i) top.push_back({order[i], row[order[i]]});
      if (options.json) {
        positions.push_back({{"top", top}});
      } else {
        fmt::print("{:>5} {:>7} {}\n", start + r, ids[start + r], top.dump());
      }
    }
  }
  if (npy != nullptr && std::fclose(npy) != 0) fail("{}: write failed", options.npy);
  if (options.json) fmt::print("{}\n", nlohmann::json{{"ids", ids}, {"positions", positions}}.dump());
  fmt::print(stderr, "logits: {} tokens in {:.4f} s ({:.1f} tok/s) of forward passes\n", ids.size(), forward_seconds,
             forward_seconds > 0 ? static_cast<double>(ids.size()) / forward_seconds : 0.0);
}

}  // namespace

void register_logits(CLI::App& app) {
  auto options = std::make_shared<LogitsOptions>();
  auto* command = app.add_subcommand("logits", "Next-token logits at every position of a text");
  add_model_option(command, options->model);
  options->input.add_to(command, "-p,--prompt", "The text");
  command->add_option("--top", options->top, "How many of the highest logits to show per position")
      ->capture_default_str()->check(CLI::Range(1, 1000000));
  command->add_flag("--json", options->json, "Print ids and, per position, the top (id, logit) pairs as JSON");
  command->add_option("--npy", options->npy, "Write all logits as float32 [n_tokens, n_vocab] to this .npy file");
  command->add_option("-t,--threads", options->threads, "Threads")->capture_default_str()->check(CLI::Range(1, 256));
  command->add_option("-c,--ctx-size", options->n_ctx, "Context size (default: the text's length)");
  command->add_option("-b,--batch-size", options->batch, "Tokens per forward pass")
      ->capture_default_str()->check(CLI::Range(1, 4096));
  add_steering_options(command, options->steering);
  command->callback([options] { run(*options); });
}

}  // namespace tiller::cli
