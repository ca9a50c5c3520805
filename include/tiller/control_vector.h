// Control-vector files in llama.cpp's GGUF layout (read by llama.cpp, repeng and
// EasySteer): general.architecture = "controlvector", controlvector.model_hint,
// controlvector.layer_count, and one F32 tensor direction.N of n_embd values per
// block N, added to the OUTPUT of block N (blocks.N.hook_resid_post) at every
// position. llama.cpp never reads a direction.0.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "tiller/steer.h"

namespace tiller {

struct ControlVector {
  std::string model_hint;                      // the architecture it was made for, e.g. "llama"
  int64_t n_embd = 0;
  std::map<int, std::vector<float>> directions;  // block -> n_embd values

  // The largest block with a direction, plus one (what controlvector.layer_count holds).
  int layer_count() const { return directions.empty() ? 0 : directions.rbegin()->first + 1; }
};

// Throws tiller::Error (naming the file) for a file that is not a control vector,
// has no directions, mixes widths, or holds non-finite values.
ControlVector read_control_vector(const std::string& path);
// The same from bytes in memory (an upload not yet written anywhere); `name`
// stands for the file in the messages.
ControlVector parse_control_vector(std::span<const uint8_t> bytes, const std::string& name);
// Refuses an empty or ragged vector; warns nothing: direction.0 is written if present
// (llama.cpp will refuse such a file; Tiller reads it).
void write_control_vector(const std::string& path, const ControlVector& vector);

// sum of scale_i x vector_i, direction by direction (a block missing in one file
// counts as zero there), the way llama.cpp sums several --control-vector files.
struct ScaledControlVector {
  ControlVector vector;
  float scale = 1.0f;
};
ControlVector combine(const std::vector<ScaledControlVector>& parts);

// Keeps the blocks in [first, last] (llama.cpp's --control-vector-layer-range:
// first <= 0 means 1, last <= 0 means the last block of a model with n_layer blocks).
ControlVector restrict_layers(const ControlVector& vector, int first, int last, int64_t n_layer);

// One Add (or Ablate, or Clamp) intervention per direction, at blocks.N.hook_resid_post.
void add_control_vector(Steering& steering, const ControlVector& vector, InterventionKind kind, float coefficient,
                        const PositionSelector& where, const std::string& source);

}  // namespace tiller
