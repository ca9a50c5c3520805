// `tiller run [-m MODEL] -p PROMPT | -f FILE [-n N] [sampling flags] [--chat] [--system S] [--stop S]
// [steering flags] [--compare [--samples N]] [--json]`: generates a continuation and streams
// it to stdout (a timing line goes to stderr), or with --compare prints unsteered and
// steered completions of the same prompt and seeds side by side.
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/columns.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "cli/steering_options.h"
#include "common/fail.h"
#include "tiller/prompt.h"
#include "tiller/generate.h"
#include "tiller/model.h"
#include "cli/models_dir.h"
#include "tiller/model_paths.h"

namespace tiller::cli {
namespace {

struct RunOptions {
  std::string model{kDefaultModel};
  TextInput prompt;
  int n_predict = 256;
  SamplingFlags sampling;
  int threads = 1;
  int n_ctx = 0;
  int batch = 512;
  bool chat = false;
  std::string system, chat_template;
  std::vector<std::string> stop;
  bool ignore_eos = false;
  bool echo = false;
  SteeringFlags steering;
  bool compare = false;
  int samples = 1;
  bool json = false;
};

size_t terminal_columns() {
  winsize size{};
  if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col >= 40) return size.ws_col;
  return 120;
}

// --compare: the same prompt and seeds, without and with the steering.
void run_compare(const RunOptions& options, const std::shared_ptr<const Model>& model, Session& session,
                 SteeringBinding* steering, const Prompt& prompt, GenerationOptions generation) {
  if (steering == nullptr) fail("--compare needs a steering flag (--control-vector, --actadd, --ablate, ...)");
  const uint64_t seed = generation.sampling.seed;
  nlohmann::json samples = nlohmann::json::array();
  const size_t width = (terminal_columns() - 3) / 2;
  const bool progress = !options.json && isatty(STDERR_FILENO);
  if (!options.json) {
    fmt::print("{}{}\n", side_by_side("unsteered", "steered", width), std::string(2 * width + 3, '-'));
  }
  for (int i = 0; i < options.samples; ++i) {
    generation.sampling.seed = seed + static_cast<uint64_t>(i);
    if (progress) fmt::print(stderr, "\rsample {}/{}", i + 1, options.samples);
    const ComparedGeneration pair = generate_compared(session, *steering, prompt.tokens, generation);
    if (progress) fmt::print(stderr, "\r\033[K");
    if (options.json) {
      samples.push_back(
          {{"seed", generation.sampling.seed}, {"unsteered", pair.unsteered.text}, {"steered", pair.steered.text}});
    } else {
      fmt::print("{}{}\n", side_by_side(pair.unsteered.text, pair.steered.text, width), std::string(2 * width + 3, '-'));
    }
  }
  if (options.json) {
    nlohmann::json description = nlohmann::json::array();
    for (const Intervention& v : steering->steering().interventions()) {
      description.push_back({{"kind", intervention_kind_name(v.kind)}, {"hook", hook_name(v.layer, v.point)},
                             {"positions", describe(v.where)}, {"coefficient", v.coefficient}, {"source", v.source}});
    }
    fmt::print("{}\n", nlohmann::json{{"model", model->file().name()}, {"prompt", options.prompt.read()},
                                      {"steering", description}, {"samples", samples}}
                             .dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  }
}

void run(const RunOptions& options) {
  const std::string text = options.prompt.read();
  const auto model = load_model(resolve_model(options.model));
  if (!options.chat && !options.system.empty()) fail("--system needs --chat");
  const PromptFormat format =
      options.chat ? PromptFormat::chat_with(*model, options.chat_template, options.system) : PromptFormat::plain();
  const Prompt prompt = build_prompt(*model, format, {text, ""});
  const auto engine = make_engine(options.threads);
  Session session(model, engine, {.n_ctx = options.n_ctx, .n_batch = options.batch});
  const auto steering = build_steering(options.steering, model, engine);
  std::optional<SteeringBinding> binding;
  if (steering) binding.emplace(steering, session, prompt.layout());

  GenerationOptions generation;
  generation.n_predict = options.n_predict;
  generation.sampling = options.sampling.resolve();
  generation.stop = options.stop;
  generation.ignore_eos = options.ignore_eos;

  if (options.compare) return run_compare(options, model, session, binding ? &*binding : nullptr, prompt, generation);
  if (options.samples != 1) fail("--samples needs --compare");
  if (options.json) {
    const GenerationResult result = generate(session, prompt.tokens, generation);
    fmt::print("{}\n", nlohmann::json{{"text", result.text}, {"tokens", result.tokens},
                                      {"stop", stop_reason_name(result.reason)}, {"seed", generation.sampling.seed},
                                      {"n_prompt", result.n_prompt}}
                             .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return;
  }
  if (options.echo) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  }
  const GenerationResult result = generate(session, prompt.tokens, generation, [](std::string_view piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  });
  std::fputc('\n', stdout);
  std::fflush(stdout);

  const auto rate = [](double count, double seconds) { return seconds > 0 ? count / seconds : 0.0; };
  fmt::print(stderr,
             "prompt: {} tokens in {:.3f} s ({:.1f} tok/s) | generated: {} tokens in {:.3f} s ({:.1f} tok/s) | "
             "stop: {} | seed: {}\n",
             result.n_prompt, result.prompt_seconds, rate(result.n_prompt, result.prompt_seconds),
             result.tokens.size(), result.generation_seconds,
             rate(static_cast<double>(result.tokens.size()), result.generation_seconds),
             stop_reason_name(result.reason), generation.sampling.seed);
  if (result.reason == StopReason::ContextFull) {
    fmt::print(stderr, "note: the context ({} positions) is full; raise -c to generate more\n", session.n_ctx());
  }
}

}  // namespace

void register_run(CLI::App& app) {
  auto options = std::make_shared<RunOptions>();
  auto* command = app.add_subcommand("run", "Generate text from a prompt, streaming it to stdout");
  add_model_option(command, options->model);
  options->prompt.add_to(command, "-p,--prompt", "The prompt");
  command->add_option("-n,--n-predict", options->n_predict,
                      "Tokens to generate at most; -1: until the end of generation or a full context")
      ->capture_default_str()->check(CLI::Range(-1, 1 << 24));
  add_sampling_options(command, options->sampling);
  add_threads_option(command, options->threads);
  command->add_option("-c,--ctx-size", options->n_ctx, "Context size (default: the model's, at most 4096)")
      ->check(CLI::Range(0, 1 << 24));
  command->add_option("-b,--batch-size", options->batch, "Prompt tokens per forward pass")
      ->capture_default_str()->check(CLI::Range(1, 1 << 16));
  command->add_flag("--chat", options->chat, "Wrap the prompt in the model's chat template as a user turn");
  command->add_option("--system", options->system, "System message (with --chat)");
  command->add_option("--chat-template", options->chat_template,
                      "chatml, gemma, or a Jinja template file (default: the model's own)");
  command->add_option("--stop", options->stop, "Stop when the output contains this text (repeatable)");
  command->add_flag("--ignore-eos", options->ignore_eos, "Keep generating through end-of-generation tokens");
  command->add_flag("--echo", options->echo, "Print the prompt before the continuation");
  add_steering_options(command, options->steering);
  command->add_flag("--compare", options->compare,
                    "Print unsteered and steered completions side by side (same prompt, same seeds)");
  command->add_option("--samples", options->samples, "With --compare: how many pairs (seeds S, S+1, ...)")
      ->capture_default_str()->check(CLI::Range(1, 1000));
  command->add_flag("--json", options->json, "Print the result as JSON (with --compare: every pair)");
  command->callback([options] { run(*options); });
}

}  // namespace tiller::cli
