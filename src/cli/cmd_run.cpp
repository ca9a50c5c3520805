// `tiller run [-m MODEL] -p PROMPT | -f FILE [-n N] [sampling flags] [--chat] [--system S] [--stop S]`:
// generates a continuation and streams it to stdout; a timing line goes to stderr.
#include <cstdio>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "tiller/chat.h"
#include "tiller/error.h"
#include "tiller/generate.h"
#include "tiller/model.h"
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
};

// The prompt as the model should see it: the user's text, or a chat turn.
std::vector<TokenId> prompt_tokens(const Model& model, const RunOptions& options, const std::string& text) {
  if (!options.chat) {
    if (!options.system.empty()) fail("--system needs --chat");
    return model.tokenizer().tokenize(text, {.add_special = true, .parse_special = false});
  }
  std::vector<ChatMessage> messages;
  if (!options.system.empty()) messages.push_back({"system", options.system});
  messages.push_back({"user", text});
  const std::string rendered = render_chat(resolve_chat_format(model.file(), options.chat_template), messages, true);
  // The template writes the special tokens out as text; they must become tokens.
  return model.tokenizer().tokenize(rendered, {.add_special = true, .parse_special = true});
}

void run(const RunOptions& options) {
  const std::string text = options.prompt.read();
  const auto model = Model::load(resolve_model(options.model));
  const std::vector<TokenId> prompt = prompt_tokens(*model, options, text);
  Session session(model, {.n_ctx = options.n_ctx, .n_threads = options.threads, .n_batch = options.batch});

  GenerationOptions generation;
  generation.n_predict = options.n_predict;
  generation.sampling = options.sampling.resolve();
  generation.stop = options.stop;
  generation.ignore_eos = options.ignore_eos;

  if (options.echo) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  }
  const GenerationResult result = generate(session, prompt, generation, [](std::string_view piece) {
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
  command->callback([options] { run(*options); });
}

}  // namespace tiller::cli
