// The interleaved Q4_K layout; see q4_k_interleaved.h.
#include "ops/q4_k_interleaved.h"

#include <cstring>

#include "ops/block_layout.h"
#include "ops/k_scales.h"

namespace tiller::ops {
namespace {

constexpr int kNibbles = 16;  // the nibbles start after d, dmin and 12 bytes of scales

// The 256 quants (0..15) of a GGUF block in weight order: each 32 bytes hold 64
// weights, the low nibbles first.
void gguf_quants(const uint8_t* block, uint8_t* q) {
  const uint8_t* qs = block + kNibbles;
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      q[64 * c + l] = qs[32 * c + l] & 0x0f;
      q[64 * c + 32 + l] = qs[32 * c + l] >> 4;
    }
  }
}

}  // namespace

void interleave_q4_k_block(const uint8_t* gguf, uint8_t* out) {
  std::memcpy(out, gguf, 4);
  uint8_t scale[8], min[8];
  unpack_k_scales(gguf + 4, scale, min);
  for (int j = 0; j < 8; ++j) out[4 + j] = static_cast<uint8_t>(scale[j] | (min[j] >> 4) << 6);
  for (int k = 0; k < 4; ++k) out[12 + k] = static_cast<uint8_t>((min[k] & 15) | (min[k + 4] & 15) << 4);
  uint8_t q[256], vectors[256];
  gguf_quants(gguf, q);
  // Lanes of four move whole (interleaved_q4_k_quants in reverse), then vectors
  // 2h and 2h + 1 share the bytes of half h. Written for the compiler to vectorize:
  // a model's Q4_K matrices pass through here at every load.
  for (int v = 0; v < 4; ++v) {
    for (int lane = 0; lane < 16; ++lane) {
      std::memcpy(vectors + 64 * v + 4 * lane, q + 4 * interleaved_lane_source(v, lane), 4);
    }
  }
  for (int half = 0; half < 2; ++half) {
    for (int p = 0; p < 64; ++p) {
      out[kNibbles + 64 * half + p] = static_cast<uint8_t>(vectors[128 * half + p] | vectors[128 * half + 64 + p] << 4);
    }
  }
}

void interleaved_q4_k_quants(const uint8_t* block, uint8_t* q) {
  // Each vector's 64 quants in its own order, then its lanes of four moved whole.
  uint8_t vectors[256];
  for (int half = 0; half < 2; ++half) {
    const uint8_t* bytes = block + kNibbles + 64 * half;
    for (int p = 0; p < 64; ++p) {
      vectors[128 * half + p] = bytes[p] & 0x0f;
      vectors[128 * half + 64 + p] = bytes[p] >> 4;
    }
  }
  for (int v = 0; v < 4; ++v) {
    for (int lane = 0; lane < 16; ++lane) {
      std::memcpy(q + 4 * interleaved_lane_source(v, lane), vectors + 64 * v + 4 * lane, 4);
    }
  }
}

void interleaved_q4_k_scales(const uint8_t* block, uint8_t* scale, uint8_t* min) {
  for (int j = 0; j < 8; ++j) {
    const uint8_t low = block[12 + j % 4] >> (j < 4 ? 0 : 4) & 15;
    scale[j] = block[4 + j] & 63;
    min[j] = static_cast<uint8_t>(low | (block[4 + j] >> 6) << 4);
  }
}

void deinterleave_q4_k_block(const uint8_t* interleaved, uint8_t* out) {
  std::memcpy(out, interleaved, 4);
  uint8_t scale[8], min[8];
  interleaved_q4_k_scales(interleaved, scale, min);
  pack_k_scales(scale, min, out + 4);
  uint8_t q[256];
  interleaved_q4_k_quants(interleaved, q);
  uint8_t* qs = out + kNibbles;
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) qs[32 * c + l] = static_cast<uint8_t>(q[64 * c + l] | q[64 * c + 32 + l] << 4);
  }
}

void interleave_q4_k_blocks(uint8_t* blocks, uint64_t n_blocks) {
  uint8_t block[kQ4_KBytes];
  for (uint64_t b = 0; b < n_blocks; ++b) {
    uint8_t* at = blocks + b * kQ4_KBytes;
    interleave_q4_k_block(at, block);
    std::memcpy(at, block, sizeof block);
  }
}

void deinterleave_q4_k_blocks(const uint8_t* blocks, uint64_t n_blocks, uint8_t* out) {
  for (uint64_t b = 0; b < n_blocks; ++b) deinterleave_q4_k_block(blocks + b * kQ4_KBytes, out + b * kQ4_KBytes);
}

void interleave_q8_k_rows(const uint8_t* in, int64_t n_rows, int64_t n_in, uint64_t row_bytes, uint8_t* out) {
  const int64_t n_blocks = n_in / kQK_K;
  for (int64_t r = 0; r < n_rows; ++r) {
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint64_t at = static_cast<uint64_t>(r) * row_bytes + static_cast<uint64_t>(b) * kQ8_KActBytes;
      const uint8_t* from = in + at;
      uint8_t* to = out + at;
      std::memcpy(to, from, 4);  // d
      std::memcpy(to + 4 + kQK_K, from + 4 + kQK_K, kQ8_KActBytes - 4 - kQK_K);  // bsums
      for (int v = 0; v < 4; ++v) {
        for (int lane = 0; lane < 16; ++lane) {
          std::memcpy(to + 4 + 64 * v + 4 * lane, from + 4 + 4 * interleaved_lane_source(v, lane), 4);
        }
      }
    }
  }
}

}  // namespace tiller::ops
