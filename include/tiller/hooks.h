// The named points of the residual stream where a forward pass can be read and
// written. Names follow TransformerLens: blocks.L.hook_resid_pre is the input of
// block L, hook_attn_out and hook_mlp_out what the two sub-blocks add (after any
// post-norm), hook_resid_mid the stream between them, hook_resid_post the output
// of block L (= blocks.(L+1).hook_resid_pre).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace tiller {

enum class HookPoint { ResidPre, AttnOut, ResidMid, MlpOut, ResidPost };
inline constexpr HookPoint kHookPoints[] = {HookPoint::ResidPre, HookPoint::AttnOut, HookPoint::ResidMid,
                                            HookPoint::MlpOut, HookPoint::ResidPost};
inline constexpr int kHookPointCount = 5;

std::string_view hook_point_name(HookPoint point);  // "hook_resid_pre", ...
// "hook_resid_pre" or "resid_pre" -> the point; throws tiller::Error naming the known ones.
HookPoint parse_hook_point(std::string_view name);
// "blocks.L.hook_X".
std::string hook_name(int layer, HookPoint point);

struct HookLocation {
  int layer = 0;
  HookPoint point = HookPoint::ResidPre;
  bool operator==(const HookLocation&) const = default;
};
// The hook points a request names, in block order, for a model of n_layer
// blocks: "blocks.L.hook_X", "blocks.*.hook_X" (every block) or "all" (every
// point of every block). Throws tiller::Error naming the request and what is wrong.
std::vector<HookLocation> parse_hook_request(std::string_view request, int64_t n_layer);

// The stream at one hook point during one forward pass: n_rows rows of `width`
// floats for positions first_position, first_position + 1, ... A hook may change
// them; the forward pass continues from what it leaves.
// In a packed pass (Session::decode_packed) the rows belong to several sequences,
// each starting at position 0: `positions` then gives every row's position in its
// own sequence (and first_position is the cache slot of row 0). position(r) is
// right in both cases.
struct HookRows {
  int layer;
  HookPoint point;
  float* data;
  int64_t n_rows;
  int64_t width;
  int first_position;
  const int32_t* positions = nullptr;  // packed passes only: [n_rows]
  // Packed passes only: [n_rows], the index of the packed sequence each row belongs
  // to (0 for the first of decode_packed's `lengths`), so that one hook can treat
  // packed copies of a text differently (a sweep's coefficient variants).
  const int32_t* sequences = nullptr;

  int position(int64_t row) const {
    return positions != nullptr ? positions[row] : first_position + static_cast<int>(row);
  }
};
using HookFunction = std::function<void(const HookRows& rows)>;
using HookHandle = int;

}  // namespace tiller
