// Row kernels for generation (one to a few activation rows) with AVX-512 VNNI.
//
// Generation reads every weight once per token, so its speed is the memory
// bandwidth one or two cores can draw. The AVX2 row kernels (row_kernels_avx2.cpp)
// need about twice the instructions per weight byte that these do (32-byte
// vectors, and the byte products summed in three steps where vpdpbusd takes one),
// which left a single core short of the bandwidth on Gemma's large output matrix.
// Here two 32-weight blocks (or one 64-weight part of a K-quant block) fill one
// 64-byte vector, meet their activations in one vpdpbusd (or vpmaddubsw and a
// scaled vpdpwssd for the K-quants), and the weights are prefetched well ahead.
//
// The integer sums are the AVX2 kernels'; the float sums run over 16 lanes instead
// of 8, so results differ from them by float rounding (~1e-7 relative), the same
// for a row whether it is computed alone or among others.
#pragma once

#include <cstdint>

#include "ops/interleaved_k_quants.h"
#include "ops/row_kernels.h"
#include "tiller/tensor_type.h"

namespace tiller::ops {

// How far ahead of the weights being read the row kernels prefetch. The model is a
// mapped file in 4 KiB pages, where the hardware prefetchers stop at every page
// boundary; one page ahead keeps enough lines in flight. Measured on a Zen 5 with
// the kernels reading one row at a time (Q4_K, 1536 x 65536, one activation row):
// no prefetch 14.3 GB/s at 1 thread, 4 KiB 17.1, 8 KiB 16.7, 16 KiB 15.8, 32 KiB
// 15.3; on a Llama-3.2-1B-shaped Q4_K_M model 4 KiB gave 22.4 tokens/s against 21.5
// for 8 KiB. Into L2 (vnni_row_kernels.cpp's prefetch()), on a Xeon with the
// weights in huge pages, the 8B shape at 2 threads: 4 KiB 28.2 to 28.5 GB/s,
// 2 KiB 23.9 to 24.5, 8 KiB 27.6 to 28.8, 16 KiB 27.6 to 30.5 (noisy).
inline constexpr uint64_t kPrefetchAhead = 4096;

// Both nullptr when the type has no such kernel. Only for the Avx512Vnni level,
// whose caller has made sure the CPU runs it (tiller::Engine does).
RowKernels vnni_row_kernels(TensorType weight_type);
// The kernels of Q4_K or Q6_K interleaved at load (interleaved_k_quants.h); they
// read Q8_K activations interleaved alike (interleaved_activations is set).
RowKernels vnni_interleaved_row_kernels(WeightLayout layout);

}  // namespace tiller::ops
