#include "tiller/generate.h"

#include "common/fail.h"

namespace tiller {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

}  // namespace

std::string_view stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::EndOfGeneration: return "eog";
    case StopReason::StopString: return "stop";
    case StopReason::Length: return "length";
    case StopReason::ContextFull: return "context";
    case StopReason::Cancelled: return "cancelled";
  }
  return "unknown";
}

Generator::Generator(Session& session, std::vector<TokenId> prompt, const GenerationOptions& options, int seq)
    : session_(session),
      seq_(seq),
      prompt_(std::move(prompt)),
      options_(options),
      sampler_(options.sampling, static_cast<int32_t>(session.model().config().n_vocab)),
      detokenizer_(session.model().tokenizer()),
      stops_(options.stop) {
  if (prompt_.empty()) fail("the prompt has no tokens");
  const int room = session.n_ctx() - session.n_past(seq);
  if (static_cast<int64_t>(prompt_.size()) >= room) {
    fail("the prompt has {} tokens but the context has room for {} (prompt plus at least one generated); "
         "raise -c or shorten the prompt",
         prompt_.size(), room - 1);
  }
  result_.n_prompt = static_cast<int>(prompt_.size());
}

Generator::~Generator() = default;

void Generator::supply_logits(std::span<const float> logits) {
  if (!to_run_) fail("supply_logits: the generator has no token waiting to run");
  if (logits.size() != static_cast<size_t>(session_.model().config().n_vocab)) {
    fail("supply_logits: a row of {} logits, not {}", logits.size(), session_.model().config().n_vocab);
  }
  logits_ = logits;
  to_run_.reset();
}

void Generator::finish(StopReason reason, Step& step) {
  result_.reason = reason;
  if (!stops_.stopped() && reason != StopReason::Cancelled) {
    step.text += stops_.push(detokenizer_.finish());
    if (stops_.stopped()) result_.reason = StopReason::StopString;
    step.text += stops_.finish();
  }
  result_.text += step.text;
  result_.generation_seconds = seconds_since(generation_start_);
  done_ = true;
}

std::optional<Generator::Step> Generator::next() {
  if (done_) return std::nullopt;
  Step step;
  if (!started_) {
    started_ = true;
    for (const TokenId token : prompt_) sampler_.accept(token);
    const auto prompt_start = Clock::now();
    logits_ = session_.decode(seq_, prompt_, false);
    result_.prompt_seconds = seconds_since(prompt_start);
    generation_start_ = Clock::now();
  }
  if (cancelled_.load(std::memory_order_relaxed)) {
    finish(StopReason::Cancelled, step);
    return step;
  }
  if (options_.n_predict == 0) {
    finish(StopReason::Length, step);
    return step;
  }
  if (to_run_) {
    // The previous token is run only now: the last one of a generation is only
    // sampled (and the check below left room for it).
    logits_ = session_.decode(seq_, std::span(&*to_run_, 1), false);
    to_run_.reset();
  }
  const TokenId token = sampler_.sample(logits_);
  sampler_.accept(token);
  step.token = token;
  if (!options_.ignore_eos && session_.model().tokenizer().is_end_of_generation(token)) {
    finish(StopReason::EndOfGeneration, step);
    return step;
  }
  result_.tokens.push_back(token);
  step.text = stops_.push(detokenizer_.push(token));
  if (stops_.stopped()) {
    finish(StopReason::StopString, step);
    return step;
  }
  if (options_.n_predict > 0 && static_cast<int>(result_.tokens.size()) >= options_.n_predict) {
    finish(StopReason::Length, step);
    return step;
  }
  if (session_.n_past(seq_) >= session_.n_ctx()) {
    finish(StopReason::ContextFull, step);
    return step;
  }
  to_run_ = token;
  result_.text += step.text;
  return step;
}

GenerationResult generate(Session& session, std::span<const TokenId> prompt, const GenerationOptions& options,
                          const std::function<void(std::string_view)>& on_text) {
  Generator generator(session, std::vector<TokenId>(prompt.begin(), prompt.end()), options);
  while (const auto step = generator.next()) {
    if (on_text && !step->text.empty()) on_text(step->text);
  }
  return generator.result();
}

}  // namespace tiller
