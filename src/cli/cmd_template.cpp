// `tiller template [-m MODEL] [--chat-template T] [--system S] [--no-generation-prompt] PROMPT`:
// prints a conversation rendered in the model's chat format.
#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "tiller/chat.h"
#include "tiller/gguf.h"
#include "cli/models_dir.h"
#include "tiller/model_paths.h"

namespace tiller::cli {

void register_template(CLI::App& app) {
  struct Options {
    std::string model{kDefaultModel};
    std::string chat_template, system, prompt;
    bool no_generation_prompt = false;
  };
  auto options = std::make_shared<Options>();
  auto* command = app.add_subcommand("template", "Print a prompt rendered in the model's chat format");
  add_model_option(command, options->model);
  command->add_option("--chat-template", options->chat_template,
                      "chatml, gemma, or a Jinja template file (default: the model's own)");
  command->add_option("--system", options->system, "System message");
  command->add_flag("--no-generation-prompt", options->no_generation_prompt,
                    "End after the user's turn, without opening the assistant's");
  command->add_option("prompt", options->prompt, "The user's message")->required();
  command->callback([options] {
    const gguf::File file = gguf::File::open(resolve_model(options->model));
    fmt::print("{}", render_user_turn(resolve_chat_format(file, options->chat_template), options->system,
                                      options->prompt, !options->no_generation_prompt));
  });
}

}  // namespace tiller::cli
