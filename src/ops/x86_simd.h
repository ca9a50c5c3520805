// The x86 intrinsics of the kernels, and the target attributes of their AVX-512
// code. Normally both are the compiler's. The emulation build
// (TILLER_EMULATE_AVX512, `scripts/build.sh emulate`) takes the AVX-512
// intrinsics from SIMDe (Debian's libsimde-dev), which computes them with AVX2,
// and compiles the AVX-512 functions for AVX2 while cpu_features() reports
// AVX-512: a CPU without AVX-512 then runs the AVX-512 kernels and their tests.
// It checks their results, never their speed.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#if defined(TILLER_EMULATE_AVX512)
#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "the AVX-512 emulation build compiles with -mavx2 -mfma -mf16c"
#endif
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

#include "ops/avx512_emulation_gaps.h"
#define TILLER_TARGET_AVX512 __attribute__((target("avx2,fma,f16c")))
#define TILLER_TARGET_AVX512_VNNI __attribute__((target("avx2,fma,f16c")))
#else
#define TILLER_TARGET_AVX512 __attribute__((target("avx512f,avx2,fma,f16c")))
#define TILLER_TARGET_AVX512_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#endif

#endif
