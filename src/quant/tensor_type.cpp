#include "tiller/tensor_type.h"

#include <limits>

#include "common/fail.h"
#include "quant/tensor_type_table.h"

namespace tiller {

using quant::kTypes;

const TensorTypeInfo* find_tensor_type(uint32_t id) {
  for (const auto& info : kTypes) {
    if (static_cast<uint32_t>(info.type) == id) return &info;
  }
  return nullptr;
}

const TensorTypeInfo& tensor_type_info(TensorType type) {
  const TensorTypeInfo* info = find_tensor_type(static_cast<uint32_t>(type));
  if (info == nullptr) fail("unknown tensor type id {}", static_cast<uint32_t>(type));
  return *info;
}

std::string_view tensor_type_name(TensorType type) { return tensor_type_info(type).name; }

std::optional<TensorType> tensor_type_from_name(std::string_view name) {
  for (const auto& info : kTypes) {
    if (info.name == name) return info.type;
  }
  return std::nullopt;
}

std::optional<uint64_t> tensor_bytes(TensorType type, int64_t n_weights) {
  const TensorTypeInfo& info = tensor_type_info(type);
  if (n_weights < 0 || n_weights % info.block_size != 0) return std::nullopt;
  const auto n_blocks = static_cast<uint64_t>(n_weights / info.block_size);
  if (n_blocks > std::numeric_limits<uint64_t>::max() / info.block_bytes) return std::nullopt;
  return n_blocks * info.block_bytes;
}

}  // namespace tiller
