// SweepSpec: the JSON form of tiller/sweep.h (an eval spec plus "sweep" and
// "select"), the grid's cells and their labels.
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/fail.h"
#include "common/json_fields.h"
#include "tiller/printable.h"
#include "tiller/sweep.h"

namespace tiller {
namespace {

using nlohmann::json;

void check_fields(const json& object, std::string_view where, std::initializer_list<std::string_view> known) {
  if (!object.is_object()) fail("{}: expected an object", where);
  if (const std::string* key = first_unknown_key(object, known)) {
    fail("{}.{}: unknown field (known: {})", where, printable(*key), joined_names(known));
  }
}

template <typename T>
std::vector<T> number_list(const json& object, std::string_view where, std::string_view field) {
  const auto it = object.find(std::string(field));
  if (it == object.end()) fail("{}.{}: required", where, field);
  if (!it->is_array() || it->empty()) fail("{}.{}: expected a non-empty list of numbers", where, field);
  std::vector<T> out;
  for (const json& v : *it) {
    if constexpr (std::is_integral_v<T>) {
      if (!v.is_number_integer()) fail("{}.{}: expected whole numbers, got {}", where, field, v.dump());
    } else if (!v.is_number()) {
      fail("{}.{}: expected numbers, got {}", where, field, v.dump());
    }
    out.push_back(v.get<T>());
  }
  return out;
}

std::string string_field(const json& object, std::string_view where, std::string_view field) {
  const auto it = object.find(std::string(field));
  if (it == object.end()) fail("{}.{}: required", where, field);
  if (!it->is_string()) fail("{}.{}: expected a string", where, field);
  return it->get<std::string>();
}

std::optional<double> bound(const json& select, std::string_view field, std::optional<double> fallback) {
  const auto it = select.find(std::string(field));
  if (it == select.end()) return fallback;
  if (it->is_null()) return std::nullopt;
  if (!it->is_number()) fail("select.{}: expected a number or null", field);
  return it->get<double>();
}

std::string number(float x) { return fmt::format("{:g}", x); }

}  // namespace

std::string_view objective_name(SweepSpec::Objective objective) {
  switch (objective) {
    case SweepSpec::Objective::Likelihood: return "likelihood";
    case SweepSpec::Objective::TopicWords: return "topic_words";
    case SweepSpec::Objective::Ab: return "ab";
  }
  return "likelihood";
}

size_t SweepSpec::rows() const {
  return actadd ? actadd->blocks.size() : control_vector ? control_vector->layer_ranges.size() : 0;
}

size_t SweepSpec::columns() const {
  return actadd ? actadd->coefs.size() : control_vector ? control_vector->scales.size() : 0;
}

SteeringSpec SweepSpec::cell_steering(size_t row, size_t column) const {
  SteeringSpec steering;
  if (actadd) {
    ActAddSpec a;
    a.positive = actadd->positive;
    a.negative = actadd->negative;
    a.layer = actadd->blocks.at(row);
    a.coef = actadd->coefs.at(column);
    a.align = actadd->align;
    steering.actadd.push_back(std::move(a));
  } else if (control_vector) {
    steering.control_vectors.push_back({{control_vector->path, ""}, control_vector->scales.at(column), std::nullopt});
    steering.layer_range = control_vector->layer_ranges.at(row);
  }
  return steering;
}

std::string SweepSpec::row_label(size_t row) const {
  if (actadd) return fmt::format("block {}", actadd->blocks.at(row));
  const auto& r = control_vector->layer_ranges.at(row);
  return r == std::array<int, 2>{0, 0} ? std::string("all blocks") : fmt::format("blocks {}-{}", r[0], r[1]);
}

std::string SweepSpec::column_label(size_t column) const {
  if (actadd) return "coef " + number(actadd->coefs.at(column));
  return "scale " + number(control_vector->scales.at(column));
}

SweepSpec SweepSpec::from_json(std::string_view text, const std::filesystem::path& base_dir) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::parse_error& e) {
    fail("sweep spec: not valid JSON ({})", e.what());
  }
  if (!root.is_object()) fail("sweep spec: expected a JSON object");
  if (root.contains("steering")) fail("steering: a sweep spec has no \"steering\"; its \"sweep\" gives the steerings");
  if (!root.contains("sweep")) fail("sweep: required (\"actadd\" or \"control_vector\")");
  SweepSpec spec;
  const json grid = root["sweep"];
  const json select = root.contains("select") ? root["select"] : json::object();
  root.erase("sweep");
  root.erase("select");
  spec.eval = EvalSpec::from_json(root.dump(), base_dir);

  check_fields(grid, "sweep", {"actadd", "control_vector"});
  if (grid.size() != 1) fail("sweep: exactly one of \"actadd\" and \"control_vector\"");
  if (grid.contains("actadd")) {
    const json& a = grid["actadd"];
    check_fields(a, "sweep.actadd", {"positive", "negative", "blocks", "coefs", "align"});
    ActAddGrid g;
    g.positive = string_field(a, "sweep.actadd", "positive");
    g.negative = string_field(a, "sweep.actadd", "negative");
    g.blocks = number_list<int>(a, "sweep.actadd", "blocks");
    g.coefs = number_list<float>(a, "sweep.actadd", "coefs");
    if (a.contains("align")) {
      if (!a["align"].is_string()) fail("sweep.actadd.align: expected \"context\", \"user\" or \"auto\"");
      g.align = parse_front_align(a["align"].get<std::string>());
    }
    for (const int block : g.blocks) {
      if (block < 0) fail("sweep.actadd.blocks: block {} is negative", block);
    }
    spec.actadd = std::move(g);
  } else {
    const json& c = grid["control_vector"];
    check_fields(c, "sweep.control_vector", {"path", "scales", "layer_ranges"});
    ControlVectorGrid g;
    g.path = string_field(c, "sweep.control_vector", "path");
    if (!base_dir.empty() && std::filesystem::path(g.path).is_relative()) g.path = (base_dir / g.path).string();
    g.scales = number_list<float>(c, "sweep.control_vector", "scales");
    if (c.contains("layer_ranges")) {
      const json& ranges = c["layer_ranges"];
      if (!ranges.is_array() || ranges.empty()) fail("sweep.control_vector.layer_ranges: expected a non-empty list of [first, last]");
      for (const json& r : ranges) {
        if (!r.is_array() || r.size() != 2 || !r[0].is_number_integer() || !r[1].is_number_integer()) {
          fail("sweep.control_vector.layer_ranges: expected [first, last] pairs of block numbers, got {}", r.dump());
        }
        g.layer_ranges.push_back({r[0].get<int>(), r[1].get<int>()});
      }
    } else {
      g.layer_ranges.push_back({0, 0});
    }
    spec.control_vector = std::move(g);
  }

  check_fields(select, "select", {"objective", "max_damage_kl", "min_fluency_delta"});
  const EvalSpec& e = spec.eval;
  if (select.contains("objective")) {
    const json& o = select["objective"];
    const std::string name = o.is_string() ? o.get<std::string>() : o.dump();
    if (name == "likelihood") {
      spec.select.objective = Objective::Likelihood;
    } else if (name == "topic_words") {
      spec.select.objective = Objective::TopicWords;
    } else if (name == "ab") {
      spec.select.objective = Objective::Ab;
    } else {
      fail("select.objective: \"{}\" is not one of likelihood, topic_words, ab", name);
    }
  } else {
    spec.select.objective = !e.on_topic.empty() ? Objective::Likelihood
                            : e.topic          ? Objective::TopicWords
                            : !e.ab.empty()    ? Objective::Ab
                                               : Objective::Likelihood;
  }
  const bool measured = spec.select.objective == Objective::Likelihood   ? !e.on_topic.empty()
                        : spec.select.objective == Objective::TopicWords ? e.topic.has_value()
                                                                         : !e.ab.empty();
  if (!measured) {
    fail("select.objective: {} is not measured (the spec has no {})", objective_name(spec.select.objective),
         spec.select.objective == Objective::Likelihood ? "likelihood.on_topic texts"
         : spec.select.objective == Objective::TopicWords ? "topic_words" : "ab questions");
  }
  spec.select.max_damage_kl = bound(select, "max_damage_kl", spec.select.max_damage_kl);
  spec.select.min_fluency_delta = bound(select, "min_fluency_delta", spec.select.min_fluency_delta);
  return spec;
}

SweepSpec SweepSpec::load(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) fail("{}: cannot read the sweep spec", file.string());
  std::ostringstream text;
  text << in.rdbuf();
  return from_json(text.str(), file.parent_path());
}

}  // namespace tiller
