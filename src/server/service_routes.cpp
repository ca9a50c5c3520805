#include "server/service_routes.h"

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "server/api_error.h"
#include "server/http_reply.h"
#include "server/openapi.h"
#include "server/request.h"
#include "server/response.h"
#include "server/server_state.h"

namespace tiller::server {
namespace {

using json = nlohmann::json;

// Tokenizing needs the model: 503 until it is loaded, like the completions.
const Tokenizer& tokenizer_of(const ServerState& state) {
  if (!state.ready.load(std::memory_order_acquire)) {
    ApiError error(503, "unavailable_error", "the model is still loading");
    error.retry_after = 1;
    throw error;
  }
  return state.model->tokenizer();
}

bool flag(const json& root, const char* name, bool fallback) {
  const auto it = root.find(name);
  if (it == root.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) throw bad_request(std::string("'") + name + "' must be a boolean", name);
  return it->get<bool>();
}

bool valid_utf8(const std::string& text) {
  for (size_t i = 0; i < text.size();) {
    const auto lead = static_cast<unsigned char>(text[i]);
    const size_t length = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 0;
    if (length == 0 || i + length > text.size()) return false;
    for (size_t k = 1; k < length; ++k) {
      if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return false;
    }
    i += length;
  }
  return true;
}

// llama.cpp's form: {"content": str, "add_special": false, "parse_special": true,
// "with_pieces": false} -> {"tokens": [id, ...]} or, with pieces, {"tokens":
// [{"id", "piece"}]}, a piece being a string when it is whole UTF-8 and its bytes
// otherwise (part of a character).
json tokenize(const Tokenizer& tokenizer, const std::string& body) {
  const json root = parse_json_object(body);
  const auto content = root.find("content");
  if (content == root.end() || content->is_null()) throw bad_request("'content' is required", "content");
  if (!content->is_string()) throw bad_request("'content' must be a string", "content");
  const bool add_special = flag(root, "add_special", false);
  const bool parse_special = flag(root, "parse_special", true);
  const bool with_pieces = flag(root, "with_pieces", false);
  const std::vector<TokenId> ids =
      tokenizer.tokenize(content->get<std::string>(), {.add_special = add_special, .parse_special = parse_special});
  json tokens = json::array();
  for (const TokenId id : ids) {
    if (!with_pieces) {
      tokens.push_back(id);
      continue;
    }
    const std::string piece = tokenizer.token_to_piece(id, true);
    if (valid_utf8(piece)) {
      tokens.push_back({{"id", id}, {"piece", piece}});
    } else {
      json bytes = json::array();
      for (const char c : piece) bytes.push_back(static_cast<unsigned char>(c));
      tokens.push_back({{"id", id}, {"piece", std::move(bytes)}});
    }
  }
  return {{"tokens", std::move(tokens)}};
}

// {"tokens": [id, ...]} -> {"content": text}, special tokens rendered as their
// text (so tokenize's ids, special ones included, come back as the text).
json detokenize(const Tokenizer& tokenizer, const std::string& body) {
  const json root = parse_json_object(body);
  const auto tokens = root.find("tokens");
  if (tokens == root.end() || tokens->is_null()) throw bad_request("'tokens' is required", "tokens");
  if (!tokens->is_array()) throw bad_request("'tokens' must be an array of token ids", "tokens");
  std::vector<TokenId> ids;
  ids.reserve(tokens->size());
  for (size_t i = 0; i < tokens->size(); ++i) {
    const json& id = (*tokens)[i];
    const std::string where = "tokens[" + std::to_string(i) + "]";
    if (!id.is_number_integer()) throw bad_request(where + " must be an integer token id", "tokens");
    // Compared as signed 64-bit; an unsigned beyond that range is out of it too.
    const bool in_range = id.is_number_unsigned() ? id.get<uint64_t>() < uint64_t(tokenizer.n_vocab())
                                                  : id.get<int64_t>() >= 0 && id.get<int64_t>() < tokenizer.n_vocab();
    if (!in_range) {
      throw bad_request(where + " is " + id.dump() + ", outside the vocabulary (0 to " +
                            std::to_string(tokenizer.n_vocab() - 1) + ")",
                        "tokens");
    }
    ids.push_back(static_cast<TokenId>(id.get<int64_t>()));
  }
  return {{"content", tokenizer.detokenize(ids, true, false)}};
}

// Runs a JSON endpoint's body, turning its refusals into error objects.
template <typename Handler>
void answer(httplib::Response& res, Handler&& handler) {
  try {
    send_json(res, 200, handler());
  } catch (const ApiError& error) {
    send_error(res, error);
  } catch (const std::exception& error) {
    send_error(res, bad_request(error.what()));
  }
}

}  // namespace

bool needs_api_key(std::string_view path) {
  return path.rfind("/v1/", 0) == 0 || path == "/tokenize" || path == "/detokenize" || path == "/metrics";
}

void register_service_routes(httplib::Server& http, ServerState& state) {
  http.Get("/metrics", [&state](const httplib::Request&, httplib::Response& res) {
    const bool ready = state.ready.load(std::memory_order_acquire);
    // Before the model is loaded there is no scheduler: its slots are all free.
    const SchedulerStats stats =
        ready ? state.scheduler->stats() : SchedulerStats{state.options.parallel, 0, 0, state.options.queue};
    res.status = 200;
    res.set_content(state.metrics.render(stats, state.in_flight.load()), "text/plain; version=0.0.4; charset=utf-8");
  });
  http.Post("/tokenize", [&state](const httplib::Request& req, httplib::Response& res) {
    answer(res, [&] { return tokenize(tokenizer_of(state), req.body); });
  });
  http.Post("/detokenize", [&state](const httplib::Request& req, httplib::Response& res) {
    answer(res, [&] { return detokenize(tokenizer_of(state), req.body); });
  });
  http.Get("/openapi.json", [](const httplib::Request&, httplib::Response& res) {
    res.status = 200;
    res.set_content(std::string(openapi_document()), "application/json");
  });
}

}  // namespace tiller::server
