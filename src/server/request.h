// An OpenAI completion request's body turned into library values. Nothing here
// knows HTTP, the model or the vector folder: it is the strict part of the
// server (types, ranges, the steering object's own fields), tested on its own
// (tests/test_server_request.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "tiller/chat.h"
#include "tiller/generate.h"
#include "tiller/steering_spec.h"

namespace tiller::server {

enum class Endpoint { Completions, ChatCompletions };

struct CompletionRequest {
  Endpoint endpoint = Endpoint::Completions;
  std::string model;                  // as sent (one model is served; it is echoed, not checked)
  std::string prompt;                 // /v1/completions
  std::vector<ChatMessage> messages;  // /v1/chat/completions
  // n_predict (-1 when max_tokens is absent: until the end or a full context),
  // sampling (its seed is set by the caller from `seed` or at random), stop, ignore_eos.
  GenerationOptions generation;
  std::optional<uint64_t> seed;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  std::optional<SteeringSpec> steering;
  bool compare = false;  // also the unsteered completion, same seed
  // -1: no logprobs; n >= 0: each generated token's logprob and its n most likely
  // alternatives (chat: top_logprobs when logprobs is true; completions: logprobs).
  int top_logprobs = -1;
};

// A request body that must be a JSON object: throws bad_request (400) with a one-line
// message when it is not valid JSON or not an object. Every JSON route parses with it.
nlohmann::json parse_json_object(std::string_view body);

// Throws ApiError (400) naming the field for malformed JSON, a body that is not an
// object, a missing prompt or messages, a field of the wrong type or out of range,
// an unsupported option (n > 1), top_logprobs without logprobs, a steering object the library refuses
// (unknown fields included), a vector given by path or by a name that is not a
// plain file name, and `compare` without `steering`. Unknown top-level fields are
// ignored (clients send extras); null means absent. `defaults` fills the sampling
// fields the body leaves out.
CompletionRequest parse_completion_request(std::string_view body, Endpoint endpoint,
                                           const SamplerParams& defaults = {});

// Every vector name the steering refers to (control vectors, ablations, clamps,
// ActAdd files), in order, each once.
std::vector<std::string> steering_vector_names(const SteeringSpec& spec);

// Vector names follow the library's one rule, tiller::is_vector_name
// (tiller/steering_spec.h), as do the vector registry's.
using tiller::is_vector_name;

}  // namespace tiller::server
