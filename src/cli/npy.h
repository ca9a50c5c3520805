// Writing NumPy .npy files (format 1.0, float32, C order).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace tiller::cli {

void write_npy_header(std::FILE* out, const std::vector<int64_t>& shape);
// A whole float32 array to `path`; tiller::Error on failure.
void write_npy(const std::string& path, const std::vector<int64_t>& shape, const std::vector<float>& values);

}  // namespace tiller::cli
