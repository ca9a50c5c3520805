// SHA-256 (FIPS 180-4), for comparing large goldens by digest in tests.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace tiller::testing {

class Sha256 {
 public:
  Sha256();
  void update(std::string_view bytes);
  std::string hex_digest();  // finishes the hash

 private:
  void compress(const uint8_t* block);
  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

// The hex SHA-256 of a file's bytes; throws when it cannot be read.
std::string file_sha256(const std::string& path);

}  // namespace tiller::testing
