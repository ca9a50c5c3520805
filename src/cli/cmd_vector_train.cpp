// `tiller vector train -m MODEL -o FILE (--positive-file P --negative-file N |
// --pairs FILE.jsonl | --template T --personas A,B --suffixes FILE) [--chat]
// [--method mean|pca-diff|pca-center] [--scale unit|projection] [--read last|mean|index:K]
// [--layers A-B] [--hook-point resid_post]`: a control vector from prompt pairs.
#include <charconv>
#include <chrono>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/progress.h"
#include "cli/models_dir.h"
#include "common/fail.h"
#include "tiller/printable.h"
#include "tiller/model_paths.h"
#include "tiller/pair_dataset.h"
#include "tiller/train.h"

namespace tiller::cli {
namespace {

struct TrainCommandOptions {
  std::string model{kDefaultModel}, out;
  std::string positive_file, negative_file, pairs_file;
  std::string templ, personas, suffixes;
  bool chat = false;
  std::string system, chat_template;
  std::string method = "mean", scale = "projection", point = "resid_post", read = "last", layers;
  int threads = 1, batch = 512, context = 0;
  size_t max_pairs = 0;
  uint64_t seed = 0;
  bool json = false;
};

std::vector<TextPair> load_pairs(const TrainCommandOptions& o, const Model& model) {
  const bool files = !o.positive_file.empty() || !o.negative_file.empty();
  const bool jsonl = !o.pairs_file.empty();
  const bool personas = !o.templ.empty() || !o.personas.empty() || !o.suffixes.empty();
  if (int(files) + int(jsonl) + int(personas) != 1) {
    fail("give the pairs one way: --positive-file P --negative-file N, --pairs FILE.jsonl, or --template T "
         "--personas A,B --suffixes FILE");
  }
  if (files) {
    if (o.positive_file.empty() || o.negative_file.empty()) fail("--positive-file and --negative-file go together");
    return pairs_from_files(o.positive_file, o.negative_file);
  }
  if (jsonl) return pairs_from_jsonl(o.pairs_file);
  if (o.templ.empty() || o.personas.empty() || o.suffixes.empty()) {
    fail("--template, --personas and --suffixes go together");
  }
  return pairs_from_personas(model.tokenizer(), o.templ, o.personas, o.suffixes);
}

std::string describe_layers(const std::vector<int>& layers) {
  if (layers.size() == 1) return std::to_string(layers.front());
  return fmt::format("{}-{}", layers.front(), layers.back());
}

void run(const TrainCommandOptions& o) {
  // Everything the flags say is checked before the model runs.
  TrainOptions train;
  train.method = parse_train_method(o.method);
  train.scale = parse_train_scale(o.scale);
  train.point = parse_hook_point(o.point);
  train.read = parse_read_token(o.read);
  train.n_threads = o.threads;
  train.engine = make_engine(o.threads);
  train.n_batch = o.batch;
  if (!o.chat && (!o.system.empty() || !o.chat_template.empty())) fail("--system and --chat-template need --chat");

  const auto model = load_model(resolve_model(o.model));
  const ModelConfig& config = model->config();
  train.layers = parse_block_range(o.layers, config.n_layer);
  const PromptFormat format = o.chat ? PromptFormat::chat_with(*model, o.chat_template, o.system) : PromptFormat::plain();
  const std::vector<TextPair> texts = sample_pairs(load_pairs(o, *model), o.max_pairs, o.seed);
  const int max_tokens = o.context > 0 ? o.context : default_context_size(config);
  const std::vector<TokenPair> pairs = tokenize_pairs(*model, format, texts, max_tokens);

  ProgressBar bar("train", "pairs", pairs.size());
  train.progress = [&bar](size_t done, size_t tokens) { bar.update(done, tokens); };
  const auto start = std::chrono::steady_clock::now();
  const TrainResult result = train_control_vector(model, pairs, train);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  bar.finish();
  write_control_vector(o.out, result.vector);

  const double pairs_per_second = static_cast<double>(result.pairs) / seconds;
  const double tokens_per_second = static_cast<double>(result.tokens) / seconds;
  if (o.json) {
    nlohmann::json layers = nlohmann::json::array();
    for (const TrainLayerStats& s : result.layers) {
      double norm = 0;
      for (const float x : result.vector.directions.at(s.layer)) norm += double(x) * x;
      layers.push_back({{"block", s.layer}, {"norm", std::sqrt(norm)}, {"mean_gap", s.mean_gap},
                        {"explained", s.explained}});
    }
    fmt::print("{}\n", nlohmann::json{{"file", o.out}, {"method", o.method}, {"scale", o.scale},
                                      {"hook_point", std::string(hook_point_name(train.point))}, {"read", o.read},
                                      {"pairs", result.pairs}, {"tokens", result.tokens}, {"passes", result.passes},
                                      {"seconds", seconds}, {"pairs_per_second", pairs_per_second},
                                      {"tokens_per_second", tokens_per_second}, {"layers", layers}}
                           .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return;
  }
  fmt::print("{}: {} directions ({}, {}) read at blocks.{}.{}, token {}\n", o.out, result.vector.directions.size(),
             o.method, o.scale, describe_layers(train.layers), hook_point_name(train.point), o.read);
  fmt::print("{} pairs, {} tokens in {} passes, {:.1f} s: {:.1f} pairs/s, {:.0f} tokens/s\n", result.pairs,
             result.tokens, result.passes, seconds, pairs_per_second, tokens_per_second);
  if (train.layers.front() == 0) {
    fmt::print(stderr, "note: llama.cpp reads no direction.0; Tiller does\n");
  }
}

}  // namespace

void register_vector_train(CLI::App* vector) {
  auto o = std::make_shared<TrainCommandOptions>();
  auto* t = vector->add_subcommand("train", "Extract a control vector from prompt pairs (mean or PCA of differences)");
  add_model_option(t, o->model);
  t->add_option("-o,--out", o->out, "Output control vector (GGUF)")->required();
  const std::string data = "Pairs";
  t->add_option("--positive-file", o->positive_file, "Positive prompts, one a line (\\n for a newline)")->group(data);
  t->add_option("--negative-file", o->negative_file, "Negative prompts, paired with the positive ones by line")
      ->group(data);
  t->add_option("--pairs", o->pairs_file, "JSONL: {\"positive\": ..., \"negative\": ...} a line")->group(data);
  t->add_option("--template", o->templ, "A user message with {persona}, e.g. \"Act as if you are {persona}.\"")
      ->group(data);
  t->add_option("--personas", o->personas, "POSITIVE,NEGATIVE: the two words for {persona}")->group(data);
  t->add_option("--suffixes", o->suffixes, "Answer starts, one a line; each is used at every token prefix")
      ->group(data);
  t->add_option("--max-pairs", o->max_pairs, "Keep this many pairs, chosen at random (0: all)")->group(data);
  t->add_option("--seed", o->seed, "Seed for --max-pairs")->capture_default_str()->group(data);
  t->add_flag("--chat", o->chat, "Wrap each prompt in the chat template: a user turn, then the assistant's")
      ->group(data);
  t->add_option("--system", o->system, "System message (with --chat)")->group(data);
  t->add_option("--chat-template", o->chat_template, "chatml, gemma, or a Jinja template file")->group(data);
  t->add_option("--method", o->method, "mean, pca-diff (repeng's default) or pca-center")->capture_default_str();
  t->add_option("--scale", o->scale, "unit, or projection: coefficient 1 adds one mean difference")
      ->capture_default_str();
  t->add_option("--hook-point", o->point, "Where the stream is read (stored as direction.L all the same)")
      ->capture_default_str();
  t->add_option("--read", o->read, "Token read: last, mean, or index:K (negative K from the end)")
      ->capture_default_str();
  t->add_option("--layers", o->layers, "Blocks A-B (inclusive) or L; default: all but block 0");
  add_threads_option(t, o->threads);
  t->add_option("-b,--batch-size", o->batch, "Tokens per packed forward pass")->capture_default_str()
      ->check(CLI::Range(1, 1 << 16));
  t->add_option("-c,--ctx-size", o->context, "Longest prompt allowed (0: the model's context, at most 4096)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  t->add_flag("--json", o->json, "Print a JSON summary (speed, per-block norms)");
  t->callback([o] { run(*o); });
}

}  // namespace tiller::cli
