#include "tiller/generate.h"

#include <chrono>

#include "common/fail.h"
#include "tiller/stop_strings.h"

namespace tiller {

std::string_view stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::EndOfGeneration: return "eog";
    case StopReason::StopString: return "stop";
    case StopReason::Length: return "length";
    case StopReason::ContextFull: return "context";
  }
  return "unknown";
}

GenerationResult generate(Session& session, std::span<const TokenId> prompt, const GenerationOptions& options,
                          const std::function<void(std::string_view)>& on_text) {
  using Clock = std::chrono::steady_clock;
  const auto seconds_since = [](Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
  };
  if (prompt.empty()) fail("the prompt has no tokens");
  const int room = session.n_ctx() - session.n_past();
  if (static_cast<int64_t>(prompt.size()) >= room) {
    fail("the prompt has {} tokens but the context has room for {} (prompt plus at least one generated); "
         "raise -c or shorten the prompt",
         prompt.size(), room - 1);
  }
  const Model& model = session.model();
  const Tokenizer& tokenizer = model.tokenizer();
  Sampler sampler(options.sampling, static_cast<int32_t>(model.config().n_vocab));
  for (const TokenId token : prompt) sampler.accept(token);
  TokenTextStream detokenizer(tokenizer);
  StopStringFilter stops(options.stop);

  GenerationResult result;
  result.n_prompt = static_cast<int>(prompt.size());
  auto show = [&](const std::string& text) {
    if (text.empty()) return;
    result.text += text;
    if (on_text) on_text(text);
  };

  const auto prompt_start = Clock::now();
  std::span<const float> logits = session.decode(prompt, false);
  result.prompt_seconds = seconds_since(prompt_start);

  const auto generation_start = Clock::now();
  while (options.n_predict != 0) {
    const TokenId token = sampler.sample(logits);
    sampler.accept(token);
    if (!options.ignore_eos && tokenizer.is_end_of_generation(token)) {
      result.reason = StopReason::EndOfGeneration;
      break;
    }
    result.tokens.push_back(token);
    show(stops.push(detokenizer.push(token)));
    if (stops.stopped()) {
      result.reason = StopReason::StopString;
      break;
    }
    // The last token is only sampled: running it would compute logits nobody reads.
    if (options.n_predict > 0 && static_cast<int>(result.tokens.size()) >= options.n_predict) {
      result.reason = StopReason::Length;
      break;
    }
    if (session.n_past() >= session.n_ctx()) {
      result.reason = StopReason::ContextFull;
      break;
    }
    logits = session.decode(std::span(&token, 1), false);
  }
  if (!stops.stopped()) {
    show(stops.push(detokenizer.finish()));
    if (stops.stopped()) result.reason = StopReason::StopString;
    show(stops.finish());
  }
  result.generation_seconds = seconds_since(generation_start);
  return result;
}

}  // namespace tiller
