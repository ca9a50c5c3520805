// Decoding the base64 arrays the golden files store (RFC 4648, with padding).
#pragma once

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <vector>

namespace tiller::testing {

inline std::vector<uint8_t> base64_decode(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::vector<uint8_t> out;
  out.reserve(text.size() / 4 * 3);
  uint32_t bits = 0;
  int n_bits = 0;
  for (const char c : text) {
    if (c == '=') break;
    const int v = value(c);
    if (v < 0) throw std::runtime_error("invalid base64");
    bits = (bits << 6) | static_cast<uint32_t>(v);
    n_bits += 6;
    if (n_bits >= 8) {
      n_bits -= 8;
      out.push_back(static_cast<uint8_t>((bits >> n_bits) & 0xff));
    }
  }
  return out;
}

// A little-endian array of T (the golden files are written little-endian, as is x86).
template <typename T>
std::vector<T> base64_array(std::string_view text) {
  const std::vector<uint8_t> bytes = base64_decode(text);
  if (bytes.size() % sizeof(T) != 0) throw std::runtime_error("base64 array of the wrong length");
  std::vector<T> values(bytes.size() / sizeof(T));
  std::memcpy(values.data(), bytes.data(), bytes.size());
  return values;
}

}  // namespace tiller::testing
