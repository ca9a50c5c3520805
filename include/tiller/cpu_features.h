// What the CPU running Tiller can do, detected once at run time, so that one
// binary picks its fastest kernels on any x86-64.
#pragma once

#include <string>

namespace tiller {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512vnni = false;
  bool avx512bf16 = false;
  bool avxvnni = false;
};

const CpuFeatures& cpu_features();
std::string describe(const CpuFeatures& features);

}  // namespace tiller
