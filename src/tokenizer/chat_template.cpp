#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "tiller/chat.h"
#include "common/fail.h"
#include "common/text_file.h"

namespace tiller {
namespace {

constexpr std::string_view kBuiltinNames = "chatml, gemma";

// Whitespace llama.cpp trims from Gemma turns.
std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\n\r\f\v");
  if (first == std::string::npos) return {};
  const auto last = text.find_last_not_of(" \t\n\r\f\v");
  return text.substr(first, last - first + 1);
}

// The literal system turn a template emits when messages[0] is not a system
// message, e.g. '<|im_start|>system\nYou are ...<|im_end|>\n'.
std::string default_system_prompt(const std::string& jinja) {
  if (jinja.find("messages[0]['role'] != 'system'") == std::string::npos &&
      jinja.find("messages[0][\"role\"] != \"system\"") == std::string::npos) {
    return {};
  }
  const std::string opening = "<|im_start|>system\n";
  const auto begin = jinja.find(opening);
  if (begin == std::string::npos) return {};
  const auto end = jinja.find("<|im_end|>", begin);
  if (end == std::string::npos) return {};
  const std::string prompt = jinja.substr(begin + opening.size(), end - begin - opening.size());
  // Only a plain literal counts; a template expression here is not something we render.
  if (prompt.find("{{") != std::string::npos || prompt.find("{%") != std::string::npos ||
      prompt.find('\'') != std::string::npos) {
    return {};
  }
  return prompt;
}

}  // namespace

std::optional<ChatFormat> recognize_chat_template(const std::string& jinja) {
  if (jinja.find("<|im_start|>") != std::string::npos && jinja.find("<|im_end|>") != std::string::npos) {
    return ChatFormat{ChatFormat::Kind::ChatML, "chatml", default_system_prompt(jinja)};
  }
  if (jinja.find("<start_of_turn>") != std::string::npos && jinja.find("<end_of_turn>") != std::string::npos) {
    return ChatFormat{ChatFormat::Kind::Gemma, "gemma", {}};
  }
  return std::nullopt;
}

ChatFormat resolve_chat_format(const gguf::File& model, const std::string& name_or_path) {
  if (name_or_path == "chatml") return {ChatFormat::Kind::ChatML, "chatml", {}};
  if (name_or_path == "gemma") return {ChatFormat::Kind::Gemma, "gemma", {}};
  std::string jinja, source;
  if (name_or_path.empty()) {
    const auto embedded = model.get_string("tokenizer.chat_template");
    if (!embedded) {
      fail("{} has no chat template; give one with --chat-template NAME|FILE (built in: {})", model.name(),
           kBuiltinNames);
    }
    jinja = *embedded;
    source = model.name() + "'s chat template";
  } else {
    std::error_code error;
    if (!std::filesystem::is_regular_file(name_or_path, error)) {
      fail("chat template '{}' is neither a built-in format ({}) nor a readable file", name_or_path, kBuiltinNames);
    }
    jinja = read_text_file(name_or_path);
    source = name_or_path;
  }
  if (auto format = recognize_chat_template(jinja)) return *format;
  fail("{} is not a chat format Tiller recognizes; give one with --chat-template NAME|FILE (built in: {})", source,
       kBuiltinNames);
}

std::string render_chat(const ChatFormat& format, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt) {
  std::string out;
  if (format.kind == ChatFormat::Kind::ChatML) {
    auto turn = [&](const std::string& role, const std::string& content) {
      out += "<|im_start|>" + role + "\n" + content + "<|im_end|>\n";
    };
    if (!format.default_system.empty() && !messages.empty() && messages.front().role != "system") {
      turn("system", format.default_system);
    }
    for (const auto& message : messages) turn(message.role, message.content);
    if (add_generation_prompt) out += "<|im_start|>assistant\n";
    return out;
  }
  // Gemma has no system turn: system texts (joined) open the next turn that is
  // not the model's. Turns are trimmed, and the assistant is called "model".
  std::string pending_system;
  for (const auto& message : messages) {
    if (message.role == "system") {
      pending_system += trim(message.content);
      continue;
    }
    const std::string role = message.role == "assistant" ? "model" : message.role;
    std::string content = trim(message.content);
    if (role != "model" && !pending_system.empty()) {
      content = pending_system + "\n\n" + content;
      pending_system.clear();
    }
    out += "<start_of_turn>" + role + "\n" + content + "<end_of_turn>\n";
  }
  if (add_generation_prompt) out += "<start_of_turn>model\n";
  return out;
}

std::string render_user_turn(const ChatFormat& format, const std::string& system, const std::string& user,
                             bool add_generation_prompt) {
  std::vector<ChatMessage> messages;
  if (!system.empty()) messages.push_back({"system", system});
  messages.push_back({"user", user});
  return render_chat(format, messages, add_generation_prompt);
}

}  // namespace tiller
