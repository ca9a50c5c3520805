#include "cli/options.h"

#include <algorithm>
#include <cstdlib>
#include <random>
#include <thread>

#include "common/text_file.h"
#include "common/fail.h"
#include "tiller/printable.h"

namespace tiller::cli {

namespace {
bool g_mmap = false;  // one command line per process
}

void add_model_option(CLI::App* command, std::string& model) {
  command->add_option("-m,--model", model, "Model name or .gguf path")->capture_default_str();
  command->add_flag("--mmap", g_mmap,
                    "Map the model file instead of reading it into memory: a faster load, pages shared between "
                    "processes, slower generation (4 KiB pages instead of huge ones)");
}

bool mmap_requested() { return g_mmap; }

std::shared_ptr<const Model> load_model(const std::string& path) { return Model::load(path, {.mmap = g_mmap}); }

int default_thread_count() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(std::min(n, 64u));
}

void add_threads_option(CLI::App* command, int& threads) {
  threads = default_thread_count();
  command->add_option("-t,--threads", threads, "Threads")->capture_default_str()->check(CLI::Range(1, 256));
}

std::optional<KernelLevel> kernels_from_environment() {
  const char* name = std::getenv("TILLER_KERNELS");
  if (name == nullptr || *name == '\0') return std::nullopt;
  const std::string_view text(name);
  for (const KernelLevel level :
       {KernelLevel::Portable, KernelLevel::Avx2, KernelLevel::Avx2Tiled, KernelLevel::Avx512Vnni}) {
    if (kernel_level_name(level) != text) continue;
    const auto levels = available_kernel_levels();
    if (std::find(levels.begin(), levels.end(), level) == levels.end()) {
      fail("TILLER_KERNELS={}: this CPU cannot run the {} kernels", text, text);
    }
    return level;
  }
  fail("TILLER_KERNELS='{}' is none of portable, avx2, avx2tiled, avx512vnni", printable(text));
}

std::shared_ptr<Engine> make_engine(int n_threads) {
  return Engine::create({.n_threads = n_threads, .kernels = kernels_from_environment()});
}

SamplerParams SamplingFlags::resolve() const {
  SamplerParams resolved = params;
  resolved.seed = seed >= 0 ? static_cast<uint64_t>(seed) : static_cast<uint64_t>(std::random_device{}() >> 1);
  return resolved;
}

void add_sampling_options(CLI::App* command, SamplingFlags& flags) {
  SamplerParams& p = flags.params;
  command->add_option("--temp", p.temperature, "Temperature; 0: greedy")->capture_default_str();
  command->add_option("--top-k", p.top_k, "Keep the K most likely tokens; 0: off")->capture_default_str();
  command->add_option("--top-p", p.top_p, "Keep the most likely tokens up to this probability; 1: off")
      ->capture_default_str();
  command->add_option("--min-p", p.min_p, "Drop tokens less likely than this times the best; 0: off")
      ->capture_default_str();
  command->add_option("--repeat-penalty", p.repeat_penalty, "Penalty for recent tokens; 1: off")
      ->capture_default_str();
  command->add_option("--repeat-last-n", p.penalty_last_n, "Recent tokens the penalties look at; -1: all")
      ->capture_default_str();
  command->add_option("--frequency-penalty", p.frequency_penalty, "Subtracted per occurrence")->capture_default_str();
  command->add_option("--presence-penalty", p.presence_penalty, "Subtracted once if present")->capture_default_str();
  command->add_option("-s,--seed", flags.seed, "Random seed; -1: pick one (and print it)")
      ->capture_default_str()->check(CLI::Range(int64_t{-1}, INT64_MAX));
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
