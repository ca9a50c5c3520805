#include "cli/models_dir.h"

#include <cstdlib>

#include "cli/models_dir.h"
#include "tiller/model_paths.h"

namespace tiller {

std::filesystem::path default_models_dir() {
  if (const char* dir = std::getenv("TILLER_MODELS"); dir != nullptr && *dir != '\0') return dir;
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home != nullptr ? home : ".") / ".cache" / "tiller" / "models";
}

std::string resolve_model(std::string_view name_or_path) {
  return resolve_model_path(name_or_path, default_models_dir());
}

}  // namespace tiller
