#include "cli/npy.h"

#include <fmt/format.h>

#include "common/fail.h"

namespace tiller::cli {

void write_npy_header(std::FILE* out, const std::vector<int64_t>& shape) {
  std::string dims;
  for (const int64_t extent : shape) dims += fmt::format("{}, ", extent);
  if (shape.size() > 1) dims.resize(dims.size() - 1);  // (a, b) but (a,)
  std::string header = fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}), }}", dims);
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';  // the data starts 64-byte aligned
  header += '\n';
  const auto length = static_cast<uint16_t>(header.size());
  std::fwrite("\x93NUMPY\x01\x00", 1, 8, out);
  std::fwrite(&length, 2, 1, out);
  std::fwrite(header.data(), 1, header.size(), out);
}

void write_npy(const std::string& path, const std::vector<int64_t>& shape, const std::vector<float>& values) {
  std::FILE* out = std::fopen(path.c_str(), "wb");
  if (out == nullptr) fail("{}: cannot create", path);
  write_npy_header(out, shape);
  const bool written = std::fwrite(values.data(), sizeof(float), values.size(), out) == values.size();
  if (std::fclose(out) != 0 || !written) fail("{}: write failed", path);
}

}  // namespace tiller::cli
