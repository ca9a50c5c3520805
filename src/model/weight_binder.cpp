#include "model/weight_binder.h"

#include <fmt/ranges.h>

#include "common/fail.h"
#include "tiller/dequantize.h"

namespace tiller {

const gguf::TensorInfo& WeightBinder::tensor(const std::string& name) const {
  const gguf::TensorInfo* info = file_.find_tensor(name);
  if (info == nullptr) fail("{}: tensor '{}' is missing", file_.name(), name);
  if (!tensor_type_info(info->type).dequantizable) {
    fail("{}: tensor '{}' has type {}, which Tiller cannot compute with yet", file_.name(), name,
         tensor_type_name(info->type));
  }
  return *info;
}

ops::WeightMatrix WeightBinder::matrix(const std::string& name, int64_t n_in, int64_t n_out) const {
  const gguf::TensorInfo& info = tensor(name);
  if (info.shape != std::vector<int64_t>{n_in, n_out}) {
    fail("{}: tensor '{}' has shape [{}], expected [{}, {}]", file_.name(), name, fmt::join(info.shape, ", "), n_in,
         n_out);
  }
  return {info.type, n_in, n_out, file_.tensor_data(info).data(), info.row_bytes(), name};
}

ops::WeightMatrix WeightBinder::rows(const ops::WeightMatrix& whole, int64_t first, int64_t count,
                                     const std::string& part) {
  if (first < 0 || count <= 0 || first + count > whole.n_out) {
    fail("{}: rows {} to {} of {} do not exist", whole.name, first, first + count, whole.n_out);
  }
  return {whole.type, whole.n_in, count, whole.data + static_cast<uint64_t>(first) * whole.row_bytes, whole.row_bytes,
          whole.name + " (" + part + ")"};
}

std::vector<float> WeightBinder::vector(const std::string& name, int64_t n) const {
  const gguf::TensorInfo& info = tensor(name);
  if (info.shape != std::vector<int64_t>{n}) {
    fail("{}: tensor '{}' has shape [{}], expected [{}]", file_.name(), name, fmt::join(info.shape, ", "), n);
  }
  return dequantize_tensor_row(file_, info, 0);
}

NormWeights WeightBinder::norm(const std::string& base, int64_t n, NormKind kind) const {
  NormWeights norm{vector(base + ".weight", n), {}};
  if (kind == NormKind::Layer) norm.bias = vector(base + ".bias", n);
  return norm;
}

std::vector<float> slice(const std::vector<float>& v, int64_t first, int64_t count) {
  if (v.empty()) return {};
  return {v.begin() + first, v.begin() + first + count};
}

}  // namespace tiller
