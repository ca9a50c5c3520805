#include "server/vector_routes.h"

#include <httplib.h>

#include "server/api_error.h"
#include "server/http_reply.h"
#include "server/response.h"
#include "server/server_state.h"

namespace tiller::server {
namespace {

using json = nlohmann::json;

// Every route answers with a vector object or an error object, whatever fails.
template <class Handler>
auto guarded(ServerState& state, Handler handler) {
  return [&state, handler](const httplib::Request& req, httplib::Response& res) {
    try {
      // The registry checks vectors against the model, so it exists once the model does.
      if (!state.ready.load(std::memory_order_acquire) || state.vectors == nullptr) {
        ApiError error(503, "unavailable_error", "the model is still loading");
        error.retry_after = 1;
        throw error;
      }
      handler(*state.vectors, req.matches.size() > 1 ? req.matches[1].str() : std::string(), req, res);
    } catch (const ApiError& error) {
      send_error(res, error);
    } catch (const std::exception& error) {
      send_error(res, ApiError(500, "server_error", std::string("internal error: ") + error.what()));
    }
  };
}

ApiError no_vector(const VectorRegistry& vectors, const std::string& name) {
  return not_found(vectors.has_folder() ? "no vector named '" + name + "' in the server's vector folder"
                                        : "no vector named '" + name + "': the server was started without --vector-dir",
                   "name");
}

}  // namespace

json vector_json(const VectorInfo& info) {
  json out = {{"id", info.name}, {"object", "vector"}};
  if (!info.error.empty()) {
    out["error"] = info.error;
    return out;
  }
  out["width"] = info.width;
  out["layers"] = info.layers;
  out["norms"] = info.norms;
  out["bytes"] = info.bytes;
  out["created"] = info.created;
  return out;
}

void register_vector_routes(httplib::Server& http, ServerState& state) {
  using Request = httplib::Request;
  using Response = httplib::Response;
  http.Get("/v1/vectors", guarded(state, [](VectorRegistry& vectors, const std::string&, const Request&, Response& res) {
             json data = json::array();
             for (const VectorInfo& info : vectors.list()) data.push_back(vector_json(info));
             send_json(res, 200, {{"object", "list"}, {"data", data}});
           }));
  // (.*), not ([^/]+): a name with '/' is a bad name (400), not an unknown route.
  // Each route is written out, as the OpenAPI test reads them from the source.
  http.Get(R"(/v1/vectors/(.*))", guarded(state, [](VectorRegistry& vectors, const std::string& name, const Request&, Response& res) {
             const auto info = vectors.get(name);
             if (!info) throw no_vector(vectors, name);
             send_json(res, 200, vector_json(*info));
           }));
  http.Put(R"(/v1/vectors/(.*))", guarded(state, [](VectorRegistry& vectors, const std::string& name, const Request& req, Response& res) {
             const VectorRegistry::Stored stored = vectors.put(name, req.body);
             send_json(res, stored.replaced ? 200 : 201, vector_json(stored.info));
           }));
  http.Delete(R"(/v1/vectors/(.*))",
              guarded(state, [](VectorRegistry& vectors, const std::string& name, const Request&, Response& res) {
                if (!vectors.remove(name)) throw no_vector(vectors, name);
                send_json(res, 200, {{"id", name}, {"object", "vector.deleted"}, {"deleted", true}});
              }));
}

}  // namespace tiller::server
