// What the golden tests share: decoding a golden text entry (ids, base64 top-k
// logits and log-sum-exp, scripts/make-forward-goldens.py's format) and adding
// Tiller's logits on it to LogitAgreement totals; control vectors applied as
// llama.cpp's --control-vector-scaled FILE:SCALE --control-vector-layer-range does;
// and per-position relative errors of hidden states.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/base64.h"
#include "support/logit_agreement.h"
#include "tiller/control_vector.h"
#include "tiller/model.h"
#include "tiller/steer.h"

namespace tiller::testing {

// Decodes `ids` through the session from an empty cache and adds every position's
// logits, against the golden entry (top_ids, top_logits, lse), to each of `into`.
inline void add_golden_entry(Session& session, const std::vector<TokenId>& ids, const nlohmann::json& entry,
                             size_t n_vocab, size_t top_k, std::initializer_list<LogitAgreement*> into) {
  const auto top_ids = base64_array<int32_t>(entry["top_ids"].get<std::string>());
  const auto top_logits = base64_array<float>(entry["top_logits"].get<std::string>());
  const auto lse = base64_array<double>(entry["lse"].get<std::string>());
  if (top_ids.size() != ids.size() * top_k || top_logits.size() != top_ids.size() || lse.size() != ids.size()) {
    throw std::runtime_error("golden entry sizes do not match its ids");
  }
  session.reset();
  const auto logits = session.decode(ids, true);
  for (LogitAgreement* agreement : into) agreement->add(logits, n_vocab, top_ids, top_logits, lse, top_k);
}

// The steering of control-vector files with scales, summed, restricted to blocks
// first..last (inclusive), added at every position.
inline std::shared_ptr<Steering> golden_steering(const std::vector<std::pair<std::string, float>>& files, int first,
                                                 int last, const ModelConfig& config) {
  std::vector<ScaledControlVector> parts;
  for (const auto& [file, scale] : files) parts.push_back({read_control_vector(file), scale});
  const ControlVector vector = restrict_layers(combine(parts), first, last, config.n_layer);
  auto steering = std::make_shared<Steering>(config.n_embd);
  add_control_vector(*steering, vector, InterventionKind::Add, 1.0f, PositionSelector::all(), "golden");
  return steering;
}

// |ours - theirs| / |theirs| of each position's row of `width` floats.
inline std::vector<double> row_relative_errors(const std::vector<float>& ours, const std::vector<float>& theirs,
                                               size_t width) {
  std::vector<double> errors;
  const size_t n = std::min(ours.size(), theirs.size()) / width;
  for (size_t t = 0; t < n; ++t) {
    double diff = 0, norm = 0;
    for (size_t i = t * width; i < (t + 1) * width; ++i) {
      diff += (double(ours[i]) - theirs[i]) * (double(ours[i]) - theirs[i]);
      norm += double(theirs[i]) * theirs[i];
    }
    errors.push_back(std::sqrt(diff / norm));
  }
  return errors;
}

inline double mean_of(const std::vector<double>& v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
}

inline double median_of(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::nth_element(v.begin(), v.begin() + std::ssize(v) / 2, v.end());
  return v[v.size() / 2];
}

}  // namespace tiller::testing
