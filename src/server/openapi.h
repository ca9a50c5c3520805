// The API's OpenAPI 3.1 document (src/server/openapi.json, written by hand and
// compiled in by cmake/embed_text.cmake), and the route table read from it: the
// metrics label each request by the documented path it matched, and the tests
// hold the document to the routes the server registers.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tiller::server {

// The document's bytes (JSON), as served at GET /openapi.json.
std::string_view openapi_document();

// The document's path templates ("/v1/vectors/{name}"), in its order.
const std::vector<std::string>& documented_paths();

// The documented template `path` matches (a `{param}` segment matches any one
// non-empty segment; a literal segment wins over a parameter), or "other".
std::string route_template(std::string_view path);

}  // namespace tiller::server
