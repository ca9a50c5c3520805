// Serializes metadata and tensors into GGUF version 3.
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "common/fail.h"
#include "tiller/gguf.h"

namespace tiller::gguf {
namespace {

class ByteSink {
 public:
  template <class T>
  void put(T value) {
    const auto* raw = reinterpret_cast<const uint8_t*>(&value);
    bytes_.insert(bytes_.end(), raw, raw + sizeof(T));
  }
  void put_string(const std::string& text) {
    put<uint64_t>(text.size());
    bytes_.insert(bytes_.end(), text.begin(), text.end());
  }
  void put_bytes(std::span<const uint8_t> data) { bytes_.insert(bytes_.end(), data.begin(), data.end()); }
  void pad_to(uint64_t alignment) {
    while (bytes_.size() % alignment != 0) bytes_.push_back(0);
  }
  std::vector<uint8_t> take() { return std::move(bytes_); }

  void put_value(const Value& value) {
    std::visit(
        [&](const auto& held) {
          using Held = std::decay_t<decltype(held)>;
          if constexpr (std::is_same_v<Held, Array>) {
            put_array(held);
          } else {
            put_scalar(held);
          }
        },
        value.data);
  }

 private:
  template <class T>
  void put_scalar(const T& value) {
    if constexpr (std::is_same_v<T, std::string>) {
      put_string(value);
    } else if constexpr (std::is_same_v<T, bool>) {
      put<uint8_t>(value ? 1 : 0);
    } else {
      put<T>(value);
    }
  }

  void put_array(const Array& array) {
    put<uint32_t>(static_cast<uint32_t>(array.element_type()));
    put<uint64_t>(array.size());
    std::visit(
        [&](const auto& items) {
          for (const auto& item : items) {
            using Item = std::decay_t<decltype(item)>;
            if constexpr (std::is_same_v<Item, Array>) {
              put_array(item);
            } else {
              put_scalar(static_cast<Item>(item));
            }
          }
        },
        array.items);
  }

  std::vector<uint8_t> bytes_;
};

}  // namespace

void Writer::set(std::string key, Value value) {
  for (auto& [existing_key, existing_value] : metadata_) {
    if (existing_key == key) {
      existing_value = std::move(value);
      return;
    }
  }
  metadata_.emplace_back(std::move(key), std::move(value));
}

void Writer::add_tensor(std::string name, TensorType type, std::vector<int64_t> shape,
                        std::span<const uint8_t> data) {
  if (shape.empty() || shape.size() > 4) fail("tensor '{}': {} dimensions (1 to 4 allowed)", name, shape.size());
  int64_t n_elements = 1;
  for (int64_t extent : shape) {
    if (extent < 0) fail("tensor '{}': negative dimension {}", name, extent);
    n_elements *= extent;
  }
  const auto expected = tensor_bytes(type, n_elements);
  if (shape[0] % tensor_type_info(type).block_size != 0 || !expected || *expected != data.size()) {
    fail("tensor '{}': {} bytes of data do not match a {} tensor of {} elements", name, data.size(),
         tensor_type_name(type), n_elements);
  }
  for (const auto& pending : tensors_) {
    if (pending.name == name) fail("tensor '{}' added twice", name);
  }
  tensors_.push_back({std::move(name), type, std::move(shape), {data.begin(), data.end()}});
}

void Writer::add_tensor(std::string name, std::vector<int64_t> shape, std::span<const float> data) {
  add_tensor(std::move(name), TensorType::F32, std::move(shape),
             {reinterpret_cast<const uint8_t*>(data.data()), data.size_bytes()});
}

uint64_t Writer::alignment() const {
  for (const auto& [key, value] : metadata_) {
    if (key != "general.alignment") continue;
    const auto* alignment = value.as<uint32_t>();
    if (alignment == nullptr || *alignment == 0 || !std::has_single_bit(*alignment)) {
      fail("general.alignment must be a u32 power of two");
    }
    return *alignment;
  }
  return kDefaultAlignment;
}

std::vector<uint8_t> Writer::to_bytes() const {
  const uint64_t align = alignment();
  ByteSink sink;
  sink.put<uint32_t>(kMagic);
  sink.put<uint32_t>(3);
  sink.put<uint64_t>(tensors_.size());
  sink.put<uint64_t>(metadata_.size());
  for (const auto& [key, value] : metadata_) {
    sink.put_string(key);
    sink.put<uint32_t>(static_cast<uint32_t>(value.type()));
    sink.put_value(value);
  }
  uint64_t offset = 0;
  for (const auto& tensor : tensors_) {
    sink.put_string(tensor.name);
    sink.put<uint32_t>(static_cast<uint32_t>(tensor.shape.size()));
    for (int64_t extent : tensor.shape) sink.put<uint64_t>(static_cast<uint64_t>(extent));
    sink.put<uint32_t>(static_cast<uint32_t>(tensor.type));
    sink.put<uint64_t>(offset);
    offset += (tensor.data.size() + align - 1) / align * align;
  }
  sink.pad_to(align);
  for (const auto& tensor : tensors_) {
    sink.put_bytes(tensor.data);
    sink.pad_to(align);
  }
  return sink.take();
}

void Writer::write(const std::string& path) const {
  const std::vector<uint8_t> bytes = to_bytes();
  const std::string temporary = path + ".tmp-" + std::to_string(::getpid());
  std::FILE* out = std::fopen(temporary.c_str(), "wb");
  if (out == nullptr) fail("{}: cannot create: {}", temporary, std::strerror(errno));
  const bool written = std::fwrite(bytes.data(), 1, bytes.size(), out) == bytes.size();
  const bool closed = std::fclose(out) == 0;
  if (!written || !closed) {
    std::remove(temporary.c_str());
    fail("{}: cannot write {} bytes", path, bytes.size());
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) {
    std::remove(temporary.c_str());
    fail("{}: cannot rename into place: {}", path, error.message());
  }
}

}  // namespace tiller::gguf
