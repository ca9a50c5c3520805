#include "cli/options.h"

#include "tiller/text_file.h"

namespace tiller::cli {

void add_model_option(CLI::App* command, std::string& model) {
  command->add_option("-m,--model", model, "Model name or .gguf path")->capture_default_str();
}

void TextInput::add_to(CLI::App* command, const std::string& inline_name, const std::string& description) {
  inline_option_ = command->add_option(inline_name, inline_text_, description);
  file_option_ = command->add_option("-f,--file", file_, "Read the text from a file");
  inline_option_->excludes(file_option_);
  const bool positional = inline_name.front() != '-';
  missing_message_ = positional ? "TEXT or -f FILE" : "-p TEXT or -f FILE";
}

std::string TextInput::read() const {
  if (file_option_->count() > 0) return read_text_file(file_);
  if (inline_option_->count() == 0) throw CLI::RequiredError(missing_message_);
  return inline_text_;
}

}  // namespace tiller::cli
