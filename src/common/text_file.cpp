#include "common/text_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "common/fail.h"

namespace tiller {

std::string read_text_file(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::exists(path, error)) fail("{}: no such file", path);
  if (!std::filesystem::is_regular_file(path, error)) fail("{}: not a regular file", path);
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open: {}", path, std::strerror(errno));
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) fail("{}: read failed", path);
  return text;
}

}  // namespace tiller
