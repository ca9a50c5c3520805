// How a model name or path becomes a file. The library reads no environment: the
// caller says which folder holds the models (the CLI's default is
// ${TILLER_MODELS:-$HOME/.cache/tiller/models}, where scripts/fetch-models.sh puts them).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace tiller {

inline constexpr std::string_view kDefaultModel = "smollm2-135m-instruct";

// The models scripts/fetch-models.sh knows how to fetch.
const std::vector<std::string_view>& fetchable_models();

// A path to an existing file is used as it is; otherwise the argument names a
// model in models_dir (NAME or NAME.gguf). Throws tiller::Error saying how to
// fetch a known model that is missing.
std::string resolve_model_path(std::string_view name_or_path, const std::filesystem::path& models_dir);

}  // namespace tiller
