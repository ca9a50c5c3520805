// Row kernels for F16 and BF16 weight matrices, the way ggml's CPU backend
// multiplies them: the activations rounded to f16 / bf16 (ActivationFormat F16 /
// BF16, kept as f32 values), each product of two half-precision values formed
// exactly in f32 (11 x 11 or 8 x 8 significant bits), and summed in f32. Only the
// sums round, so a result equals the exact product of the dequantized weights and
// rounded activations to float rounding; the levels add in different orders.
//
// The same RowKernels interface as the integer kernels (row_kernels.h): `weights`
// are the row's f16 / bf16 bits, `activations` n f32 values.
#pragma once

#include "ops/row_kernels.h"
#include "tiller/tensor_type.h"

namespace tiller::ops {

// Both nullptr unless weight_type is F16 or BF16. Portable: plain C++ for baseline
// x86-64. Avx2: AVX2, FMA and F16C ({} where the target has no AVX2 code).
RowKernels portable_half_row_kernels(TensorType weight_type);
RowKernels avx2_half_row_kernels(TensorType weight_type);

}  // namespace tiller::ops
