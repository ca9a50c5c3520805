// Text generation: the prompt in batches, then one sampled token per step.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tiller/model.h"
#include "tiller/sampler.h"

namespace tiller {

struct GenerationOptions {
  int n_predict = 256;  // tokens to generate at most; < 0: until the end of generation or a full context
  SamplerParams sampling;
  std::vector<std::string> stop;  // stop at the first of these in the generated text (not shown)
  bool ignore_eos = false;        // keep going through end-of-generation tokens
};

enum class StopReason { EndOfGeneration, StopString, Length, ContextFull };
std::string_view stop_reason_name(StopReason reason);  // "eog", "stop", "length", "context"

struct GenerationResult {
  std::vector<TokenId> tokens;  // generated, the end-of-generation token excluded
  std::string text;             // what was shown: up to, not including, a stop string
  StopReason reason = StopReason::Length;
  int n_prompt = 0;
  double prompt_seconds = 0.0;      // the prompt's forward passes
  double generation_seconds = 0.0;  // sampling and the forward passes after the prompt
};

// Runs `prompt` through the session from its current position, then samples
// until a stop condition; on_text receives the text as it becomes printable.
// The prompt must fit the context (an error says by how much it does not);
// a full context during generation ends it with StopReason::ContextFull.
GenerationResult generate(Session& session, std::span<const TokenId> prompt, const GenerationOptions& options,
                          const std::function<void(std::string_view)>& on_text = {});

}  // namespace tiller
