// Q4_K blocks rearranged at load for the AVX-512 VNNI generation kernels.
//
// In a GGUF Q4_K block each 64 weights (two sub-blocks of 32) share 32 bytes of
// nibbles, and the eight 6-bit (scale, min) pairs are packed across 12 bytes
// (k_scales.h). A 64-byte vector of those weights then spans two sub-blocks, so
// every vector needs its own scale vector (a vpermw each) before the products can
// be summed. In the interleaved layout every 64 weights a kernel loads cover all
// eight sub-blocks, 8 of each, in the same 32-bit lanes: lane i of every vector
// belongs to sub-block i % 8. One vpdpbusd per 64 weights then sums products into
// lanes that stay within their sub-block across the whole block, and a single
// scale multiply per block finishes it (vnni_row_kernels.cpp: 1.36x the GGUF
// layout's speed on a matrix in L2 on a Zen 4; from memory about the same).
//
// The block keeps its 144 bytes:
//   [0, 4)     f16 d, f16 dmin, as in GGUF
//   [4, 12)    byte j: scale_j (6 bits) | (min_j >> 4) << 6
//   [12, 16)   byte k: (min_k & 15) | (min_{k+4} & 15) << 4
//   [16, 80)   vectors 0 (low nibbles) and 1 (high nibbles)
//   [80, 144)  vectors 2 (low nibbles) and 3 (high nibbles)
// Byte p of vector v holds weight interleaved_weight(v, p) of the block. The
// activations meet them in the same order: interleave_q8_k_rows permutes each
// Q8_K block's 256 quants alike (their d and bsums stay).
#pragma once

#include <cstdint>

namespace tiller::ops {

// How a weight matrix's bytes are laid out: as in the GGUF file, or (Q4_K only)
// interleaved as above.
enum class WeightLayout { Gguf, Q4_KInterleaved };

// Where lane i (0..15) of vector v (0..3) comes from, in lanes of four weights in
// the block's order: sub-block i % 8, its weights 8v + 4(i / 8) + 0..3. Weights and
// activations move by whole lanes.
constexpr int interleaved_lane_source(int v, int lane) { return 8 * (lane % 8) + 2 * v + lane / 8; }

// The block weight (0..255) at byte p (0..63) of vector v.
constexpr int interleaved_weight(int v, int p) { return 4 * interleaved_lane_source(v, p / 4) + p % 4; }

// One block from the GGUF layout to the interleaved one and back (out may not
// alias in). Exact: the round trip gives the same bytes.
void interleave_q4_k_block(const uint8_t* gguf, uint8_t* out);
void deinterleave_q4_k_block(const uint8_t* interleaved, uint8_t* out);

// An interleaved block's 256 quants (0..15) in weight order, and its eight scales
// and mins (6 bits each), as the tiled kernels' packing takes them.
void interleaved_q4_k_quants(const uint8_t* block, uint8_t* q);
void interleaved_q4_k_scales(const uint8_t* block, uint8_t* scale, uint8_t* min);

// n_blocks consecutive GGUF Q4_K blocks rewritten in place as interleaved ones.
void interleave_q4_k_blocks(uint8_t* blocks, uint64_t n_blocks);
// n_blocks interleaved blocks back in the GGUF layout, into `out`.
void deinterleave_q4_k_blocks(const uint8_t* blocks, uint64_t n_blocks, uint8_t* out);

// The 256 quants of a Q8_K block in the interleaved order, as d, quants and
// bsums: n_rows rows of n_in values (whole blocks), row_bytes apart in both.
void interleave_q8_k_rows(const uint8_t* in, int64_t n_rows, int64_t n_in, uint64_t row_bytes, uint8_t* out);

}  // namespace tiller::ops
