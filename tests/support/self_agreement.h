// llama.cpp against itself: its logits and greedy continuations with an F32 KV
// cache against those with the goldens' F16 cache (tests/data/forward/
// <model>-self-agreement.json, made by scripts/make-forward-goldens.py
// --self-agreement), per text and per prompt, so that a test totals them over the
// very entries it checks. Two engines that compute the same function but sum in
// other orders differ by roundings of that size; the forward-pass and steering
// tests bound Tiller by this spread (docs/forward-pass.md, "How the bounds derive").
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <fstream>
#include <stdexcept>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace tiller::testing {

struct SelfAgreement {
  size_t texts = 0, positions = 0, top1_agree = 0, prompts = 0, greedy_identical = 0;
  double kl_sum = 0;

  double mean_kl() const { return positions ? kl_sum / static_cast<double>(positions) : 0.0; }
  double top1() const { return positions ? static_cast<double>(top1_agree) / static_cast<double>(positions) : 0.0; }
  double greedy_share() const {
    return prompts ? static_cast<double>(greedy_identical) / static_cast<double>(prompts) : 0.0;
  }
};

// The totals over the first `n_texts` entries of a self-agreement "texts" array
// ({"positions", "kl_sum", "top1"} per text).
inline SelfAgreement self_agreement_totals(const nlohmann::json& texts, size_t n_texts) {
  SelfAgreement total;
  for (size_t i = 0; i < std::min(n_texts, texts.size()); ++i) {
    ++total.texts;
    total.positions += texts[i]["positions"].get<size_t>();
    total.kl_sum += texts[i]["kl_sum"].get<double>();
    total.top1_agree += texts[i]["top1"].get<size_t>();
  }
  return total;
}

// The totals over the first `n_texts` texts and `n_prompts` prompts of the model's
// self-agreement file. The file may cover fewer entries than the goldens (today: the
// first 20 texts, the ones CI checks, and the first 9 and 8 prompts); a test checking more then
// takes the covered entries' rates as llama.cpp's, and says so.
inline SelfAgreement llama_self_agreement(const std::string& model, size_t n_texts, size_t n_prompts) {
  const std::string path = std::string(TILLER_TEST_DATA) + "/forward/" + model + "-self-agreement.json";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("missing " + path);
  const auto file = nlohmann::json::parse(in);
  SelfAgreement total = self_agreement_totals(file["texts"], n_texts);
  const auto& prompts = file["greedy"];
  for (size_t i = 0; i < std::min(n_prompts, prompts.size()); ++i) {
    ++total.prompts;
    total.greedy_identical += prompts[i]["identical"].get<bool>() ? 1 : 0;
  }
  return total;
}

// The bounds, from llama.cpp's spread `self` over the same texts and prompts:
//  - mean KL <= kKlFactor x llama.cpp's. Tiller's difference from llama.cpp is of
//    the same kind as llama.cpp's F16-to-F32 change (roundings in other places,
//    amplified from block to block by the 8-bit activation quantization), so its KL
//    should be of the same size; the factor leaves room for the other kernels and
//    CPUs (AVX2, portable), which round otherwise again, while a real mistake (a
//    wrong norm, rope or scale) moves the KL by orders of magnitude, not by 2.
//  - top-1 >= llama.cpp's top-1 minus kTop1Margin, for the same reason: llama.cpp
//    loses 3.5 to 5% of its top-1 choices to the rounding change, where its two best
//    tokens are within rounding of each other.
//  - greedy continuations identical >= kGreedyShare x llama.cpp's count, rounded
//    down. A continuation parts at the first near-tie it meets, so the count is a
//    coarse figure (each prompt is all or nothing): on 20 prompts, one where
//    llama.cpp keeps 8 (SmolLM2) or 4 (Gemma), a count like that varies by 2 to 3
//    between two roundings of the same size.
// Fewer than kMinPositions measured positions (the sanitizer builds' one text or
// two steering cases, some 200 positions) say little about a mean: the base is
// llama.cpp's figure over all texts, the KL bound doubles, and the top-1 margin
// adds three standard errors of a share measured on n positions,
// 3 sqrt(p (1 - p) / n): on 219 positions at p = 0.95, 4.4 points. (One text's
// top-1 moves by more than that between roundings: Gemma's first text, 91.8%
// in Tiller's sanitizer build against 95.2% over all twenty.)
inline constexpr double kKlFactor = 2.0;
inline constexpr double kTop1Margin = 0.015;
inline constexpr double kGreedyShare = 0.5;
inline constexpr size_t kMinPositions = 2000;
inline constexpr double kStandardErrors = 3.0;

struct DerivedBounds {
  double max_mean_kl = 0, min_top1 = 0;
  std::string why;  // how they were derived, for the figures line
};

// `checked`: llama.cpp's spread on the texts checked; `all`: on every text it covers;
// `measured`: how many positions the test measured Tiller on; `other_texts`: the
// test checks texts other than the forward goldens' (steering).
inline DerivedBounds bounds_from(const SelfAgreement& checked, const SelfAgreement& all, size_t measured,
                                 bool other_texts = false) {
  const bool few = measured < kMinPositions;
  const SelfAgreement& base = (few || other_texts) ? all : checked;
  const double p = base.top1();
  const double sampling = few && measured > 0 ? kStandardErrors * std::sqrt(p * (1 - p) / double(measured)) : 0.0;
  const double margin = kTop1Margin + sampling;
  DerivedBounds bounds{kKlFactor * (few ? 2.0 : 1.0) * base.mean_kl(), p - margin, ""};
  bounds.why = fmt::format("llama.cpp F16 vs F32 KV cache on {} {} positions ({} texts): mean KL {:.5f}, top-1 {:.2f}%; "
                           "bounds KL <= {}{} x that = {:.5f}, top-1 >= that - {:.1f}{} = {:.2f}%",
                           few || other_texts ? "the forward texts'" : "the same", base.positions, base.texts,
                           base.mean_kl(), 100 * p, kKlFactor, few ? " x 2 (few positions)" : "", bounds.max_mean_kl,
                           100 * margin,
                           few ? fmt::format(" (1.5 + 3 standard errors of {} positions)", measured) : std::string(),
                           100 * bounds.min_top1);
  return bounds;
}

// The bars of the random-weight family models (tests/test_family_golden.cpp, the
// issue's words): mean KL <= max(kFamilyKlFloor, llama.cpp's F16-vs-F32-KV KL on the
// same model and texts), top-1 >= llama.cpp's top-1 there - kFamilyTop1Margin. On
// these small models llama.cpp's own KL is some 1e-6, so the floor is the bar.
inline constexpr double kFamilyKlFloor = 0.005;
inline constexpr double kFamilyTop1Margin = 0.01;

inline DerivedBounds family_bounds(const SelfAgreement& self) {
  DerivedBounds bounds{std::max(kFamilyKlFloor, self.mean_kl()), self.top1() - kFamilyTop1Margin, ""};
  bounds.why = fmt::format("llama.cpp F16 vs F32 KV cache on the same {} positions: mean KL {:.2e}, top-1 {:.2f}%; "
                           "bounds KL <= max({}, that), top-1 >= that - {:.0f} point",
                           self.positions, self.mean_kl(), 100 * self.top1(), kFamilyKlFloor,
                           100 * kFamilyTop1Margin);
  return bounds;
}

// The least number of identical continuations over `n_prompts` prompts: the
// covered prompts' share when the file covers fewer than are checked.
inline size_t greedy_floor(const SelfAgreement& self, size_t n_prompts) {
  return static_cast<size_t>(std::floor(kGreedyShare * self.greedy_share() * static_cast<double>(n_prompts)));
}

}  // namespace tiller::testing
