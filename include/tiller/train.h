// Control vectors extracted from pairs of contrasting prompts (shared/docs/steering.md
// section 3): the residual stream is read at one token of each prompt, at every
// chosen block, and the pairs' differences become one direction per block by their
// mean (CAA) or their first principal component (repeng's pca_diff, pca_center).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "tiller/control_vector.h"
#include "tiller/hooks.h"
#include "tiller/model.h"

namespace tiller {

enum class TrainMethod {
  Mean,       // mean of (pos - neg)
  PcaDiff,    // first principal component of the differences, centred on their mean (repeng's default)
  PcaCenter,  // of the activations centred on each pair's midpoint: rows +-(pos - neg)/2, so PCA of d d^T
};
// "mean", "pca-diff", "pca-center"; tiller::Error naming them otherwise.
TrainMethod parse_train_method(std::string_view name);
std::string_view train_method_name(TrainMethod method);

enum class TrainScale {
  Unit,        // every direction has length 1
  Projection,  // unit direction x the mean projection of the differences on it: coefficient 1 adds one
               // typical difference (for Mean this is the mean difference itself)
};
TrainScale parse_train_scale(std::string_view name);  // "unit", "projection"

// Which token of a prompt is read.
struct ReadToken {
  enum class Kind { Last, Mean, Index };
  Kind kind = Kind::Last;
  int index = 0;  // Index: position K (0 = the first token); negative counts from the end (-1 = last)
};
ReadToken parse_read_token(std::string_view text);  // "last", "mean" (of all tokens), "index:K"
// The blocks "A-B" (inclusive) or "L" name in a model of n_layer blocks; empty:
// every block but the first (whose input is the embedding). `what` names the
// option or field in errors.
std::vector<int> parse_block_range(std::string_view text, int64_t n_layer, std::string_view what = "--layers");

struct TokenPair {
  std::vector<TokenId> positive, negative;
};

struct TrainOptions {
  TrainMethod method = TrainMethod::Mean;
  TrainScale scale = TrainScale::Projection;
  HookPoint point = HookPoint::ResidPost;
  std::vector<int> layers;  // blocks to read; the vector read at block L becomes direction.L
  ReadToken read;
  int n_threads = 1;
  std::shared_ptr<Engine> engine;  // runs the passes; nullptr: a private one with n_threads and the best level
  int n_batch = 512;  // tokens per packed forward pass: whole pairs are packed up to this many
  // Called after each pass with the pairs and tokens done so far.
  std::function<void(size_t pairs_done, size_t tokens_done)> progress;
};

struct TrainLayerStats {
  int layer = 0;
  double mean_gap = 0;        // mean over pairs of (pos - neg) . u, u the unit direction (> 0)
  double explained = 0;       // PCA: the component's share of the variance it was taken from; Mean: 1
};

struct TrainResult {
  ControlVector vector;
  std::vector<TrainLayerStats> layers;
  size_t pairs = 0, tokens = 0, passes = 0;
};

// Runs every pair through the model in packed passes (Session::decode_packed) and
// returns the directions. Memory does not grow with the number of pairs: per block,
// the sum of the differences, and for PCA the sum of their outer products
// (n_embd x n_embd, in double), from which the covariance is exact; its top
// eigenvector comes from a restarted Lanczos iteration (src/steer/top_eigenvector.h;
// a full eigendecomposition would cost O(n_embd^3) per block). The model_hint is the model's
// architecture. Throws tiller::Error for no pairs, an empty or over-long prompt,
// a read index outside a prompt, a block the model lacks, or fewer than 2 pairs for PCA.
TrainResult train_control_vector(const std::shared_ptr<const Model>& model, const std::vector<TokenPair>& pairs,
                                 const TrainOptions& options);

}  // namespace tiller
