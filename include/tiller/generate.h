// Text generation: the prompt in batches, then one sampled token per step, either
// stepped by the caller (Generator: streaming, serving, cancelling) or run whole
// (generate()).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tiller/model.h"
#include "tiller/sampler.h"
#include "tiller/steer.h"
#include "tiller/stop_strings.h"

namespace tiller {

struct GenerationOptions {
  int n_predict = 256;  // tokens to generate at most; < 0: until the end of generation or a full context
  SamplerParams sampling;
  std::vector<std::string> stop;  // stop at the first of these in the generated text (not shown)
  bool ignore_eos = false;        // keep going through end-of-generation tokens
};

enum class StopReason { EndOfGeneration, StopString, Length, ContextFull, Cancelled };
std::string_view stop_reason_name(StopReason reason);  // "eog", "stop", "length", "context", "cancelled"

struct GenerationResult {
  std::vector<TokenId> tokens;  // generated, the end-of-generation token excluded
  std::string text;             // what was shown: up to, not including, a stop string
  StopReason reason = StopReason::Length;
  int n_prompt = 0;
  double prompt_seconds = 0.0;      // the prompt's forward passes
  double generation_seconds = 0.0;  // sampling and the forward passes after the prompt
};

// One generation on a session, advanced a token at a time by the caller. The
// first next() runs the prompt from the session's current position; each call
// samples one token (running the previous one first). The sampler's state (its
// random sequence and penalty history) lives here, so several Generators on
// several sessions interleave freely.
class Generator {
 public:
  struct Step {
    TokenId token = -1;  // the token sampled (-1 when only held-back text was flushed)
    std::string text;    // the text that became printable with it (may be empty)
  };
  // Checks the prompt (non-empty, fits the context with room for one more token)
  // and the sampling parameters; runs nothing yet. `seq` is the session's sequence
  // it generates in (Session::n_seq).
  Generator(Session& session, std::vector<TokenId> prompt, const GenerationOptions& options, int seq = 0);
  ~Generator();

  // The next step, or nullopt once generation has ended (then result().reason says why).
  std::optional<Step> next();
  bool done() const { return done_; }
  // Ends the generation before the next token; safe to call from another thread.
  // A next() in progress finishes its token first.
  void cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  // What was generated so far; whole once done().
  const GenerationResult& result() const { return result_; }
  // The raw logits row (n_vocab, before penalties and temperature) that the last
  // step's token was sampled from; valid until the next next(). Empty before the
  // first step. For callers that report log-probabilities (the server's logprobs).
  std::span<const float> last_logits() const { return logits_; }
  Session& session() { return session_; }
  int seq() const { return seq_; }

  // Batched generation (a server stepping many generators in one forward pass):
  // the token the next next() would run before it samples, if any. Run it yourself
  // (Session::decode_step, in this generator's sequence) and hand its logits row to
  // supply_logits(); next() then samples from that row without running anything.
  std::optional<TokenId> pending_token() const { return to_run_; }
  void supply_logits(std::span<const float> logits);

 private:
  void finish(StopReason reason, Step& step);
  Session& session_;
  int seq_;
  std::vector<TokenId> prompt_;
  GenerationOptions options_;
  Sampler sampler_;
  TokenTextStream detokenizer_;
  StopStringFilter stops_;
  GenerationResult result_;
  std::span<const float> logits_;
  std::optional<TokenId> to_run_;  // the last token sampled, not yet run
  bool started_ = false, done_ = false;
  std::atomic<bool> cancelled_{false};
  std::chrono::steady_clock::time_point generation_start_;
};

// Runs `prompt` through the session from its current position, then samples
// until a stop condition; on_text receives the text as it becomes printable.
// The prompt must fit the context (an error says by how much it does not);
// a full context during generation ends it with StopReason::ContextFull.
// Built on Generator.
GenerationResult generate(Session& session, std::span<const TokenId> prompt, const GenerationOptions& options,
                          const std::function<void(std::string_view)>& on_text = {});

// The same prompt and options twice, unsteered then steered (so the same seed
// gives the two texts ActAdd's paper and `run --compare` set side by side): the
// session is reset before each, the binding attached for the steered run only and
// detached after it.
struct ComparedGeneration {
  GenerationResult unsteered, steered;
};
ComparedGeneration generate_compared(Session& session, SteeringBinding& steering, std::span<const TokenId> prompt,
                                     const GenerationOptions& options);

}  // namespace tiller
