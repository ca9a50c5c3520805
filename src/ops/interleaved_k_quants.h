// Q4_K and Q6_K blocks rearranged at load for the AVX-512 VNNI generation kernels.
//
// In a GGUF Q4_K block each 64 weights (two sub-blocks of 32) share 32 bytes of
// nibbles, and a 64-byte vector of them spans two sub-blocks; a Q6_K vector spans
// four sub-blocks of 16. Every vector then needs its own scale vector (a vpermw
// each) and a vpmaddubsw/vpdpwssd pair before its products can be summed. In the
// interleaved layouts every 64 weights a kernel loads hold 4 of each of the
// block's 16 groups of 16 weights, in the same 32-bit lanes: lane i of every
// vector belongs to group i (weights 16i..16i+15). One vpdpbusd per 64 weights
// then sums products into lanes that stay within their group across the whole
// block, and one multiply by the lanes' scales finishes it (vnni_row_kernels.cpp:
// Q4_K 1.36x the GGUF layout's speed on a matrix in L2 on a Zen 4). A group is a
// Q6_K sub-block, or half a Q4_K one. Both formats share the order, so the
// activations (Q8_K) are put in it once per product whatever the weights' type.
//
// Blocks keep their size. Q4_K (144 bytes):
//   [0, 4)     f16 d, f16 dmin, as in GGUF
//   [4, 12)    byte j: scale_j (6 bits) | (min_j >> 4) << 6
//   [12, 16)   byte k: (min_k & 15) | (min_{k+4} & 15) << 4
//   [16, 80)   vectors 0 (low nibbles) and 1 (high nibbles)
//   [80, 144)  vectors 2 (low nibbles) and 3 (high nibbles)
// Q6_K (210 bytes; quants 0..63, value = quant - 32):
//   [0, 64)    vectors 0 (low nibbles) and 1 (high nibbles): the quants' low 4 bits
//   [64, 128)  vectors 2 and 3 alike
//   [128, 192) byte p: the top 2 bits of byte p of vectors 0, 1, 2, 3, from bit 0 up
//   [192, 210) the 16 int8 scales and f16 d, as in GGUF
// Byte p of vector v holds weight interleaved_weight(v, p) of the block. The
// activations meet them in the same order: interleave_q8_k_rows permutes each
// Q8_K block's 256 quants alike (their d and bsums stay).
#pragma once

#include <cstdint>

#include "tiller/tensor_type.h"

namespace tiller::ops {

// How a weight matrix's bytes are laid out: as in the GGUF file, or interleaved as
// above.
enum class WeightLayout { Gguf, Q4_KInterleaved, Q6_KInterleaved };

// The interleaved layout of a type, Gguf where it has none.
WeightLayout interleaved_layout(TensorType type);
// The type an interleaved layout holds.
TensorType interleaved_type(WeightLayout layout);

// Where lane i (0..15) of vector v (0..3) comes from, in lanes of four weights in
// the block's order: group i, its weights 4v..4v+3. Weights and activations move by
// whole lanes.
constexpr int interleaved_lane_source(int v, int lane) { return 4 * lane + v; }

// The block weight (0..255) at byte p (0..63) of vector v.
constexpr int interleaved_weight(int v, int p) { return 4 * interleaved_lane_source(v, p / 4) + p % 4; }

// One block from the GGUF layout to the interleaved one and back (out may not
// alias in). Exact: the round trip gives the same bytes.
void interleave_q4_k_block(const uint8_t* gguf, uint8_t* out);
void deinterleave_q4_k_block(const uint8_t* interleaved, uint8_t* out);
void interleave_q6_k_block(const uint8_t* gguf, uint8_t* out);
void deinterleave_q6_k_block(const uint8_t* interleaved, uint8_t* out);

// An interleaved block's 256 quants in weight order (Q4_K 0..15, Q6_K 0..63), and
// a Q4_K block's eight scales and mins (6 bits each), as the tiled kernels'
// packing takes them.
void interleaved_q4_k_quants(const uint8_t* block, uint8_t* q);
void interleaved_q4_k_scales(const uint8_t* block, uint8_t* scale, uint8_t* min);
void interleaved_q6_k_quants(const uint8_t* block, uint8_t* q);

// n_blocks consecutive GGUF blocks of the layout's type rewritten in place as
// interleaved ones.
void interleave_blocks(WeightLayout layout, uint8_t* blocks, uint64_t n_blocks);
// n_blocks interleaved blocks back in the GGUF layout, into `out`.
void deinterleave_blocks(WeightLayout layout, const uint8_t* blocks, uint64_t n_blocks, uint8_t* out);

// The 256 quants of a Q8_K block in the interleaved order, as d, quants and
// bsums: n_rows rows of n_in values (whole blocks), row_bytes apart in both.
void interleave_q8_k_rows(const uint8_t* in, int64_t n_rows, int64_t n_in, uint64_t row_bytes, uint8_t* out);

}  // namespace tiller::ops
