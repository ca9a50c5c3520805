#include "server/http_reply.h"

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "server/response.h"

namespace tiller::server {

void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(dump(body), "application/json");
}

void send_error(httplib::Response& res, const ApiError& error) {
  if (error.retry_after > 0) res.set_header("Retry-After", std::to_string(error.retry_after));
  if (error.status == 401) res.set_header("WWW-Authenticate", "Bearer");
  send_json(res, error.status, error_body(error));
}

}  // namespace tiller::server
