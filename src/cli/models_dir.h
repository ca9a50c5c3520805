// The command line's model folder: where scripts/fetch-models.sh puts the models,
// and names on the command line resolved in it. The library itself reads no
// environment (tiller::resolve_model_path takes the folder).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace tiller {

// ${TILLER_MODELS:-$HOME/.cache/tiller/models}
std::filesystem::path default_models_dir();

// resolve_model_path(name_or_path, default_models_dir())
std::string resolve_model(std::string_view name_or_path);

}  // namespace tiller
