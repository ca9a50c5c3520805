#include <charconv>

#include <fmt/format.h>

#include "tiller/printable.h"
#include "common/fail.h"
#include "tiller/hooks.h"

namespace tiller {

std::string_view hook_point_name(HookPoint point) {
  switch (point) {
    case HookPoint::ResidPre: return "hook_resid_pre";
    case HookPoint::AttnOut: return "hook_attn_out";
    case HookPoint::ResidMid: return "hook_resid_mid";
    case HookPoint::MlpOut: return "hook_mlp_out";
    case HookPoint::ResidPost: return "hook_resid_post";
  }
  return "unknown";
}

HookPoint parse_hook_point(std::string_view name) {
  for (const HookPoint point : kHookPoints) {
    const std::string_view full = hook_point_name(point);
    if (name == full || name == full.substr(5)) return point;
  }
  fail("unknown hook point '{}' (known: hook_resid_pre, hook_attn_out, hook_resid_mid, hook_mlp_out, "
       "hook_resid_post)", printable(name));
}

std::string hook_name(int layer, HookPoint point) { return fmt::format("blocks.{}.{}", layer, hook_point_name(point)); }

std::vector<HookLocation> parse_hook_request(std::string_view request, int64_t n_layer) {
  std::vector<HookLocation> found;
  auto add_point = [&](std::string_view point_name, int layer) {
    for (const HookPoint point : kHookPoints) {
      if (point_name == "*" || hook_point_name(point) == point_name) found.push_back({layer, point});
    }
  };
  if (request == "all") {
    for (int layer = 0; layer < n_layer; ++layer) add_point("*", layer);
    return found;
  }
  const auto first_dot = request.find('.');
  const auto second_dot = first_dot == std::string_view::npos ? first_dot : request.find('.', first_dot + 1);
  if (!request.starts_with("blocks.") || second_dot == std::string_view::npos) {
    fail("hook '{}' is not blocks.L.hook_NAME, blocks.*.hook_NAME or all", printable(request));
  }
  const std::string_view layer_text = request.substr(first_dot + 1, second_dot - first_dot - 1);
  const std::string_view point = request.substr(second_dot + 1);
  if (layer_text == "*") {
    for (int layer = 0; layer < n_layer; ++layer) add_point(point, layer);
  } else {
    int layer = -1;
    const auto [end, error] = std::from_chars(layer_text.data(), layer_text.data() + layer_text.size(), layer);
    if (error != std::errc() || end != layer_text.data() + layer_text.size() || layer < 0 || layer >= n_layer ||
        (layer_text.size() > 1 && layer_text.front() == '0')) {
      fail("hook '{}': block {} does not exist (the model has blocks 0 to {})", printable(request),
           printable(layer_text), n_layer - 1);
    }
    add_point(point, layer);
  }
  if (found.empty()) {
    fail("hook '{}': unknown point '{}' (known: hook_resid_pre, hook_attn_out, hook_resid_mid, hook_mlp_out, "
         "hook_resid_post)", printable(request), printable(point));
  }
  return found;
}

}  // namespace tiller
