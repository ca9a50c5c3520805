// Where models live and how a name on the command line becomes a file.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tiller {

inline constexpr std::string_view kDefaultModel = "smollm2-135m-instruct";

// The models scripts/fetch-models.sh knows how to fetch.
const std::vector<std::string_view>& fetchable_models();

// ${TILLER_MODELS:-$HOME/.cache/tiller/models}
std::string models_directory();

// A path to an existing file is used as it is; otherwise the argument names a
// model in the models directory (NAME or NAME.gguf). Throws tiller::Error saying
// how to fetch a known model that is missing.
std::string resolve_model(std::string_view name_or_path);

}  // namespace tiller
