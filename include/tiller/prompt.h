// How a user's text becomes the tokens a model sees: as it is, or as a user turn in
// the model's chat format, optionally followed by the start of the assistant's
// answer; and where the user's message starts, which ActAdd aligns to.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tiller/chat.h"
#include "tiller/model.h"
#include "tiller/steer.h"

namespace tiller {

struct PromptFormat {
  bool chat = false;
  ChatFormat format;   // with chat
  std::string system;  // with chat: a system turn, or empty

  static PromptFormat plain() { return {}; }
  // The model's chat format, or one named or read from a file (see resolve_chat_format).
  static PromptFormat chat_with(const Model& model, const std::string& chat_template = {}, std::string system = {});
};

// One prompt: the user's text and, optionally, the start of the assistant's
// answer that follows it (persona pairs end with a truncated suffix there).
struct PromptText {
  std::string user, assistant;
};

struct Prompt {
  std::vector<TokenId> tokens;
  int user_start = 0;  // the first token of the user's text
  int anchor = 0;      // where user-aligned ActAdd rows start: the token before the user's text when BOS is added
  // The layout a steering's positions are relative to, before any token is generated.
  PromptLayout layout() const { return {0, static_cast<int>(tokens.size()), anchor}; }
};

// Plain: the user's text and the assistant's start joined by a space where neither
// side has one, with BOS where the model adds it. Chat: a conversation of an
// optional system turn and one user turn, the assistant's turn opened and begun
// with `assistant`; the template's special tokens are parsed as such.
Prompt build_prompt(const Model& model, const PromptFormat& format, const PromptText& text);

}  // namespace tiller
