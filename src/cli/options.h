// Command-line options several subcommands share.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace tiller::cli {

// -m/--model: a model name from the cache or a .gguf path.
void add_model_option(CLI::App* command, std::string& model);

// Text given inline (a flag such as "-p,--prompt", or a positional name) or with
// -f/--file, exactly one of the two. Lives in a command's options struct.
class TextInput {
 public:
  void add_to(CLI::App* command, const std::string& inline_name, const std::string& description);
  // The text; CLI::RequiredError when neither form was given.
  std::string read() const;

 private:
  std::string inline_text_, file_;
  CLI::Option* inline_option_ = nullptr;
  CLI::Option* file_option_ = nullptr;
  std::string missing_message_;
};

}  // namespace tiller::cli
