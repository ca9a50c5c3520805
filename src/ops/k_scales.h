// The packed sub-block scales of the K-quants and IQ4_XS, shared by the row
// kernels. As the dequantizers in src/quant/dequantize.cpp read them.
#pragma once

#include <cstdint>
#include <cstring>

namespace tiller::ops {

// Q4_K / Q5_K: the eight 6-bit (scale, min) pairs packed in 12 bytes: pairs 0..3 in
// the low 6 bits of bytes 0..3 (scales) and 4..7 (mins); pairs 4..7 in the nibbles
// of bytes 8..11, with their top 2 bits in the top bits of bytes 0..7.
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

// unpack_k_scales in reverse: eight 6-bit scales and mins packed into 12 bytes.
inline void pack_k_scales(const uint8_t* scale, const uint8_t* min, uint8_t* s) {
  for (int j = 0; j < 4; ++j) {
    s[j] = static_cast<uint8_t>(scale[j] | (scale[j + 4] >> 4) << 6);
    s[j + 4] = static_cast<uint8_t>(min[j] | (min[j + 4] >> 4) << 6);
    s[j + 8] = static_cast<uint8_t>((scale[j + 4] & 15) | (min[j + 4] & 15) << 4);
  }
}

// The same eight scales and eight mins as unpack_k_scales, one per byte of two
// 64-bit words (scale j in byte j), from three 32-bit loads and no byte loop: each
// byte's transformation above done on four bytes at once, with masks that keep
// every shifted bit inside its own byte.
inline void unpack_k_scales_words(const uint8_t* s, uint64_t& scales, uint64_t& mins) {
  uint32_t w[3];
  std::memcpy(w, s, 12);
  const uint32_t low6 = 0x3f3f3f3fu, low4 = 0x0f0f0f0fu, bits45 = 0x30303030u;
  const uint32_t scales_low = w[0] & low6, mins_low = w[1] & low6;
  const uint32_t scales_high = (w[2] & low4) | ((w[0] >> 2) & bits45);  // (b >> 6) << 4 is (b >> 2) & 0x30
  const uint32_t mins_high = ((w[2] >> 4) & low4) | ((w[1] >> 2) & bits45);
  scales = scales_low | static_cast<uint64_t>(scales_high) << 32;
  mins = mins_low | static_cast<uint64_t>(mins_high) << 32;
}

// Q3_K: sixteen 6-bit scales in 12 bytes, stored with an offset of 32; returned
// signed (-32..31). The low four bits of scale j are a nibble of byte j % 8 (the
// low one for j < 8); the top two are bits 2(j/4), 2(j/4)+1 of byte 8 + j % 4.
inline void unpack_q3_k_scales(const uint8_t* s, int8_t* scale) {
  for (int j = 0; j < 16; ++j) {
    const int low = (s[j % 8] >> (j < 8 ? 0 : 4)) & 0x0f;
    const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    scale[j] = static_cast<int8_t>((low | (high << 4)) - 32);
  }
}

// IQ4_XS: eight 6-bit scales stored with an offset of 32; returned signed
// (-32..31). The low four bits of scale j are nibble j % 2 of scales_l[j / 2], the
// top two bits 2j, 2j+1 of the 16-bit scales_h.
inline void unpack_iq4_xs_scales(uint16_t scales_h, const uint8_t* scales_l, int8_t* scale) {
  for (int j = 0; j < 8; ++j) {
    const int low = (scales_l[j / 2] >> (4 * (j % 2))) & 0x0f;
    const int high = (scales_h >> (2 * j)) & 3;
    scale[j] = static_cast<int8_t>((low | (high << 4)) - 32);
  }
}

}  // namespace tiller::ops
