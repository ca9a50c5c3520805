// A JSON object's keys against the fields a format knows: what the spec readers
// (steering, eval and sweep JSON) need for their "unknown field" errors.
#pragma once

#include <algorithm>
#include <initializer_list>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace tiller {

// The first key of `object` (an object) that is not in `known`; null when every key is known.
inline const std::string* first_unknown_key(const nlohmann::json& object,
                                            std::initializer_list<std::string_view> known) {
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (std::find(known.begin(), known.end(), it.key()) == known.end()) return &it.key();
  }
  return nullptr;
}

// "a, b, c": the known fields, for an error message.
inline std::string joined_names(std::initializer_list<std::string_view> names) {
  std::string out;
  for (const std::string_view name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

}  // namespace tiller
