// The steering flags `run`, `logits`, `dump` and `bench` share, and how they become
// a Steering for a model.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <vector>

#include "tiller/model.h"
#include "tiller/steer.h"

namespace tiller::cli {

struct SteeringFlags {
  // llama.cpp's control-vector flags.
  std::vector<std::string> control_vectors;         // --control-vector FILE (repeatable)
  std::vector<std::string> control_vectors_scaled;  // --control-vector-scaled FILE:SCALE[,FILE:SCALE..]
  std::vector<int> layer_range;                     // --control-vector-layer-range START END
  // ActAdd.
  std::vector<std::string> actadd;        // --actadd POS NEG, repeatable
  std::vector<int> actadd_layers;         // --actadd-layer L: one for all pairs, or one per pair
  std::vector<float> actadd_coefs;        // --actadd-coef C: likewise
  std::vector<std::string> actadd_files;  // --actadd-file FILE[:COEF]
  std::string actadd_align;               // context | user ("" = context, or user with --chat)
  bool actadd_every_step = false;
  // Projections.
  std::vector<std::string> ablate;  // --ablate FILE[:SCALE]
  std::vector<std::string> clamp;   // --clamp FILE:VALUE
  std::string positions = "all";    // --steer-positions, for control vectors, ablation and clamping

  bool any() const;
  bool has_actadd() const { return !actadd.empty() || !actadd_files.empty(); }
};

void add_steering_options(CLI::App* command, SteeringFlags& flags);

// "FILE:NUMBER" -> (FILE, NUMBER) at the last colon; "FILE" -> (FILE, fallback) when
// the number is optional (a suffix that is not a number is then part of the name).
// `flag` names the option in errors.
std::pair<std::string, float> file_and_number(const std::string& text, const char* flag, bool number_required,
                                              float fallback = 1.0f);

// The Steering the flags ask for (empty when none), its vectors read or computed
// for `model` (ActAdd runs the model over its prompt pairs on `engine`).
std::unique_ptr<Steering> build_steering(const SteeringFlags& flags, const std::shared_ptr<const Model>& model,
                                         const std::shared_ptr<Engine>& engine);

// The layout of a prompt of n_prompt tokens at position 0: ActAdd's anchor is the
// start of the context, or with user alignment the token before the user's message
// when the model adds BOS (so the tensor's BOS row sits before the message and its
// first word on the message's first token).
PromptLayout prompt_layout(const SteeringFlags& flags, const Model& model, int n_prompt, int user_start, bool chat);

}  // namespace tiller::cli
