// Tiller's one error type. Its message is a single line that already names the
// context (file, key, tensor, offset); the CLI prints it as it is and exits non-zero.
#pragma once

#include <stdexcept>

namespace tiller {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace tiller
