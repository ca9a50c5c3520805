#include "tiller/stop_strings.h"

#include <algorithm>

#include "common/fail.h"

namespace tiller {

StopStringFilter::StopStringFilter(std::vector<std::string> stops) : stops_(std::move(stops)) {
  for (const auto& stop : stops_) {
    if (stop.empty()) fail("a stop string must not be empty");
  }
}

std::string StopStringFilter::push(std::string_view piece) {
  if (stopped_) return {};
  pending_.append(piece);
  // The earliest complete match wins, whichever string it is.
  size_t first = std::string::npos;
  for (const auto& stop : stops_) {
    const size_t at = pending_.find(stop);
    if (at < first) {
      first = at;
      matched_ = stop;
    }
  }
  if (first != std::string::npos) {
    stopped_ = true;
    std::string before = pending_.substr(0, first);
    pending_.clear();
    return before;
  }
  // Hold back the longest tail that is a proper prefix of some stop string.
  size_t hold = 0;
  for (const auto& stop : stops_) {
    for (size_t n = std::min(stop.size() - 1, pending_.size()); n > hold; --n) {
      if (std::string_view(pending_).substr(pending_.size() - n) == std::string_view(stop).substr(0, n)) {
        hold = n;
        break;
      }
    }
  }
  std::string ready = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return ready;
}

std::string StopStringFilter::finish() {
  std::string rest;
  rest.swap(pending_);
  return rest;
}

}  // namespace tiller
