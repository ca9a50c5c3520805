// One steering per packed sequence of a packed pass (Session::decode_packed and
// decode_packed_from): a sweep runs K coefficient variants of a text as K packed
// copies, each steered with its own Steering and prompt layout. The rows of each
// sequence go through that sequence's Steering::apply, so the arithmetic is the
// library's own, as a SteeringBinding would do it for the sequence alone.
#pragma once

#include <memory>
#include <vector>

#include "tiller/model.h"
#include "tiller/steer.h"

namespace tiller {

class PackedSteering {
 public:
  // steerings[s] (null: none) and layouts[s] for packed sequence s. Registers one
  // hook per (block, point) any of them uses; removed on destruction.
  PackedSteering(Session& session, std::vector<std::shared_ptr<const Steering>> steerings,
                 std::vector<PromptLayout> layouts);
  PackedSteering(const PackedSteering&) = delete;
  PackedSteering& operator=(const PackedSteering&) = delete;
  ~PackedSteering();

 private:
  void apply(const HookRows& rows) const;
  Session& session_;
  std::vector<std::shared_ptr<const Steering>> steerings_;
  std::vector<PromptLayout> layouts_;
  std::vector<HookHandle> handles_;
};

}  // namespace tiller
