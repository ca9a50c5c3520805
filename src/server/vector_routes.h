// The vector registry's endpoints (docs/server.md, "The vector registry"):
// GET /v1/vectors, and GET, PUT and DELETE /v1/vectors/{name}, over the
// VectorRegistry that the loaded server keeps in its state. The API key check
// and the 413 for a body over --max-body are the server's, in front of these.
#pragma once

#include <nlohmann/json.hpp>

#include "server/vector_registry.h"

namespace httplib {
class Server;
}

namespace tiller::server {

struct ServerState;

// {"id", "object": "vector", "width", "layers", "norms", "bytes", "created"}, or
// {"id", "object": "vector", "error"} for a file that is not a usable vector.
nlohmann::json vector_json(const VectorInfo& info);

void register_vector_routes(httplib::Server& http, ServerState& state);

}  // namespace tiller::server
