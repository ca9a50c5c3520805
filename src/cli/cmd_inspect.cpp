// `tiller inspect MODEL [--tensors] [--json] [--metadata]`: what a GGUF file holds.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <map>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "tiller/printable.h"
#include "tiller/gguf.h"
#include "tiller/model_config.h"
#include "cli/models_dir.h"
#include "tiller/model_paths.h"

namespace tiller::cli {
namespace {

struct InspectOptions {
  std::string model{kDefaultModel};
  bool tensors = false;
  bool metadata = false;
  bool json = false;
};

struct TypeTotals {
  int64_t count = 0;
  uint64_t bytes = 0;
};

std::string human_bytes(uint64_t bytes) {
  if (bytes >= (1u << 20)) return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20));
  if (bytes >= (1u << 10)) return fmt::format("{:.1f} KiB", static_cast<double>(bytes) / (1 << 10));
  return fmt::format("{} B", bytes);
}

std::string shape_text(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

nlohmann::json json_or_null(std::optional<double> value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

void print_json(const gguf::File& file, const ModelConfig& config,
                const std::map<std::string, TypeTotals>& totals, uint64_t tensor_bytes_total,
                const InspectOptions& options) {
  using nlohmann::json;
  const bool model = is_language_model(config);
  auto count_or_null = [&](int64_t value) { return model ? json(value) : json(nullptr); };
  const std::optional<FamilyInfo> family = family_info(config.architecture);
  json out = {
      {"file", file.name()},
      {"file_bytes", file.size()},
      {"gguf_version", file.version()},
      {"architecture", config.architecture},
      {"family", family ? json(family->name) : json(nullptr)},
      {"family_models", family ? json(family->models) : json(nullptr)},
      {"name", config.name},
      {"n_layer", count_or_null(config.n_layer)},
      {"n_embd", count_or_null(config.n_embd)},
      {"n_head", count_or_null(config.n_head)},
      {"n_head_kv", count_or_null(config.n_head_kv)},
      {"head_dim", count_or_null(config.head_dim)},
      {"n_ff", count_or_null(config.n_ff)},
      {"n_vocab", count_or_null(config.n_vocab)},
      {"context_length", count_or_null(config.n_ctx_train)},
      {"rope_freq_base", model ? json(config.rope_freq_base) : json(nullptr)},
      {"rope_freq_base_sliding", json_or_null(config.rope_freq_base_sliding)},
      {"sliding_window", config.sliding_window ? json(*config.sliding_window) : json(nullptr)},
      {"norm_eps", model ? json(config.norm_eps) : json(nullptr)},
      {"tokenizer_model", config.tokenizer_model},
      {"tokenizer_pre", config.tokenizer_pre},
      {"chat_template", config.has_chat_template},
      {"tied_output", model ? json(!config.has_output_weight) : json(nullptr)},
      {"tensor_count", file.tensors().size()},
      {"tensor_bytes", tensor_bytes_total},
  };
  json types = json::object(), type_bytes = json::object();
  for (const auto& [name, total] : totals) {
    types[name] = total.count;
    type_bytes[name] = total.bytes;
  }
  out["tensor_types"] = types;
  out["tensor_type_bytes"] = type_bytes;
  if (options.tensors) {
    json list = json::array();
    for (const auto& tensor : file.tensors()) {
      list.push_back({{"name", tensor.name},
                      {"type", tensor_type_name(tensor.type)},
                      {"shape", tensor.shape},
                      {"bytes", tensor.n_bytes},
                      {"offset", file.data_offset() + tensor.offset}});
    }
    out["tensors"] = list;
  }
  if (options.metadata) {
    json metadata = json::object();
    for (const auto& [key, value] : file.metadata()) metadata[key] = describe(value);
    out["metadata"] = metadata;
  }
  // Strings from the file may hold invalid UTF-8: replace it rather than fail.
  fmt::print("{}\n", out.dump(2, ' ', false, json::error_handler_t::replace));
}

void print_text(const gguf::File& file, const ModelConfig& config,
                const std::map<std::string, TypeTotals>& totals, uint64_t tensor_bytes_total,
                const InspectOptions& options) {
  auto row = [](std::string_view label, const std::string& value) {
    fmt::print("{:<16}{}\n", label, value);
  };
  row("file", fmt::format("{} ({}, GGUF v{})", file.name(), human_bytes(file.size()), file.version()));
  row("architecture", config.architecture.empty() ? "(none)" : printable(config.architecture));
  if (is_language_model(config)) {
    const std::optional<FamilyInfo> family = family_info(config.architecture);
    row("family", family ? fmt::format("{} ({})", family->name, family->models)
                         : fmt::format("none: Tiller runs {}", fmt::join(supported_families(), ", ")));
  }
  if (!config.name.empty()) row("name", printable(config.name));
  if (is_language_model(config)) {
    row("n_layer", fmt::format("{}", config.n_layer));
    row("n_embd", fmt::format("{}", config.n_embd));
    row("n_head", fmt::format("{} (kv: {})", config.n_head, config.n_head_kv));
    row("head_dim", fmt::format("{}", config.head_dim));
    row("n_ff", fmt::format("{}", config.n_ff));
    row("n_vocab", fmt::format("{}", config.n_vocab));
    row("context_length", fmt::format("{}", config.n_ctx_train));
    std::string rope = fmt::format("{:g}", config.rope_freq_base);
    if (config.rope_freq_base_sliding) rope += fmt::format(" (sliding-window blocks: {:g})", *config.rope_freq_base_sliding);
    if (config.rope_scaling_type) rope += fmt::format(", scaling {} x{:g}", printable(*config.rope_scaling_type), config.rope_scaling_factor.value_or(1.0));
    row("rope_freq_base", rope);
    if (config.sliding_window) row("sliding_window", fmt::format("{}", *config.sliding_window));
    row("norm_eps", fmt::format("{:g}", config.norm_eps));
    row("output", config.has_output_weight ? "output.weight" : "tied to token_embd.weight");
  }
  if (!config.tokenizer_model.empty()) {
    row("tokenizer", fmt::format("{} (pre: {})", printable(config.tokenizer_model),
                                 config.tokenizer_pre.empty() ? "none" : printable(config.tokenizer_pre)));
  }
  row("chat_template", config.has_chat_template ? "present" : "absent");
  row("tensors", fmt::format("{} ({})", file.tensors().size(), human_bytes(tensor_bytes_total)));
  for (const auto& [name, total] : totals) {
    fmt::print("  {:<8}{:>6} tensors {:>12}\n", name, total.count, human_bytes(total.bytes));
  }
  if (options.metadata) {
    fmt::print("metadata ({} keys)\n", file.metadata().size());
    for (const auto& [key, value] : file.metadata()) {
      fmt::print("  {:<40} {}\n", printable(key), describe(value));
    }
  }
  if (options.tensors) {
    fmt::print("{:<40} {:<8} {:<20} {:>12} {:>12}\n", "tensor", "type", "shape", "bytes", "offset");
    for (const auto& tensor : file.tensors()) {
      fmt::print("{:<40} {:<8} {:<20} {:>12} {:>12}\n", printable(tensor.name),
                 tensor_type_name(tensor.type), shape_text(tensor.shape), tensor.n_bytes,
                 file.data_offset() + tensor.offset);
    }
  }
}

void run_inspect(const InspectOptions& options) {
  const gguf::File file = gguf::File::open(resolve_model(options.model));
  const ModelConfig config = read_model_config(file);
  std::map<std::string, TypeTotals> totals;
  uint64_t tensor_bytes_total = 0;
  for (const auto& tensor : file.tensors()) {
    auto& total = totals[std::string(tensor_type_name(tensor.type))];
    ++total.count;
    total.bytes += tensor.n_bytes;
    tensor_bytes_total += tensor.n_bytes;
  }
  if (options.json) {
    print_json(file, config, totals, tensor_bytes_total, options);
  } else {
    print_text(file, config, totals, tensor_bytes_total, options);
  }
}

}  // namespace

void register_inspect(CLI::App& app) {
  auto options = std::make_shared<InspectOptions>();
  auto* command = app.add_subcommand("inspect", "Show a GGUF model's architecture, sizes and tensors");
  command->add_option("model", options->model,
                      "Model name (from the models cache) or path to a .gguf file")
      ->capture_default_str();
  command->add_flag("--tensors", options->tensors, "List every tensor: type, shape, bytes, offset");
  command->add_flag("--metadata", options->metadata, "List every metadata key and value");
  command->add_flag("--json", options->json, "Print one JSON object instead of text");
  command->callback([options] { run_inspect(*options); });
}

}  // namespace tiller::cli
