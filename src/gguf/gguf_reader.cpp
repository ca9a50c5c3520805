// GGUF parsing. Every count, length and offset read from the file is checked
// against the bytes that remain before it is used, so a corrupt or hostile file
// ends in one tiller::Error naming the file, the place and the offset.
#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>

#include "gguf/mapped_file.h"
#include "tiller/printable.h"
#include "common/fail.h"
#include "tiller/gguf.h"

namespace tiller::gguf {

static_assert(std::endian::native == std::endian::little, "GGUF is read as little-endian");

namespace {

constexpr uint64_t kMaxKeyLength = 65535;       // the specification's limit for keys
constexpr uint64_t kMaxTensorNameLength = 65535;
constexpr int kMaxArrayDepth = 8;               // no real file nests arrays; this bounds recursion
constexpr uint32_t kMaxDims = 4;
// Counts are checked against the bytes left, but an in-memory entry is larger
// than its encoding: reserve no more than this up front and let vectors grow.
constexpr uint64_t kReserveLimit = 1 << 16;

// Smallest encoding of one element, to reject counts that cannot fit before allocating.
uint64_t min_encoded_size(ValueType type) {
  switch (type) {
    case ValueType::U8: case ValueType::I8: case ValueType::BOOL: return 1;
    case ValueType::U16: case ValueType::I16: return 2;
    case ValueType::U32: case ValueType::I32: case ValueType::F32: return 4;
    case ValueType::U64: case ValueType::I64: case ValueType::F64: return 8;
    case ValueType::STRING: return 8;  // the length prefix
    case ValueType::ARRAY: return 12;  // element type and count
  }
  return 1;
}

bool is_known_value_type(uint32_t id) { return id <= static_cast<uint32_t>(ValueType::F64); }

}  // namespace

class Reader {
 public:
  Reader(std::span<const uint8_t> bytes, const std::string& name) : bytes_(bytes), name_(name) {}

  void parse(File& file) {
    if (bytes_.size() < 4) fail("{}: {} bytes is too small to be a GGUF file", name_, bytes_.size());
    const auto magic = read<uint32_t>("magic");
    if (magic != kMagic) {
      fail("{}: not a GGUF file (magic bytes {} instead of \"GGUF\")", name_,
           printable(std::string_view(reinterpret_cast<const char*>(bytes_.data()), 4)));
    }
    file.version_ = read<uint32_t>("version");
    if (file.version_ != 2 && file.version_ != 3) {
      const uint32_t swapped = __builtin_bswap32(file.version_);
      if (swapped == 2 || swapped == 3) {
        fail("{}: GGUF file is big-endian; Tiller reads little-endian files only", name_);
      }
      fail("{}: GGUF version {} is not supported (versions 2 and 3 are)", name_, file.version_);
    }
    const auto tensor_count = read<uint64_t>("tensor count");
    const auto kv_count = read<uint64_t>("metadata count");
    check_count(kv_count, 13, "metadata entries", 16);  // key length + type + 1-byte value
    check_count(tensor_count, 32, "tensors", 8);      // name length, n_dims, one dim, type, offset

    file.metadata_.reserve(std::min<uint64_t>(kv_count, kReserveLimit));
    for (uint64_t i = 0; i < kv_count; ++i) {
      const uint64_t entry_offset = pos_;
      context_.clear();
      std::string key = read_string("key", kMaxKeyLength);
      if (key.empty()) error_at(entry_offset, "empty metadata key");
      context_ = fmt::format(" (key '{}')", printable(key));
      const auto type_id = read<uint32_t>("value type");
      Value value = read_value(type_id, 0);
      if (!file.metadata_index_.emplace(key, file.metadata_.size()).second) {
        error_at(entry_offset, "duplicate metadata key");
      }
      file.metadata_.emplace_back(std::move(key), std::move(value));
    }
    context_.clear();
    file.alignment_ = read_alignment(file);

    file.tensors_.reserve(std::min<uint64_t>(tensor_count, kReserveLimit));
    for (uint64_t i = 0; i < tensor_count; ++i) {
      const uint64_t entry_offset = pos_;
      context_.clear();
      TensorInfo tensor = read_tensor_info(file.alignment_);
      if (!file.tensor_index_.emplace(tensor.name, file.tensors_.size()).second) {
        error_at(entry_offset, "duplicate tensor name");
      }
      file.tensors_.push_back(std::move(tensor));
    }
    context_.clear();

    const uint64_t end_of_infos = pos_;
    const uint64_t data_offset = align_up(end_of_infos, file.alignment_);
    if (tensor_count > 0 && data_offset > bytes_.size()) {
      error_at(end_of_infos, fmt::format("truncated: the data section would start at {} but the file "
                                         "has {} bytes", data_offset, bytes_.size()));
    }
    file.data_offset_ = data_offset;
    check_tensor_extents(file);
  }

 private:
  [[noreturn]] void error_at(uint64_t offset, const std::string& message) const {
    fail("{}: {}{} at offset {}", name_, message, context_, offset);
  }

  uint64_t remaining() const { return bytes_.size() - pos_; }

  void need(uint64_t n, const char* what) const {
    if (n > remaining()) {
      error_at(pos_, fmt::format("truncated: {} needs {} bytes, {} left", what, n, remaining()));
    }
  }

  template <class T>
  T read(const char* what) {
    need(sizeof(T), what);
    T value;
    std::memcpy(&value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }

  std::string read_string(const char* what, uint64_t max_length) {
    const uint64_t start = pos_;
    const auto length = read<uint64_t>(what);
    if (length > max_length) {
      error_at(start, fmt::format("{} length {} exceeds the limit of {}", what, length, max_length));
    }
    if (length > remaining()) {
      error_at(start, fmt::format("truncated: {} of {} bytes runs past the end ({} left)", what,
                                  length, remaining()));
    }
    std::string text(reinterpret_cast<const char*>(bytes_.data() + pos_), length);
    pos_ += length;
    return text;
  }

  void check_count(uint64_t count, uint64_t min_entry_bytes, const char* what, uint64_t at) const {
    if (count > remaining() / min_entry_bytes) {
      error_at(at, fmt::format("{} {} cannot fit in the {} bytes that follow", what, count,
                               remaining()));
    }
  }

  Value read_value(uint32_t type_id, int depth) {
    if (!is_known_value_type(type_id)) {
      error_at(pos_ - 4, fmt::format("unknown metadata value type {}", type_id));
    }
    switch (static_cast<ValueType>(type_id)) {
      case ValueType::U8: return read<uint8_t>("u8 value");
      case ValueType::I8: return read<int8_t>("i8 value");
      case ValueType::U16: return read<uint16_t>("u16 value");
      case ValueType::I16: return read<int16_t>("i16 value");
      case ValueType::U32: return read<uint32_t>("u32 value");
      case ValueType::I32: return read<int32_t>("i32 value");
      case ValueType::F32: return read<float>("f32 value");
      case ValueType::U64: return read<uint64_t>("u64 value");
      case ValueType::I64: return read<int64_t>("i64 value");
      case ValueType::F64: return read<double>("f64 value");
      case ValueType::BOOL: return read_bool();
      case ValueType::STRING: return read_string("string value", std::numeric_limits<uint64_t>::max());
      case ValueType::ARRAY: return read_array(depth + 1);
    }
    error_at(pos_, "unreachable value type");
  }

  bool read_bool() {
    const auto byte = read<uint8_t>("bool value");
    if (byte > 1) error_at(pos_ - 1, fmt::format("bool value {} is neither 0 nor 1", byte));
    return byte == 1;
  }

  template <class T, class ReadOne>
  Array read_items(uint64_t count, ReadOne read_one) {
    std::vector<T> items;
    items.reserve(std::min<uint64_t>(count, kReserveLimit));
    for (uint64_t i = 0; i < count; ++i) items.push_back(read_one());
    return Array{std::move(items)};
  }

  Array read_array(int depth) {
    if (depth > kMaxArrayDepth) {
      error_at(pos_, fmt::format("arrays nested deeper than {} levels", kMaxArrayDepth));
    }
    const uint64_t start = pos_;
    const auto element_id = read<uint32_t>("array element type");
    if (!is_known_value_type(element_id)) {
      error_at(start, fmt::format("unknown array element type {}", element_id));
    }
    const auto element = static_cast<ValueType>(element_id);
    const auto count = read<uint64_t>("array length");
    if (count > remaining() / min_encoded_size(element)) {
      error_at(start, fmt::format("array of {} {} elements cannot fit in the {} bytes left", count,
                                  value_type_name(element), remaining()));
    }
    switch (element) {
      case ValueType::U8: return read_items<uint8_t>(count, [&] { return read<uint8_t>("array element"); });
      case ValueType::I8: return read_items<int8_t>(count, [&] { return read<int8_t>("array element"); });
      case ValueType::U16: return read_items<uint16_t>(count, [&] { return read<uint16_t>("array element"); });
      case ValueType::I16: return read_items<int16_t>(count, [&] { return read<int16_t>("array element"); });
      case ValueType::U32: return read_items<uint32_t>(count, [&] { return read<uint32_t>("array element"); });
      case ValueType::I32: return read_items<int32_t>(count, [&] { return read<int32_t>("array element"); });
      case ValueType::F32: return read_items<float>(count, [&] { return read<float>("array element"); });
      case ValueType::U64: return read_items<uint64_t>(count, [&] { return read<uint64_t>("array element"); });
      case ValueType::I64: return read_items<int64_t>(count, [&] { return read<int64_t>("array element"); });
      case ValueType::F64: return read_items<double>(count, [&] { return read<double>("array element"); });
      case ValueType::BOOL: return read_items<bool>(count, [&] { return read_bool(); });
      case ValueType::STRING:
        return read_items<std::string>(count, [&] {
          return read_string("array string", std::numeric_limits<uint64_t>::max());
        });
      case ValueType::ARRAY: return read_items<Array>(count, [&] { return read_array(depth + 1); });
    }
    error_at(start, "unreachable array type");
  }

  uint64_t read_alignment(const File& file) const {
    const Value* value = file.find("general.alignment");
    if (value == nullptr) return kDefaultAlignment;
    const auto* alignment = value->as<uint32_t>();
    if (alignment == nullptr) {
      fail("{}: general.alignment must be a u32, not {}", name_, value_type_name(value->type()));
    }
    if (*alignment == 0 || !std::has_single_bit(*alignment)) {
      fail("{}: general.alignment {} is not a power of two", name_, *alignment);
    }
    return *alignment;
  }

  static uint64_t align_up(uint64_t offset, uint64_t alignment) {
    return (offset + alignment - 1) / alignment * alignment;  // offsets are < 2^63: no overflow
  }

  TensorInfo read_tensor_info(uint64_t alignment) {
    TensorInfo tensor;
    tensor.name = read_string("tensor name", kMaxTensorNameLength);
    if (tensor.name.empty()) error_at(pos_, "empty tensor name");
    context_ = fmt::format(" (tensor '{}')", printable(tensor.name));
    const uint64_t dims_at = pos_;
    const auto n_dims = read<uint32_t>("dimension count");
    if (n_dims == 0 || n_dims > kMaxDims) {
      error_at(dims_at, fmt::format("{} dimensions (1 to {} allowed)", n_dims, kMaxDims));
    }
    int64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t extent_at = pos_;
      const auto extent = read<uint64_t>("dimension");
      if (extent > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          (extent != 0 && n_elements > std::numeric_limits<int64_t>::max() / static_cast<int64_t>(extent))) {
        error_at(extent_at, fmt::format("dimension {} = {} makes the element count overflow", d, extent));
      }
      tensor.shape.push_back(static_cast<int64_t>(extent));
      n_elements *= static_cast<int64_t>(extent);
    }
    const uint64_t type_at = pos_;
    const auto type_id = read<uint32_t>("tensor type");
    const TensorTypeInfo* type = find_tensor_type(type_id);
    if (type == nullptr) error_at(type_at, fmt::format("unknown tensor type id {}", type_id));
    tensor.type = type->type;
    if (tensor.shape[0] % type->block_size != 0) {
      error_at(dims_at, fmt::format("row length {} is not a multiple of the {} block size {}",
                                    tensor.shape[0], type->name, type->block_size));
    }
    const auto n_bytes = tensor_bytes(tensor.type, n_elements);
    if (!n_bytes || !tensor_bytes(tensor.type, tensor.shape[0])) {
      error_at(dims_at, "tensor size overflows");
    }
    tensor.n_bytes = *n_bytes;
    const uint64_t offset_at = pos_;
    tensor.offset = read<uint64_t>("tensor data offset");
    if (tensor.offset % alignment != 0) {
      error_at(offset_at, fmt::format("data offset {} is not a multiple of the alignment {}",
                                      tensor.offset, alignment));
    }
    return tensor;
  }

  // Each tensor's bytes must lie inside the file, and no two tensors may share bytes.
  void check_tensor_extents(const File& file) {
    const uint64_t data_size = bytes_.size() - std::min<uint64_t>(file.data_offset_, bytes_.size());
    std::vector<const TensorInfo*> by_offset;
    for (const TensorInfo& tensor : file.tensors_) {
      if (tensor.offset > data_size || tensor.n_bytes > data_size - tensor.offset) {
        fail("{}: tensor '{}' ({} bytes at data offset {}) runs past the end of the file "
             "(data section has {} bytes)", name_, printable(tensor.name), tensor.n_bytes,
             tensor.offset, data_size);
      }
      if (tensor.n_bytes > 0) by_offset.push_back(&tensor);
    }
    std::sort(by_offset.begin(), by_offset.end(),
              [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < by_offset.size(); ++i) {
      const TensorInfo& before = *by_offset[i - 1];
      const TensorInfo& after = *by_offset[i];
      if (before.offset + before.n_bytes > after.offset) {
        fail("{}: tensors '{}' and '{}' overlap in the data section", name_,
             printable(before.name), printable(after.name));
      }
    }
  }

  std::span<const uint8_t> bytes_;
  const std::string& name_;
  uint64_t pos_ = 0;
  std::string context_;  // " (key 'x')" or " (tensor 'y')" while inside one
};

File File::parse(std::span<const uint8_t> bytes, std::string name) {
  File file;
  file.bytes_ = bytes;
  file.name_ = std::move(name);
  try {
    Reader(bytes, file.name_).parse(file);
  } catch (const std::bad_alloc&) {
    fail("{}: not enough memory to hold its metadata", file.name_);
  }
  return file;
}

File File::open(const std::string& path, Residence residence,
                const std::function<bool(const File&, const TensorInfo&)>& leave_mapped) {
  // Parsed from a mapping first (only the header's pages are touched), so that the
  // tensors to leave mapped are known before the file is read.
  auto mapping = std::make_shared<MappedFile>(path);
  File file = parse(mapping->bytes(), path);
  file.mapping_ = std::move(mapping);
  if (residence == Residence::Read) {
    std::vector<MappedFile::Range> ranges;
    for (const TensorInfo& tensor : file.tensors_) {
      if (leave_mapped && leave_mapped(file, tensor)) ranges.push_back({file.data_offset_ + tensor.offset, tensor.n_bytes});
    }
    auto read = std::make_shared<MappedFile>(path, true, ranges);
    if (read->bytes().size() != file.bytes_.size()) fail("{}: the file changed while it was being opened", path);
    file.bytes_ = read->bytes();
    file.mapping_ = std::move(read);
    file.residence_ = Residence::Read;
  }
  return file;
}

}  // namespace tiller::gguf
