// Interventions on the residual stream (add, ablate, clamp), the positions they
// touch, and a Steering that applies a set of them to a Session through its
// hook points. Steering knows hook points, not architectures.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tiller/hooks.h"
#include "tiller/model_config.h"

namespace tiller {

class Session;

// Where the user's prompt lies in the context, given to a steering binding before
// the prompt runs. Positions before `end` are prompt positions, those from `end` on
// are generated. Row 0 of a front-aligned tensor goes to position `begin` (aligned
// to the context: ActAdd's paper) or `anchor` (aligned to the user's message: in a
// chat, the position before the user's first token when the model adds BOS, so that
// the tensor's BOS row sits before the message; for a plain prompt, the same as begin).
struct PromptLayout {
  int begin = 0;
  int end = 0;
  int anchor = 0;
};

// Which absolute positions (0 = the first token of the context) an intervention touches.
struct PositionSelector {
  enum class Kind { All, Prompt, Generated, Range, Front };
  Kind kind = Kind::All;
  int begin = 0, end = 0;  // Range: positions [begin, end); Front: rows [0, end) of the tensor

  static PositionSelector all() { return {}; }
  static PositionSelector prompt() { return {Kind::Prompt}; }
  static PositionSelector generated() { return {Kind::Generated}; }
  static PositionSelector range(int begin, int end) { return {Kind::Range, begin, end}; }
  // The first `count` positions from the layout's anchor (count 0: as many as the tensor has rows).
  static PositionSelector front(int count = 0) { return {Kind::Front, 0, count}; }
  bool operator==(const PositionSelector&) const = default;
};
// Where row 0 of a front-aligned tensor goes (PromptLayout): Auto is the user's
// message in a chat and the context's start otherwise, which is where User puts it.
enum class FrontAlign { Auto, Context, User };
// "all", "prompt", "generated", "A:B" (absolute, B exclusive), "front" or "front:K".
PositionSelector parse_position_selector(std::string_view text);
std::string describe(const PositionSelector& selector);

enum class InterventionKind {
  Add,     // h += c v
  Ablate,  // h -= c (h . u) u, u = v / |v|  (c = 1 removes the direction)
  Clamp,   // h += (c - h . u) u: the component along u becomes c
};
std::string_view intervention_kind_name(InterventionKind kind);

struct Intervention {
  InterventionKind kind = InterventionKind::Add;
  int layer = 0;
  HookPoint point = HookPoint::ResidPost;
  PositionSelector where;
  // n_rows rows of the stream's width. One row: the same vector at every selected
  // position. Several (Add only, with a Front selector): row i at position anchor + i.
  std::vector<float> vectors;
  int64_t n_rows = 1;
  float coefficient = 1.0f;
  FrontAlign align = FrontAlign::Auto;  // Front selectors only
  std::string source;  // for messages: the file or the flag it came from
};

// A set of interventions. At one hook point they apply in a fixed order: additions
// first (in the order added), then ablations, then clamps, so an ablation also
// removes what an addition put along its direction, and a clamp has the last word.
// Built with add(), then shared read-only (std::shared_ptr<const Steering>) by any
// number of sessions, each through its own SteeringBinding.
class Steering {
 public:
  explicit Steering(int64_t width);
  int64_t width() const { return width_; }

  // Checks the width, the row count and the selector; throws tiller::Error.
  void add(Intervention intervention);
  const std::vector<Intervention>& interventions() const { return interventions_; }
  bool empty() const { return interventions_.empty(); }

  // Throws tiller::Error when the prompt, from its anchor on, is shorter than a
  // front-aligned tensor (ActAdd's rule: the tensor must fit in the prompt).
  void check_prompt(const PromptLayout& layout) const;
  // Throws tiller::Error when the width or a block index does not fit the model.
  void check_model(const ModelConfig& config, std::string_view model_name) const;

  // The interventions at rows.layer / rows.point, applied in place (what a binding's hooks call).
  void apply(const HookRows& rows, const PromptLayout& layout) const;

 private:
  void apply_one(const Intervention& intervention, const HookRows& rows, const PromptLayout& layout) const;
  int64_t width_;
  std::vector<Intervention> interventions_;
};

// One session's use of a shared Steering: the prompt layout its positions are
// relative to, and the hooks it registered on the one session it is attached to.
// Detaches on destruction, so it must not outlive that session (or detach first).
class SteeringBinding {
 public:
  explicit SteeringBinding(std::shared_ptr<const Steering> steering, const PromptLayout& layout = {});
  // seq: steer only that sequence of the session (Session::n_seq); -1: every row.
  SteeringBinding(std::shared_ptr<const Steering> steering, Session& session, const PromptLayout& layout = {},
                  int seq = -1);
  SteeringBinding(const SteeringBinding&) = delete;
  SteeringBinding& operator=(const SteeringBinding&) = delete;
  ~SteeringBinding();

  // Checked by Steering::check_prompt; takes effect from the next forward pass.
  void set_prompt(const PromptLayout& layout);
  const PromptLayout& prompt() const { return layout_; }

  // Registers one hook per (layer, point) that has interventions, after checking
  // the steering against the session's model; first detaches from the session it
  // was attached to, if any (only its own hooks are removed there).
  void attach(Session& session, int seq = -1);
  void detach();
  bool attached() const { return session_ != nullptr; }
  const Steering& steering() const { return *steering_; }
  const std::shared_ptr<const Steering>& shared() const { return steering_; }

 private:
  std::shared_ptr<const Steering> steering_;
  PromptLayout layout_;
  Session* session_ = nullptr;
  std::vector<HookHandle> handles_;
};

}  // namespace tiller
