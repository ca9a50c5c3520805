// The interleaved Q4_K and Q6_K layouts; see interleaved_k_quants.h.
#include "ops/interleaved_k_quants.h"

#include <cstring>

#include "common/fail.h"
#include "ops/block_layout.h"
#include "ops/k_scales.h"

namespace tiller::ops {
namespace {

constexpr int kQ4_KNibbles = 16;  // after d, dmin and 12 bytes of scales
constexpr int kQ6_KHighBits = 128;  // after the 128 bytes of low nibbles, in both layouts
constexpr int kQ6_KScales = 192;

// The 256 quants (0..15) of a GGUF Q4_K block in weight order: each 32 bytes hold
// 64 weights, the low nibbles first.
void gguf_q4_k_quants(const uint8_t* block, uint8_t* q) {
  const uint8_t* qs = block + kQ4_KNibbles;
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      q[64 * c + l] = qs[32 * c + l] & 0x0f;
      q[64 * c + 32 + l] = qs[32 * c + l] >> 4;
    }
  }
}

// The 256 quants (0..63) of a GGUF Q6_K block in weight order: per half h, ql = 64
// bytes and qh = 32; two bits of qh[l] top each of the four nibbles that land on
// weights 128h + l, + 32, + 64, + 96.
void gguf_q6_k_quants(const uint8_t* block, uint8_t* q) {
  for (int h = 0; h < 2; ++h) {
    const uint8_t* ql = block + 64 * h;
    const uint8_t* qh = block + kQ6_KHighBits + 32 * h;
    uint8_t* v = q + 128 * h;
    for (int l = 0; l < 32; ++l) {
      v[l] = static_cast<uint8_t>((ql[l] & 0x0f) | (qh[l] & 3) << 4);
      v[l + 32] = static_cast<uint8_t>((ql[l + 32] & 0x0f) | (qh[l] >> 2 & 3) << 4);
      v[l + 64] = static_cast<uint8_t>((ql[l] >> 4) | (qh[l] >> 4 & 3) << 4);
      v[l + 96] = static_cast<uint8_t>((ql[l + 32] >> 4) | (qh[l] >> 6 & 3) << 4);
    }
  }
}

// Quants in weight order to the four vectors' order and back: lanes of four move
// whole. Written for the compiler to vectorize: a model's matrices pass through
// here at every load.
void to_vectors(const uint8_t* q, uint8_t* vectors) {
  for (int v = 0; v < 4; ++v) {
    for (int lane = 0; lane < 16; ++lane) {
      std::memcpy(vectors + 64 * v + 4 * lane, q + 4 * interleaved_lane_source(v, lane), 4);
    }
  }
}
void from_vectors(const uint8_t* vectors, uint8_t* q) {
  for (int v = 0; v < 4; ++v) {
    for (int lane = 0; lane < 16; ++lane) {
      std::memcpy(q + 4 * interleaved_lane_source(v, lane), vectors + 64 * v + 4 * lane, 4);
    }
  }
}

// The low 4 bits of the four vectors, two vectors to each 64 bytes, and back.
void pack_nibbles(const uint8_t* vectors, uint8_t* out) {
  for (int half = 0; half < 2; ++half) {
    for (int p = 0; p < 64; ++p) {
      out[64 * half + p] = static_cast<uint8_t>((vectors[128 * half + p] & 0x0f) | vectors[128 * half + 64 + p] << 4);
    }
  }
}
void unpack_nibbles(const uint8_t* bytes, uint8_t* vectors) {
  for (int half = 0; half < 2; ++half) {
    for (int p = 0; p < 64; ++p) {
      vectors[128 * half + p] = bytes[64 * half + p] & 0x0f;
      vectors[128 * half + 64 + p] = bytes[64 * half + p] >> 4;
    }
  }
}

template <void (*convert)(const uint8_t*, uint8_t*)>
void blocks_in_place(uint8_t* blocks, uint64_t n_blocks, uint64_t block_bytes) {
  uint8_t block[kQ6_KBytes];
  static_assert(kQ6_KBytes >= kQ4_KBytes);
  for (uint64_t b = 0; b < n_blocks; ++b) {
    uint8_t* at = blocks + b * block_bytes;
    convert(at, block);
    std::memcpy(at, block, block_bytes);
  }
}

}  // namespace

WeightLayout interleaved_layout(TensorType type) {
  switch (type) {
    case TensorType::Q4_K: return WeightLayout::Q4_KInterleaved;
    case TensorType::Q6_K: return WeightLayout::Q6_KInterleaved;
    default: return WeightLayout::Gguf;
  }
}

TensorType interleaved_type(WeightLayout layout) {
  switch (layout) {
    case WeightLayout::Q4_KInterleaved: return TensorType::Q4_K;
    case WeightLayout::Q6_KInterleaved: return TensorType::Q6_K;
    case WeightLayout::Gguf: break;
  }
  fail("interleaved_type: the GGUF layout is not an interleaved one");
}

void interleave_q4_k_block(const uint8_t* gguf, uint8_t* out) {
  std::memcpy(out, gguf, 4);
  uint8_t scale[8], min[8];
  unpack_k_scales(gguf + 4, scale, min);
  for (int j = 0; j < 8; ++j) out[4 + j] = static_cast<uint8_t>(scale[j] | (min[j] >> 4) << 6);
  for (int k = 0; k < 4; ++k) out[12 + k] = static_cast<uint8_t>((min[k] & 15) | (min[k + 4] & 15) << 4);
  uint8_t q[256], vectors[256];
  gguf_q4_k_quants(gguf, q);
  to_vectors(q, vectors);
  pack_nibbles(vectors, out + kQ4_KNibbles);
}

void interleaved_q4_k_quants(const uint8_t* block, uint8_t* q) {
  uint8_t vectors[256];
  unpack_nibbles(block + kQ4_KNibbles, vectors);
  from_vectors(vectors, q);
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
  uint8_t* qs = out + kQ4_KNibbles;
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) qs[32 * c + l] = static_cast<uint8_t>(q[64 * c + l] | q[64 * c + 32 + l] << 4);
  }
}

void interleave_q6_k_block(const uint8_t* gguf, uint8_t* out) {
  uint8_t q[256], vectors[256];
  gguf_q6_k_quants(gguf, q);
  to_vectors(q, vectors);
  pack_nibbles(vectors, out);
  for (int p = 0; p < 64; ++p) {
    out[kQ6_KHighBits + p] = static_cast<uint8_t>((vectors[p] >> 4) | (vectors[64 + p] >> 4) << 2 |
                                                  (vectors[128 + p] >> 4) << 4 | (vectors[192 + p] >> 4) << 6);
  }
  std::memcpy(out + kQ6_KScales, gguf + kQ6_KScales, kQ6_KBytes - kQ6_KScales);
}

void interleaved_q6_k_quants(const uint8_t* block, uint8_t* q) {
  uint8_t vectors[256];
  unpack_nibbles(block, vectors);
  for (int v = 0; v < 4; ++v) {
    for (int p = 0; p < 64; ++p) vectors[64 * v + p] |= static_cast<uint8_t>((block[kQ6_KHighBits + p] >> (2 * v) & 3) << 4);
  }
  from_vectors(vectors, q);
}

void deinterleave_q6_k_block(const uint8_t* interleaved, uint8_t* out) {
  uint8_t q[256];
  interleaved_q6_k_quants(interleaved, q);
  for (int h = 0; h < 2; ++h) {
    uint8_t* ql = out + 64 * h;
    uint8_t* qh = out + kQ6_KHighBits + 32 * h;
    const uint8_t* v = q + 128 * h;
    for (int l = 0; l < 32; ++l) {
      ql[l] = static_cast<uint8_t>((v[l] & 0x0f) | (v[l + 64] & 0x0f) << 4);
      ql[l + 32] = static_cast<uint8_t>((v[l + 32] & 0x0f) | (v[l + 96] & 0x0f) << 4);
      qh[l] = static_cast<uint8_t>(v[l] >> 4 | (v[l + 32] >> 4) << 2 | (v[l + 64] >> 4) << 4 | (v[l + 96] >> 4) << 6);
    }
  }
  std::memcpy(out + kQ6_KScales, interleaved + kQ6_KScales, kQ6_KBytes - kQ6_KScales);
}

void interleave_blocks(WeightLayout layout, uint8_t* blocks, uint64_t n_blocks) {
  switch (layout) {
    case WeightLayout::Q4_KInterleaved: return blocks_in_place<interleave_q4_k_block>(blocks, n_blocks, kQ4_KBytes);
    case WeightLayout::Q6_KInterleaved: return blocks_in_place<interleave_q6_k_block>(blocks, n_blocks, kQ6_KBytes);
    case WeightLayout::Gguf: fail("interleave_blocks: the GGUF layout is not an interleaved one");
  }
}

void deinterleave_blocks(WeightLayout layout, const uint8_t* blocks, uint64_t n_blocks, uint8_t* out) {
  if (layout == WeightLayout::Gguf) fail("deinterleave_blocks: the blocks are not interleaved");
  const bool q4 = layout == WeightLayout::Q4_KInterleaved;
  const uint64_t block_bytes = q4 ? kQ4_KBytes : kQ6_KBytes;
  for (uint64_t b = 0; b < n_blocks; ++b) {
    (q4 ? deinterleave_q4_k_block : deinterleave_q6_k_block)(blocks + b * block_bytes, out + b * block_bytes);
  }
}

void interleave_q8_k_rows(const uint8_t* in, int64_t n_rows, int64_t n_in, uint64_t row_bytes, uint8_t* out) {
  const int64_t n_blocks = n_in / kQK_K;
  for (int64_t r = 0; r < n_rows; ++r) {
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint64_t at = static_cast<uint64_t>(r) * row_bytes + static_cast<uint64_t>(b) * kQ8_KActBytes;
      const uint8_t* from = in + at;
      uint8_t* to = out + at;
      std::memcpy(to, from, 4);  // d
      std::memcpy(to + kQ8_KBsums, from + kQ8_KBsums, kQ8_KActBytes - kQ8_KBsums);
      to_vectors(from + 4, to + 4);
    }
  }
}

}  // namespace tiller::ops
