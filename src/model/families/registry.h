// The families Tiller runs, one per file of this folder. To add one: write
// <family>.cpp (its tensors, hyper-parameters and block), declare it here, list
// it in registry.cpp, add the file to CMakeLists.txt, and give it goldens
// (scripts/make-family-models.py, scripts/make-family-goldens.py).
#pragma once

#include "model/family.h"

namespace tiller {

extern const Family kLlamaFamily;
extern const Family kQwen2Family;
extern const Family kQwen3Family;
extern const Family kPhi3Family;
extern const Family kGemma2Family;
extern const Family kGemma3Family;
extern const Family kGpt2Family;

}  // namespace tiller
