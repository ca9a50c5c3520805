// Stops a text stream at the first of a set of strings, without ever printing
// the part of the text that might turn out to be the start of one.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tiller {

class StopStringFilter {
 public:
  explicit StopStringFilter(std::vector<std::string> stops);

  // Takes the next piece of text and returns what can be shown now: everything
  // that can no longer be part of a stop string. After a match, returns the text
  // before it and stopped() becomes true; later pieces are ignored.
  std::string push(std::string_view piece);
  // The held-back text, at the end of the stream (empty after a match).
  std::string finish();
  bool stopped() const { return stopped_; }
  // The stop string that matched, or empty.
  const std::string& matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  std::string matched_;
  bool stopped_ = false;
};

}  // namespace tiller
