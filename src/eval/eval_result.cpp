// EvalResult as JSON and CSV (the shapes are in tiller/evaluate.h).
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "tiller/evaluate.h"

namespace tiller {
namespace {

using nlohmann::ordered_json;

ordered_json likelihood_json(const EvalResult::Likelihood& l) {
  return {{"logprob_unsteered", l.logprob_unsteered},
          {"logprob_steered", l.logprob_steered},
          {"delta", l.delta},
          {"perplexity_ratio", l.perplexity_ratio},
          {"tokens", l.tokens}};
}

// Every figure, samples left out: what both forms share.
ordered_json figures(const EvalResult& r) {
  ordered_json out = ordered_json::object();
  if (r.on_topic) out["on_topic"] = likelihood_json(*r.on_topic);
  if (r.off_topic) out["off_topic"] = likelihood_json(*r.off_topic);
  if (r.topic) {
    out["topic_words"] = {{"per100_unsteered", r.topic->per100_unsteered}, {"per100_steered", r.topic->per100_steered}};
  }
  if (r.damage_kl) out["damage"] = {{"kl", *r.damage_kl}};
  if (r.ab) out["ab"] = {{"p_unsteered", r.ab->p_unsteered}, {"p_steered", r.ab->p_steered}};
  if (r.fluency) {
    out["fluency"] = {{"logprob_unsteered_samples", r.fluency->logprob_unsteered_samples},
                      {"logprob_steered_samples", r.fluency->logprob_steered_samples},
                      {"tokens_unsteered", r.fluency->tokens_unsteered},
                      {"tokens_steered", r.fluency->tokens_steered}};
  }
  return out;
}

}  // namespace

std::string EvalResult::to_json(int indent) const {
  ordered_json out = figures(*this);
  if (topic) {
    out["topic_words"]["samples_unsteered"] = topic->samples_unsteered;
    out["topic_words"]["samples_steered"] = topic->samples_steered;
  }
  // Invalid UTF-8 in a sample (a cut multi-byte character) is replaced, not fatal.
  return out.dump(indent, ' ', false, ordered_json::error_handler_t::replace);
}

std::string EvalResult::to_csv() const {
  std::string out = "metric,field,value\n";
  const ordered_json all = figures(*this);
  for (auto metric = all.begin(); metric != all.end(); ++metric) {
    for (auto field = metric->begin(); field != metric->end(); ++field) {
      out += fmt::format("{},{},{}\n", metric.key(), field.key(), field->dump());
    }
  }
  return out;
}

}  // namespace tiller
