// `tiller sweep SPEC [-m MODEL] [-t N] [-c CTX] --out DIR [--json]`: a grid of
// steerings measured with the metrics of `tiller eval` (tiller/sweep.h), written to
// DIR as it goes (cells.jsonl) and at the end (sweep.json, sweep.csv); a rerun with
// the same DIR measures only the cells it lacks.
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.h"
#include "cli/models_dir.h"
#include "cli/options.h"
#include "cli/progress.h"
#include "common/fail.h"
#include "tiller/model.h"
#include "tiller/model_paths.h"
#include "tiller/sweep.h"

namespace tiller::cli {
namespace {

namespace fs = std::filesystem;

struct SweepOptions {
  std::string spec;
  std::string model{kDefaultModel};
  int threads = 2;
  int n_ctx = 0;
  std::string out;
  bool json = false;
  size_t stop_after = 0;  // hidden: stop after this many new cells (tests of resumption)
};

// FNV-1a, 64 bits: enough to tell one sweep's folder from another's (not a defence).
uint64_t fnv1a(std::string_view bytes, uint64_t h = 1469598103934665603ull) {
  for (const char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

// What identifies a sweep: the spec as read (its grid, selection and every text,
// files included) and the model file (its path and size).
std::string sweep_key(const std::string& spec_text, const SweepSpec& spec, const std::string& model_path) {
  uint64_t h = fnv1a(nlohmann::json::parse(spec_text).dump());
  auto add = [&h](std::string_view s) { h = fnv1a(s, fnv1a("\x1f", h)); };
  const EvalSpec& e = spec.eval;
  for (const auto* list : {&e.on_topic, &e.off_topic, &e.neutral}) {
    add("list");
    for (const auto& text : *list) add(text);
  }
  if (e.topic) {
    for (const auto& text : e.topic->prompts) add(text);
    for (const auto& word : e.topic->words) add(word);
  }
  for (const auto& q : e.ab) {
    add(q.question), add(q.a), add(q.b), add(std::string(1, q.matching));
  }
  add(fs::absolute(model_path).lexically_normal().string());
  std::error_code ec;
  add(std::to_string(fs::file_size(model_path, ec)));
  return fmt::format("{:016x}", h);
}

// The cells DIR/cells.jsonl holds, after checking it was made for this sweep. A
// last line cut short by an interruption is dropped (and truncated away).
std::vector<SweepCell> read_done(const fs::path& file, const std::string& key) {
  std::vector<SweepCell> done;
  std::ifstream in(file, std::ios::binary);
  if (!in) return done;
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  size_t complete = all.rfind('\n');
  complete = complete == std::string::npos ? 0 : complete + 1;
  std::istringstream lines(all.substr(0, complete));
  std::string line;
  bool first = true;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    if (first) {
      nlohmann::json header;
      try {
        header = nlohmann::json::parse(line);
      } catch (const nlohmann::json::parse_error&) {
        fail("{}: not a sweep's cells (its first line is not JSON)", file.string());
      }
      if (!header.is_object() || !header.contains("sweep_key")) fail("{}: not a sweep's cells", file.string());
      if (header["sweep_key"] != key) {
        fail("{}: made for another spec or model (key {}, this sweep's is {}); use another --out", file.string(),
             header["sweep_key"].dump(), key);
      }
      first = false;
      continue;
    }
    done.push_back(sweep_cell_from_json(line));
  }
  if (complete < all.size()) fs::resize_file(file, complete);
  return done;
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) fail("{}: write failed", path.string());
}

void run(const SweepOptions& options) {
  std::ifstream spec_in(options.spec, std::ios::binary);
  if (!spec_in) fail("{}: cannot read the sweep spec", options.spec);
  const std::string spec_text((std::istreambuf_iterator<char>(spec_in)), std::istreambuf_iterator<char>());
  const SweepSpec spec = SweepSpec::from_json(spec_text, fs::path(options.spec).parent_path());
  const std::string model_path = resolve_model(options.model);
  const std::string key = sweep_key(spec_text, spec, model_path);

  const fs::path dir(options.out);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail("{}: cannot create the folder ({})", dir.string(), ec.message());
  const fs::path cells_file = dir / "cells.jsonl";
  SweepRunOptions run_options;
  run_options.done = read_done(cells_file, key);
  run_options.stop_after = options.stop_after;
  const bool fresh = !fs::exists(cells_file) || fs::file_size(cells_file) == 0;
  std::ofstream cells_out(cells_file, std::ios::binary | std::ios::app);
  if (!cells_out) fail("{}: cannot write", cells_file.string());
  // The header goes in with the first cell, so that a spec that fails before
  // measuring anything (a bad block, a missing file) leaves no claim on DIR.
  bool header_due = fresh;

  const auto model = load_model(model_path);
  const auto engine = make_engine(options.threads);
  std::optional<ProgressBar> progress;
  run_options.progress = [&](size_t done, size_t total) {
    if (!progress) progress.emplace("sweep", "steps", total);
    progress->update(done);
  };
  run_options.on_cell = [&](const SweepCell& cell) {
    if (header_due) {
      cells_out << nlohmann::json{{"sweep_key", key}, {"spec", options.spec}, {"model", model_path}}.dump() << '\n';
      header_due = false;
    }
    cells_out << sweep_cell_to_json(cell) << '\n';
    cells_out.flush();  // a cell measured is a cell kept, whatever happens next
    if (!cells_out) fail("{}: write failed", cells_file.string());
  };
  run_options.n_ctx = options.n_ctx;
  const size_t resumed = run_options.done.size();
  const auto cells = run_sweep(spec, model, engine, run_options);
  if (progress) progress->finish();
  if (cells.size() < spec.cells()) {
    fmt::print(stderr, "sweep: stopped after {} of {} cells; rerun with --out {} to finish\n", cells.size(),
               spec.cells(), dir.string());
    return;
  }
  const std::string json = sweep_to_json(spec, cells);
  write_file(dir / "sweep.json", json + "\n");
  write_file(dir / "sweep.csv", sweep_to_csv(spec, cells));
  if (options.json) {
    fmt::print("{}\n", json);
  } else {
    const auto choice = choose_cell(spec, cells);
    if (choice) {
      const SweepCell& c = cells[choice->cell];
      const auto report = sweep_effect(spec, c.halves[1]);
      fmt::print("chosen: {}, {} ({} effect {:.4f} on the selection half, {} on the report half)\n",
                 spec.row_label(c.row), spec.column_label(c.column), objective_name(spec.select.objective),
                 choice->effect, report ? fmt::format("{:.4f}", *report) : std::string("n/a"));
    } else {
      fmt::print("chosen: none (no cell within the damage and fluency bounds)\n");
    }
  }
  fmt::print(stderr, "sweep: {} cells ({} resumed) in {}; heatmaps: python3 scripts/sweep-heatmaps.py {}\n",
             cells.size(), resumed, dir.string(), dir.string());
}

}  // namespace

void register_sweep(CLI::App& app) {
  auto options = std::make_shared<SweepOptions>();
  auto* command = app.add_subcommand(
      "sweep",
      "Measure a grid of steerings (ActAdd blocks x coefficients, or control-vector block ranges x scales) "
      "with the metrics of an eval spec, and choose one");
  command->footer(
      "The spec is an eval spec plus \"sweep\" and \"select\" (include/tiller/sweep.h, docs/evaluation.md).\n"
      "Selection: every text list is split by index into halves, even (select) and odd (report). The chosen\n"
      "cell has the largest objective effect on the select half among cells whose damage KL <= max_damage_kl\n"
      "(default 1.0) and fluency delta >= min_fluency_delta (default -1.0) on that half; its figures are\n"
      "reported on the other half. Effects: likelihood = on_topic.delta - off_topic.delta; topic_words =\n"
      "per100 steered - unsteered; ab = p steered - unsteered.\n"
      "DIR gets cells.jsonl (one line per cell as measured; a rerun with the same DIR resumes), sweep.json\n"
      "and sweep.csv. Heatmaps: python3 scripts/sweep-heatmaps.py DIR.");
  command->add_option("spec", options->spec, "The sweep spec (JSON)")->required();
  add_model_option(command, options->model);
  command->add_option("-t,--threads", options->threads, "Threads")->capture_default_str()->check(CLI::Range(1, 256));
  command->add_option("-c,--ctx-size", options->n_ctx, "Rows per packed pass (default: 512, fewer for a large vocabulary; at least the longest text)");
  command->add_option("-o,--out", options->out, "The folder for cells.jsonl, sweep.json and sweep.csv")->required();
  command->add_flag("--json", options->json, "Print sweep.json on stdout");
  command->add_option("--stop-after", options->stop_after)->group("");  // tests: an interrupted sweep
  command->callback([options] { run(*options); });
}

}  // namespace tiller::cli
