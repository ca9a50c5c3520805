// The 6-bit (scale, min) pairs of a Q4_K / Q5_K block, shared by the row kernels.
#pragma once

#include <cstdint>

namespace tiller::ops {

// The eight pairs packed in 12 bytes: pairs 0..3 in the low 6 bits of bytes 0..3
// (scales) and 4..7 (mins); pairs 4..7 in the nibbles of bytes 8..11, with their
// top 2 bits in the top bits of bytes 0..7. As the dequantizer reads them.
inline void unpack_k_scales(const uint8_t* s, uint8_t* scale, uint8_t* min) {
  for (int j = 0; j < 4; ++j) {
    scale[j] = static_cast<uint8_t>(s[j] & 63);
    min[j] = static_cast<uint8_t>(s[j + 4] & 63);
  }
  for (int j = 4; j < 8; ++j) {
    scale[j] = static_cast<uint8_t>((s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4));
    min[j] = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

}  // namespace tiller::ops
