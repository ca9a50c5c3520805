// Makes text from a file safe to put in a one-line message: control and
// non-ASCII bytes escaped, long text cut.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tiller {

std::string printable(std::string_view text, std::size_t max_length = 96);

}  // namespace tiller
