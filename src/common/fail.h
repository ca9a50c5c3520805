// Throwing a tiller::Error with a message formatted by fmt. Private to the
// project (the library, the CLI and the tests): the public headers stay free of fmt.
#pragma once

#include <fmt/format.h>

#include <utility>

#include "tiller/error.h"

namespace tiller {

template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace tiller
