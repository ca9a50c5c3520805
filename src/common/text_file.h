// Reading a whole text file (a dataset, a template, a prompt file), with one-line errors.
#pragma once

#include <string>

namespace tiller {

// The bytes of a regular file; tiller::Error when it is missing, a directory or unreadable.
std::string read_text_file(const std::string& path);

}  // namespace tiller
