#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

#include <fmt/format.h>

#include "tiller/printable.h"
#include "common/fail.h"
#include "tiller/model.h"
#include "tiller/steer.h"

namespace tiller {
namespace {

int parse_position(std::string_view text, std::string_view whole) {
  int value = -1;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < 0) {
    fail("position selector '{}': '{}' is not a position (0 or more)", printable(whole), printable(text));
  }
  return value;
}

double dot(const float* a, const float* b, int64_t n) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += double(a[i]) * b[i];
  return sum;
}

}  // namespace

PositionSelector parse_position_selector(std::string_view text) {
  if (text == "all") return PositionSelector::all();
  if (text == "prompt") return PositionSelector::prompt();
  if (text == "generated") return PositionSelector::generated();
  if (text == "front") return PositionSelector::front();
  if (text.starts_with("front:")) {
    const int count = parse_position(text.substr(6), text);
    if (count == 0) fail("position selector '{}': front needs at least one position", printable(text));
    return PositionSelector::front(count);
  }
  if (const auto colon = text.find(':'); colon != std::string_view::npos) {
    const int begin = parse_position(text.substr(0, colon), text);
    const int end = parse_position(text.substr(colon + 1), text);
    if (end <= begin) fail("position selector '{}': the range is empty (B is exclusive)", printable(text));
    return PositionSelector::range(begin, end);
  }
  fail("position selector '{}' is none of all, prompt, generated, A:B, front, front:K", printable(text));
}

std::string describe(const PositionSelector& selector) {
  switch (selector.kind) {
    case PositionSelector::Kind::All: return "all";
    case PositionSelector::Kind::Prompt: return "prompt";
    case PositionSelector::Kind::Generated: return "generated";
    case PositionSelector::Kind::Range: return fmt::format("{}:{}", selector.begin, selector.end);
    case PositionSelector::Kind::Front: return selector.end > 0 ? fmt::format("front:{}", selector.end) : "front";
  }
  return "unknown";
}

std::string_view intervention_kind_name(InterventionKind kind) {
  switch (kind) {
    case InterventionKind::Add: return "add";
    case InterventionKind::Ablate: return "ablate";
    case InterventionKind::Clamp: return "clamp";
  }
  return "unknown";
}

Steering::Steering(int64_t width) : width_(width) {
  if (width <= 0) fail("a steering needs a positive stream width, not {}", width);
}

void Steering::add(Intervention v) {
  const std::string where = hook_name(v.layer, v.point);
  const std::string from = v.source.empty() ? std::string() : fmt::format("{}: ", v.source);
  if (v.layer < 0) fail("{}{}: block indices start at 0", from, where);
  if (v.n_rows < 1 || static_cast<int64_t>(v.vectors.size()) != v.n_rows * width_) {
    fail("{}{}: the vector has {} values; the model's stream has width {}", from, where,
         v.n_rows > 1 ? v.vectors.size() / static_cast<size_t>(v.n_rows) : v.vectors.size(), width_);
  }
  if (v.n_rows > 1 && (v.kind != InterventionKind::Add || v.where.kind != PositionSelector::Kind::Front)) {
    fail("{}{}: a tensor of one row per position needs add and a front selector", from, where);
  }
  if (!std::all_of(v.vectors.begin(), v.vectors.end(), [](float x) { return std::isfinite(x); }) ||
      !std::isfinite(v.coefficient)) {
    fail("{}{}: the vector or its coefficient is not finite", from, where);
  }
  if (v.kind != InterventionKind::Add) {
    // Ablation and clamping use the unit direction.
    const double norm = std::sqrt(dot(v.vectors.data(), v.vectors.data(), width_));
    if (norm == 0) fail("{}{}: cannot {} along a zero vector", from, where, intervention_kind_name(v.kind));
    for (float& x : v.vectors) x = static_cast<float>(x / norm);
  }
  interventions_.push_back(std::move(v));
}

void Steering::check_prompt(const PromptLayout& layout) const {
  for (const Intervention& v : interventions_) {
    if (v.where.kind != PositionSelector::Kind::Front) continue;
    const int anchor = v.align == FrontAlign::Context ? layout.begin : layout.anchor;
    const int64_t need = v.where.end > 0 ? v.where.end : v.n_rows;
    const int64_t have = layout.end - anchor;
    if (have < need) {
      fail("{}{} rows are added from position {}, but the prompt has only {} tokens from there: make it at least "
           "{} tokens longer", v.source.empty() ? "" : v.source + ": ", need, anchor, std::max<int64_t>(have, 0),
           need - std::max<int64_t>(have, 0));
    }
  }
}

void Steering::check_model(const ModelConfig& config, std::string_view model_name) const {
  if (config.n_embd != width_) {
    fail("the steering vectors have width {}, but {} has a residual stream of width {}", width_, model_name,
         config.n_embd);
  }
  for (const Intervention& v : interventions_) {
    if (v.layer >= config.n_layer) {
      fail("{}{}: the model has blocks 0 to {}", v.source.empty() ? "" : v.source + ": ",
           hook_name(v.layer, v.point), config.n_layer - 1);
    }
  }
}

SteeringBinding::SteeringBinding(std::shared_ptr<const Steering> steering, const PromptLayout& layout)
    : steering_(std::move(steering)) {
  if (steering_ == nullptr) fail("a steering binding needs a steering");
  set_prompt(layout);
}

SteeringBinding::SteeringBinding(std::shared_ptr<const Steering> steering, Session& session,
                                 const PromptLayout& layout, int seq)
    : SteeringBinding(std::move(steering), layout) {
  attach(session, seq);
}

SteeringBinding::~SteeringBinding() { detach(); }

void SteeringBinding::set_prompt(const PromptLayout& layout) {
  steering_->check_prompt(layout);
  layout_ = layout;
}

void SteeringBinding::attach(Session& session, int seq) {
  steering_->check_model(session.model().config(), session.model().file().name());
  detach();
  std::set<std::pair<int, HookPoint>> points;
  for (const Intervention& v : steering_->interventions()) points.insert({v.layer, v.point});
  session_ = &session;
  for (const auto& [layer, point] : points) {
    handles_.push_back(
        session.add_hook(layer, point, [this](const HookRows& rows) { steering_->apply(rows, layout_); }, seq));
  }
}

void SteeringBinding::detach() {
  if (session_ != nullptr) {
    for (const HookHandle handle : handles_) session_->remove_hook(handle);
  }
  handles_.clear();
  session_ = nullptr;
}

namespace {

// Whether the intervention touches `position`, and which of its rows it adds there.
bool selects(const Intervention& v, const PromptLayout& layout, int position, int64_t& row) {
  row = 0;
  const PositionSelector& s = v.where;
  switch (s.kind) {
    case PositionSelector::Kind::All: return true;
    case PositionSelector::Kind::Prompt: return position >= layout.begin && position < layout.end;
    case PositionSelector::Kind::Generated: return position >= layout.end;
    case PositionSelector::Kind::Range: return position >= s.begin && position < s.end;
    case PositionSelector::Kind::Front: {
      const int anchor = v.align == FrontAlign::Context ? layout.begin : layout.anchor;
      const int64_t index = position - anchor;
      const int64_t count = s.end > 0 ? s.end : v.n_rows;
      if (index < 0 || index >= count || (v.n_rows > 1 && index >= v.n_rows)) return false;
      if (v.n_rows > 1) row = index;
      return true;
    }
  }
  return false;
}

}  // namespace

void Steering::apply_one(const Intervention& v, const HookRows& rows, const PromptLayout& layout) const {
  for (int64_t r = 0; r < rows.n_rows; ++r) {
    int64_t row = 0;
    if (!selects(v, layout, rows.position(r), row)) continue;
    float* h = rows.data + r * rows.width;
    const float* u = v.vectors.data() + row * width_;
    switch (v.kind) {
      case InterventionKind::Add:
        for (int64_t i = 0; i < width_; ++i) h[i] += v.coefficient * u[i];
        break;
      case InterventionKind::Ablate: {
        const float along = static_cast<float>(v.coefficient * dot(h, u, width_));
        for (int64_t i = 0; i < width_; ++i) h[i] -= along * u[i];
        break;
      }
      case InterventionKind::Clamp: {
        const float change = static_cast<float>(v.coefficient - dot(h, u, width_));
        for (int64_t i = 0; i < width_; ++i) h[i] += change * u[i];
        break;
      }
    }
  }
}

void Steering::apply(const HookRows& rows, const PromptLayout& layout) const {
  if (rows.width != width_) fail("{}: the stream has width {}, the steering {}", hook_name(rows.layer, rows.point),
                                 rows.width, width_);
  for (const InterventionKind kind : {InterventionKind::Add, InterventionKind::Ablate, InterventionKind::Clamp}) {
    for (const Intervention& v : interventions_) {
      if (v.kind == kind && v.layer == rows.layer && v.point == rows.point) apply_one(v, rows, layout);
    }
  }
}

}  // namespace tiller
