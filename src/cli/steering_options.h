// The steering flags `run`, `logits`, `dump` and `bench` share, bound to the
// library's SteeringFlags (tiller/steering_spec.h says what they mean).
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <vector>

#include "tiller/model.h"
#include "tiller/steering_spec.h"

namespace tiller::cli {

using tiller::SteeringFlags;

void add_steering_options(CLI::App* command, SteeringFlags& flags);

// The Steering the flags ask for, compiled for `model` (ActAdd runs the model over
// its prompt pairs on `engine`), or null when they ask for none.
std::shared_ptr<const Steering> build_steering(const SteeringFlags& flags, const std::shared_ptr<const Model>& model,
                                               const std::shared_ptr<Engine>& engine);

}  // namespace tiller::cli
