// `tiller tokenize -m MODEL [--no-add-special] [--parse-special] [--pieces] [--json] TEXT | -f FILE`
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/options.h"
#include "tiller/printable.h"
#include "tiller/chat.h"
#include "common/fail.h"
#include "tiller/gguf.h"
#include "cli/models_dir.h"
#include "tiller/model_paths.h"
#include "tiller/tokenizer.h"

namespace tiller::cli {
namespace {

struct TokenizeCommand {
  std::string model{kDefaultModel};
  TextInput input;
  bool no_add_special = false;
  bool parse_special = false;
  bool pieces = false;
  bool json = false;
  bool chat = false;
  std::string system;
  std::string chat_template;
};

void run(const TokenizeCommand& options) {
  const gguf::File file = gguf::File::open(resolve_model(options.model));
  const auto tokenizer = Tokenizer::from_gguf(file);
  std::string input = options.input.read();
  bool parse_special = options.parse_special;
  if (options.chat) {
    // The rendered prompt's turn markers are special tokens, so they are parsed as such.
    input = render_user_turn(resolve_chat_format(file, options.chat_template), options.system, input, true);
    parse_special = true;
  }
  const auto ids = tokenizer->tokenize(input, {!options.no_add_special, parse_special});
  if (options.json) {
    nlohmann::json out = {{"ids", ids}, {"n_tokens", ids.size()}};
    if (options.pieces) {
      nlohmann::json pieces = nlohmann::json::array();
      for (const TokenId id : ids) pieces.push_back(tokenizer->token_to_piece(id, true));
      out["pieces"] = pieces;
    }
    fmt::print("{}\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else if (options.pieces) {
    for (const TokenId id : ids) fmt::print("{:>7} {}\n", id, printable(tokenizer->token_to_piece(id, true), 200));
  } else {
    fmt::print("{}\n", fmt::join(ids, " "));
  }
}

}  // namespace

void register_tokenize(CLI::App& app) {
  auto options = std::make_shared<TokenizeCommand>();
  auto* command = app.add_subcommand("tokenize", "Turn text into token ids, as llama.cpp would");
  add_model_option(command, options->model);
  options->input.add_to(command, "text", "The text to tokenize");
  command->add_flag("--no-add-special", options->no_add_special, "Do not add BOS/EOS");
  command->add_flag("--parse-special", options->parse_special, "Turn special-token text into special tokens");
  command->add_flag("--pieces", options->pieces, "Show each token's text");
  command->add_flag("--json", options->json, "Print {\"ids\": [...]} (and \"pieces\" with --pieces)");
  command->add_flag("--chat", options->chat, "Wrap the text as a user message in the model's chat format");
  command->add_option("--system", options->system, "System message, with --chat");
  command->add_option("--chat-template", options->chat_template,
                      "Chat format: chatml, gemma, or a Jinja template file (default: the model's own)");
  command->callback([options] { run(*options); });
}

}  // namespace tiller::cli
