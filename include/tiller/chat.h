// Chat conversations rendered in a model's own prompt format.
//
// Tiller does not run Jinja. It recognizes the template a GGUF carries (or one a
// user gives) as one of the formats below and renders that format, including
// the details a recognized template adds (SmolLM2's default system prompt).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tiller/gguf.h"

namespace tiller {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", or any other role the format passes through
  std::string content;
};

struct ChatFormat {
  enum class Kind { ChatML, Gemma };
  Kind kind = Kind::ChatML;
  std::string name;
  // Inserted as a system turn when the conversation does not start with one
  // (SmolLM2's template does this); empty for none.
  std::string default_system;
};

// Recognizes a Jinja chat template's format; nullopt when it is none Tiller knows.
std::optional<ChatFormat> recognize_chat_template(const std::string& jinja);

// A built-in format by name ("chatml", "gemma"), or a path to a file holding a
// Jinja template to recognize; empty: the model's own tokenizer.chat_template.
// Errors say what was wrong and how to give a template.
ChatFormat resolve_chat_format(const gguf::File& model, const std::string& name_or_path);

std::string render_chat(const ChatFormat& format, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt);

// The conversation a single prompt makes: an optional system turn (empty: none)
// and one user turn.
std::string render_user_turn(const ChatFormat& format, const std::string& system, const std::string& user,
                             bool add_generation_prompt);

}  // namespace tiller
