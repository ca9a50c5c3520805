// An error the API reports to its client: an HTTP status and OpenAI's error
// object ({"error": {"message", "type", "param", "code"}}), which the official
// clients turn into their exception classes by status.
#pragma once

#include <stdexcept>
#include <string>

namespace tiller::server {

struct ApiError : std::runtime_error {
  int status;
  std::string type;   // "invalid_request_error", "authentication_error", "not_found_error", ...
  std::string param;  // the request field at fault, or empty
  int retry_after = 0;  // seconds, sent as Retry-After when > 0 (a full queue)

  ApiError(int status_, std::string type_, const std::string& message, std::string param_ = {})
      : std::runtime_error(message), status(status_), type(std::move(type_)), param(std::move(param_)) {}
};

// The common cases, so that every handler gives one status per kind of fault.
inline ApiError bad_request(const std::string& message, std::string param = {}) {
  return {400, "invalid_request_error", message, std::move(param)};
}
inline ApiError not_found(const std::string& message, std::string param = {}) {
  return {404, "not_found_error", message, std::move(param)};
}

}  // namespace tiller::server
