// OpenAI's response objects, built from generation results: whole completions,
// streamed chunks (server-sent events), usage, errors, the model list. Only JSON
// here; the handlers decide statuses and when to write.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/api_error.h"
#include "server/logprobs.h"
#include "server/request.h"
#include "tiller/generate.h"

namespace tiller::server {

// What every object of one response shares.
struct ResponseHeader {
  std::string id;  // "chatcmpl-..." or "cmpl-..."
  int64_t created = 0;  // Unix seconds
  std::string model;
  Endpoint endpoint = Endpoint::Completions;
  bool compare = false;  // choices carry "steered": true/false
  uint64_t seed = 0;     // the seed used (drawn when the request gave none), so a run can be repeated
};

struct Usage {
  int prompt_tokens = 0, completion_tokens = 0;
};

// "stop" (end of generation, a stop string), "length" (max_tokens, a full context),
// or null (cancelled: nobody reads it).
nlohmann::json finish_reason(StopReason reason);

// The whole response: one choice per result, index i for results[i]; with
// compare, choice 0 is the steered one and 1 the unsteered. `logprobs`, when
// given, holds each choice's logprobs object (logprobs_object), else null.
nlohmann::json completion_response(const ResponseHeader& header, const std::vector<GenerationResult>& results,
                                   const Usage& usage, const std::vector<nlohmann::json>& logprobs = {});

// A streamed chunk for choice `index`: a piece of text, or (with finish set) the
// choice's end. Chat chunks carry the role in the first chunk of each choice.
// `logprobs`: the logprobs object of the tokens this chunk adds, or null.
nlohmann::json completion_chunk(const ResponseHeader& header, int index, const std::string& text, bool first,
                                const std::optional<StopReason>& finish, bool include_usage,
                                const nlohmann::json& logprobs = nullptr);

// The logprobs object of some of a choice's tokens, in OpenAI's form for the
// endpoint: chat {"content": [{token, logprob, bytes, top_logprobs: [{token,
// logprob, bytes}]}]}; completions {tokens, token_logprobs, top_logprobs (one
// {token: logprob} per token, the chosen token among them), text_offset}.
// `text_offset` is where the first token starts in the generated text, in
// characters (UTF-8 lead bytes); it is advanced past the entries.
nlohmann::json logprobs_object(Endpoint endpoint, const std::vector<TokenLogprob>& entries, size_t& text_offset);
// The last chunk when stream_options.include_usage: no choices, the usage.
nlohmann::json usage_chunk(const ResponseHeader& header, const Usage& usage);

// "data: <json>\n\n", and the stream's end "data: [DONE]\n\n".
std::string sse_event(const nlohmann::json& object);
inline constexpr const char* kSseDone = "data: [DONE]\n\n";

// {"error": {"message", "type", "param", "code"}}.
nlohmann::json error_body(const ApiError& error);

// GET /v1/models: the one model served; `meta` (llama.cpp's server has the same
// extension: n_layer, n_embd, n_ctx) when it is an object.
nlohmann::json model_list(const std::string& model_id, int64_t created, const nlohmann::json& meta = nullptr);

// JSON text that never throws on invalid UTF-8 (a model may emit any bytes; they
// are replaced with U+FFFD).
std::string dump(const nlohmann::json& object);

}  // namespace tiller::server
