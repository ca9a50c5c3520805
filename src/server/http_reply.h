// Writing a JSON answer or an API error into an httplib response: one way for
// every route file, so that every error carries the same headers.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "server/api_error.h"

namespace httplib {
struct Response;
}

namespace tiller::server {

void send_json(httplib::Response& res, int status, const nlohmann::json& body);
// OpenAI's error object with the error's status; Retry-After when it has one (a
// full queue), WWW-Authenticate on 401.
void send_error(httplib::Response& res, const ApiError& error);

}  // namespace tiller::server
