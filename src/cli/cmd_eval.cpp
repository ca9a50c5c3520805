// `tiller eval SPEC.json [-m MODEL] [-t N] [-c CTX] [--json] [--csv FILE] [--steering FILE.json | steering flags]`:
// measures one steering on the texts an eval spec names (tiller/evaluate.h has the
// format): on- and off-topic likelihood, topic words in samples, KL damage on
// neutral text, CAA's A/B choice and the samples' fluency, each unsteered and
// steered. The steering is the spec's "steering", or a --steering file, or the
// usual steering flags (as `tiller logits` takes them), whichever is given.
//   tiller eval weddings.json --actadd " weddings" "" --actadd-layer 6 --actadd-coef 4
#include <fmt/format.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/models_dir.h"
#include "cli/options.h"
#include "cli/progress.h"
#include "cli/steering_options.h"
#include "common/fail.h"
#include "common/text_file.h"
#include "tiller/evaluate.h"
#include "tiller/model_paths.h"

namespace tiller::cli {
namespace {

struct EvalCommandOptions {
  std::string spec;
  std::string model{kDefaultModel};
  int threads = default_thread_count();
  int n_ctx = 0;
  bool json = false;
  std::string csv;
  std::string steering_file;
  SteeringFlags steering;
};

// The flags, else the --steering file, else the spec's own; the flags and the file exclude each other.
std::optional<SteeringSpec> chosen_steering(const EvalCommandOptions& o, const EvalSpec& spec) {
  const SteeringSpec from_flags = spec_from_flags(o.steering);
  if (!from_flags.empty() && !o.steering_file.empty()) fail("give --steering or steering flags, not both");
  if (!from_flags.empty()) return from_flags;
  if (!o.steering_file.empty()) {
    try {
      return SteeringSpec::from_json(read_text_file(o.steering_file));
    } catch (const Error& e) {
      fail("{}: {}", o.steering_file, e.what());
    }
  }
  return spec.steering;
}

void print_table(const EvalResult& r) {
  fmt::print("{:<28} {:>12} {:>12} {:>12}\n", "metric", "unsteered", "steered", "delta");
  auto row = [](std::string_view name, double unsteered, double steered) {
    fmt::print("{:<28} {:>12.4f} {:>12.4f} {:>+12.4f}\n", name, unsteered, steered, steered - unsteered);
  };
  if (r.on_topic) row("on-topic log-prob/token", r.on_topic->logprob_unsteered, r.on_topic->logprob_steered);
  if (r.off_topic) row("off-topic log-prob/token", r.off_topic->logprob_unsteered, r.off_topic->logprob_steered);
  if (r.topic) row("topic words per 100", r.topic->per100_unsteered, r.topic->per100_steered);
  if (r.damage_kl) fmt::print("{:<28} {:>12} {:>12.4f}\n", "damage KL(unsteered||steered)", "", *r.damage_kl);
  if (r.ab) row("A/B P(matching)", r.ab->p_unsteered, r.ab->p_steered);
  if (r.fluency) {
    row("samples' log-prob/token", r.fluency->logprob_unsteered_samples, r.fluency->logprob_steered_samples);
  }
}

void run(const EvalCommandOptions& o) {
  const EvalSpec spec = EvalSpec::load(o.spec);
  const auto model = load_model(resolve_model(o.model));
  const auto engine = make_engine(o.threads);
  const std::optional<SteeringSpec> steering_spec = chosen_steering(o, spec);
  std::shared_ptr<const Steering> steering;
  if (steering_spec) {
    CompileOptions compile;
    compile.engine = engine;
    steering = compile_steering(*steering_spec, model, compile);
  }
  EvalOptions eval_options;
  eval_options.n_ctx = o.n_ctx;

  std::optional<ProgressBar> shown;
  const EvalResult result = evaluate(
      spec, model, engine, steering,
      [&shown](size_t done, size_t total) {
        if (!shown) shown.emplace("eval", "steps", total);
        shown->update(done);
      },
      eval_options);
  if (shown) shown->finish();

  if (!o.csv.empty()) {
    std::FILE* out = std::fopen(o.csv.c_str(), "wb");
    if (out == nullptr) fail("{}: cannot create", o.csv);
    const std::string csv = result.to_csv();
    const bool written = std::fwrite(csv.data(), 1, csv.size(), out) == csv.size();
    if (std::fclose(out) != 0 || !written) fail("{}: write failed", o.csv);
  }
  if (o.json) {
    fmt::print("{}\n", result.to_json());
  } else {
    print_table(result);
  }
}

}  // namespace

void register_eval(CLI::App& app) {
  auto options = std::make_shared<EvalCommandOptions>();
  auto* command = app.add_subcommand("eval", "Measure a steering: likelihood, topic words, damage, A/B, fluency");
  command->add_option("spec", options->spec, "The eval spec (JSON; see docs/evaluation.md)")->required();
  add_model_option(command, options->model);
  add_threads_option(command, options->threads);
  command->add_option("-c,--ctx-size", options->n_ctx, "Context size (default: what the longest text needs)");
  command->add_flag("--json", options->json, "Print the result as JSON (samples included)");
  command->add_option("--csv", options->csv, "Also write the figures as CSV rows (metric,field,value) to this file");
  command->add_option("--steering", options->steering_file,
                      "A steering spec (JSON, docs/steering.md) instead of the eval spec's");
  add_steering_options(command, options->steering);
  command->callback([options] { run(*options); });
}

}  // namespace tiller::cli
