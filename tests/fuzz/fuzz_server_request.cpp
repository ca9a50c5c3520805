// libFuzzer target: any bytes as a completion request body, for both endpoints.
// The parser must return a request or throw ApiError with a 400 and a one-line
// message; anything else (another exception, a crash, a sanitizer report) is a bug.
#include <cstdlib>
#include <string_view>

#include "server/api_error.h"
#include "server/request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  for (const auto endpoint : {tiller::server::Endpoint::Completions, tiller::server::Endpoint::ChatCompletions}) {
    try {
      const tiller::server::CompletionRequest request = tiller::server::parse_completion_request(body, endpoint);
      if (request.compare && !request.steering) std::abort();
      if (request.steering) {
        for (const auto& name : tiller::server::steering_vector_names(*request.steering)) {
          if (!tiller::server::is_vector_name(name)) std::abort();  // a name that could leave the folder
        }
      }
    } catch (const tiller::server::ApiError& error) {
      if (error.status != 400 || std::string_view(error.what()).find('\n') != std::string_view::npos) std::abort();
    }
  }
  return 0;
}
