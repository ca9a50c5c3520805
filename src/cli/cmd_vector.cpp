// `tiller vector actadd|combine|normalize|inspect`: steering vectors as files
// (`vector train` lives in cmd_vector_train.cpp).
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/steering_options.h"
#include "tiller/printable.h"
#include "tiller/actadd.h"
#include "tiller/control_vector.h"
#include "common/fail.h"
#include "tiller/model.h"
#include "cli/models_dir.h"
#include "tiller/model_paths.h"

namespace tiller::cli {
namespace {

double norm(const std::vector<float>& v) {
  double sum = 0;
  for (const float x : v) sum += double(x) * x;
  return std::sqrt(sum);
}

ScaledControlVector scaled_file(const std::string& text) {
  const auto [file, scale] = parse_path_and_number(text, "vector combine", false);
  return {read_control_vector(file), scale};
}

struct ActAddOptions {
  std::string model{kDefaultModel}, positive, negative, out;
  int layer = 0, threads = 1;
};

struct CombineOptions {
  std::vector<std::string> inputs;
  std::string out;
};

struct InspectOptions {
  std::string file, other;
  bool json = false;
};

void run_actadd(const ActAddOptions& o) {
  const auto model = load_model(resolve_model(o.model));
  const ActAddTensor tensor = make_actadd_tensor(model, {o.positive, o.negative, o.layer}, make_engine(o.threads));
  write_actadd_tensor(o.out, tensor, model->config().architecture);
  fmt::print("{}: ActAdd tensor of {} rows x {} at blocks.{}.hook_resid_pre\n", o.out, tensor.n_rows, tensor.width,
             tensor.layer);
}

void run_combine(const CombineOptions& o) {
  std::vector<ScaledControlVector> parts;
  for (const std::string& input : o.inputs) parts.push_back(scaled_file(input));
  const ControlVector sum = combine(parts);
  write_control_vector(o.out, sum);
  fmt::print("{}: {} directions of width {}\n", o.out, sum.directions.size(), sum.n_embd);
}

void run_normalize(const CombineOptions& o) {
  if (o.inputs.size() != 1) fail("normalize takes one file");
  ControlVector vector = read_control_vector(o.inputs.front());
  for (auto& [block, values] : vector.directions) {
    const double length = norm(values);
    if (length == 0) fail("{}: direction.{} is zero and has no direction", o.inputs.front(), block);
    for (float& x : values) x = static_cast<float>(x / length);
  }
  write_control_vector(o.out, vector);
  fmt::print("{}: {} unit directions\n", o.out, vector.directions.size());
}

void run_inspect(const InspectOptions& o) {
  const ControlVector vector = read_control_vector(o.file);
  std::optional<ControlVector> other;
  if (!o.other.empty()) {
    other = read_control_vector(o.other);
    if (other->n_embd != vector.n_embd) {
      fail("{} has width {} and {} width {}: no cosine between them", o.file, vector.n_embd, o.other, other->n_embd);
    }
  }
  nlohmann::json layers = nlohmann::json::array();
  if (!o.json) {
    fmt::print("{}: control vector, width {}, model hint '{}', {} directions\n", o.file, vector.n_embd,
               printable(vector.model_hint), vector.directions.size());
    fmt::print("{:>6} {:>10}{}\n", "block", "norm", other ? fmt::format(" {:>10} {:>8}", "other", "cosine") : "");
  }
  for (const auto& [block, values] : vector.directions) {
    nlohmann::json entry{{"block", block}, {"norm", norm(values)}};
    std::string extra;
    if (other) {
      const auto it = other->directions.find(block);
      if (it != other->directions.end()) {
        double dot = 0;
        for (size_t i = 0; i < values.size(); ++i) dot += double(values[i]) * it->second[i];
        const double denominator = norm(values) * norm(it->second);
        const double cosine = denominator > 0 ? dot / denominator : 0.0;
        entry["other_norm"] = norm(it->second);
        entry["cosine"] = cosine;
        extra = fmt::format(" {:>10.4f} {:>8.4f}", norm(it->second), cosine);
      } else {
        extra = fmt::format(" {:>10} {:>8}", "-", "-");
      }
    }
    if (!o.json) fmt::print("{:>6} {:>10.4f}{}\n", block, norm(values), extra);
    layers.push_back(entry);
  }
  if (o.json) {
    fmt::print("{}\n", nlohmann::json{{"file", o.file}, {"n_embd", vector.n_embd}, {"model_hint", vector.model_hint},
                                      {"layers", layers}}.dump(-1, ' ', false,
                                                               nlohmann::json::error_handler_t::replace));
  }
}

}  // namespace

void register_vector(CLI::App& app) {
  auto* vector = app.add_subcommand("vector", "Make, combine and inspect steering vectors");
  vector->require_subcommand(1);

  auto actadd = std::make_shared<ActAddOptions>();
  auto* a = vector->add_subcommand("actadd", "Save the ActAdd tensor of a prompt pair (for --actadd-file)");
  add_model_option(a, actadd->model);
  a->add_option("--pos", actadd->positive, "The positive prompt")->required();
  a->add_option("--neg", actadd->negative, "The negative prompt")->required();
  a->add_option("--layer", actadd->layer, "Block whose resid_pre it is read at")->required()->check(CLI::NonNegativeNumber);
  a->add_option("-o,--out", actadd->out, "Output file (GGUF)")->required();
  add_threads_option(a, actadd->threads);
  a->callback([actadd] { run_actadd(*actadd); });

  auto combine_options = std::make_shared<CombineOptions>();
  auto* c = vector->add_subcommand("combine", "Sum control vectors, each times its scale: A.gguf:1 B.gguf:-0.5");
  c->add_option("inputs", combine_options->inputs, "FILE[:SCALE] ...")->required();
  c->add_option("-o,--out", combine_options->out, "Output file")->required();
  c->callback([combine_options] { run_combine(*combine_options); });

  auto normalize_options = std::make_shared<CombineOptions>();
  auto* n = vector->add_subcommand("normalize", "Scale every direction of a control vector to unit length");
  n->add_option("input", normalize_options->inputs, "FILE")->required();
  n->add_option("-o,--out", normalize_options->out, "Output file")->required();
  n->callback([normalize_options] { run_normalize(*normalize_options); });

  auto inspect = std::make_shared<InspectOptions>();
  auto* i = vector->add_subcommand("inspect", "Per-block norms of a control vector, and cosines with another");
  i->add_option("file", inspect->file, "Control vector")->required();
  i->add_option("other", inspect->other, "A second control vector to compare with");
  i->add_flag("--json", inspect->json, "JSON output");
  i->callback([inspect] { run_inspect(*inspect); });

  register_vector_train(vector);
  register_vector_distill(vector);
}

}  // namespace tiller::cli
