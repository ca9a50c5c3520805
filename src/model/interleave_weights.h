// The model's Q4_K matrices rearranged for the AVX-512 VNNI generation kernels
// (ops/q4_k_interleaved.h): 1.36x their kernel's speed from cache, where a core
// is computing rather than waiting for memory.
#pragma once

#include "model/model_weights.h"
#include "tiller/gguf.h"

namespace tiller {

// Where the file was read into memory and the CPU runs Avx512Vnni kernels: every
// Q4_K tensor behind a matrix of `weights` (each tensor once, whatever views of
// it there are) is interleaved in place, and its matrices say so. Not the token
// embedding, whose rows are looked up (a tied output matrix stays in the GGUF
// layout with it). A mapped file stays as it is.
void interleave_q4_k_matrices(gguf::File& file, ModelWeights& weights);

}  // namespace tiller
