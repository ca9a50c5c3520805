// Metadata values, tensor geometry and the File's look-ups.
#include <fmt/format.h>

#include "tiller/printable.h"
#include "common/fail.h"
#include "tiller/gguf.h"
#include "gguf/mapped_file.h"

namespace tiller {

std::string printable(std::string_view text, std::size_t max_length) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (out.size() >= max_length) {
      out += fmt::format("...(+{} bytes)", text.size() - i);
      break;
    }
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\\') {
      out += "\\\\";
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  return out;
}

}  // namespace tiller

namespace tiller::gguf {

std::string_view value_type_name(ValueType type) {
  switch (type) {
    case ValueType::U8: return "u8";
    case ValueType::I8: return "i8";
    case ValueType::U16: return "u16";
    case ValueType::I16: return "i16";
    case ValueType::U32: return "u32";
    case ValueType::I32: return "i32";
    case ValueType::F32: return "f32";
    case ValueType::BOOL: return "bool";
    case ValueType::STRING: return "string";
    case ValueType::ARRAY: return "array";
    case ValueType::U64: return "u64";
    case ValueType::I64: return "i64";
    case ValueType::F64: return "f64";
  }
  return "unknown";
}

size_t Array::size() const {
  return std::visit([](const auto& elements) { return elements.size(); }, items);
}

namespace {

template <class T>
std::string describe_scalar(const T& value) {
  if constexpr (std::is_same_v<T, std::string>) {
    return fmt::format("\"{}\"", printable(value, 60));
  } else if constexpr (std::is_same_v<T, bool>) {
    return value ? "true" : "false";
  } else if constexpr (std::is_same_v<T, uint8_t> || std::is_same_v<T, int8_t>) {
    return fmt::format("{}", static_cast<int>(value));
  } else {
    return fmt::format("{}", value);
  }
}

std::string describe_array(const Array& array, size_t max_items) {
  return std::visit(
      [&](const auto& elements) {
        std::string out = fmt::format("[{} x {}:", elements.size(), value_type_name(array.element_type()));
        size_t shown = 0;
        for (const auto& item : elements) {
          if (shown == max_items) {
            out += " ...";
            break;
          }
          using Item = std::decay_t<decltype(item)>;
          if constexpr (std::is_same_v<Item, Array>) {
            out += " " + describe_array(item, max_items);
          } else {
            out += " " + describe_scalar(static_cast<Item>(item));
          }
          ++shown;
        }
        return out + "]";
      },
      array.items);
}

}  // namespace

std::string describe(const Value& value, size_t max_items) {
  return std::visit(
      [&](const auto& held) -> std::string {
        using Held = std::decay_t<decltype(held)>;
        if constexpr (std::is_same_v<Held, Array>) {
          return describe_array(held, max_items);
        } else {
          return describe_scalar(held);
        }
      },
      value.data);
}

int64_t TensorInfo::n_elements() const {
  int64_t n = 1;
  for (int64_t extent : shape) n *= extent;
  return n;
}

int64_t TensorInfo::n_rows() const {
  return row_length() == 0 ? 0 : n_elements() / row_length();
}

uint64_t TensorInfo::row_bytes() const { return *tensor_bytes(type, row_length()); }

const Value* File::find(std::string_view key) const {
  const auto it = metadata_index_.find(std::string(key));
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].second;
}

namespace {

[[noreturn]] void wrong_type(const std::string& file, std::string_view key, const Value& value,
                             std::string_view wanted) {
  fail("{}: metadata key '{}' holds a {}, expected {}", file, printable(key), value_type_name(value.type()),
       wanted);
}

}  // namespace

std::optional<std::string> File::get_string(std::string_view key) const {
  const Value* value = find(key);
  if (value == nullptr) return std::nullopt;
  if (const auto* text = value->as<std::string>()) return *text;
  wrong_type(name_, key, *value, "a string");
}

std::optional<uint64_t> File::get_uint(std::string_view key) const {
  const Value* value = find(key);
  if (value == nullptr) return std::nullopt;
  std::optional<uint64_t> result;
  bool negative = false;
  std::visit(
      [&](const auto& held) {
        using Held = std::decay_t<decltype(held)>;
        if constexpr (std::is_integral_v<Held> && !std::is_same_v<Held, bool>) {
          if constexpr (std::is_signed_v<Held>) negative = held < 0;
          if (!negative) result = static_cast<uint64_t>(held);
        }
      },
      value->data);
  if (negative) fail("{}: metadata key '{}' is negative, expected a count", name_, printable(key));
  if (!result) wrong_type(name_, key, *value, "an integer");
  return result;
}

std::optional<double> File::get_float(std::string_view key) const {
  const Value* value = find(key);
  if (value == nullptr) return std::nullopt;
  std::optional<double> result;
  std::visit(
      [&](const auto& held) {
        using Held = std::decay_t<decltype(held)>;
        if constexpr (std::is_arithmetic_v<Held> && !std::is_same_v<Held, bool>) {
          result = static_cast<double>(held);
        }
      },
      value->data);
  if (!result) wrong_type(name_, key, *value, "a number");
  return result;
}

std::optional<bool> File::get_bool(std::string_view key) const {
  const Value* value = find(key);
  if (value == nullptr) return std::nullopt;
  if (const auto* flag = value->as<bool>()) return *flag;
  wrong_type(name_, key, *value, "a bool");
}

const Array* File::get_array(std::string_view key) const {
  const Value* value = find(key);
  if (value == nullptr) return nullptr;
  if (const auto* array = value->as<Array>()) return array;
  wrong_type(name_, key, *value, "an array");
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  const auto it = tensor_index_.find(std::string(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

std::span<const uint8_t> File::tensor_data(const TensorInfo& tensor) const {
  // The reader checked its own tensors; this guards against a TensorInfo from elsewhere.
  if (data_offset_ > bytes_.size() || tensor.offset > bytes_.size() - data_offset_ ||
      tensor.n_bytes > bytes_.size() - data_offset_ - tensor.offset) {
    fail("{}: tensor '{}' lies outside the file", name_, printable(tensor.name));
  }
  return bytes_.subspan(data_offset_ + tensor.offset, tensor.n_bytes);
}

std::span<const uint8_t> File::row_data(const TensorInfo& tensor, int64_t row) const {
  if (row < 0 || row >= tensor.n_rows()) {
    fail("{}: row {} out of range for tensor '{}' with {} rows", name_, row, tensor.name,
         tensor.n_rows());
  }
  const uint64_t row_bytes = tensor.row_bytes();
  return tensor_data(tensor).subspan(static_cast<uint64_t>(row) * row_bytes, row_bytes);
}

void File::rewrite_tensor(const TensorInfo& tensor, const std::function<void(std::span<uint8_t>)>& edit) {
  const std::span<const uint8_t> data = tensor_data(tensor);
  if (residence_ != Residence::Read || mapping_ == nullptr) fail("{}: its tensors are mapped, not read", name_);
  mapping_->rewrite(static_cast<uint64_t>(data.data() - mapping_->bytes().data()), data.size(), edit);
}

void File::release_array(std::string_view key) {
  const auto it = metadata_index_.find(std::string(key));
  if (it == metadata_index_.end()) return;
  if (auto* array = std::get_if<Array>(&metadata_[it->second].second.data)) {
    std::visit([](auto& items) { std::remove_reference_t<decltype(items)>().swap(items); }, array->items);
  }
}

}  // namespace tiller::gguf
