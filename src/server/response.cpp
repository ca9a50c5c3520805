#include "server/response.h"

namespace tiller::server {
namespace {

using json = nlohmann::json;

json usage_object(const Usage& usage) {
  return {{"prompt_tokens", usage.prompt_tokens},
          {"completion_tokens", usage.completion_tokens},
          {"total_tokens", usage.prompt_tokens + usage.completion_tokens}};
}

json base_object(const ResponseHeader& header, bool chunk) {
  const bool chat = header.endpoint == Endpoint::ChatCompletions;
  // OpenAI names text-completion chunks "text_completion" too.
  const char* object = chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion";
  json out = {{"id", header.id}, {"object", object}, {"created", header.created}, {"model", header.model},
              {"system_fingerprint", nullptr}};
  out["seed"] = header.seed;  // an extension: the seed that repeats this response
  return out;
}

}  // namespace

json finish_reason(StopReason reason) {
  switch (reason) {
    case StopReason::EndOfGeneration:
    case StopReason::StopString:
      return "stop";
    case StopReason::Length:
    case StopReason::ContextFull:
      return "length";
    case StopReason::Cancelled:
      break;
  }
  return nullptr;
}

json completion_response(const ResponseHeader& header, const std::vector<GenerationResult>& results,
                         const Usage& usage, const std::vector<json>& logprobs) {
  json out = base_object(header, false);
  json choices = json::array();
  for (size_t i = 0; i < results.size(); ++i) {
    json choice = {{"index", i},
                   {"finish_reason", finish_reason(results[i].reason)},
                   {"logprobs", i < logprobs.size() ? logprobs[i] : json(nullptr)}};
    if (header.endpoint == Endpoint::ChatCompletions) {
      choice["message"] = {{"role", "assistant"}, {"content", results[i].text}};
    } else {
      choice["text"] = results[i].text;
    }
    if (header.compare) choice["steered"] = i == 0;
    choices.push_back(std::move(choice));
  }
  out["choices"] = std::move(choices);
  out["usage"] = usage_object(usage);
  return out;
}

json completion_chunk(const ResponseHeader& header, int index, const std::string& text, bool first,
                      const std::optional<StopReason>& finish, bool include_usage, const json& logprobs) {
  json out = base_object(header, true);
  json choice = {{"index", index}, {"finish_reason", finish ? finish_reason(*finish) : json(nullptr)},
                 {"logprobs", logprobs}};
  if (header.endpoint == Endpoint::ChatCompletions) {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (!finish) delta["content"] = text;
    choice["delta"] = std::move(delta);
  } else {
    choice["text"] = text;
  }
  if (header.compare) choice["steered"] = index == 0;
  out["choices"] = json::array({std::move(choice)});
  // With include_usage every chunk carries "usage": null but the last (OpenAI's form).
  if (include_usage) out["usage"] = nullptr;
  return out;
}

json usage_chunk(const ResponseHeader& header, const Usage& usage) {
  json out = base_object(header, true);
  out["choices"] = json::array();
  out["usage"] = usage_object(usage);
  return out;
}

json logprobs_object(Endpoint endpoint, const std::vector<TokenLogprob>& entries, size_t& text_offset) {
  const auto bytes = [](const std::string& piece) {
    json out = json::array();
    for (const char c : piece) out.push_back(static_cast<unsigned char>(c));
    return out;
  };
  if (endpoint == Endpoint::ChatCompletions) {
    json content = json::array();
    for (const TokenLogprob& entry : entries) {
      json top = json::array();
      for (const auto& alt : entry.top) {
        top.push_back({{"token", alt.piece}, {"logprob", alt.logprob}, {"bytes", bytes(alt.piece)}});
      }
      content.push_back({{"token", entry.piece},
                         {"logprob", entry.logprob},
                         {"bytes", bytes(entry.piece)},
                         {"top_logprobs", std::move(top)}});
    }
    return {{"content", std::move(content)}, {"refusal", nullptr}};
  }
  json tokens = json::array(), token_logprobs = json::array(), top_logprobs = json::array(),
       offsets = json::array();
  for (const TokenLogprob& entry : entries) {
    tokens.push_back(entry.piece);
    token_logprobs.push_back(entry.logprob);
    json top = json::object();
    for (const auto& alt : entry.top) top[alt.piece] = alt.logprob;
    top[entry.piece] = entry.logprob;  // OpenAI's form: the chosen token is always there
    top_logprobs.push_back(std::move(top));
    offsets.push_back(text_offset);
    // Characters, as clients index the text: every byte but UTF-8 continuation bytes.
    for (const char c : entry.piece) text_offset += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }
  return {{"tokens", std::move(tokens)},
          {"token_logprobs", std::move(token_logprobs)},
          {"top_logprobs", std::move(top_logprobs)},
          {"text_offset", std::move(offsets)}};
}

std::string sse_event(const json& object) { return "data: " + dump(object) + "\n\n"; }

json error_body(const ApiError& error) {
  return {{"error",
           {{"message", error.what()},
            {"type", error.type},
            {"param", error.param.empty() ? json(nullptr) : json(error.param)},
            {"code", error.status}}}};
}

json model_list(const std::string& model_id, int64_t created, const json& meta) {
  json model = {{"id", model_id}, {"object", "model"}, {"created", created}, {"owned_by", "tiller"}};
  if (meta.is_object()) model["meta"] = meta;
  return {{"object", "list"}, {"data", json::array({std::move(model)})}};
}

std::string dump(const json& object) { return object.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace tiller::server
