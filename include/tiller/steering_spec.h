// A steering described as data: every intervention Tiller has, as a value that the
// command line builds from its flags, a server or Python reads from JSON, and
// compile_steering() turns into a Steering for one model. The JSON form is
// documented in docs/steering.md ("The steering object").
#pragma once

#include <array>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tiller/control_vector.h"
#include "tiller/engine.h"
#include "tiller/model.h"
#include "tiller/steer.h"

namespace tiller {

// A file Tiller reads: a `path`, or a `name` that a VectorResolver turns into one
// (the server's vector folder). Exactly one of the two is set.
struct VectorRef {
  std::string path;
  std::string name;
  bool operator==(const VectorRef&) const = default;
};

// A vector file and a number: a control vector's scale, an ablation's scale, a clamp's value.
struct ScaledVectorRef {
  VectorRef vector;
  float value = 1.0f;
  // Control vectors only: this vector's own blocks [first, last], kept before the
  // vectors are summed (the same meaning as SteeringSpec::layer_range).
  std::optional<std::array<int, 2>> layer_range;
  bool operator==(const ScaledVectorRef&) const = default;
};

// One ActAdd term: a prompt pair computed on the model at `layer`, or a tensor file
// written by `tiller vector actadd` (which carries its own block).
struct ActAddSpec {
  std::string positive, negative;
  int layer = -1;
  VectorRef file;
  float coef = 1.0f;
  FrontAlign align = FrontAlign::Auto;
  bool every_step = false;  // also add the last row to every generated token (an experiment)
  bool from_file() const { return !file.path.empty() || !file.name.empty(); }
  bool operator==(const ActAddSpec&) const = default;
};

struct SteeringSpec {
  // llama.cpp's control vectors: each kept to its own layer_range if it has one,
  // summed (scale x file), then the sum kept to layer_range,
  // added at blocks.N.hook_resid_post at `positions`.
  std::vector<ScaledVectorRef> control_vectors;
  std::optional<std::array<int, 2>> layer_range;  // [start, end] inclusive; <= 0: first or last block
  std::vector<ActAddSpec> actadd;
  std::vector<ScaledVectorRef> ablate;  // value: the scale (1 removes the direction)
  std::vector<ScaledVectorRef> clamp;   // value: the component's fixed value
  PositionSelector positions;           // for control vectors, ablation and clamping

  bool empty() const { return control_vectors.empty() && actadd.empty() && ablate.empty() && clamp.empty(); }
  bool operator==(const SteeringSpec&) const = default;

  // Throws tiller::Error with a one-line message naming the field (unknown fields
  // included: a typo must not silently steer nothing).
  static SteeringSpec from_json(std::string_view json);
  std::string to_json(int indent = -1) const;
};

std::string_view front_align_name(FrontAlign align);  // "auto", "context", "user"
FrontAlign parse_front_align(std::string_view name);

// "FILE:NUMBER" -> (FILE, NUMBER), split at the last colon; "FILE" -> (FILE,
// fallback) when the number is optional (a suffix that is not a number is then
// part of the name). `what` names the option or field in errors.
std::pair<std::string, float> parse_path_and_number(std::string_view text, std::string_view what,
                                                    bool number_required, float fallback = 1.0f);

// llama.cpp's steering flags and Tiller's, as the strings a command line gives
// them (no command-line library involved). spec_from_flags checks their
// combinations and gives the SteeringSpec they mean.
struct SteeringFlags {
  std::vector<std::string> control_vectors;         // --control-vector FILE
  std::vector<std::string> control_vectors_scaled;  // --control-vector-scaled FILE:SCALE
  std::vector<int> layer_range;                     // --control-vector-layer-range START END
  std::vector<std::string> actadd;                  // --actadd POS NEG, flattened
  std::vector<int> actadd_layers;                   // --actadd-layer: once, or once per pair
  std::vector<float> actadd_coefs;                  // --actadd-coef: likewise
  std::vector<std::string> actadd_files;            // --actadd-file FILE[:COEF]
  std::string actadd_align;                         // "", "context" or "user"
  bool actadd_every_step = false;
  std::vector<std::string> ablate;  // --ablate FILE[:SCALE]
  std::vector<std::string> clamp;   // --clamp FILE:VALUE
  std::string positions = "all";    // --steer-positions
};
SteeringSpec spec_from_flags(const SteeringFlags& flags);

// Turns a vector's name into a path; throws tiller::Error when it cannot.
using VectorResolver = std::function<std::string(std::string_view name)>;
// Control vectors a caller already holds, by name (the Python package's
// ControlVector objects, a server's loaded registry): null for a name it does not
// hold, which then goes to the VectorResolver.
using VectorLookup = std::function<std::shared_ptr<const ControlVector>(std::string_view name)>;
// Whether a name can stand for a file of a vector folder: letters, digits, '-',
// '_' and '.', not starting with '.', without "..", at most 200 characters. So it
// has no '/' and never leaves its folder, and never names a hidden file (where
// the server keeps uploads in progress). The one rule for every vector name.
bool is_vector_name(std::string_view name);
// Names are files DIR/<name>.gguf; a name that is not is_vector_name is refused.
VectorResolver vector_folder(std::filesystem::path dir);

// The Steering `spec` means for `model`: files read and checked against the model
// (width, blocks), ActAdd pairs run through the model. Throws
// tiller::Error with the one-line messages the command line prints. An empty spec
// gives an empty Steering.
struct CompileOptions {
  std::shared_ptr<Engine> engine;  // runs ActAdd pairs; null: a one-thread engine at the best level
  VectorLookup lookup_name;        // for `name`s of control vectors, ablations and clamps, tried first
  VectorResolver resolve_name;     // for `name`s; empty: names are errors
};
std::shared_ptr<const Steering> compile_steering(const SteeringSpec& spec, const std::shared_ptr<const Model>& model,
                                                 const CompileOptions& options = {});

}  // namespace tiller
