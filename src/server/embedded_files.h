// The web page's files (src/server/page), built into the binary by
// cmake/embed_files.cmake: the generated source defines embedded_files().
#pragma once

#include <span>
#include <string_view>

namespace tiller::server {

struct EmbeddedFile {
  std::string_view name;   // the path under src/server/page, e.g. "index.html"
  std::string_view bytes;  // the file's bytes, exactly
};

std::span<const EmbeddedFile> embedded_files();

}  // namespace tiller::server
