#include "tiller/model_paths.h"

#include <algorithm>

#include "common/fail.h"

namespace tiller {

const std::vector<std::string_view>& fetchable_models() {
  static const std::vector<std::string_view> names = {"smollm2-135m-instruct", "gemma-3-270m"};
  return names;
}

std::string resolve_model_path(std::string_view name_or_path, const std::filesystem::path& models_dir) {
  namespace fs = std::filesystem;
  const std::string argument(name_or_path);
  std::error_code error;
  if (fs::is_regular_file(argument, error)) return argument;

  std::string name = argument;
  if (name.ends_with(".gguf")) name.resize(name.size() - 5);
  const bool looks_like_name = name.find('/') == std::string::npos && !name.empty();
  if (looks_like_name) {
    const std::string cached = (models_dir / (name + ".gguf")).string();
    if (fs::is_regular_file(cached, error)) return cached;
    const auto& known = fetchable_models();
    if (std::find(known.begin(), known.end(), name) != known.end()) {
      fail("model '{}' is not in {}; fetch it with: scripts/fetch-models.sh {}", name, models_dir.string(), name);
    }
  }
  if (fs::exists(argument, error)) fail("{}: not a regular file", argument);
  fail("{}: no such file, and no model of that name in {} (fetchable: {})", argument, models_dir.string(),
       fmt::join(fetchable_models(), ", "));
}

}  // namespace tiller
