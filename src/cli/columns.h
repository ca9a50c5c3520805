// Two texts side by side in fixed-width columns, for comparing completions.
#pragma once

#include <string>

namespace tiller::cli {

// Word-wraps each text to `width` characters (code points; a longer word is cut)
// and joins the lines of the two as "left | right". Newlines in a text start new lines.
std::string side_by_side(const std::string& left, const std::string& right, size_t width);

}  // namespace tiller::cli
