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

}  // namespace tiller
