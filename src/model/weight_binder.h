// Binds a GGUF's tensors to weights by name, checking that each is there, has a
// type Tiller computes with and the shape the family expects: every failure is a
// one-line error naming the file and the tensor.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/family.h"
#include "model/model_weights.h"
#include "tiller/gguf.h"

namespace tiller {

class WeightBinder {
 public:
  explicit WeightBinder(const gguf::File& file) : file_(file) {}

  bool has(const std::string& name) const { return file_.find_tensor(name) != nullptr; }
  // A matrix of n_out rows of n_in weights (GGUF shape [n_in, n_out]).
  ops::WeightMatrix matrix(const std::string& name, int64_t n_in, int64_t n_out) const;
  // Rows [first, first + count) of a matrix, as a matrix of its own (fused tensors:
  // phi3's attn_qkv, gpt2's; phi3's gate and up halves). No copy.
  static ops::WeightMatrix rows(const ops::WeightMatrix& whole, int64_t first, int64_t count, const std::string& part);
  std::vector<float> vector(const std::string& name, int64_t n) const;
  std::vector<float> optional_vector(const std::string& name, int64_t n) const {
    return has(name) ? vector(name, n) : std::vector<float>{};
  }
  // "<base>.weight", and "<base>.bias" for LayerNorm.
  NormWeights norm(const std::string& base, int64_t n, NormKind kind) const;
  const gguf::File& file() const { return file_; }

 private:
  const gguf::TensorInfo& tensor(const std::string& name) const;
  const gguf::File& file_;
};

// Entries [first, first + count) of v (a fused bias's part); empty stays empty.
std::vector<float> slice(const std::vector<float>& v, int64_t first, int64_t count);

}  // namespace tiller
