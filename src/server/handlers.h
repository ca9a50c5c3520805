// The HTTP endpoints, registered on a cpp-httplib server: GET /health,
// GET /v1/models, POST /v1/completions, POST /v1/chat/completions (and, from
// service_routes.h, /metrics, /tokenize, /detokenize, /openapi.json); the API key
// check in front of the routes needs_api_key() names, and OpenAI error objects for
// every failure (those httplib raises itself, 404 and 413, included).
#pragma once

#include <functional>
#include <string>

namespace httplib {
class Server;
}

namespace tiller::server {

struct ServerState;

void register_handlers(httplib::Server& http, ServerState& state);

}  // namespace tiller::server
