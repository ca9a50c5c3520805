// The web page of `tiller serve` (docs/server.md, "The web page"): GET / is its
// index.html and GET /assets/<name> its other files, all built into the binary
// (embedded_files.h). They need no API key: the page asks for one itself when
// the API wants it.
#pragma once

#include <string_view>

namespace httplib {
class Server;
}

namespace tiller::server {

// "text/html; charset=utf-8" and so on, by the name's extension;
// application/octet-stream for an extension the page does not use.
std::string_view page_content_type(std::string_view name);

void register_page(httplib::Server& http);

}  // namespace tiller::server
