#include "server/openapi.h"

#include <nlohmann/json.hpp>

namespace tiller::server {
namespace {

std::vector<std::string_view> segments(std::string_view path) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start <= path.size()) {
    const size_t slash = path.find('/', start);
    const size_t end = slash == std::string_view::npos ? path.size() : slash;
    out.push_back(path.substr(start, end - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

bool is_parameter(std::string_view segment) {
  return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

}  // namespace

const std::vector<std::string>& documented_paths() {
  // The document is part of the binary and checked by the tests, so a parse
  // failure here is a build that should never have passed them.
  static const std::vector<std::string> paths = [] {
    std::vector<std::string> out;
    const auto document = nlohmann::json::parse(openapi_document());
    for (const auto& [path, item] : document.at("paths").items()) out.push_back(path);
    return out;
  }();
  return paths;
}

std::string route_template(std::string_view path) {
  const std::vector<std::string_view> parts = segments(path);
  const std::string* best = nullptr;
  int best_literals = -1;
  for (const std::string& candidate : documented_paths()) {
    const std::vector<std::string_view> pattern = segments(candidate);
    if (pattern.size() != parts.size()) continue;
    int literals = 0;
    bool match = true;
    for (size_t i = 0; i < parts.size() && match; ++i) {
      if (is_parameter(pattern[i])) {
        match = !parts[i].empty();
      } else {
        match = pattern[i] == parts[i];
        ++literals;
      }
    }
    if (match && literals > best_literals) {
      best = &candidate;
      best_literals = literals;
    }
  }
  return best ? *best : "other";
}

}  // namespace tiller::server
