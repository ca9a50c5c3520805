// An architecture family: what a GGUF of it holds and how one of its blocks
// computes. Each family is one file in src/model/families/ and one line of the
// registry (families/registry.cpp); the config reader, the weight loader, the
// forward pass and the tests' reference forward all read the same Family.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "tiller/gguf.h"
#include "tiller/model_config.h"

namespace tiller {

struct ModelWeights;
class WeightBinder;
class BlockPass;

enum class NormKind { Rms, Layer };              // RMSNorm (weight) or LayerNorm (weight and bias)
enum class RopeKind { None, Normal, Neox };      // none (learned positions), pairs (2i, 2i+1), (i, i + d/2)
enum class FfnActivation { Silu, GeluF16 };      // GELU through llama.cpp's f16 table

// What the shared steps of a block read; the weights a family binds say the rest
// (biases, q/k norms and post-norms are applied where they are present).
struct FamilyTraits {
  NormKind norm = NormKind::Rms;
  RopeKind rope = RopeKind::Normal;
  FfnActivation activation = FfnActivation::Silu;
  bool gated_ffn = true;              // down(act(gate x) * up x), else down(act(up x))
  bool scale_embeddings = false;      // token embeddings times sqrt(n_embd) (gemma)
  int sliding_window_period = 0;      // > 0: block l slides unless l % period == period - 1
  // The queries' scale in attention; nullptr: 1 / sqrt(head_dim). Gemma's 27B
  // models scale by 1 / sqrt(n_embd / n_head) instead, as llama.cpp does.
  float (*attention_scale)(const ModelConfig& config) = nullptr;
};

struct Family {
  std::string_view name;       // GGUF general.architecture
  std::string_view models;     // the models people know it by, for `tiller inspect`
  FamilyTraits traits;
  // Family hyper-parameters and the defaults llama.cpp gives them; nullptr: none.
  void (*read_config)(const gguf::File& file, ModelConfig& config) = nullptr;
  // Binds every tensor the family needs (names as in GGUF), checking shapes.
  void (*bind)(const WeightBinder& bind, const ModelConfig& config, ModelWeights& weights) = nullptr;
  // One block, from ops, with the five hook points (docs/steering.md).
  void (*block)(BlockPass& pass) = nullptr;
};

// The family of a GGUF architecture name; nullptr when Tiller has none.
const Family* find_family(std::string_view architecture);
// find_family, or a one-line error naming the file and the supported families.
const Family& family_of(const ModelConfig& config, const std::string& file_name);
// Every family, in the registry's order.
std::span<const Family* const> all_families();

}  // namespace tiller
