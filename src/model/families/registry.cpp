#include "model/families/registry.h"

#include <array>

#include <fmt/ranges.h>

#include "common/fail.h"
#include "tiller/printable.h"

namespace tiller {
namespace {

constexpr std::array<const Family*, 7> kFamilies{&kLlamaFamily, &kQwen2Family, &kQwen3Family, &kPhi3Family,
                                                 &kGemma2Family, &kGemma3Family, &kGpt2Family};

}  // namespace

std::span<const Family* const> all_families() { return kFamilies; }

const Family* find_family(std::string_view architecture) {
  for (const Family* family : kFamilies) {
    if (family->name == architecture) return family;
  }
  return nullptr;
}

std::optional<FamilyInfo> family_info(std::string_view architecture) {
  const Family* family = find_family(architecture);
  if (family == nullptr) return std::nullopt;
  return FamilyInfo{std::string(family->name), std::string(family->models)};
}

std::vector<std::string> supported_families() {
  std::vector<std::string> names;
  for (const Family* family : kFamilies) names.emplace_back(family->name);
  return names;
}

const Family& family_of(const ModelConfig& config, const std::string& file_name) {
  if (const Family* family = find_family(config.architecture)) return *family;
  fail("{}: architecture '{}' is not supported (supported: {})", file_name, printable(config.architecture),
       fmt::join(supported_families(), ", "));
}

}  // namespace tiller
