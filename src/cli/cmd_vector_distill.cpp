// `tiller vector distill -m MODEL --system TEXT --prompts FILE --eval-prompts FILE -o OUT.gguf
// [--scales LIST] [--ranges LIST] [--answer-tokens N] [--read last|header] [--json]`: a control
// vector that stands in for a system prompt (docs/distill.md).
#include <cmath>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/models_dir.h"
#include "cli/options.h"
#include "cli/progress.h"
#include "common/fail.h"
#include "common/text_file.h"
#include "tiller/distill.h"
#include "tiller/model_paths.h"
#include "tiller/printable.h"
#include "tiller/prompt.h"
#include "tiller/train.h"

namespace tiller::cli {
namespace {

struct DistillCommandOptions {
  std::string model{kDefaultModel}, system, prompts, eval_prompts, out, chat_template;
  std::string scales = "0.2,0.3,0.5,0.75,1";
  std::string ranges;  // empty: a default spread over the model's blocks
  std::string read = "last";
  int answer_tokens = 8, threads = 1, batch = 512;
  bool json = false;
};

// The non-blank lines of a prompt file; an error when there are none.
std::vector<std::string> read_prompts(const std::string& path) {
  std::vector<std::string> prompts;
  std::istringstream in(read_text_file(path));
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") != std::string::npos) prompts.push_back(line);
  }
  if (prompts.empty()) fail("{} has no prompts (one a line)", path);
  return prompts;
}

std::vector<float> parse_scales(const std::string& text) {
  std::vector<float> scales;
  std::istringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    float value = 0;
    try {
      value = std::stof(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || !std::isfinite(value)) {
      fail("--scales '{}': '{}' is not a number", printable(text), printable(item));
    }
    scales.push_back(value);
  }
  if (scales.empty()) fail("--scales is empty");
  return scales;
}

std::vector<std::pair<int, int>> parse_ranges(const std::string& text, int64_t n_layer) {
  std::vector<std::pair<int, int>> ranges;
  if (text.empty()) {
    // Around every second block from 4 to six before the end: the block alone and
    // the three centred on it (on SmolLM2 both kinds win somewhere; docs/distill.md).
    for (int centre = 4; centre <= n_layer - 6; centre += 2) {
      ranges.emplace_back(centre, centre);
      ranges.emplace_back(centre - 1, centre + 1);
    }
    if (ranges.empty()) ranges.emplace_back(n_layer > 1 ? 1 : 0, n_layer > 1 ? 1 : 0);
    return ranges;
  }
  std::istringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    const std::vector<int> blocks = parse_block_range(item, n_layer, "--ranges");
    ranges.emplace_back(blocks.front(), blocks.back());
  }
  if (ranges.empty()) fail("--ranges is empty");
  return ranges;
}

std::string describe_range(int first, int last) {
  return first == last ? std::to_string(first) : fmt::format("{}-{}", first, last);
}

std::vector<DistillPrompt> render(const Model& model, const std::string& chat_template, const std::string& system,
                                  const std::vector<std::string>& users) {
  // Unprompted is exactly what `tiller run --chat` renders without --system
  // (SmolLM2's template adds its default system prompt there).
  const PromptFormat with = PromptFormat::chat_with(model, chat_template, system);
  const PromptFormat without = PromptFormat::chat_with(model, chat_template, "");
  std::vector<DistillPrompt> prompts;
  for (const std::string& user : users) {
    DistillPrompt p;
    p.prompted = build_prompt(model, with, {user, ""}).tokens;
    p.unprompted = build_prompt(model, without, {user, ""}).tokens;
    // The assistant header: what opening the assistant's turn adds.
    const auto closed = model.tokenizer().tokenize(render_user_turn(with.format, system, user, false),
                                                   {.add_special = true, .parse_special = true});
    p.header = static_cast<int>(p.prompted.size()) - static_cast<int>(closed.size());
    if (p.header < 1) p.header = 1;
    prompts.push_back(std::move(p));
  }
  return prompts;
}

// The mean tokens of the system turn itself: the prompted conversation against one
// with no system turn at all (not even a template's default, which the unprompted
// conversation has, so tokens_saved can be negative).
double system_turn_tokens(const Model& model, const std::string& chat_template, const std::string& system,
                          const std::vector<std::string>& users) {
  const PromptFormat with = PromptFormat::chat_with(model, chat_template, system);
  ChatFormat bare = with.format;
  bare.default_system.clear();
  double sum = 0;
  for (const std::string& user : users) {
    const auto none = model.tokenizer().tokenize(render_user_turn(bare, "", user, true),
                                                 {.add_special = true, .parse_special = true});
    sum += static_cast<double>(build_prompt(model, with, {user, ""}).tokens.size()) - static_cast<double>(none.size());
  }
  return sum / static_cast<double>(users.size());
}

// A float scale as the decimal it was written as (0.3, not 0.30000001192092896).
double shortest(float value) { return std::stod(fmt::format("{}", value)); }

nlohmann::json figures_json(const DistillFigures& f) {
  return {{"kl_unsteered", f.kl_unsteered}, {"kl_steered", f.kl_steered},
          {"ratio", f.kl_unsteered > 0 ? f.kl_steered / f.kl_unsteered : 0.0}, {"tokens_saved", f.tokens_saved},
          {"n_prompts", f.prompts}, {"positions", f.positions}};
}

void run(const DistillCommandOptions& o) {
  if (o.system.empty()) fail("--system is empty: there is no system prompt to distill");
  DistillOptions options;
  options.scales = parse_scales(o.scales);
  options.read = parse_distill_read(o.read);
  options.n_answer = o.answer_tokens;
  options.n_threads = o.threads;
  options.engine = make_engine(o.threads);
  options.n_batch = o.batch;
  const std::vector<std::string> train_text = read_prompts(o.prompts);
  const std::vector<std::string> eval_text = read_prompts(o.eval_prompts);

  const auto model = load_model(resolve_model(o.model));
  options.ranges = parse_ranges(o.ranges, model->config().n_layer);
  const auto train = render(*model, o.chat_template, o.system, train_text);
  const auto eval = render(*model, o.chat_template, o.system, eval_text);

  // The total is known once the run starts (it counts the grid's sequences).
  std::unique_ptr<ProgressBar> bar;
  options.progress = [&bar](size_t done, size_t total, size_t tokens) {
    if (!bar) bar = std::make_unique<ProgressBar>("distill", "sequences", total);
    bar->update(done, tokens);
  };
  const DistillResult result = distill_system_prompt(model, train, eval, options);
  if (bar) bar->finish();
  write_control_vector(o.out, result.vector);

  const DistillCell& chosen = result.grid[result.chosen];
  if (o.json) {
    nlohmann::json grid = nlohmann::json::array();
    for (const DistillCell& c : result.grid) {
      grid.push_back({{"scale", shortest(c.scale)}, {"layers", describe_range(c.first, c.last)}, {"kl", c.kl}});
    }
    nlohmann::json out{{"file", o.out},
                       {"kl_unsteered", result.eval.kl_unsteered},
                       {"kl_steered", result.eval.kl_steered},
                       {"scale", shortest(chosen.scale)},
                       {"layers", describe_range(chosen.first, chosen.last)},
                       {"first_block", chosen.first},
                       {"last_block", chosen.last},
                       {"tokens_saved", result.eval.tokens_saved},
                       {"system_turn_tokens", system_turn_tokens(*model, o.chat_template, o.system, eval_text)},
                       {"n_prompts", result.eval.prompts},
                       {"answer_tokens", o.answer_tokens},
                       {"read", o.read},
                       {"train", figures_json(result.train)},
                       {"eval", figures_json(result.eval)},
                       {"grid", grid}};
    fmt::print("{}\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return;
  }
  fmt::print("{}: scale {} at blocks {} ({} directions), chosen from {} cells\n", o.out, chosen.scale,
             describe_range(chosen.first, chosen.last), result.vector.directions.size(), result.grid.size());
  fmt::print("system turn: {:.1f} tokens; prompted minus unprompted conversation: {:+.1f} tokens\n",
             system_turn_tokens(*model, o.chat_template, o.system, eval_text), result.eval.tokens_saved);
  for (const auto& [name, f] : {std::pair{"train", result.train}, std::pair{"held-out", result.eval}}) {
    fmt::print("{:>8}: {} prompts, KL(prompted || unsteered) {:.4f}, KL(prompted || steered) {:.4f} ({:.0f}%), "
               "tokens saved {:.1f}\n",
               name, f.prompts, f.kl_unsteered, f.kl_steered,
               f.kl_unsteered > 0 ? 100 * f.kl_steered / f.kl_unsteered : 0.0, f.tokens_saved);
  }
}

}  // namespace

void register_vector_distill(CLI::App* vector) {
  auto o = std::make_shared<DistillCommandOptions>();
  auto* d = vector->add_subcommand("distill", "Distill a system prompt into a control vector (scale and blocks by KL)");
  add_model_option(d, o->model);
  d->add_option("--system", o->system, "The system prompt the vector replaces")->required();
  d->add_option("--prompts", o->prompts, "Training user prompts, one a line")->required();
  d->add_option("--eval-prompts", o->eval_prompts, "Held-out user prompts, one a line (reported on)")->required();
  d->add_option("-o,--out", o->out, "Output control vector (GGUF), the chosen scale baked in")->required();
  d->add_option("--chat-template", o->chat_template, "chatml, gemma, or a Jinja template file");
  d->add_option("--scales", o->scales, "Scales of the mean difference to try, comma-separated")->capture_default_str();
  d->add_option("--ranges", o->ranges,
                "Block ranges to try, A-B or L, comma-separated (default: L and L-1..L+1 for every second L "
                "from 4 to n_layer - 6)");
  d->add_option("--answer-tokens", o->answer_tokens, "Answer positions compared (the prompted greedy answer)")
      ->capture_default_str()->check(CLI::Range(1, 256));
  d->add_option("--read", o->read,
                "Where the stream is read: last (prompt token), header (mean of the assistant header) or "
                "suffix (mean of the user turn and header)")
      ->capture_default_str();
  add_threads_option(d, o->threads);
  d->add_option("-b,--batch-size", o->batch, "Tokens per packed forward pass")->capture_default_str()
      ->check(CLI::Range(1, 1 << 16));
  d->add_flag("--json", o->json, "Print a JSON summary");
  d->callback([o] { run(*o); });
}

}  // namespace tiller::cli
