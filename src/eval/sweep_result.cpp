// A sweep's cells as JSON (cells.jsonl, sweep.json) and CSV, and the selection
// rule of tiller/sweep.h.
#include <algorithm>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/fail.h"
#include "tiller/sweep.h"

namespace tiller {
namespace {

using nlohmann::json;

double number_at(const json& object, const char* field) {
  const auto it = object.find(field);
  if (it == object.end() || !it->is_number()) fail("sweep cell: \"{}\" is missing or not a number", field);
  return it->get<double>();
}

// EvalResult::to_json's form read back (a resumed sweep's cells).
EvalResult result_from_json(const json& j) {
  if (!j.is_object()) fail("sweep cell: a half is not an object");
  EvalResult r;
  for (const char* which : {"on_topic", "off_topic"}) {
    if (!j.contains(which)) continue;
    const json& l = j[which];
    EvalResult::Likelihood out;
    out.logprob_unsteered = number_at(l, "logprob_unsteered");
    out.logprob_steered = number_at(l, "logprob_steered");
    out.delta = number_at(l, "delta");
    out.perplexity_ratio = number_at(l, "perplexity_ratio");
    out.tokens = static_cast<int64_t>(number_at(l, "tokens"));
    (std::string_view(which) == "on_topic" ? r.on_topic : r.off_topic) = out;
  }
  if (j.contains("topic_words")) {
    const json& t = j["topic_words"];
    EvalResult::Topic out;
    out.per100_unsteered = number_at(t, "per100_unsteered");
    out.per100_steered = number_at(t, "per100_steered");
    if (t.contains("samples_unsteered")) out.samples_unsteered = t["samples_unsteered"].get<std::vector<std::string>>();
    if (t.contains("samples_steered")) out.samples_steered = t["samples_steered"].get<std::vector<std::string>>();
    r.topic = std::move(out);
  }
  if (j.contains("damage")) r.damage_kl = number_at(j["damage"], "kl");
  if (j.contains("ab")) r.ab = EvalResult::Ab{number_at(j["ab"], "p_unsteered"), number_at(j["ab"], "p_steered")};
  if (j.contains("fluency")) {
    const json& f = j["fluency"];
    EvalResult::Fluency out;
    out.logprob_unsteered_samples = number_at(f, "logprob_unsteered_samples");
    out.logprob_steered_samples = number_at(f, "logprob_steered_samples");
    out.tokens_unsteered = static_cast<int64_t>(number_at(f, "tokens_unsteered"));
    out.tokens_steered = static_cast<int64_t>(number_at(f, "tokens_steered"));
    r.fluency = out;
  }
  return r;
}

json cell_json(const SweepSpec* spec, const SweepCell& cell) {
  json j;
  j["row"] = cell.row;
  j["column"] = cell.column;
  if (spec != nullptr) {
    j["row_label"] = spec->row_label(cell.row);
    j["column_label"] = spec->column_label(cell.column);
  }
  j["steering"] = json::parse(cell.steering.to_json());
  j["halves"] = json::array({json::parse(cell.halves[0].to_json(-1)), json::parse(cell.halves[1].to_json(-1))});
  return j;
}

}  // namespace

std::optional<double> sweep_effect(const SweepSpec& spec, const EvalResult& r) {
  switch (spec.select.objective) {
    case SweepSpec::Objective::Likelihood:
      if (!r.on_topic) return std::nullopt;
      // The gain on the topic's texts less any loss on unrelated ones: hurting
      // unrelated text is never credited as specificity.
      return r.on_topic->delta + (r.off_topic ? std::min(r.off_topic->delta, 0.0) : 0.0);
    case SweepSpec::Objective::TopicWords:
      if (!r.topic) return std::nullopt;
      return r.topic->per100_steered - r.topic->per100_unsteered;
    case SweepSpec::Objective::Ab:
      if (!r.ab) return std::nullopt;
      return r.ab->p_steered - r.ab->p_unsteered;
  }
  return std::nullopt;
}

bool sweep_admissible(const SweepSpec& spec, const EvalResult& r) {
  if (spec.select.max_damage_kl && r.damage_kl && *r.damage_kl > *spec.select.max_damage_kl) return false;
  if (spec.select.min_fluency_delta && r.fluency &&
      r.fluency->logprob_steered_samples - r.fluency->logprob_unsteered_samples < *spec.select.min_fluency_delta) {
    return false;
  }
  return true;
}

std::optional<SweepChoice> choose_cell(const SweepSpec& spec, const std::vector<SweepCell>& cells) {
  std::optional<SweepChoice> best;
  for (size_t i = 0; i < cells.size(); ++i) {
    const EvalResult& select = cells[i].halves[0];
    const auto effect = sweep_effect(spec, select);
    if (!effect || !sweep_admissible(spec, select)) continue;
    if (!best || *effect > best->effect) best = SweepChoice{i, *effect};
  }
  return best;
}

std::string sweep_cell_to_json(const SweepCell& cell) { return cell_json(nullptr, cell).dump(); }

SweepCell sweep_cell_from_json(std::string_view text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    fail("sweep cell: not valid JSON ({})", e.what());
  }
  if (!j.is_object() || !j.contains("halves") || !j["halves"].is_array() || j["halves"].size() != 2) {
    fail("sweep cell: expected an object with \"row\", \"column\", \"steering\" and two \"halves\"");
  }
  SweepCell cell;
  cell.row = static_cast<size_t>(number_at(j, "row"));
  cell.column = static_cast<size_t>(number_at(j, "column"));
  if (!j.contains("steering")) fail("sweep cell: \"steering\" is missing");
  cell.steering = SteeringSpec::from_json(j["steering"].dump());
  cell.halves = {result_from_json(j["halves"][0]), result_from_json(j["halves"][1])};
  return cell;
}

std::string sweep_to_json(const SweepSpec& spec, const std::vector<SweepCell>& cells, int indent) {
  json j;
  j["grid"] = spec.actadd ? "actadd" : "control_vector";
  j["rows"] = json::array();
  for (size_t r = 0; r < spec.rows(); ++r) j["rows"].push_back(spec.row_label(r));
  j["columns"] = json::array();
  for (size_t c = 0; c < spec.columns(); ++c) j["columns"].push_back(spec.column_label(c));
  j["select"] = {{"objective", objective_name(spec.select.objective)},
                 {"max_damage_kl", spec.select.max_damage_kl ? json(*spec.select.max_damage_kl) : json(nullptr)},
                 {"min_fluency_delta",
                  spec.select.min_fluency_delta ? json(*spec.select.min_fluency_delta) : json(nullptr)}};
  j["cells"] = json::array();
  for (const SweepCell& cell : cells) {
    json c = cell_json(&spec, cell);
    const auto effect = sweep_effect(spec, cell.halves[0]);
    c["effect_select"] = effect ? json(*effect) : json(nullptr);
    const auto report = sweep_effect(spec, cell.halves[1]);
    c["effect_report"] = report ? json(*report) : json(nullptr);
    c["admissible"] = sweep_admissible(spec, cell.halves[0]);
    j["cells"].push_back(std::move(c));
  }
  const auto choice = choose_cell(spec, cells);
  if (choice) {
    const SweepCell& cell = cells[choice->cell];
    j["chosen"] = {{"cell", choice->cell},
                   {"row", cell.row},
                   {"column", cell.column},
                   {"row_label", spec.row_label(cell.row)},
                   {"column_label", spec.column_label(cell.column)},
                   {"steering", json::parse(cell.steering.to_json())},
                   {"effect_select", choice->effect},
                   {"report", json::parse(cell.halves[1].to_json(-1))}};
  } else {
    j["chosen"] = nullptr;
  }
  return j.dump(indent);
}

std::string sweep_to_csv(const SweepSpec& spec, const std::vector<SweepCell>& cells) {
  std::string out = "row,column,row_label,column_label,half,metric,field,value\n";
  for (const SweepCell& cell : cells) {
    for (int half = 0; half < 2; ++half) {
      const std::string csv = cell.halves[static_cast<size_t>(half)].to_csv();
      size_t start = csv.find('\n');  // past the header line
      while (start != std::string::npos && start + 1 < csv.size()) {
        const size_t end = csv.find('\n', start + 1);
        const std::string line = csv.substr(start + 1, end == std::string::npos ? std::string::npos : end - start - 1);
        if (!line.empty()) {
          out += fmt::format("{},{},{},{},{},{}\n", cell.row, cell.column, spec.row_label(cell.row),
                             spec.column_label(cell.column), half == 0 ? "select" : "report", line);
        }
        start = end;
      }
    }
  }
  return out;
}

}  // namespace tiller
