#include "tiller/cpu_features.h"

#include <fmt/format.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace tiller {
namespace {

#if defined(__x86_64__) || defined(__i386__)
bool bit(unsigned value, int index) { return ((value >> index) & 1u) != 0; }

// Read straight from CPUID (and XGETBV, so that registers the OS does not save
// count as absent); compiler builtins differ in which feature names they know.
CpuFeatures detect() {
  CpuFeatures f;
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return f;
  const bool os_saves_avx_state = bit(ecx, 27) && bit(ecx, 28);
  if (!os_saves_avx_state) return f;
  unsigned xcr0_low = 0, xcr0_high = 0;
  __asm__("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
  const bool ymm_enabled = (xcr0_low & 0x6u) == 0x6u;
  const bool zmm_enabled = ymm_enabled && (xcr0_low & 0xe0u) == 0xe0u;
  f.fma = ymm_enabled && bit(ecx, 12);
  f.f16c = ymm_enabled && bit(ecx, 29);

  unsigned max_leaf = __get_cpuid_max(0, nullptr);
  if (max_leaf < 7) return f;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  f.avx2 = ymm_enabled && bit(ebx, 5);
  f.avx512f = zmm_enabled && bit(ebx, 16);
  f.avx512bw = zmm_enabled && bit(ebx, 30);
  f.avx512vl = zmm_enabled && bit(ebx, 31);
  f.avx512vnni = zmm_enabled && bit(ecx, 11);
  const unsigned max_subleaf = eax;
  if (max_subleaf >= 1) {
    __cpuid_count(7, 1, eax, ebx, ecx, edx);
    f.avxvnni = ymm_enabled && bit(eax, 4);
    f.avx512bf16 = zmm_enabled && bit(eax, 5);
  }
  return f;
}
#else
CpuFeatures detect() { return {}; }
#endif

#if defined(TILLER_EMULATE_AVX512)
// The emulation build (src/ops/x86_simd.h) runs its AVX-512 code with AVX2, and
// all of it: a dispatch that checked AVX512F but ran VNNI code would pass here
// and fault on a CPU with AVX512F alone.
CpuFeatures detect_with_emulation() {
  CpuFeatures f = detect();
  f.avx512f = f.avx512bw = f.avx512vl = f.avx512vnni = true;
  return f;
}
#endif

}  // namespace

const CpuFeatures& cpu_features() {
#if defined(TILLER_EMULATE_AVX512)
  static const CpuFeatures features = detect_with_emulation();
#else
  static const CpuFeatures features = detect();
#endif
  return features;
}

std::string describe(const CpuFeatures& f) {
  std::string out;
  auto add = [&](bool present, const char* name) {
    if (!present) return;
    if (!out.empty()) out += ' ';
    out += name;
  };
  add(f.avx2, "AVX2");
  add(f.fma, "FMA");
  add(f.f16c, "F16C");
  add(f.avx512f, "AVX512F");
  add(f.avx512bw, "AVX512BW");
  add(f.avx512vl, "AVX512VL");
  add(f.avx512vnni, "AVX512_VNNI");
  add(f.avx512bf16, "AVX512_BF16");
  add(f.avxvnni, "AVX_VNNI");
#if defined(TILLER_EMULATE_AVX512)
  if (f.avx512f) out += " (AVX-512 emulated with SIMDe)";
#endif
  return out.empty() ? "baseline x86-64" : out;
}

}  // namespace tiller
