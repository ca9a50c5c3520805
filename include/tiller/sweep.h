// A grid of steerings measured with every metric of an EvalSpec (tiller/evaluate.h),
// sharing work across cells, and the cell a documented rule chooses.
//
// The spec (JSON, `tiller sweep SPEC`) is an eval spec (docs/evaluation.md: "likelihood",
// "topic_words", "damage", "ab", "fluency") without "steering", plus:
//
//   "sweep": exactly one of
//     {"actadd": {"positive": " weddings", "negative": "", "blocks": [2, 4, 6],
//                 "coefs": [1, 2, 4, 8], "align": "context"}}
//         One cell per (block, coefficient): the steering {"actadd": [{"positive",
//         "negative", "layer": block, "coef": coefficient, "align"}]}. "align" is
//         "context" (default: the paper's), "user" or "auto". Required: positive,
//         negative (may be ""), blocks, coefs (each a non-empty list).
//     {"control_vector": {"path": "v.gguf", "scales": [0.5, 1, 2],
//                         "layer_ranges": [[3, 10], [5, 20]]}}
//         One cell per (range, scale): {"control_vectors": [{"path", "scale"}],
//         "layer_range": range}. A relative path is relative to the spec's folder.
//         "layer_ranges" may be left out: one row, every block ([0, 0] means all, as
//         in the steering spec).
//   "select" (optional): {"objective": "likelihood" | "topic_words" | "ab",
//                         "max_damage_kl": number, "min_fluency_delta": number}
//
// Rows of the grid are the blocks (or ranges), columns the coefficients (or scales),
// in the order given; cell i is row i / columns + column i % columns.
//
// Halves. Every text list (likelihood's on- and off-topic texts, damage's neutral
// texts, topic_words' prompts, the A/B questions) is split by index: even indices
// form half 0 ("select"), odd ones half 1 ("report"). Every cell is measured on both.
//
// The selection rule. The objective's effect of a cell is
//   likelihood:  on_topic.delta + min(off_topic.delta, 0): the mean log-probability gain
//                per token on the topic's texts, less any loss on unrelated ones (a cell
//                that hurts unrelated text more than topic text is not "specific": with
//                on - off, the largest coefficients, which break the model everywhere,
//                won on Gemma 3); on_topic.delta alone when the spec has no off-topic texts,
//   topic_words: per100_steered - per100_unsteered,
//   ab:          p_steered - p_unsteered.
// A cell is admissible when, on half 0, its damage_kl <= max_damage_kl (when damage is
// measured) and its fluency delta (logprob_steered_samples - logprob_unsteered_samples)
// >= min_fluency_delta (when fluency is measured). The chosen cell is the admissible
// cell with the largest half-0 effect (the first in grid order on a tie); none when no
// cell is admissible. Its figures are reported on half 1, which played no part in
// choosing it. Defaults: objective "likelihood" (the first of likelihood, topic_words,
// ab the spec measures), max_damage_kl 1.0 nats per position (beyond it the steered
// model's next-token distribution on neutral text is far from the original),
// min_fluency_delta -1.0 nats per token (steered samples at most e times less likely
// per token to the unsteered model). Either bound may be null: no bound.
//
// Shared work. The unsteered figures of the likelihood texts are computed once. Every
// text is run once unsteered in packed passes that capture the residual stream at each
// row's first steered block; each row then runs, per text, all its coefficient variants
// as packed copies of that residual in one Session::decode_packed_from pass from that
// block (eval/packed_steering.h steers each copy with its own coefficient). Topic
// words, A/B and fluency go through evaluate() cell by cell and half (so their
// unsteered samples are drawn again for every cell: the same seeds, the same figures).
// Every figure equals evaluate()'s for the cell's steering on that half's texts
// (tests/test_sweep.cpp: exactly, with the row kernels; on AVX-512's tiled kernels,
// which round a matmul by its row count, to rounding that later blocks may magnify).
//
// Output (`tiller sweep SPEC --out DIR`):
//   DIR/cells.jsonl  a header line {"sweep_key": HASH, "spec": PATH, "model": PATH},
//                    then one line per cell as it is measured: {"row", "column",
//                    "steering": the cell's steering object, "halves": [R0, R1]}, each
//                    R an EvalResult::to_json object. HASH covers the spec's JSON, every
//                    text it reads and the model file; a rerun with another refuses DIR.
//   DIR/sweep.json   {"grid": "actadd" | "control_vector", "rows": [labels],
//                    "columns": [labels], "select": {"objective", "max_damage_kl",
//                    "min_fluency_delta"}, "cells": [each cell as above plus "row_label",
//                    "column_label", "effect_select", "effect_report" (the objective's
//                    effect on each half, null when not measured), "admissible"],
//                    "chosen": null | {"cell" (index into cells), "row", "column",
//                    "row_label", "column_label", "steering", "effect_select",
//                    "report": R1 of the chosen cell}}
//   DIR/sweep.csv    row,column,row_label,column_label,half,metric,field,value with half
//                    "select" or "report" and metric,field,value as EvalResult::to_csv.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tiller/evaluate.h"

namespace tiller {

struct SweepSpec {
  EvalSpec eval;  // what to measure and on which texts ("steering" is refused)

  struct ActAddGrid {
    std::string positive, negative;
    std::vector<int> blocks;
    std::vector<float> coefs;
    FrontAlign align = FrontAlign::Context;
  };
  struct ControlVectorGrid {
    std::string path;
    std::vector<float> scales;
    std::vector<std::array<int, 2>> layer_ranges;  // [[0, 0]] when the spec has none
  };
  std::optional<ActAddGrid> actadd;                // exactly one of the two
  std::optional<ControlVectorGrid> control_vector;

  enum class Objective { Likelihood, TopicWords, Ab };
  struct Select {
    Objective objective = Objective::Likelihood;
    std::optional<double> max_damage_kl = 1.0;
    std::optional<double> min_fluency_delta = -1.0;
  };
  Select select;

  size_t rows() const;
  size_t columns() const;
  size_t cells() const { return rows() * columns(); }
  // The steering of cell (row, column).
  SteeringSpec cell_steering(size_t row, size_t column) const;
  // "block 6" / "blocks 3-10", and "coef 4" / "scale 0.5", for tables and plots.
  std::string row_label(size_t row) const;
  std::string column_label(size_t column) const;

  // Throws tiller::Error with a one-line message naming the field.
  static SweepSpec from_json(std::string_view json, const std::filesystem::path& base_dir = {});
  static SweepSpec load(const std::filesystem::path& file);
};

std::string_view objective_name(SweepSpec::Objective objective);  // "likelihood", "topic_words", "ab"

struct SweepCell {
  size_t row = 0, column = 0;
  SteeringSpec steering;
  std::array<EvalResult, 2> halves;  // [0]: even-indexed texts (select), [1]: odd (report)
};

// The rule above, on the cells measured so far.
struct SweepChoice {
  size_t cell = 0;     // index into the cells given
  double effect = 0;   // on half 0
};
std::optional<double> sweep_effect(const SweepSpec& spec, const EvalResult& result);
bool sweep_admissible(const SweepSpec& spec, const EvalResult& result);
std::optional<SweepChoice> choose_cell(const SweepSpec& spec, const std::vector<SweepCell>& cells);

// A cell as one JSON object (one line of cells.jsonl) and back; both throw tiller::Error.
std::string sweep_cell_to_json(const SweepCell& cell);
SweepCell sweep_cell_from_json(std::string_view json);
// Every cell with both halves and the chosen one (null when none); and the CSV, one
// row per cell and half: row,column,row_label,column_label,half,metric,field,value.
std::string sweep_to_json(const SweepSpec& spec, const std::vector<SweepCell>& cells, int indent = 2);
std::string sweep_to_csv(const SweepSpec& spec, const std::vector<SweepCell>& cells);

struct SweepRunOptions {
  // Cells already measured (a resumed run): not measured again, returned as given.
  std::vector<SweepCell> done;
  // Called as each cell is measured (the cells of one row come together).
  std::function<void(const SweepCell&)> on_cell;
  // (work done, work total).
  EvalProgress progress;
  // Rows per packed pass (the sessions' context); 0: 512, fewer when a pass's logits
  // would pass 256 MB (256 for Gemma 3's vocabulary). The longest text raises it.
  int n_ctx = 0;
  // Stops after this many newly measured cells (0: never); for testing resumption.
  size_t stop_after = 0;
};

// Measures every cell not in options.done; returns all cells in grid order (fewer
// when stop_after cut the run short).
std::vector<SweepCell> run_sweep(const SweepSpec& spec, const std::shared_ptr<const Model>& model,
                                 const std::shared_ptr<Engine>& engine, const SweepRunOptions& options = {});

}  // namespace tiller
