// e^x for 16 floats at once with AVX-512, for the softmax of attention and SiLU:
// libm's scalar expf was a sixth of prompt processing once the matrix products
// were tiled.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__)
#include "ops/x86_simd.h"

namespace tiller::ops {

// x = n ln2 + r with |r| <= ln2 / 2; e^r by its Taylor series to degree 7 (the
// first term left out, r^8 / 8!, is below 6e-9 of the result, a tenth of a float
// step); then times 2^n by vscalefps, which also gives 0 far below the float range
// and infinity above it. ln2 is taken in two parts, the first with few enough bits
// that n x it is exact. Arguments below -105 (where e^x is 0 in float) are raised
// to -105 so that minus infinity gives 0; NaN stays NaN.
TILLER_TARGET_AVX512 inline __m512 exp_avx512(__m512 x) {
  x = _mm512_max_ps(_mm512_set1_ps(-105.0f), x);  // the second operand when NaN
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);  // 355 / 512
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440054690583e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

}  // namespace tiller::ops
#endif
