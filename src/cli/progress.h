// A one-line progress bar on stderr, redrawn in place, shown only when stderr is
// a terminal (so logs and tests see nothing of it).
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

namespace tiller::cli {

class ProgressBar {
 public:
  // `label` starts the line; `unit` names what `done` counts ("pairs").
  ProgressBar(std::string label, std::string unit, size_t total);
  // Redraws at most ten times a second (and always at the end). With `tokens`
  // (tokens processed so far) the line also shows tokens/s.
  void update(size_t done, std::optional<size_t> tokens = std::nullopt);
  // Ends the line, if one was drawn.
  void finish();

 private:
  std::string label_, unit_;
  size_t total_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace tiller::cli
