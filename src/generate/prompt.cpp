#include "tiller/prompt.h"

#include <algorithm>

namespace tiller {

PromptFormat PromptFormat::chat_with(const Model& model, const std::string& chat_template, std::string system) {
  return {true, resolve_chat_format(model.file(), chat_template), std::move(system)};
}

Prompt build_prompt(const Model& model, const PromptFormat& format, const PromptText& text) {
  const Tokenizer& tokenizer = model.tokenizer();
  const int bos = tokenizer.adds_bos() ? 1 : 0;
  if (!format.chat) {
    std::string joined = text.user;
    if (!text.assistant.empty()) {
      const bool space = !joined.empty() && joined.back() != ' ' && joined.back() != '\n' &&
                         text.assistant.front() != ' ';
      joined += (space ? " " : "") + text.assistant;
    }
    return {tokenizer.tokenize(joined, {.add_special = true, .parse_special = false}), bos, 0};
  }
  const std::string turn = render_user_turn(format.format, format.system, text.user, true);
  // The template writes the special tokens out as text; they must become tokens.
  Prompt prompt{tokenizer.tokenize(turn + text.assistant, {.add_special = true, .parse_special = true}), 0, 0};
  // Where the user's text starts: the tokens of the text before it, as far as they
  // agree with the whole prompt's (a merge across the boundary stops one early).
  const size_t offset = text.user.empty() ? std::string::npos : turn.rfind(text.user);
  if (offset != std::string::npos) {
    const auto before = tokenizer.tokenize(turn.substr(0, offset), {.add_special = true, .parse_special = true});
    size_t common = 0;
    while (common < before.size() && common < prompt.tokens.size() && before[common] == prompt.tokens[common]) {
      ++common;
    }
    prompt.user_start = static_cast<int>(common);
  }
  prompt.anchor = std::max(prompt.user_start - bos, 0);
  return prompt;
}

}  // namespace tiller
