// Measuring what a steering does (docs/evaluation.md): the ActAdd paper's
// likelihood and topic-word measures, CAA's A/B choice, the KL damage on neutral
// text and the fluency of steered samples, each on the texts an EvalSpec names.
// `tiller eval` runs one steering; `tiller sweep` (tiller/sweep.h) a grid of them,
// from the same spec and the same metric functions below.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tiller/engine.h"
#include "tiller/model.h"
#include "tiller/sampler.h"
#include "tiller/steer.h"
#include "tiller/steering_spec.h"

namespace tiller {

// One CAA-style question: the behaviour-matching answer is `a` or `b` ("A"/"B").
struct AbQuestion {
  std::string question, a, b;
  char matching = 'A';
  bool operator==(const AbQuestion&) const = default;
};

// What to measure and on which texts. The JSON form (docs/evaluation.md) takes a
// text list inline (["...", ...]) or as {"file": "PATH"} (one text per line, blank
// lines skipped; a relative PATH is relative to the spec file). A metric whose
// block is absent is not measured; at least one must be present.
//
//   {
//     "steering": { ...a SteeringSpec (docs/steering.md); relative file paths are
//                   relative to the spec file... },
//     "likelihood": {"on_topic": TEXTS, "off_topic": TEXTS},      (either may be absent)
//     "topic_words": {"prompts": TEXTS, "words": ["wed", ...],
//                     "samples": 4, "max_tokens": 40,
//                     "temperature": 1.0, "top_k": 0, "top_p": 0.3, "min_p": 0,
//                     "frequency_penalty": 1.0, "presence_penalty": 0, "seed": 0},
//     "damage": {"texts": TEXTS},
//     "ab": {"questions": [{"question": "...", "a": "...", "b": "...", "matching": "A"}],
//            "chat": false, "chat_template": "chatml"},
//           (or "file": "x.jsonl" instead of "questions": one such object per line)
//     "fluency": true                                              (needs "topic_words")
//   }
//
// The sampling defaults are the ActAdd paper's (temperature 1, top-p 0.3,
// frequency penalty 1, as OpenAI's API applies it: over the whole history, so
// penalty_last_n -1), with top-k and min-p off. Unknown fields are errors naming
// their path ("topic_words.temprature").
struct EvalSpec {
  std::optional<SteeringSpec> steering;  // "steering": what `tiller eval` measures (a flag may replace it)

  // "likelihood": teacher-forced, every token of each text after its first, the
  // steering applied as for a plain prompt that is the whole text.
  std::vector<std::string> on_topic, off_topic;

  // "topic_words": `samples` completions of each prompt, steered and unsteered with
  // the same seeds (seed, seed + 1, ...), counted for `words`.
  struct Topic {
    std::vector<std::string> prompts;
    std::vector<std::string> words;  // case-insensitive; a word matches at a word start ("wed" counts "wedding")
    int samples = 4;
    int max_tokens = 40;
    // "temperature", "top_k", "top_p", "min_p", "frequency_penalty", "presence_penalty", "seed"
    SamplerParams sampling{.temperature = 1.0f,
                           .top_k = 0,
                           .top_p = 0.3f,
                           .min_p = 0.0f,
                           .repeat_penalty = 1.0f,
                           .penalty_last_n = -1,
                           .frequency_penalty = 1.0f,
                           .presence_penalty = 0.0f,
                           .seed = 0};
  };
  std::optional<Topic> topic;

  // "damage": mean KL(unsteered || steered) over every next-token position of these texts.
  std::vector<std::string> neutral;

  // "ab": CAA's format. The prompt is "QUESTION\n\nChoices:\n(A) A\n(B) B\nAnswer: ("
  // as plain text with BOS; with `chat`, "QUESTION\n\nChoices:\n(A) A\n(B) B" is a
  // user turn in the model's chat template and the assistant's answer starts with
  // "(" (the steering's layout is then the chat prompt's: ActAdd's rows at the
  // user's message unless aligned to the context). Either way the figure is
  // P(matching letter) / (P(A) + P(B)) for the next token, the letters being the
  // tokenizer's single tokens for "A" and "B" (or the tokens whose text is exactly
  // the letter, for a tokenizer that spells "A" alone with a space prefix).
  std::vector<AbQuestion> ab;
  bool ab_chat = false;
  // "chat_template": with `chat`, a built-in format ("chatml", "gemma") or a Jinja
  // template file (relative to the spec) for a model without one; empty: the model's own.
  std::string ab_chat_template;

  // "fluency": measured on the topic_words samples (needs "topic_words").
  bool fluency = false;

  // Throws tiller::Error naming the field (unknown fields included).
  static EvalSpec from_json(std::string_view json, const std::filesystem::path& base_dir = {});
  static EvalSpec load(const std::filesystem::path& file);
};

// Metric arithmetic on logits rows (n_vocab floats), in double.
namespace metrics {
double log_softmax_at(std::span<const float> logits, TokenId token);
// KL(P || Q) for P = softmax(p_logits), Q = softmax(q_logits).
double kl_divergence(std::span<const float> p_logits, std::span<const float> q_logits);
// P(matching letter) / (P(A) + P(B)), the letters' token ids given.
double ab_probability(std::span<const float> logits, TokenId token_a, TokenId token_b, char matching);
struct WordCount {
  int64_t words = 0;  // whitespace-separated words in the text
  int64_t hits = 0;   // occurrences of the topic words
};
WordCount count_topic_words(std::string_view text, std::span<const std::string> words);
}  // namespace metrics

// Every figure is a mean; "steered" and "unsteered" are measured with the same
// texts, seeds and sessions. Absent metrics stay nullopt.
struct EvalResult {
  struct Likelihood {
    double logprob_unsteered = 0, logprob_steered = 0;  // mean log-probability per token (token-weighted)
    double delta = 0;                                   // steered - unsteered
    double perplexity_ratio = 1;                        // exp(-delta): < 1 means likelier
    int64_t tokens = 0;
  };
  std::optional<Likelihood> on_topic, off_topic;
  struct Topic {
    double per100_unsteered = 0, per100_steered = 0;  // topic words per 100 words
    std::vector<std::string> samples_unsteered, samples_steered;
  };
  std::optional<Topic> topic;
  std::optional<double> damage_kl;  // mean KL(unsteered || steered) per position
  struct Ab {
    double p_unsteered = 0, p_steered = 0;  // mean P(matching answer)
  };
  std::optional<Ab> ab;
  struct Fluency {
    // Mean log-probability per generated token under the unsteered model, each
    // sample teacher-forced after its prompt (0 when no sample has a token).
    double logprob_unsteered_samples = 0, logprob_steered_samples = 0;
    int64_t tokens_unsteered = 0, tokens_steered = 0;
  };
  std::optional<Fluency> fluency;

  // Absent metrics are left out:
  //   {"on_topic": {"logprob_unsteered", "logprob_steered", "delta", "perplexity_ratio", "tokens"},
  //    "off_topic": {...the same...},
  //    "topic_words": {"per100_unsteered", "per100_steered", "samples_unsteered": [...], "samples_steered": [...]},
  //    "damage": {"kl"},
  //    "ab": {"p_unsteered", "p_steered"},
  //    "fluency": {"logprob_unsteered_samples", "logprob_steered_samples", "tokens_unsteered", "tokens_steered"}}
  std::string to_json(int indent = 2) const;
  // A header line "metric,field,value", then one row per number of to_json (the
  // samples left out), e.g. "on_topic,delta,0.4123".
  std::string to_csv() const;
};

// (work done, work total), for a progress bar.
using EvalProgress = std::function<void(size_t done, size_t total)>;

struct EvalOptions {
  int n_ctx = 0;          // the session's context; 0: what the longest text needs (at least pack_tokens)
  int pack_tokens = 256;  // tokens of several texts run in one packed pass (Session::decode_packed)
};

// Measures `steering` (null or empty: every "steered" figure equals its unsteered
// one; null skips the steered runs, empty runs them without hooks). Likelihood
// and damage texts are each steered as a plain prompt that is the whole text
// (PromptLayout{0, n, 0}: ActAdd's rows from the text's first token), A/B prompts
// and topic prompts as the prompts they are; teacher-forced texts run several to a
// packed pass (exactly as each alone). Every text and prompt must be at least as
// long as an ActAdd tensor (else Steering::check_prompt's error; teacher-forced texts are named).
// Progress counts one unit per text or sample and side (unsteered, steered).
EvalResult evaluate(const EvalSpec& spec, const std::shared_ptr<const Model>& model,
                    const std::shared_ptr<Engine>& engine, const std::shared_ptr<const Steering>& steering,
                    const EvalProgress& progress = {}, const EvalOptions& options = {});

}  // namespace tiller
