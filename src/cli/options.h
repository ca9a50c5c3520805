// Command-line options several subcommands share.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "tiller/engine.h"
#include "tiller/model.h"
#include "tiller/sampler.h"

namespace tiller::cli {

// -m/--model: a model name from the cache or a .gguf path; with it --mmap, which
// load_model follows (Model::LoadOptions).
void add_model_option(CLI::App* command, std::string& model);
// Model::load with the --mmap the command line gave.
std::shared_ptr<const Model> load_model(const std::string& path);
bool mmap_requested();

// -t/--threads, default: the machine's hardware threads.
int default_thread_count();
void add_threads_option(CLI::App* command, int& threads);

// The kernel level the environment variable TILLER_KERNELS names (portable, avx2,
// avx2tiled, avx512vnni); nullopt when it is unset or empty (the best level).
// tiller::Error for any other name, or a level this CPU cannot run. The CLI is the
// only place that reads it: the library takes the level from its Engine.
std::optional<KernelLevel> kernels_from_environment();
// An engine at that level with n_threads threads (-t).
std::shared_ptr<Engine> make_engine(int n_threads);

// The sampling flags, with llama.cpp's names: --temp, --top-k, --top-p, --min-p,
// --repeat-penalty, --repeat-last-n, --frequency-penalty, --presence-penalty and
// -s/--seed (-1: a random seed, which the caller reports so the run can be repeated).
struct SamplingFlags {
  SamplerParams params;
  int64_t seed = -1;
  // params with the seed resolved (drawn at random when -1).
  SamplerParams resolve() const;
};
void add_sampling_options(CLI::App* command, SamplingFlags& flags);

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
