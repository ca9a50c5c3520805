// The model's Q4_K and Q6_K matrices rearranged for the AVX-512 VNNI generation
// kernels (ops/interleaved_k_quants.h): faster where a core is computing rather
// than waiting for memory (Q4_K 1.36x from cache).
#pragma once

#include "model/model_weights.h"
#include "tiller/gguf.h"

namespace tiller {

// Where the file was read into memory and the CPU runs Avx512Vnni kernels: every
// Q4_K and Q6_K tensor behind a matrix of `weights` (each tensor once, whatever
// views of it there are) is interleaved in place, and its matrices say so. The
// token embedding only where it is the output matrix too (tied); its rows are
// looked up through ops::weight_row, which reads either layout. A mapped file
// stays as it is.
void interleave_k_quant_matrices(gguf::File& file, ModelWeights& weights);

}  // namespace tiller
