// The endpoints around the completions: GET /metrics (Prometheus), POST /tokenize
// and POST /detokenize (llama.cpp server's field names), GET /openapi.json (the
// API's document). Registered by register_handlers.
#pragma once

#include <string_view>

namespace httplib {
class Server;
}

namespace tiller::server {

struct ServerState;

// Whether a path is behind --api-key: /v1/*, /tokenize, /detokenize and /metrics.
// The health check, the page and the OpenAPI document stay open.
bool needs_api_key(std::string_view path);

void register_service_routes(httplib::Server& http, ServerState& state);

}  // namespace tiller::server
