// GGUF files: metadata values, a memory-mapped reader that checks every size and
// offset before use, and a writer whose output the reader reads back identically.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "tiller/tensor_type.h"

namespace tiller::gguf {

// Metadata value types; the numbers are the ones GGUF stores.
enum class ValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
std::string_view value_type_name(ValueType type);

// A typed array; the index of the alternative held is its element ValueType.
struct Array {
  using Items = std::variant<std::vector<uint8_t>, std::vector<int8_t>, std::vector<uint16_t>,
                             std::vector<int16_t>, std::vector<uint32_t>, std::vector<int32_t>,
                             std::vector<float>, std::vector<bool>, std::vector<std::string>,
                             std::vector<Array>, std::vector<uint64_t>, std::vector<int64_t>,
                             std::vector<double>>;
  Items items;

  ValueType element_type() const { return static_cast<ValueType>(items.index()); }
  size_t size() const;
  template <class T>
  const std::vector<T>* as() const { return std::get_if<std::vector<T>>(&items); }
  bool operator==(const Array&) const = default;
};

// A metadata value; the index of the alternative held is its ValueType.
struct Value {
  using Data = std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool,
                            std::string, Array, uint64_t, int64_t, double>;
  Data data;

  Value() = default;
  template <class T>
    requires std::is_constructible_v<Data, T&&>
  Value(T&& value) : data(std::forward<T>(value)) {}  // NOLINT: implicit on purpose
  Value(const char* text) : data(std::string(text)) {}  // NOLINT

  ValueType type() const { return static_cast<ValueType>(data.index()); }
  template <class T>
  const T* as() const { return std::get_if<T>(&data); }
  bool operator==(const Value&) const = default;
};

// Renders a value for people: scalars as they are, strings quoted, long arrays abridged.
std::string describe(const Value& value, size_t max_items = 8);

struct TensorInfo {
  std::string name;
  TensorType type;
  std::vector<int64_t> shape;  // ne: shape[0] is the innermost, contiguous dimension
  uint64_t offset = 0;         // from the start of the data section
  uint64_t n_bytes = 0;

  int64_t n_elements() const;
  int64_t row_length() const { return shape.empty() ? 0 : shape[0]; }
  int64_t n_rows() const;
  uint64_t row_bytes() const;
};

class MappedFile;

// How File::open holds a file's bytes. Mapped: pages come from the page cache as
// they are first touched and are shared with every process mapping the file (the
// fastest load). Read: the whole file is read into anonymous memory, which the
// kernel backs with transparent huge pages where it allows them; generation reads
// every weight for every token, and over a mapped file's 4 KiB pages that costs a
// TLB miss per page (a 1B model generated 20-25% faster read than mapped, Zen 5).
enum class Residence { Mapped, Read };

// A parsed GGUF file. Tensor data stays where open() put the file's bytes (its
// mapping, or the memory it was read into); nothing is copied out of them.
class File {
 public:
  // Maps (or reads, as residence says) and parses a file; throws tiller::Error naming
  // the file, what was wrong and where.
  // With Residence::Read, the tensors leave_mapped picks stay mapped instead (their
  // whole pages): a token embedding only has its rows looked up.
  static File open(const std::string& path, Residence residence = Residence::Mapped,
                   const std::function<bool(const File&, const TensorInfo&)>& leave_mapped = nullptr);
  // Parses bytes the caller keeps alive for the File's lifetime; `name` appears in errors.
  static File parse(std::span<const uint8_t> bytes, std::string name);

  const std::string& name() const { return name_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  uint64_t size() const { return bytes_.size(); }
  // How open() holds the bytes; Mapped also for parse(), whose bytes the caller holds.
  Residence residence() const { return residence_; }

  // Metadata in file order.
  const std::vector<std::pair<std::string, Value>>& metadata() const { return metadata_; }
  const Value* find(std::string_view key) const;
  // Typed getters: nullopt when the key is absent, an error when it holds another type.
  // get_uint takes any integer type holding a non-negative value; get_float any number.
  std::optional<std::string> get_string(std::string_view key) const;
  std::optional<uint64_t> get_uint(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;
  std::optional<bool> get_bool(std::string_view key) const;
  const Array* get_array(std::string_view key) const;
  // Frees a value that has been read into something else (a model's tokenizer
  // arrays: 128k-token vocabularies and their merges take tens of MiB as strings);
  // the key stays, holding an empty array of its element type.
  void release_array(std::string_view key);

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;
  std::span<const uint8_t> tensor_data(const TensorInfo& tensor) const;
  std::span<const uint8_t> row_data(const TensorInfo& tensor, int64_t row) const;
  // Read residence only, and not a tensor left mapped: `edit` changes the tensor's
  // bytes in memory (a model rearranging its weights for its kernels; the file on
  // disk stays as it is).
  void rewrite_tensor(const TensorInfo& tensor, const std::function<void(std::span<uint8_t>)>& edit);

 private:
  friend class Reader;
  std::shared_ptr<MappedFile> mapping_;
  std::span<const uint8_t> bytes_;
  Residence residence_ = Residence::Mapped;
  std::string name_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, Value>> metadata_;
  std::unordered_map<std::string, size_t> metadata_index_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

// Builds a GGUF file: metadata in insertion order, tensors laid out at the
// alignment (general.alignment if set, else 32), data padded as the format says.
class Writer {
 public:
  void set(std::string key, Value value);  // replaces an existing key in place
  void add_tensor(std::string name, TensorType type, std::vector<int64_t> shape,
                  std::span<const uint8_t> data);
  void add_tensor(std::string name, std::vector<int64_t> shape, std::span<const float> data);

  std::vector<uint8_t> to_bytes() const;
  // Writes to a temporary file beside `path` and renames it, so no half-written file remains.
  void write(const std::string& path) const;

 private:
  struct PendingTensor {
    std::string name;
    TensorType type;
    std::vector<int64_t> shape;
    std::vector<uint8_t> data;
  };
  uint64_t alignment() const;
  std::vector<std::pair<std::string, Value>> metadata_;
  std::vector<PendingTensor> tensors_;
};

inline constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
inline constexpr uint64_t kDefaultAlignment = 32;

}  // namespace tiller::gguf
