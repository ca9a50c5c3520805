#include "eval/packed_steering.h"

#include <set>
#include <utility>

#include "common/fail.h"

namespace tiller {

PackedSteering::PackedSteering(Session& session, std::vector<std::shared_ptr<const Steering>> steerings,
                               std::vector<PromptLayout> layouts)
    : session_(session), steerings_(std::move(steerings)), layouts_(std::move(layouts)) {
  if (steerings_.size() != layouts_.size()) {
    fail("packed steering: {} steerings but {} layouts", steerings_.size(), layouts_.size());
  }
  std::set<std::pair<int, int>> points;
  for (size_t s = 0; s < steerings_.size(); ++s) {
    if (steerings_[s] == nullptr) continue;
    steerings_[s]->check_model(session.model().config(), "the model");
    steerings_[s]->check_prompt(layouts_[s]);
    for (const Intervention& v : steerings_[s]->interventions()) points.insert({v.layer, static_cast<int>(v.point)});
  }
  for (const auto& [layer, point] : points) {
    handles_.push_back(
        session.add_hook(layer, static_cast<HookPoint>(point), [this](const HookRows& rows) { apply(rows); }));
  }
}

PackedSteering::~PackedSteering() {
  for (const HookHandle handle : handles_) session_.remove_hook(handle);
}

void PackedSteering::apply(const HookRows& rows) const {
  if (rows.sequences == nullptr) fail("packed steering outside a packed pass");
  // A packed sequence's rows are consecutive: each run goes to its own steering.
  for (int64_t begin = 0; begin < rows.n_rows;) {
    const int32_t seq = rows.sequences[begin];
    int64_t end = begin + 1;
    while (end < rows.n_rows && rows.sequences[end] == seq) ++end;
    if (seq < 0 || static_cast<size_t>(seq) >= steerings_.size()) {
      fail("packed steering: the pass has a sequence {} beyond the {} given", seq, steerings_.size());
    }
    const auto& steering = steerings_[static_cast<size_t>(seq)];
    if (steering != nullptr) {
      HookRows part = rows;
      part.data = rows.data + begin * rows.width;
      part.n_rows = end - begin;
      part.positions = rows.positions + begin;
      part.sequences = rows.sequences + begin;
      part.first_position = rows.first_position + static_cast<int>(begin);
      steering->apply(part, layouts_[static_cast<size_t>(seq)]);
    }
    begin = end;
  }
}

}  // namespace tiller
