#include "server/page.h"

#include <httplib.h>

#include <array>
#include <string>
#include <utility>

#include "server/embedded_files.h"

namespace tiller::server {
namespace {

const EmbeddedFile* find_file(std::string_view name) {
  for (const EmbeddedFile& file : embedded_files()) {
    if (file.name == name) return &file;
  }
  return nullptr;
}

void send_file(httplib::Response& res, const EmbeddedFile& file) {
  // A new build may change the page: the browser asks again each time (the
  // files are small and local).
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Content-Type-Options", "nosniff");
  // Everything the page loads is its own: no inline script, nothing remote.
  res.set_header("Content-Security-Policy", "default-src 'self'; img-src 'self' data:");
  res.set_content(std::string(file.bytes), std::string(page_content_type(file.name)));
}

}  // namespace

std::string_view page_content_type(std::string_view name) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 6> kTypes{{
      {".html", "text/html; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},  // what module scripts must be served as
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".json", "application/json"},
  }};
  for (const auto& [extension, type] : kTypes) {
    if (name.size() > extension.size() && name.ends_with(extension)) return type;
  }
  return "application/octet-stream";
}

void register_page(httplib::Server& http) {
  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    if (const EmbeddedFile* index = find_file("index.html")) return send_file(res, *index);
    res.status = 404;
  });
  // An unknown name leaves the status at 404 with no body: the server's error
  // handler answers it with an error object, as for any unknown path.
  http.Get(R"(/assets/([A-Za-z0-9_.-]+))", [](const httplib::Request& req, httplib::Response& res) {
    if (const EmbeddedFile* file = find_file(req.matches[1].str())) return send_file(res, *file);
    res.status = 404;
  });
}

}  // namespace tiller::server
